"""How the CLI prints a border decision (`export decide`, `export run`): what failed first, what was met summed up.

A request over a large fleet has dozens of classes and hundreds of reasons, nearly all of them conditions met.
By default the officer sees the verdict, then the reasons that failed, each set once with the denied classes
under it, then one line for the classes that would leave and one counting the conditions met; a request where
nothing is denied lists its classes, one entry each. ``--all`` lists every class and every reason, failed ones
first. The JSON output (``--json``) always holds everything, each reason with its ``met`` flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from onshore.border.decisions import failed_first, reason_line

_ORDER = {"deny": 0, "transform": 1, "allow": 2}
_COLOUR = {"allow": "green", "transform": "yellow", "deny": "red"}


def _reason_grid(failed: Sequence[Any], met: Sequence[Any]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for r in failed:
        grid.add_row(Text("failed", style="red"), reason_line(r))
    for r in met:
        grid.add_row(Text("met", style="green"), reason_line(r))
    return grid


def _class_lines(classes: Sequence[dict[str, Any]]) -> Table:
    """One entry per class: its decision, then its rule, size, data, basis and transforms (wrapped at spaces)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for c in classes:
        data = ", ".join(c["categories"]) + (" / " + ", ".join(c["tags"]) if c["tags"] else "")
        text = f"{c['rule']} ({c['records']} records, {c['people']} people): {data}"
        if c["basis"]:
            text += f"; basis {c['basis']}"
        if c["transforms"]:
            text += f"; transforms {', '.join(t['name'] for t in c['transforms'])}"
        grid.add_row(Text(c["decision"], style=f"bold {_COLOUR[c['decision']]}"), text)
    return grid


def _denied_groups(denied: Sequence[dict[str, Any]]) -> list[RenderableType]:
    """Denied classes grouped by the reasons that failed: each set of failures once, then the classes it denied."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    failures: dict[tuple[str, ...], list[Any]] = {}
    for c in denied:
        failed, _ = failed_first(c["reasons"])
        key = tuple(reason_line(r) for r in failed)
        groups.setdefault(key, []).append(c)
        failures.setdefault(key, failed)
    parts: list[RenderableType] = []
    for key, members in groups.items():
        met = sum(len(failed_first(c["reasons"])[1]) for c in members)
        parts.append(_reason_grid(failures[key], ()))
        lines: list[RenderableType] = [_class_lines(members)]
        if met:
            lines.append(Text(f"and {met} condition(s) of {'these classes' if len(members) > 1 else 'it'} met", "dim"))
        parts.append(Padding(Group(*lines), (0, 0, 0, 2)))
    return parts


def decision_view(decision: dict[str, Any], *, show_all: bool = False) -> Group:
    """The renderable of ``decision`` (an ``ExportDecision.to_dict()``): failed reasons first (see the module)."""
    classes = sorted(decision["classes"], key=lambda c: _ORDER[c["decision"]])
    denied = [c for c in classes if c["decision"] == "deny"]
    leaving = [c for c in classes if c["decision"] != "deny"]
    parts: list[RenderableType] = [
        Text.assemble("verdict: ", (decision["verdict"], "bold"), f" (pack {decision['pack']}, {decision['date']})")
    ]
    if show_all:
        for c in classes:
            parts += [_class_lines([c]), Padding(_reason_grid(*failed_first(c["reasons"])), (0, 0, 0, 4))]
        return Group(*parts)
    if not denied and classes:
        parts.append(_class_lines(classes))
    if denied:
        records = sum(c["records"] for c in denied)
        parts.append(Text(f"denied: {len(denied)} of {len(classes)} class(es), {records} records", style="bold red"))
        parts += _denied_groups(denied)
    if denied and leaving:
        transformed = sorted({t["name"] for c in leaving for t in c["transforms"]})
        as_is = sum(1 for c in leaving if c["decision"] == "allow")
        line = (
            f"would leave: {len(leaving)} class(es), {sum(c['records'] for c in leaving)} records "
            f"({as_is} as they are, {len(leaving) - as_is} after transforms"
            + (f" {', '.join(transformed)})" if transformed else ")")
        )
        parts.append(Text(line))
    met = sum(len(failed_first(c["reasons"])[1]) for c in (leaving if denied else classes))
    if met:
        where = "in the classes that would leave " if denied else ""
        parts.append(Text(f"and {met} condition(s) met {where}— --all to list every class and reason", style="dim"))
    return Group(*parts)


def print_decision(console: Console, decision: dict[str, Any], *, show_all: bool = False) -> None:
    """Print ``decision`` with ``decision_view``."""
    console.print(decision_view(decision, show_all=show_all), highlight=False)
