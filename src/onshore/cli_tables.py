"""The one table builder of the CLI: ids, dates and names are never cut, whatever the terminal's width.

A column is either *kept* (an id, a date, a number, a signal or rule name: printed whole on one line) or
*wrapped* (free text: folded at spaces). At render time the table measures what it needs: if every kept column
fits whole beside a narrow strip for each wrapped one, it is a table; if not, each row is printed stacked, one
``header  value`` line per column, where a value folds at the terminal's edge instead of being cut. Nothing is
ever truncated with an ellipsis.

Cells are plain text (never Rich markup, so an id holding brackets prints as it is); pass a ``rich.text.Text``
for a styled cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

Cell = str | int | Text | None
WRAPPED_MIN = 12  # the narrowest strip a wrapped column is given before the table stacks instead
WORD_LIMIT = 24  # a wrapped column is widened to keep words up to this long whole (a rule id in a reason)
_PADDING = 2  # one space each side of a cell
_BOX = box.SIMPLE_HEAD  # no vertical lines: a folded value stays contiguous when copied


@dataclass(frozen=True, slots=True)
class Col:
    """One column: its header, whether it wraps (free text) or is kept whole (ids, dates, numbers, names)."""

    header: str
    wrap: bool = False
    justify: str = "left"


def wrapped(header: str) -> Col:
    """A free-text column, folded at spaces to fit."""
    return Col(header, wrap=True)


def number(header: str) -> Col:
    """A right-aligned column of counts, kept whole."""
    return Col(header, justify="right")


def _text(cell: Cell) -> Text:
    if isinstance(cell, Text):
        return cell
    return Text("-" if cell is None else str(cell))


def plain(value: object) -> str:
    """A value of a JSON payload as cell text: lists and mappings joined with commas, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "-"
    return str(value)


def _width(text: Text) -> int:
    return max((line.cell_len for line in text.split("\n")), default=0)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


class DataTable:
    """Rows under headers, rendered as a table when it fits and stacked when it does not (see the module)."""

    def __init__(self, columns: Sequence[Col | str], title: str | None = None) -> None:
        self.columns = [c if isinstance(c, Col) else Col(c) for c in columns]
        self.title = title
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([_text(c) for c in cells])

    def _min_widths(self) -> list[int]:
        """Per column: a kept one's whole width; a wrapped one's strip (its longest word up to WORD_LIMIT)."""
        widths = []
        for index, column in enumerate(self.columns):
            cells = [row[index] for row in self.rows]
            natural = max([_width(c) for c in cells] + [len(column.header)])  # no_wrap holds the header whole too
            if column.wrap:
                word = max([_longest_word(c.plain) for c in cells] + [_longest_word(column.header)])
                natural = min(natural, max(WRAPPED_MIN, min(word, WORD_LIMIT)))
            widths.append(natural)
        return widths

    def needed_width(self) -> int:
        """The narrowest width at which every kept column is whole and every wrapped one has its strip."""
        return sum(w + _PADDING for w in self._min_widths()) + len(self.columns) - 1  # with the separators

    def table(self) -> Table:
        table = Table(title=self.title, title_justify="left", box=_BOX, show_edge=False, header_style="bold")
        for column, width in zip(self.columns, self._min_widths(), strict=True):
            table.add_column(
                column.header,
                justify=column.justify,  # type: ignore[arg-type]
                overflow="fold",
                no_wrap=not column.wrap,
                min_width=width,
            )
        for row in self.rows:
            table.add_row(*row)
        return table

    def stacked(self) -> Group:
        """Each row as ``header  value`` lines, rows apart by a blank line; values fold, never cut."""
        parts: list[RenderableType] = [Text(self.title, style="bold")] if self.title else []
        for number_, row in enumerate(self.rows):
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="dim", no_wrap=True)
            grid.add_column(overflow="fold")
            for index, (column, cell) in enumerate(zip(self.columns, row, strict=True)):
                grid.add_row(column.header, cell if index else Text.assemble(cell, style="bold"))  # a row starts
            if number_:
                parts.append(Text(""))
            parts.append(grid)
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table() if self.needed_width() <= options.max_width else self.stacked()


def data_table(
    columns: Sequence[Col | str], rows: Iterable[Sequence[Cell]] = (), title: str | None = None
) -> DataTable:
    """A table of ``rows`` under ``columns`` (see the module); more rows can be added with ``add_row``."""
    table = DataTable(columns, title)
    for row in rows:
        table.add_row(*row)
    return table


def fields(pairs: Iterable[tuple[str, Cell]], title: str | None = None) -> Table:
    """``label  value`` lines (one record shown in full): labels dim, values folded at the edge, never cut."""
    grid = Table.grid(padding=(0, 2))
    if title:
        grid.title, grid.title_justify = title, "left"
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in pairs:
        grid.add_row(label, _text(value))
    return grid
