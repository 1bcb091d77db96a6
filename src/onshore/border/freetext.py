"""Free text that leaves the country holds no identifier the product knows.

A basis's ``reference``, ``note`` and ``attestations`` (and every other string of it) are copied into the
manifest of every release made under it, so they are checked when the basis is recorded or approved:

- a token-shaped string (``ons_…``, ``onv_…``) is refused;
- any standalone VIN-shaped token (ISO 3779: 17 characters of the VIN alphabet with letters and digits) is
  refused, registered or not: a VIN of a vehicle registered later, or in another deployment, is personal too;
- any 17-character window of a longer run of letters and digits whose HMAC pseudonym under a region's key is a
  registered vehicle is refused (a registered VIN glued to other characters: ``REFLSVM…``). The registry
  keeps only those pseudonyms, so this is the one way to recognise a registered VIN.

Messages name the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from onshore.deid.pseudonyms import pseudonym
from onshore.errors import ValidationError
from onshore.identifiers import VIN_ALPHABET, token_shaped, vin_candidates, vin_shaped
from onshore.storage.region import Region

_VIN_WINDOW = re.compile(f"[{VIN_ALPHABET}]{{17}}")


def check_free_text(data: Mapping[str, Any], regions: Mapping[str, Region], what: str = "basis") -> None:
    """Check every string in ``data`` (nested mappings and lists included) as described above.

    Raises:
        ValidationError (422): naming the field (``note``, ``attestations[0]``…) and why.
    """
    for field, text in _strings(data, ""):
        problem = None
        if token_shaped(text):
            problem = "looks like an onshore token"
        elif vin_shaped(text):
            problem = "holds something shaped like a VIN (17 letters and digits)"
        elif _registered_vin(text, regions):
            problem = "holds the VIN of a registered vehicle"
        if problem is not None:
            reason = f"{problem}; personal identifiers may not go into a {what}, whose text leaves with every export"
            raise ValidationError(f"{what} {field}: {reason}", details=[{"field": field, "reason": reason}])


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(where or "(top level)", value)]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in _strings(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list | tuple):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{where}[{i}]")]
    return []


def _registered_vin(text: str, regions: Mapping[str, Region]) -> bool:
    windows = [w for w in vin_candidates(text) if _VIN_WINDOW.fullmatch(w)]
    if not windows:
        return False
    for region in regions.values():
        key = region.pseudonym_key()
        if any(region.store.vehicle_exists(pseudonym(key, window)) for window in windows):
            return True
    return False
