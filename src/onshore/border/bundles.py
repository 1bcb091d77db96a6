"""Export bundles: a folder (optionally also a ``.tar.gz``) holding what left and the proof that it was logged.

Layout::

    <bundle>/
      data/records.parquet   (or records.ndjson)   the released records, one row each
      data/flows.parquet     (or flows.ndjson)     flow statistics of aggregated classes, if any
      manifest.json

Record columns: ``class, ts_ms, signal, value (JSON text), categories, tags, purpose, vehicle, subject``;
``vehicle`` and ``subject`` are per-recipient pseudonyms. The manifest holds the request (vehicles as a count
and digest), the bases used, the decision per class with its reasons, per-class counts, the transforms
applied, the SHA-256 of every file, the content digest the ledger event carries, and for every ledger event
of the transfer its entry, index and inclusion proof against the tree head at the given size.
``verify_bundle`` checks all of it offline.
"""

from __future__ import annotations

import base64
import hashlib
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from onshore.deid.transforms import Columns
from onshore.errors import CheckpointError, ConflictError, InputError
from onshore.ledger.checkpoint import NoteVerifier, verify_checkpoint
from onshore.ledger.merkle import ProofError, leaf_hash, verify_inclusion

# 2: the provide_abroad events commit to the manifest's terms (`terms_digest`), not only to the data files (1).
FORMAT = "onshore-export/2"
FORMATS = ("onshore-export/1", FORMAT)
RECORD_SCHEMA = pa.schema(
    [
        ("class", pa.string()),
        ("ts_ms", pa.int64()),
        ("signal", pa.string()),
        ("value", pa.string()),
        ("categories", pa.string()),
        ("tags", pa.string()),
        ("purpose", pa.string()),
        ("vehicle", pa.string()),
        ("subject", pa.string()),
    ]
)
FLOW_SCHEMA = pa.schema(
    [
        ("class", pa.string()),
        ("cell_lat", pa.float64()),
        ("cell_lon", pa.float64()),
        ("bucket_start_ms", pa.int64()),
        ("vehicles", pa.int64()),
    ]
)


@dataclass(frozen=True)
class BundleFile:
    name: str  # relative to the bundle folder
    sha256: str
    bytes: int
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "bytes": self.bytes, "rows": self.rows}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_digest(files: list[BundleFile]) -> str:
    """SHA-256 over ``name sha256`` lines, sorted by name: what the ledger event's digest is."""
    lines = "".join(f"{f.name} {f.sha256}\n" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(lines.encode()).hexdigest()


def terms_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of a manifest's terms (all but its ``ledger`` section) as sorted-key JSON: what the ledger commits to.

    The same bytes come out of the dict a release builds and of ``manifest.json`` read back (JSON round-trips).
    """
    terms = {k: v for k, v in manifest.items() if k != "ledger"}
    return hashlib.sha256(orjson.dumps(terms, option=orjson.OPT_SORT_KEYS)).hexdigest()


class BundleWriter:
    """Writes the data files of one bundle, chunk by chunk.

    Raises:
        ConflictError: the folder exists and is not empty.
        InputError: unknown format.
    """

    def __init__(self, folder: Path, fmt: str = "parquet") -> None:
        if fmt not in ("parquet", "ndjson"):
            raise InputError(f"bundle format {fmt!r} is unknown; valid: parquet, ndjson")
        if folder.exists() and any(folder.iterdir()):
            raise ConflictError(f"{folder} exists and is not empty; choose a new --out folder")
        self.folder = folder
        self.fmt = fmt
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self._records_path = folder / "data" / f"records.{fmt}"
        self._parquet: pq.ParquetWriter | None = None
        self._ndjson: Any = None
        self.rows = 0

    def write(self, cols: Columns) -> None:
        """Append released records."""
        if not len(cols):
            return
        self.rows += len(cols)
        if self.fmt == "parquet":
            table = pa.table(
                [
                    pa.array(cols.cls, pa.string()),
                    pa.array(cols.ts_ms, pa.int64()),
                    pa.array(cols.signal, pa.string()),
                    pa.array(cols.value, pa.string()),
                    pa.array(cols.categories, pa.string()),
                    pa.array(cols.tags, pa.string()),
                    pa.array(cols.purpose, pa.string()),
                    pa.array(cols.vehicle, pa.string()),
                    pa.array(cols.subject, pa.string()),
                ],
                schema=RECORD_SCHEMA,
            )
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._records_path, RECORD_SCHEMA)
            self._parquet.write_table(table)
            return
        if self._ndjson is None:
            self._ndjson = self._records_path.open("wb")
        dumps, fragment = orjson.dumps, orjson.Fragment
        names = RECORD_SCHEMA.names
        columns = [getattr(cols, "cls" if name == "class" else name) for name in names]
        lines = []
        for row in zip(*columns, strict=True):
            obj = dict(zip(names, row, strict=True))
            obj["value"] = fragment(row[3]) if row[3] is not None else None
            lines.append(dumps(obj))
        self._ndjson.write(b"\n".join(lines) + b"\n")

    def close(self, flows: list[dict[str, Any]]) -> list[BundleFile]:
        """Finish the data files (writing ``flows`` if any) and return them with their hashes."""
        if self._parquet is not None:
            self._parquet.close()
        if self._ndjson is not None:
            self._ndjson.close()
        files: list[tuple[Path, int]] = []
        if self.rows or not flows:
            if not self._records_path.exists():  # an empty release still gets its (empty) records file
                if self.fmt == "parquet":
                    pq.write_table(RECORD_SCHEMA.empty_table(), self._records_path)
                else:
                    self._records_path.write_bytes(b"")
            files.append((self._records_path, self.rows))
        if flows:
            flows_path = self.folder / "data" / f"flows.{self.fmt}"
            if self.fmt == "parquet":
                pq.write_table(pa.Table.from_pylist(flows, schema=FLOW_SCHEMA), flows_path)
            else:
                flows_path.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in flows))
            files.append((flows_path, len(flows)))
        return [BundleFile(str(p.relative_to(self.folder)), _sha256(p), p.stat().st_size, rows) for p, rows in files]

    def abort(self) -> None:
        """Close and remove what was written (a release that did not happen leaves no data behind)."""
        for handle in (self._parquet, self._ndjson):
            if handle is not None:
                handle.close()
        for path in sorted(self.folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        self.folder.rmdir()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / "manifest.json"
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path


def archive(folder: Path) -> Path:
    """``<folder>.tar.gz`` holding the bundle (the folder stays)."""
    target = folder.with_name(folder.name + ".tar.gz")
    with tarfile.open(target, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return target


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def verify_bundle(folder: Path, log_keys: Sequence[NoteVerifier] = ()) -> list[str]:
    """Check a bundle offline: file hashes, the content digest, the terms, and every ledger event's inclusion proof.

    With ``log_keys`` (the region log's public keys), also the signed checkpoint the bundle carries: its signature,
    and that it names the tree head the proofs are against. Without them, that head should be checked against a
    signed checkpoint of the region's log some other way (``onshore ledger verify``).

    Returns the problems found (empty when the bundle verifies).
    """
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return [f"manifest.json unreadable ({exc.__class__.__name__})"]
    if not isinstance(manifest, dict):
        return ["manifest.json is not a JSON object"]
    problems: list[str] = []
    files = []
    for f in _listed(manifest):
        path = folder / f["name"]
        if not path.is_file():
            problems.append(f"{f['name']} is missing")
            continue
        actual = _sha256(path)
        if actual != f["sha256"]:
            problems.append(f"{f['name']} does not match its SHA-256")
        files.append(BundleFile(f["name"], actual, path.stat().st_size, f.get("rows", 0)))
    return problems + verify_manifest(manifest, log_keys, files=files)


def _listed(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    files = manifest.get("files", [])
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def verify_manifest(
    manifest: dict[str, Any], log_keys: Sequence[NoteVerifier] = (), *, files: list[BundleFile] | None = None
) -> list[str]:
    """Check a manifest without its data files (what an auditor uploads in the dashboard): the content digest
    against the files it lists (or ``files``, hashed by :func:`verify_bundle`), the terms against the ledger's
    ``provide_abroad`` event, the inclusion proofs, and with ``log_keys`` the signed checkpoint.

    Returns the problems found (empty when the manifest verifies).
    """
    problems: list[str] = []
    fmt = manifest.get("format")
    if fmt not in FORMATS:
        problems.append(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if files is None:
        try:
            files = [BundleFile(str(f["name"]), str(f["sha256"]), 0, 0) for f in _listed(manifest)]
        except KeyError as exc:
            return [*problems, f"a listed file has no {exc.args[0]!r}"]
    if content_digest(files) != manifest.get("content_sha256"):
        problems.append("the content digest does not match the files")
    # format 2 commits to the terms (purpose, destination, bases, decisions, counts, files); format 1 to the files
    committed = terms_digest(manifest) if fmt == FORMAT else manifest.get("content_sha256")
    ledger = manifest.get("ledger") or {}
    if not isinstance(ledger, dict):
        return [*problems, "the manifest's ledger section is not an object"]
    size = ledger.get("tree_size", 0)
    try:
        root = base64.b64decode(ledger.get("root", ""))
        events = ledger.get("events") or []
        if not events:
            problems.append("no ledger event is recorded")
        for event in events:
            entry = base64.b64decode(event["entry"])
            decoded = orjson.loads(entry)
            if decoded.get("kind") == "provide_abroad" and decoded.get("digest") != committed:
                what = "the manifest's terms were changed" if fmt == FORMAT else "it does not carry the content digest"
                problems.append(f"ledger event {event['index']} does not match the bundle: {what}")
            try:
                verify_inclusion(
                    leaf_hash(entry), event["index"], size, [base64.b64decode(p) for p in event["proof"]], root
                )
            except ProofError as exc:
                problems.append(f"ledger event {event['index']}: {exc}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # base64, JSON or shape: a forged section
        return [*problems, f"the manifest's ledger section is malformed ({exc.__class__.__name__})"]
    if log_keys:
        problems += _checkpoint_problems(ledger, size, root, log_keys)
    return problems


def _checkpoint_problems(ledger: dict[str, Any], size: int, root: bytes, log_keys: Sequence[NoteVerifier]) -> list[str]:
    """The bundle's checkpoint: signed by one of ``log_keys`` and naming the tree head of the proofs."""
    checkpoint = ledger.get("checkpoint")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("note"), str):
        return ["the bundle carries no signed checkpoint to check against the log's key"]
    try:
        verified = verify_checkpoint(checkpoint["note"], log_keys, origin=str(checkpoint.get("origin", "")))
    except (CheckpointError, InputError) as exc:
        return [f"the bundle's checkpoint does not verify: {exc.message}"]
    if verified.checkpoint.tree_size != size or verified.checkpoint.root_hash != root:
        return ["the bundle's proofs are not against the tree head its signed checkpoint names"]
    return []
