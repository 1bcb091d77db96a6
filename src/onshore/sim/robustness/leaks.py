"""What must never appear in anything a server writes: VINs, positions, tokens.

`find_leaks` looks for each secret as it was sent and in the forms a log might hold it (lower case for VINs); it
answers with the secrets' labels, never the secrets, so a report of a leak does not leak them again.
"""

from __future__ import annotations

from collections.abc import Mapping


def find_leaks(output: str, secrets: Mapping[str, str]) -> list[str]:
    """The labels of the ``secrets`` (label -> secret) found in ``output``; secrets shorter than 8 characters are
    ignored (too short to tell from other text)."""
    lowered = output.lower()
    found = []
    for label, secret in secrets.items():
        if len(secret) < 8:
            continue
        if secret in output or secret.lower() in lowered:
            found.append(label)
    return found
