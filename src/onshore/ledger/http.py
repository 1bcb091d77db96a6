"""The ledger API: what an auditor's verifier reads (``onshore ledger verify --url``). Auditor and officer roles.

Hashes and entries travel as standard base64. Errors use the one JSON error shape: an unknown region is 404,
a range outside the log 400, a malformed query 422, a stored tree that contradicts itself 500
(``ledger_integrity``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from onshore.errors import InputError
from onshore.ledger.service import MAX_EVENTS_PER_PAGE, LedgerService
from onshore.pipeline.admit import INT64_MAX
from onshore.web.auth import OfficerOrAuditor

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

_DEFAULT_PAGE = 1000


def _ledger(request: Request) -> LedgerService:
    ledger: LedgerService = request.app.state.runtime.ledger
    return ledger


@router.get("/{region}/checkpoint", summary="The signed checkpoint of the whole log, and the latest witnessed one")
def get_checkpoint(request: Request, _principal: OfficerOrAuditor, region: str) -> dict[str, Any]:
    """The current tree head as a C2SP signed note (re-used while the log has not grown), plus the latest
    checkpoint a witness cosigned (``witnessed_note``, or null)."""
    ledger = _ledger(request)
    current = ledger.current_checkpoint(region)
    witnessed = ledger.witnessed_checkpoint(region, max_size=current.tree_size)
    return {**current.to_dict(), "witnessed_note": None if witnessed is None else witnessed.note}


@router.get("/{region}/proof/inclusion", summary="Inclusion proof of one event in a tree size")
def get_inclusion_proof(
    request: Request,
    _principal: OfficerOrAuditor,
    region: str,
    index: int = Query(ge=0, le=INT64_MAX, description="leaf index of the event"),
    size: int = Query(ge=1, le=INT64_MAX, description="tree size of the checkpoint to prove against"),
) -> dict[str, Any]:
    return _ledger(request).inclusion_proof(region, index, size).to_dict()


@router.get("/{region}/proof/consistency", summary="Consistency proof between two tree sizes")
def get_consistency_proof(
    request: Request,
    _principal: OfficerOrAuditor,
    region: str,
    size1: int = Query(alias="from", ge=1, le=INT64_MAX, description="the older tree size"),
    size2: int = Query(alias="to", ge=1, le=INT64_MAX, description="the newer tree size"),
) -> dict[str, Any]:
    return _ledger(request).consistency_proof(region, size1, size2).to_dict()


@router.get("/{region}/events", summary=f"Events [start, end) of the log, at most {MAX_EVENTS_PER_PAGE:,} a page")
def get_events(
    request: Request,
    _principal: OfficerOrAuditor,
    region: str,
    start: int = Query(default=0, ge=0, le=INT64_MAX, description="first leaf index"),
    end: int | None = Query(
        default=None, ge=0, le=INT64_MAX, description=f"end (exclusive); default start + {_DEFAULT_PAGE}"
    ),
    decode: bool = Query(default=True, description="also give each event decoded as JSON"),
) -> dict[str, Any]:
    ledger = _ledger(request)
    size = ledger.tree_size(region)
    if end is None:
        end = min(start + _DEFAULT_PAGE, size)
    if start > end or end > size:
        raise InputError(f"event range [{start}, {end}) is not inside the log of {size} events")
    events = ledger.events(region, start, end)
    return {
        "region": region,
        "start": start,
        "end": end,
        "tree_size": size,
        "events": [event.to_dict(decode=decode) for event in events],
        "next": end if end < size else None,
    }


@router.get("/{region}/keys", summary="The log's public keys (every version); pin them out of band")
def get_keys(request: Request, _principal: OfficerOrAuditor, region: str) -> dict[str, Any]:
    ledger = _ledger(request)
    return {
        "region": region,
        "origin": ledger.origin(region),
        "keys": [key.to_dict() for key in ledger.public_keys(region)],
    }
