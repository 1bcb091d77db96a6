"""The shape of a lifecycle event as the auditor checks it: the known fields and kinds, and no sign of personal data.

``event_problems`` judges one log entry from its bytes alone; ``verify_ledger`` runs it on every event it
downloads, and the tests run it on the events each feature writes.
"""

from __future__ import annotations

import re

import orjson

EVENT_FIELDS = frozenset({"v", "kind", "region", "at_ms", "actor_role", "purpose", "counts", "digest", "basis_id"})
EVENT_KINDS = frozenset(
    {
        "collect",
        "store",
        "query",
        "transmit",
        "provide_abroad",
        "transfer_denied",
        "delete",
        "consent_change",
        "basis_change",
        "subject_binding",
        "access_request",
        "erasure_request",
        "transfers_imported",
        "rights_request_change",
        "incident_change",
        "complaint_change",
        "provision_change",
        "profile_change",
    }
)  # another kind is reported as a warning, not a failure: kinds carry no personal data
ACTOR_ROLES = frozenset({"vehicle", "analyst", "officer", "auditor", "subject", "system"})
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,127}")
_COUNT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_VIN_LIKE = re.compile(r"(?<![A-Za-z0-9])[A-HJ-NPR-Z0-9]{17}(?![A-Za-z0-9])")


def event_problems(entry: bytes, region: str) -> tuple[str | None, list[str]]:
    """The event's kind and what is wrong with it: not a lifecycle event, or a sign of personal data.

    A lifecycle event holds exactly the fields of ``LifecycleEvent`` (``EVENT_FIELDS``): identifiers are short
    tokens, counts are named integers, the digest is a hex SHA-256. Anything else (a ``vin`` field, free text,
    coordinates, a VIN-like string anywhere) is reported.
    """
    try:
        event = orjson.loads(entry)
    except orjson.JSONDecodeError:
        return None, ["is not JSON"]
    if not isinstance(event, dict):
        return None, ["is not a JSON object"]
    problems = []
    extra = sorted(set(event) - EVENT_FIELDS)
    if extra:
        problems.append(f"has fields outside the lifecycle event format: {', '.join(extra)[:200]}")
    missing = sorted({"v", "kind", "region", "at_ms", "actor_role"} - set(event))
    if missing:
        problems.append(f"lacks {', '.join(missing)}")
    kind = event.get("kind")
    kind = kind if isinstance(kind, str) else None
    if event.get("region") not in (None, region):
        problems.append(f"names region {str(event.get('region'))[:40]!r}, not {region!r}")
    if not isinstance(event.get("at_ms"), int) or isinstance(event.get("at_ms"), bool):
        problems.append("at_ms is not an integer")
    for name in ("kind", "actor_role", "purpose", "basis_id"):
        value = event.get(name)
        if value is not None and not (isinstance(value, str) and _TOKEN.fullmatch(value)):
            problems.append(f"{name} is not a short identifier (free text or another type)")
    counts = event.get("counts", {})
    if not isinstance(counts, dict) or not all(
        isinstance(k, str) and _COUNT_NAME.fullmatch(k) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in counts.items()
    ):
        problems.append("counts is not a map of names to non-negative integers")
    digest = event.get("digest")
    if digest is not None and not (isinstance(digest, str) and _DIGEST.fullmatch(digest)):
        problems.append("digest is not a hex SHA-256")
    if _VIN_LIKE.search(entry.decode("utf-8", "replace")):
        problems.append("contains a VIN-like string")
    return kind, problems
