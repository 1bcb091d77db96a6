"""`onshore ledger verify`, the auditor's tool, against a real server and on offline bundles; tampering with the
stored log (entries, leaves, nodes, checkpoints, keys) or with a bundle always makes it exit non-zero."""

from __future__ import annotations

import base64
import json
import random
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from typer.testing import CliRunner, Result

from onshore.cli import app
from onshore.ledger import MerkleLog, generate_signer, sign_checkpoint
from onshore.ledger.event_check import event_problems
from onshore.model import LifecycleEvent
from onshore.runtime import Runtime
from onshore.web.app import create_app
from onshore.web.server import ServerThread, free_port
from tests.conftest import Workspace, auth, record

from .test_service import populate

runner = CliRunner()
LEDGER_TABLES = ("ledger_entries", "ledger_leaves", "ledger_nodes", "ledger_checkpoints", "ledger_signing_keys")


def invoke(*args: str) -> Result:
    return runner.invoke(app, ["ledger", *args])


@dataclass
class LiveLog:
    """A workspace whose cn log a real server publishes, and what an auditor holds about it."""

    ws: Workspace
    server: ServerThread
    db: Path
    vkey_file: Path
    early: Path  # a checkpoint note from early on
    trusted: Path  # the checkpoint saved by the auditor's last successful verification
    expected: Counter[str]

    def verify(self, *extra: str, key: Path | None = None) -> Result:
        args = ["verify", "--key", str(key or self.vkey_file), "--url", self.server.url, "--region", "cn"]
        return invoke(*args, "--token", self.ws.token("auditor"), *extra)

    def verdict(self, *extra: str) -> tuple[int, dict[str, object]]:
        result = self.verify("--json", *extra)
        return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def live(workspace: Workspace, client: TestClient) -> Iterator[LiveLog]:
    expected = populate(workspace, client)
    config = str(workspace.config)
    vkeys = invoke("keys", "list", "-r", "cn", "-c", config, "--vkeys")
    assert vkeys.exit_code == 0, vkeys.output
    vkey_file = workspace.folder / "cn-log.vkey"
    vkey_file.write_text(vkeys.stdout)
    early = workspace.folder / "early.txt"
    assert invoke("checkpoint", "-r", "cn", "-c", config, "--out", str(early)).exit_code == 0
    cn = workspace.runtime.vehicles.add("LSVM0TEST00000003", "CN").token
    for batch in range(2):
        body = [record(f"more-{batch}-{i}", "VehicleSpeed", i) for i in range(3)]
        assert client.post("/v1/ingest", json=body, headers=auth(cn)).status_code == 200
    expected.update({"collect": 2, "store": 2})
    server = ServerThread(create_app(workspace.runtime)).start()
    db = workspace.folder / "onshore-data" / "cn" / "records.sqlite"
    log = LiveLog(workspace, server, db, vkey_file, early, workspace.folder / "trusted.txt", expected)
    try:
        yield log
    finally:
        server.stop()


def test_verify_over_http_checks_every_event_and_the_trusted_checkpoint(live: LiveLog) -> None:
    code, verdict = live.verdict("--trusted", str(live.early), "--save-checkpoint", str(live.trusted))
    assert code == 0, verdict["failures"]
    assert verdict["ok"] and verdict["root_recomputed"] and Counter(verdict["events_by_kind"]) == live.expected
    size = sum(live.expected.values())
    assert verdict["tree_size"] == verdict["events_checked"] == verdict["inclusion_proofs_checked"] == size
    assert verdict["consistency_proofs_checked"] == 1 and verdict["trusted_size"] == size - 4
    assert live.trusted.read_text() == verdict["checkpoint"]
    text = live.verify("--trusted", str(live.trusted), "--proofs", "3")
    assert text.exit_code == 0 and "VERIFIED" in text.stdout and "NOT VERIFIED" not in text.stdout
    assert "3 checked" in text.stdout


def test_verify_offline_on_an_exported_bundle(live: LiveLog, tmp_path: Path) -> None:
    bundle = tmp_path / "cn-ledger.json"
    exported = invoke("export", str(bundle), "-r", "cn", "-c", str(live.ws.config), "--json")
    assert exported.exit_code == 0, exported.output
    live.server.stop()  # offline: nothing to ask
    result = invoke("verify", "--key", str(live.vkey_file), "--bundle", str(bundle), "--trusted", str(live.early))
    assert result.exit_code == 0, result.output
    assert "VERIFIED" in result.stdout
    as_json = invoke("verify", "--key", live.vkey_file.read_text().strip(), "--bundle", str(bundle), "--json")
    verdict = json.loads(as_json.stdout)
    assert verdict["ok"] and Counter(verdict["events_by_kind"]) == live.expected
    assert verdict["inclusion_proofs_checked"] == 0 and verdict["root_recomputed"]


def test_a_wrong_key_bad_usage_and_an_unreadable_log_have_their_exit_codes(live: LiveLog, tmp_path: Path) -> None:
    other = tmp_path / "other.vkey"
    other.write_text(generate_signer("onshore.cn.cn-guizhou").verifier.vkey + "\n")
    wrong = live.verify(key=other)
    assert wrong.exit_code == 1 and "no valid signature by a trusted log key" in wrong.stdout
    assert invoke("verify", "--key", "not+a+key", "--bundle", str(tmp_path / "x")).exit_code == 2
    assert invoke("verify", "--key", str(other)).exit_code == 2  # neither --url nor --bundle
    assert invoke("verify", "--key", str(other), "--url", live.server.url, "--region", "cn").exit_code == 2
    assert live.verify("--proofs", "some").exit_code == 2
    refused = invoke("verify", "--key", str(live.vkey_file), "--url", live.server.url, "-r", "cn", "--token", "nope")
    assert refused.exit_code == 3 and "401" in refused.output
    unknown = invoke("verify", "-k", str(live.vkey_file), "--url", live.server.url, "-r", "mars", "--token", "x")
    assert unknown.exit_code == 3
    nobody = f"http://127.0.0.1:{free_port()}"
    gone = invoke("verify", "--key", str(live.vkey_file), "--url", nobody, "-r", "cn", "--token", "x", "--json")
    assert gone.exit_code == 3 and json.loads(gone.stdout)["ok"] is False
    assert invoke("verify", "--key", str(live.vkey_file), "--bundle", str(live.vkey_file)).exit_code == 3


def test_a_witness_cosignature_can_be_required(live: LiveLog, tmp_path: Path) -> None:
    witness_key = tmp_path / "witness.key"
    made = invoke("keys", "generate-witness", "regulator.example/witness", "--out", str(witness_key))
    assert made.exit_code == 0 and witness_key.stat().st_mode & 0o777 == 0o600
    witness_vkey = made.stdout.strip()
    assert live.verify("--witness", witness_vkey).exit_code == 1  # nothing cosigned yet
    note = tmp_path / "cp.txt"
    assert invoke("checkpoint", "-r", "cn", "-c", str(live.ws.config), "--out", str(note)).exit_code == 0
    cosigned = tmp_path / "cosigned.txt"
    cosign = ["cosign", str(note), "--witness-key", str(witness_key), "--key", str(live.vkey_file)]
    assert invoke(*cosign, "--out", str(cosigned)).exit_code == 0
    assert invoke("record", str(note), "-r", "cn", "-c", str(live.ws.config)).exit_code == 2  # not cosigned
    recorded = invoke("record", str(cosigned), "-r", "cn", "-c", str(live.ws.config))
    assert recorded.exit_code == 0, recorded.output
    code, verdict = live.verdict("--witness", witness_vkey)
    assert code == 0, verdict["failures"]
    assert verdict["witness_signers"] == ["+".join(witness_vkey.split("+")[:2])]
    stranger = generate_signer("other.example/witness").verifier.vkey
    assert live.verify("--witness", stranger).exit_code == 1


def test_an_event_with_personal_data_fails_verification(live: LiveLog) -> None:
    store = live.ws.runtime.regions["cn"].store
    with store.transaction("bad event") as conn:
        bad = orjson.loads(LifecycleEvent(kind="collect", region="cn", at_ms=1, actor_role="vehicle").to_bytes())
        MerkleLog("cn").append_batch(conn, [orjson.dumps({**bad, "vin": "LSVM0TEST00000001"})])
    code, verdict = live.verdict()
    assert code == 1
    assert any("fields outside the lifecycle event format: vin" in f for f in verdict["failures"])  # type: ignore[union-attr]
    assert any("VIN-like" in f for f in verdict["failures"])  # type: ignore[union-attr]
    kind, problems = event_problems(
        b'{"v":1,"kind":"query","region":"cn","at_ms":1,"actor_role":"x","purpose":"a b"}', "cn"
    )
    assert kind == "query" and problems == ["purpose is not a short identifier (free text or another type)"]


def test_rotated_keys_verify_with_the_key_file_of_all_versions(live: LiveLog) -> None:
    config = str(live.ws.config)
    assert live.verify("--save-checkpoint", str(live.trusted)).exit_code == 0
    assert invoke("keys", "rotate", "-r", "cn", "-c", config).exit_code == 0
    live.ws.runtime.ledger.append_event("cn", LifecycleEvent(kind="query", region="cn", at_ms=1, actor_role="officer"))
    assert live.verify("--trusted", str(live.trusted)).exit_code == 1  # the new key is not trusted yet
    live.vkey_file.write_text(invoke("keys", "list", "-r", "cn", "-c", config, "--vkeys").stdout)
    assert len(live.vkey_file.read_text().splitlines()) == 2
    assert live.verify("--trusted", str(live.trusted)).exit_code == 0


def test_prove_prints_a_proof_that_verifies(live: LiveLog) -> None:
    proved = invoke("prove", "--index", "3", "-r", "cn", "-c", str(live.ws.config), "--json")
    assert proved.exit_code == 0, proved.output
    body = json.loads(proved.stdout)
    assert body["index"] == 3 and body["proof"] and body["tree_size"] == sum(live.expected.values())
    text = invoke("prove", "--index", "3", "-r", "cn", "-c", str(live.ws.config))
    assert "path[ 0]" in text.stdout
    assert invoke("prove", "--index", "999", "-r", "cn", "-c", str(live.ws.config)).exit_code == 2
    assert invoke("checkpoint", "-c", str(live.ws.config)).exit_code == 2  # two regions: --region needed


# --- tampering with the stored log --------------------------------------------------------------------------


def _snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} WHERE region = 'cn'").fetchall() for t in LEDGER_TABLES}


def _restore(db: Path, snapshot: dict[str, list[tuple[object, ...]]]) -> None:
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for table, rows in snapshot.items():
            conn.execute(f"DELETE FROM {table} WHERE region = 'cn'")
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


Tamper = Callable[[sqlite3.Connection, random.Random, int, int], str]  # (conn, rng, trusted size, size) -> what


def _changed(value: bytes, rng: random.Random) -> bytes:
    """The value with one byte changed; in a JSON entry, a digit for another digit (still valid JSON)."""
    digits = [i for i, b in enumerate(value) if chr(b).isdigit()]
    i = rng.choice(digits) if digits else rng.randrange(len(value))
    replacement = ord(rng.choice("0123456789".replace(chr(value[i]), ""))) if digits else value[i] ^ 0x01
    return value[:i] + bytes([replacement]) + value[i + 1 :]


def _change_row(table: str, column: str) -> Tamper:
    def tamper(conn: sqlite3.Connection, rng: random.Random, trusted: int, size: int) -> str:
        key = "level, idx" if table == "ledger_nodes" else "idx"
        *row, value = rng.choice(conn.execute(f"SELECT {key}, {column} FROM {table} WHERE region = 'cn'").fetchall())
        where = " AND ".join(f"{name.strip()} = ?" for name in key.split(","))
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE region = 'cn' AND {where}", (_changed(value, rng), *row))
        return f"change {table} row {row}"

    return tamper


def _delete_row(table: str) -> Tamper:
    def tamper(conn: sqlite3.Connection, rng: random.Random, trusted: int, size: int) -> str:
        key = "level, idx" if table == "ledger_nodes" else "idx"
        row = rng.choice(conn.execute(f"SELECT {key} FROM {table} WHERE region = 'cn'").fetchall())
        where = " AND ".join(f"{name.strip()} = ?" for name in key.split(","))
        conn.execute(f"DELETE FROM {table} WHERE region = 'cn' AND {where}", row)
        return f"delete {table} row {row}"

    return tamper


def _swap_rows(conn: sqlite3.Connection, rng: random.Random, trusted: int, size: int) -> str:
    """Reorder two events, moving their leaf hashes along (the stored nodes no longer match)."""
    i, j = sorted(rng.sample(range(size), 2))
    for table, column in (("ledger_entries", "entry"), ("ledger_leaves", "leaf_hash")):
        a, b = (
            conn.execute(f"SELECT {column} FROM {table} WHERE region='cn' AND idx=?", (k,)).fetchone()[0]
            for k in (i, j)
        )
        if a == b:
            continue
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE region='cn' AND idx=?", (b, i))
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE region='cn' AND idx=?", (a, j))
    return f"swap events {i} and {j}"


def _truncate(conn: sqlite3.Connection, rng: random.Random, trusted: int, size: int) -> str:
    """Cut the log back below the auditor's checkpoint, removing every trace (nodes, later checkpoints)."""
    keep = rng.randrange(1, trusted)
    for table in ("ledger_entries", "ledger_leaves"):
        conn.execute(f"DELETE FROM {table} WHERE region='cn' AND idx >= ?", (keep,))
    for level in range(1, 20):
        conn.execute(
            "DELETE FROM ledger_nodes WHERE region='cn' AND level=? AND (idx + 1) * ? > ?", (level, 1 << level, keep)
        )
    conn.execute("DELETE FROM ledger_checkpoints WHERE region='cn' AND tree_size > ?", (keep,))
    return f"truncate to {keep}"


def _rewrite(db: Path) -> Tamper:
    """Rewrite history thoroughly: edit the events, rebuild every leaf and node, drop the stored checkpoints."""

    def tamper(conn: sqlite3.Connection, rng: random.Random, trusted: int, size: int) -> str:
        entries = [bytes(r[0]) for r in conn.execute("SELECT entry FROM ledger_entries WHERE region='cn' ORDER BY idx")]
        k = rng.randrange(trusted)  # inside what the auditor already holds a checkpoint of
        forged = LifecycleEvent(
            kind="query", region="cn", at_ms=entries_at(entries, k), actor_role="officer"
        ).to_bytes()
        op = rng.choice(["change", "delete", "insert", "reorder"])
        if op == "change":
            entries[k] = _changed(entries[k], rng)
        elif op == "delete":
            del entries[k]
        elif op == "insert":
            entries.insert(k, forged)
        else:
            j = rng.choice([x for x in range(size) if entries[x] != entries[k]])
            entries[k], entries[j] = entries[j], entries[k]
        for table in LEDGER_TABLES[:4]:
            conn.execute(f"DELETE FROM {table} WHERE region='cn'")
        conn.execute("COMMIT")
        engine = create_engine(f"sqlite:///{db}", connect_args={"timeout": 10})
        with engine.begin() as sa_conn:
            MerkleLog("cn").append_batch(sa_conn, entries)
        engine.dispose()
        conn.execute("BEGIN IMMEDIATE")
        return f"rewrite history: {op} at {k}"

    return tamper


def entries_at(entries: list[bytes], k: int) -> int:
    at_ms = orjson.loads(entries[k])["at_ms"]
    assert isinstance(at_ms, int)
    return at_ms


def _tamperings(db: Path) -> list[Tamper]:
    return [
        _change_row("ledger_entries", "entry"),
        _change_row("ledger_leaves", "leaf_hash"),
        _change_row("ledger_nodes", "hash"),
        _delete_row("ledger_entries"),
        _delete_row("ledger_leaves"),
        _delete_row("ledger_nodes"),
        _swap_rows,
        _truncate,
        _rewrite(db),
    ]


def _apply(db: Path, tamper: Tamper, rng: random.Random, trusted: int, size: int) -> str:
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        what = tamper(conn, rng, trusted, size)
        conn.execute("COMMIT")
        return what
    finally:
        conn.close()


def test_every_kind_of_tampering_with_the_stored_log_is_caught(live: LiveLog) -> None:
    code, verdict = live.verdict("--save-checkpoint", str(live.trusted))
    assert code == 0, verdict["failures"]
    trusted_size = int(verdict["tree_size"])  # type: ignore[call-overload]
    live.ws.runtime.ledger.append_event("cn", LifecycleEvent(kind="query", region="cn", at_ms=1, actor_role="officer"))
    code, verdict = live.verdict("--trusted", str(live.trusted))  # the server publishes the grown log
    assert code == 0, verdict["failures"]
    size = int(verdict["tree_size"])  # type: ignore[call-overload]
    pristine = _snapshot(live.db)
    rng = random.Random(6962)
    kinds = _tamperings(live.db)
    plan = kinds * 2 + [rng.choice(kinds) for _ in range(22)]  # every kind twice, then random ones: 40 in all
    missed = []
    for tamper in plan:
        what = _apply(live.db, tamper, rng, trusted_size, size)
        result = live.verify("--trusted", str(live.trusted), "--json")
        if result.exit_code != 1 or not isinstance(result.exception, SystemExit):
            missed.append((what, result.exit_code, result.output[-300:]))
        _restore(live.db, pristine)
    assert not missed, missed
    assert live.verify("--trusted", str(live.trusted)).exit_code == 0  # restored: verifies again


def test_a_log_resigned_with_another_key_is_caught(live: LiveLog) -> None:
    assert live.verify("--save-checkpoint", str(live.trusted)).exit_code == 0
    live.server.stop()
    key_file = live.ws.folder / "onshore-data" / "cn" / "keys" / "ledger-signing-v1.key"
    key_file.write_text(random.Random(1).randbytes(32).hex())
    with sqlite3.connect(live.db) as conn:  # the attacker also replaces the recorded key and old checkpoints
        conn.execute("DELETE FROM ledger_signing_keys WHERE region = 'cn'")
        conn.execute("DELETE FROM ledger_checkpoints WHERE region = 'cn'")
    forger = Runtime(live.ws.settings)
    live.server = ServerThread(create_app(forger)).start()
    try:
        result = live.verify("--trusted", str(live.trusted))
        assert result.exit_code == 1 and "no valid signature by a trusted log key" in result.stdout
    finally:
        live.server.stop()
        forger.close()


def _bundle_tamperings() -> list[Callable[[dict[str, object], random.Random], str]]:
    def entries(bundle: dict[str, object]) -> list[str]:
        value = bundle["entries"]
        assert isinstance(value, list)
        return value

    def change(bundle: dict[str, object], rng: random.Random) -> str:
        items = entries(bundle)
        k = rng.randrange(len(items))
        items[k] = base64.b64encode(_changed(base64.b64decode(items[k]), rng)).decode()
        return f"change entry {k}"

    def delete(bundle: dict[str, object], rng: random.Random) -> str:
        k = rng.randrange(len(entries(bundle)))
        del entries(bundle)[k]
        return f"delete entry {k}"

    def insert(bundle: dict[str, object], rng: random.Random) -> str:
        k = rng.randrange(len(entries(bundle)) + 1)
        forged = LifecycleEvent(kind="query", region="cn", at_ms=1, actor_role="officer").to_bytes()
        entries(bundle).insert(k, base64.b64encode(forged).decode())
        return f"insert entry at {k}"

    def reorder(bundle: dict[str, object], rng: random.Random) -> str:
        items = entries(bundle)
        i, j = rng.sample([k for k in range(len(items)) if items.count(items[k]) == 1], 2)
        items[i], items[j] = items[j], items[i]
        return f"swap entries {i} and {j}"

    def resign(bundle: dict[str, object], rng: random.Random) -> str:
        """Change an event, recompute the root, and sign it with the attacker's key under the log's name."""
        from onshore.ledger import leaf_hashes, root_from_leaf_hashes

        change(bundle, rng)
        raw = [base64.b64decode(e) for e in entries(bundle)]
        note = sign_checkpoint(
            str(bundle["origin"]),
            len(raw),
            root_from_leaf_hashes(leaf_hashes(raw)),
            generate_signer(str(bundle["origin"])),
        )
        bundle["checkpoint"] = note
        return "re-sign with another key"

    return [change, delete, insert, reorder, resign]


def test_random_tampering_with_a_bundle_is_caught(live: LiveLog, tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    assert invoke("export", str(path), "-r", "cn", "-c", str(live.ws.config), "--up-to", "15").exit_code == 0
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(orjson.loads(path.read_bytes())["checkpoint"])
    assert invoke("export", str(path), "-r", "cn", "-c", str(live.ws.config)).exit_code == 0
    original = orjson.loads(path.read_bytes())
    rng = random.Random(9162)
    tamperings = _bundle_tamperings()
    missed = []
    for round_ in range(40):
        bundle = json.loads(json.dumps(original))
        tamper = tamperings[round_ % len(tamperings)] if round_ < 10 else rng.choice(tamperings)
        what = tamper(bundle, rng)
        path.write_bytes(orjson.dumps(bundle))
        result = invoke("verify", "--key", str(live.vkey_file), "--bundle", str(path), "--trusted", str(trusted))
        if result.exit_code != 1 or not isinstance(result.exception, SystemExit):
            missed.append((what, result.exit_code))
    assert not missed, missed
