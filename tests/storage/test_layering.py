"""Storage owns the schema and knows no feature: nothing under src/onshore/storage imports the ledger or the border,
and the only ``MetaData`` of onshore is ``onshore.storage.schema.metadata``."""

from __future__ import annotations

import ast
from pathlib import Path

import onshore

SRC = Path(onshore.__file__).parent
FEATURES = ("onshore.ledger", "onshore.border")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # a relative import inside storage resolves to storage itself
                names.append(f"onshore.storage.{node.module}")
            else:
                names.extend([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return names


def test_nothing_under_storage_imports_the_ledger_or_the_border() -> None:
    files = sorted((SRC / "storage").rglob("*.py"))
    assert len(files) > 8 and any(f.parent.name == "versions" for f in files)  # migrations are walked too
    offending = {
        f"{path.relative_to(SRC)}: {name}"
        for path in files
        for name in _imports(path)
        if any(name == feature or name.startswith(feature + ".") for feature in FEATURES)
    }
    assert not offending, sorted(offending)


def test_the_walk_sees_an_import_of_a_feature(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from onshore import ledger\nimport onshore.border.tables as t\nfrom onshore.ledger.store import X\n"
    )
    assert {"onshore.ledger", "onshore.border.tables", "onshore.ledger.store"} <= set(_imports(sample))


def test_one_metadata_for_every_table() -> None:
    """``MetaData(`` is constructed in storage/schema.py only (tests and benches may build scratch ones), and for
    the shared key store, which is a database of its own apart from the record store (storage/keys_sql.py)."""
    makers = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "MetaData":
                    makers.append(str(path.relative_to(SRC)))
    assert makers == ["storage/keys_sql.py", "storage/schema.py"]


def test_only_storage_reads_the_records_table() -> None:
    """Readers go through ``storage.records`` (a ``RecordFilter`` in, named rows out): nothing outside storage imports
    the ``records`` table to build its own query on it."""
    offending = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] != "storage" and "onshore.storage.schema.records" in _imports(path)
    )
    assert offending == []
    assert "onshore.storage.schema.records" in _imports(SRC / "storage" / "records.py")  # the walk can see it
