"""The CLI's table builder: a table while every kept column fits whole, stacked rows when it does not; never "…"."""

from __future__ import annotations

import io

from rich.console import Console

from onshore.cli_tables import data_table, fields, wrapped

LONG_ID = "cn.sig.location-coordinates-of-the-destination-set"


def _render(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_a_table_that_fits_is_a_table_and_one_that_does_not_is_stacked() -> None:
    table = data_table(["rule", "date", wrapped("source")], [(LONG_ID, "2024-06-03", "Art. 3 " * 12)])
    wide = _render(table, 120)
    assert wide.splitlines()[0].split() == ["rule", "date", "source"]  # one header line over the columns
    assert LONG_ID in wide and "2024-06-03" in wide and "…" not in wide
    narrow = _render(table, 60)
    lines = narrow.splitlines()
    assert lines[0].split() == ["rule", LONG_ID] and lines[1].split() == ["date", "2024-06-03"], narrow
    assert "…" not in narrow and max(len(line) for line in lines) <= 60


def test_a_value_longer_than_the_terminal_folds_instead_of_being_cut() -> None:
    digest = "ab" * 40
    text = _render(fields([("root hash", digest), ("signed by", "cn.log")]), 50)
    assert "…" not in text and digest in "".join(text.split())


def test_cells_are_plain_text_not_markup() -> None:
    assert "[red]x[/]" in _render(data_table(["id"], [("[red]x[/]",)]), 40)
