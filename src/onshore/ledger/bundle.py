"""The offline bundle of a region's log: one JSON file holding all ``onshore ledger verify --bundle`` needs.

The bundle is one JSON object: ``format``, ``region``, ``origin``, ``tree_size``, ``root_hash``, ``checkpoint``
(signed note at ``tree_size``), ``witnessed_checkpoint`` (latest cosigned note at or below it, or null), ``keys``
(every log key version), ``exported_ms`` and ``entries`` (base64 of each event's exact bytes, in leaf order).
``ledger.sources.BundleLedgerSource`` reads it back.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from onshore import clock
from onshore.errors import InputError
from onshore.ledger.answers import BundleSummary, b64
from onshore.ledger.store import MerkleLog

if TYPE_CHECKING:
    from onshore.ledger.service import LedgerService
    from onshore.storage.region import Region

BUNDLE_FORMAT = "onshore-ledger-bundle/1"
_EXPORT_CHUNK = 10_000


def export_bundle(ledger: LedgerService, reg: Region, path: Path, up_to: int | None = None) -> BundleSummary:
    """Write the bundle of the log's first ``up_to`` events (default: all) to ``path``, through a temporary file.

    Raises:
        InputError: ``up_to`` is beyond the log, or the file cannot be written.
        LedgerIntegrityError: the stored tree contradicts the last checkpoint, or an entry is missing.
    """
    region = reg.name
    size = ledger.tree_size(region) if up_to is None else up_to
    signed = ledger.checkpoint_at(region, size)
    witnessed = ledger.witnessed_checkpoint(region, max_size=size)
    header = {
        "format": BUNDLE_FORMAT,
        "region": region,
        "origin": signed.origin,
        "tree_size": size,
        "root_hash": b64(signed.root_hash),
        "checkpoint": signed.note,
        "witnessed_checkpoint": None if witnessed is None else witnessed.note,
        "keys": [key.to_dict() for key in ledger.public_keys(region)],
        "exported_ms": clock.now_ms(),
    }
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    log = MerkleLog(region)
    try:
        with tmp.open("wb") as fh, reg.store.read("export ledger bundle") as conn:
            fh.write(orjson.dumps(header)[:-1] + b',"entries":[')
            for start in range(0, size, _EXPORT_CHUNK):
                entries = log.entries(conn, start, min(start + _EXPORT_CHUNK, size))
                encoded = b",".join(b'"' + base64.b64encode(entry) + b'"' for entry in entries)
                fh.write((b"," if start else b"") + encoded)
            fh.write(b"]}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write bundle {path}: {exc.strerror or exc.__class__.__name__}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return BundleSummary(path, region, size, signed.root_hash, path.stat().st_size)
