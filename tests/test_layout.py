"""The layout tells the truth: the package's module-level imports form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import onshore

PACKAGE = Path(onshore.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_imports(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """onshore modules imported at module level (function bodies and TYPE_CHECKING blocks excluded)."""
    found: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and not _is_type_checking(node):
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            body.extend(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("onshore"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("onshore"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {m for m in found if m in known and m != module}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {
        name: _module_imports(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_error_class_lives_in_the_one_tree_of_errors_py() -> None:
    import importlib

    from onshore.errors import OnshoreError

    for name in sorted(import_graph()):
        if name.endswith("__main__") or ".migrations" in name:  # scripts alembic loads itself
            continue
        importlib.import_module(name)
    strays: list[str] = []
    pending = list(OnshoreError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__ != "onshore.errors":
            strays.append(f"{cls.__module__}.{cls.__name__}")
    assert not strays, f"error classes outside onshore/errors.py: {strays}"
    import onshore.errors as errors

    documented = errors.__doc__ or ""
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, OnshoreError) and cls is not OnshoreError:
            assert cls.__name__ in documented, f"{cls.__name__} is missing from the tree in errors.py's docstring"


_WALL_CLOCK = {("time", "time"), ("time", "time_ns"), ("datetime", "now"), ("datetime", "utcnow"), ("date", "today")}


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    """Every "now" comes from onshore.clock, so a test can set it (durations use time.monotonic)."""
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "clock.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if (owner_name, node.func.attr) in _WALL_CLOCK:
                    readers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not readers, f"read the wall clock outside onshore/clock.py: {readers}"


def test_a_frozen_clock_is_what_ingest_and_the_ledger_see(workspace) -> None:  # type: ignore[no-untyped-def]
    import orjson

    from onshore import clock
    from onshore.ledger import MerkleLog
    from tests.conftest import CN_VIN

    at = 1_790_000_000_000  # 2026-09-21, a fixed instant
    rt = workspace.runtime
    vehicle = rt.vehicles.add(CN_VIN, "CN").vehicle
    with clock.frozen(at):
        assert clock.now_ms() == at and clock.now().year == 2026
        result = rt.ingest.ingest_records(
            vehicle, [{"msg_id": "m1", "ts": at - 5000, "signal": "VehicleSpeed", "value": 3}]
        )
    assert result.accepted == 1
    [row] = rt.regions["cn"].store.query_records()
    assert row["received_ms"] == at
    with rt.regions["cn"].store.read("events") as conn:
        log = MerkleLog("cn")
        events = [orjson.loads(e) for e in log.entries(conn, 0, log.tree_size(conn))]
    assert {e["at_ms"] for e in events if e["kind"] in ("collect", "store")} == {at}
    assert clock.now_ms() > at  # restored after the block
