"""The parameters each border transform takes, with their ranges: a basis's conditions are checked against
them when the basis is recorded, so a condition that cannot run is refused then, not at the first export.

`check_conditions` raises `ValidationError` naming the field (``conditions[1].params.cell_deg``) and the valid
range or names. The ranges are the ones `onshore.deid.transforms` can apply (``cell_deg`` in (0, 10],
``epsilon`` positive…) bounded to what makes sense for a release (``bucket_s`` at most ten years).
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass
from typing import Any

from onshore.errors import ValidationError
from onshore.rules.outbound import TransformSpec

_TAGS = re.compile(r"[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*")
_TEN_YEARS_S = 10 * 366 * 86400


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is ``int``, ``float``, ``tags`` (comma-separated lower_snake names) or ``choice``."""

    kind: str
    low: float | None = None  # inclusive, unless low_open
    high: float | None = None  # inclusive
    low_open: bool = False
    choices: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit, with the valid range or names; None when it fits."""
        if self.kind == "tags":
            if not isinstance(value, str) or not _TAGS.fullmatch(value):
                return "must be comma-separated lower_snake_case tags, e.g. identifier,sensitive_area"
            return None
        if self.kind == "choice":
            if value not in self.choices:
                return f"must be one of: {', '.join(self.choices)}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {'an integer' if self.kind == 'int' else 'a number'} in {self.range()}"
        if self.kind == "int" and isinstance(value, float) and not value.is_integer():
            return f"must be an integer in {self.range()}"
        if not math.isfinite(value):
            return f"must be a finite number in {self.range()}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            return f"must lie in {self.range()}"
        return None

    def range(self) -> str:
        return f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}]"


def _num(value: float | None) -> str:
    if value is None:
        return "inf"
    return str(int(value)) if float(value).is_integer() else str(value)


_CELL_DEG = Param("float", 0, 10, low_open=True)
_BUCKET_S = Param("int", 1, _TEN_YEARS_S)
PARAMS: dict[str, dict[str, Param]] = {
    "drop_direct_identifiers": {"tags": Param("tags")},
    "pseudonymise": {},
    "coarsen_position": {
        "grid": Param("choice", choices=("square", "h3")),
        "cell_deg": _CELL_DEG,
        "resolution": Param("int", 0, 15),
    },
    "coarsen_time": {"bucket_s": _BUCKET_S},
    "suppress_sensitive_positions": {"tags": Param("tags")},
    "anonymise_faces_plates": {},
    "aggregate": {
        "cell_deg": _CELL_DEG,
        "bucket_s": _BUCKET_S,
        "epsilon": Param("float", 0, 100, low_open=True),
        "max_cells_per_vehicle": Param("int", 1, 100_000),
        "min_count": Param("int", 1, 1_000_000),
    },
}


def check_conditions(conditions: list[TransformSpec]) -> None:
    """Check every condition's name and parameters against `PARAMS`.

    Raises:
        ValidationError (422): an unknown transform or parameter, or a value outside its range; the message
            and ``details`` name the field (``conditions[i].params.NAME``) and the valid range or names.
    """
    for index, condition in enumerate(conditions):
        where = f"conditions[{index}]"
        params = PARAMS.get(condition.name)
        if params is None:
            _refuse(f"{where}.name", f"transform {condition.name!r} is unknown; valid: {', '.join(sorted(PARAMS))}")
            return
        for key, value in condition.params.items():
            spec = params.get(key)
            if spec is None:
                valid = ", ".join(sorted(params)) or "none"
                _refuse(f"{where}.params.{key}", f"{condition.name} takes no parameter {key!r}; valid: {valid}")
                return
            problem = spec.problem(value)
            if problem is not None:
                _refuse(f"{where}.params.{key}", f"{condition.name} {key} {problem}")
        if condition.params.get("grid") == "h3" and importlib.util.find_spec("h3") is None:
            _refuse(f"{where}.params.grid", "coarsen_position grid h3 needs the h3 package (pip install h3)")


def _refuse(field: str, reason: str) -> None:
    raise ValidationError(f"basis {field}: {reason}", details=[{"field": field, "reason": reason}])
