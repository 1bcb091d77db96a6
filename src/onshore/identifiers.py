"""What personal identifiers look like in text: VINs, exact positions and onshore tokens.

One place for the shapes, used by the log filter (`onshore.web.logs`, which masks them) and by the checks of
free text that leaves the country (`onshore.border.bases`, which refuses it). The shapes err towards finding
too much: a masked log line costs nothing, a leaked VIN cannot be taken back.

- a VIN (ISO 3779): 17 characters of A-Z (no I, O, Q) and 0-9, with at least one letter and one digit
  (every VIN carries both; a 17-letter word or a 17-digit number is not taken for one), case-insensitive,
  not part of a longer run of letters and digits;
- a position pair: two decimal numbers with a fraction, within -180..180, separated by a comma, a semicolon,
  a slash or blanks (``31.2304,121.4737``), or a ``lat``/``lon``/``latitude``/``longitude`` key with a number;
- a token: ``ons_`` (API and subject tokens) or ``onv_`` (vehicle tokens) followed by token characters, and
  whatever follows ``Bearer``.
"""

from __future__ import annotations

import re

VIN_ALPHABET = "A-HJ-NPR-Z0-9"
_VIN = re.compile(
    rf"(?<![A-Za-z0-9])(?=[{VIN_ALPHABET}]*[A-Z])(?=[{VIN_ALPHABET}]*[0-9])[{VIN_ALPHABET}]{{17}}(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_RUN = re.compile(r"[A-Za-z0-9]{17,}")
_NUMBER = r"[-+]?\d{1,3}\.\d+"
_POSITION_PAIR = re.compile(rf"(?<![\w.]){_NUMBER}\s*[,;/ ]\s*{_NUMBER}(?![\w.])")
_POSITION_KEY = re.compile(
    r"(?i)\b(lat|lon|lng|latitude|longitude)(\"?'?\s*[=:]\s*\"?'?)([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
)
_TOKEN = re.compile(r"\b(?:ons|onv)_[A-Za-z0-9_\-]{4,}")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+")

REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every VIN, position and token (as described above) replaced by ``[redacted]``."""
    if not text:
        return text
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _TOKEN.sub(REDACTED, text)
    text = _POSITION_KEY.sub(rf"\1\2{REDACTED}", text)
    text = _POSITION_PAIR.sub(REDACTED, text)
    return _VIN.sub(REDACTED, text)


def vin_shaped(text: str) -> bool:
    """Whether ``text`` holds a standalone VIN-shaped token (see the module docstring)."""
    return _VIN.search(text) is not None


def vin_candidates(text: str) -> set[str]:
    """Every 17-character window of every run of 17 or more letters and digits, upper-cased.

    A registered VIN typed into free text shows up among these even when glued to other characters
    (``REF-LSVM0TEST00000001X``); the caller compares their pseudonyms with the registry's.
    """
    out: set[str] = set()
    for match in _RUN.finditer(text):
        run = match.group().upper()
        out.update(run[i : i + 17] for i in range(len(run) - 16))
    return out


def token_shaped(text: str) -> bool:
    """Whether ``text`` holds something shaped like an onshore token."""
    return _TOKEN.search(text) is not None
