"""Keyed pseudonyms: the same input under the same key always gives the same pseudonym, and nobody without
the key can compute or reverse it. The region's key makes the vehicle refs stored in-country; a key derived
per recipient makes the refs a bundle abroad carries, so two recipients cannot join their data and neither
sees the region's own refs.
"""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(key: bytes, value: str) -> str:
    """HMAC-SHA-256 of ``value`` under ``key``, hex, truncated to 128 bits."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def recipient_key(region_key: bytes, recipient: str) -> bytes:
    """The per-recipient pseudonym key: HMAC of the recipient id under a region-held key."""
    return hmac.new(region_key, b"onshore-border-recipient|" + recipient.encode(), hashlib.sha256).digest()
