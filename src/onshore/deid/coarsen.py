"""Precision limits on positions: decimal places at ingest (Provisions Art. 6(3), the pack's ``precision``),
grid cells at the border (the ``coarsen_position`` and ``aggregate`` transforms)."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

T = TypeVar("T", float, np.ndarray)


def round_position(value: Any, decimals: int) -> Any:
    """A position (``{"latitude", "longitude"}``) or a lone coordinate rounded to ``decimals`` places; other
    values unchanged."""
    if isinstance(value, dict):
        return {
            "latitude": round(value["latitude"], decimals),
            "longitude": round(value["longitude"], decimals),
        }
    if isinstance(value, float):
        return round(value, decimals)
    return value


def snap_to_cell(x: T, step: float) -> T:
    """Coordinates (a float or an array) moved to the centre of their ``step``-degree grid cell, 6 decimals."""
    snapped = np.round(np.floor(np.asarray(x, dtype=float) / step) * step + step / 2, 6)
    return float(snapped) if np.ndim(snapped) == 0 else snapped  # type: ignore[return-value]
