"""Synthetic VINs: well formed (ISO 3779 alphabet, check digit in position 9) and made up, prefixed LSYN/WSYN."""

from __future__ import annotations

import random

VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # ISO 3779: no I, O or Q
VIN_PREFIXES = {"CN": "LSYN", "EU": "WSYN"}
_VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True))}
_VIN_VALUES |= dict(zip("JKLMN", range(1, 6), strict=True)) | {"P": 7, "R": 9}
_VIN_VALUES |= dict(zip("STUVWXYZ", range(2, 10), strict=True))
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def _vin_check_digit(vin: str) -> str:
    total = sum(_VIN_VALUES[char] * weight for char, weight in zip(vin, _VIN_WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


def synthetic_vin(market: str, rng: random.Random) -> str:
    """A made-up 17-character VIN, well formed (alphabet, check digit in position 9), prefixed LSYN/WSYN.

    Raises:
        ValueError: ``market`` is not one of ``VIN_PREFIXES``.
    """
    if market not in VIN_PREFIXES:
        raise ValueError(f"unknown market {market!r}; choose one of {sorted(VIN_PREFIXES)}")
    descriptor = "".join(rng.choice(VIN_ALPHABET) for _ in range(4))
    tail = rng.choice("RSTV") + rng.choice(VIN_ALPHABET[10:]) + f"{rng.randrange(1_000_000):06d}"
    draft = VIN_PREFIXES[market] + descriptor + "0" + tail
    return draft[:8] + _vin_check_digit(draft) + draft[9:]


def vin_is_well_formed(vin: str) -> bool:
    """True when ``vin`` has 17 characters of the VIN alphabet and a correct check digit."""
    return len(vin) == 17 and all(char in _VIN_VALUES for char in vin) and vin[8] == _vin_check_digit(vin)
