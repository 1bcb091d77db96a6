"""Model files shipped inside installed PyPI wheels, found without importing the wheels' code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from onshore.errors import OnshoreError


def wheel_file(package: str, relative_path: str) -> Path:
    """Locate a file shipped inside an installed wheel without importing the wheel's code.

    Raises:
        OnshoreError: the package is not installed or lacks the file (says which pip command fixes it).
    """
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise OnshoreError(f"model package {package!r} is not installed; run `pip install onshore` again")
    path = Path(locations[0]) / relative_path
    if not path.is_file():
        raise OnshoreError(f"model file {relative_path!r} is missing from package {package!r}; reinstall it")
    return path
