"""The ingest seam holds in the code: the adapters (HTTP routes, the CLI's ingest) reach processing only over the
bus, and the process stages know no adapter. Every import counts, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import onshore

SRC = Path(onshore.__file__).parent
# What lies behind the bus: the stages after admit, and storage.
AFTER_THE_SEAM = (
    "onshore.pipeline.classify",
    "onshore.pipeline.minimize",
    "onshore.pipeline.store",
    "onshore.pipeline.process",
    "onshore.storage",
)
# What lies before it: the adapters and the admit side of the services.
ADAPTERS = (
    "onshore.ingest.http",
    "onshore.ingest.fleet_telemetry",
    "onshore.ingest.mqtt",
    "onshore.vision.http",
    "onshore.web",
    "onshore.cli",
    "onshore.pipeline.admit",
    "onshore.pipeline.service",
    "onshore.vision.admit",
    "onshore.vision.ingest",
)


def imports_of(tree: ast.AST, module: str) -> set[str]:
    """Every module ``tree`` imports (absolute names; ``from a import b`` gives ``a`` and ``a.b``)."""
    names: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _tree(relative: str) -> ast.Module:
    return ast.parse((SRC / relative).read_text(encoding="utf-8"))


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def test_the_adapters_import_nothing_behind_the_seam() -> None:
    adapters = {
        "ingest/http.py": _tree("ingest/http.py"),
        "vision/http.py": _tree("vision/http.py"),
        "cli.py ingest": _function(_tree("cli.py"), "ingest"),
        # the fleet-telemetry adapter, whose decoding the MQTT adapter reuses: every module of the package
        **{
            f"ingest/fleet_telemetry/{path.name}": ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted((SRC / "ingest" / "fleet_telemetry").glob("*.py"))
        },
        # the MQTT adapter: every module of the package
        **{
            f"ingest/mqtt/{path.name}": ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted((SRC / "ingest" / "mqtt").glob("*.py"))
        },
    }
    assert len(adapters) >= 16
    offending = {
        f"{where}: {name}"
        for where, tree in adapters.items()
        for name in imports_of(tree, "onshore.adapter")
        if _within(name, AFTER_THE_SEAM)
    }
    assert not offending, sorted(offending)


def test_the_process_stages_import_no_adapter() -> None:
    offending = {
        f"{path.name}: {name}"
        for path in [SRC / "pipeline" / "process.py", SRC / "ingest" / "batch.py"]
        for name in imports_of(ast.parse(path.read_text(encoding="utf-8")), "onshore.pipeline.process")
        if _within(name, ADAPTERS)
    }
    assert not offending, sorted(offending)


def test_the_walk_sees_imports_at_any_depth_and_relative_ones() -> None:
    sample = ast.parse(
        "import onshore.storage.sql\n"
        "def f():\n    from onshore.pipeline import classify\n"
        "    from .minimize import minimize\n"
        "class C:\n    def m(self):\n        from ..web.app import create_app\n"
    )
    names = imports_of(sample, "onshore.pipeline.process")
    assert {"onshore.storage.sql", "onshore.pipeline.classify", "onshore.pipeline.minimize", "onshore.web.app"} <= names
    assert _within("onshore.storage.sql", AFTER_THE_SEAM) and not _within("onshore.storages", AFTER_THE_SEAM)
