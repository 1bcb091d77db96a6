"""`onshore report verify REPORT`: recompute a report's figures from the ledger checkpoint it states.

The report is read as text (Markdown as is, HTML without its tags, PDF through poppler's ``pdftotext``). From
it come the format line (kind, year, jurisdiction, ``as_of``), each region's checkpoint (size, root and the
signed note) and every figure row (``key | label | value``). Then, per region:

1. the note must carry a valid signature by one of the region's log keys, for the region's origin, and state
   the same size and root;
2. the region's stored tree must give that root at that size (the log was not rewritten since);
3. the figures are recomputed from the events ``[0, size)`` (``reports.figures``) and compared: every figure
   the report states, wherever it states it (an item's table and the appendix), must equal its recomputed value.

The regions are those of the report's jurisdiction; an access copy's are the regions it states (the person's).

The answer names every figure that differs, with both values.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onshore.errors import CheckpointError, ConfigError, InputError
from onshore.ledger.checkpoint import NoteVerifier, verify_checkpoint
from onshore.ledger.store import MerkleLog
from onshore.reports.facts import read_events, regions_of
from onshore.reports.figures import compute

if TYPE_CHECKING:
    from onshore.runtime import Runtime
    from onshore.storage.region import Region

MAX_REPORT_BYTES = 64 * 1024 * 1024
_HEADER = re.compile(
    r"onshore-report/1 kind=(?P<kind>[a-z]+) year=(?P<year>\d{4}) jurisdiction=(?P<jur>[A-Z]{2,3}) "
    r"as_of=(?P<as_of>\d{4}-\d{2}-\d{2}) lang=(?P<lang>[a-z]{2})"
)
_CHECKPOINT = re.compile(
    r"checkpoint region=(?P<region>[a-z][a-z0-9-]*) size=(?P<size>\d+) root=(?P<root>[A-Za-z0-9+/=]+)"
)
_PREFIXES = "collect|store|frames|consent|delete|provision|incidents|complaints|rights|outbound|risk|access"
_FIGURE = re.compile(rf"^[|\s]*(?P<key>(?:{_PREFIXES})\.[a-z0-9_.\-]+)\s*\|.*?\|\s*(?P<value>-?[\d,]+)\s*\|?\s*$")
_FIGURE_LAYOUT = re.compile(rf"^\s*(?P<key>(?:{_PREFIXES})\.[a-z0-9_.\-]+)\s{{2,}}.*?\s(?P<value>-?[\d,]+)\s*$")


@dataclass
class ReportVerdict:
    ok: bool
    kind: str | None = None
    year: int | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    figures_checked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def report_text(path: Path) -> str:
    """The report's text, whatever its format.

    Raises:
        InputError: unreadable, too large, or not a report format. ConfigError: a PDF without ``pdftotext``.
    """
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise InputError(f"{path} is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB: not a report")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.__class__.__name__})") from exc
    if data.startswith(b"%PDF"):
        tool = shutil.which("pdftotext")
        if tool is None:
            raise ConfigError("reading a PDF report needs pdftotext (poppler-utils): run `make system-deps`")
        done = subprocess.run([tool, "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, timeout=120)
        if done.returncode != 0:
            raise InputError(f"{path} is not a readable PDF (pdftotext exit {done.returncode})")
        return done.stdout.decode("utf-8", "replace")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is neither UTF-8 text nor PDF: not a report") from None
    if "<html" in text[:500].lower():
        text = re.sub(r"</td>\s*", " | ", text)
        text = re.sub(r"<tr>", "| ", text)
        text = re.sub(r"</(tr|p|h1|h2|blockquote|pre)>|<br\s*/?>", "\n", text)
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return text


def _notes(text: str) -> dict[str, str]:
    """Each region's signed note, rebuilt from the lines between its BEGIN and END markers."""
    notes = {}
    for m in re.finditer(
        r"-----BEGIN CHECKPOINT (?P<region>[a-z0-9-]+)-----(?P<body>.*?)-----END CHECKPOINT-----", text, re.S
    ):
        lines = [line.strip() for line in m["body"].splitlines() if line.strip()]
        body = [line for line in lines if not line.startswith("—")]
        signatures = [line for line in lines if line.startswith("—")]
        notes[m["region"]] = "\n".join(body) + "\n\n" + "\n".join(signatures) + "\n"
    return notes


def stated_figures(text: str) -> list[tuple[str, int]]:
    """Every ``(key, value)`` figure row the report text holds (a key may be stated more than once)."""
    out = []
    for line in text.splitlines():
        m = _FIGURE.match(line) or _FIGURE_LAYOUT.match(line)
        if m:
            out.append((m["key"], int(m["value"].replace(",", ""))))
    return out


def _regions(rt: Runtime, kind: str, jurisdiction: str, stated: dict[str, Any]) -> list[Region]:
    """The regions whose checkpoints the report must state: every region of the jurisdiction, except for an access
    copy, which covers the regions the person is in (those it states; at least one)."""
    if kind != "access":
        return regions_of(rt, jurisdiction)
    unknown = sorted(set(stated) - set(rt.regions))
    if unknown or not stated:
        raise InputError(f"the access copy states checkpoints of unknown regions {unknown} or of none")
    return [rt.regions[name] for name in sorted(stated)]


def verify_report(rt: Runtime, path: Path) -> ReportVerdict:
    """Verify the report at ``path`` against the ledgers of ``rt`` (see the module docstring)."""
    text = report_text(path)
    header = _HEADER.search(text)
    if header is None:
        raise InputError(f"{path}: no `onshore-report/1 kind=… year=…` line: not an onshore report")
    verdict = ReportVerdict(ok=False, kind=header["kind"], year=int(header["year"]))
    notes = _notes(text)
    stated_checkpoints = {m["region"]: m for m in _CHECKPOINT.finditer(text)}
    events: dict[str, list[dict[str, Any]]] = {}
    for region in _regions(rt, header["kind"], header["jur"], stated_checkpoints):
        m = stated_checkpoints.get(region.name)
        if m is None or region.name not in notes:
            verdict.problems.append(f"region {region.name}: the report states no checkpoint for it")
            continue
        size, root = int(m["size"]), m["root"]
        verdict.checkpoints.append({"region": region.name, "size": size, "root": root})
        keys = [NoteVerifier.from_vkey(k.vkey) for k in rt.ledger.public_keys(region.name)]
        try:
            signed = verify_checkpoint(notes[region.name], keys, origin=rt.ledger.origin(region.name)).checkpoint
        except CheckpointError as exc:
            verdict.problems.append(f"region {region.name}: the checkpoint's signature does not verify: {exc.message}")
            continue
        if signed.tree_size != size or base64.b64encode(signed.root_hash).decode() != root:
            verdict.problems.append(f"region {region.name}: the signed note says size {signed.tree_size}, not {size}")
            continue
        log = MerkleLog(region.name)
        with region.store.read("report verify") as conn:
            if log.tree_size(conn) < size or log.root(conn, size) != signed.root_hash:
                verdict.problems.append(f"region {region.name}: the stored log no longer gives the root at size {size}")
                continue
        events[region.name] = read_events(region, size)
    if verdict.problems:
        return verdict
    pack = rt.rulebook.for_jurisdiction(header["jur"])
    tz = pack.pack.outbound.timezone if pack.pack.outbound is not None else "UTC"
    recomputed = compute(events, verdict.year or 0, tz, dt.date.fromisoformat(header["as_of"]))
    stated = stated_figures(text)
    if not stated:
        verdict.problems.append("the report states no figure")
    for key, value in stated:
        verdict.figures_checked += 1
        if key.startswith("access.") and key not in recomputed:
            verdict.problems.append(f"figure {key}: no access request at that index of the ledger")
            continue
        actual = recomputed.get(key, 0)
        if actual != value:
            verdict.differences.append({"figure": key, "stated": value, "recomputed": actual})
            verdict.problems.append(f"figure {key}: the report says {value:,}; the ledger gives {actual:,}")
    verdict.ok = not verdict.problems
    return verdict
