"""The shared key store: a region's named keys and wrapped subject keys in a database of their own.

Every process of a region (servers, gateways, workers, the CLI) opens the same key database, so they all use
the same pseudonym key (one ``vehicle_ref`` per VIN), decrypt each other's rows, and an erasure destroys the
one copy of the subject's wrapped key. The database is apart from the record store, so record-store backups
hold only ciphertext. Nothing is created on first use: `SQLKeyStore.provision` (``onshore keys provision``)
creates the tables and the named keys; a missing one raises `KeyNotProvisionedError` naming that command.
Subject data keys are created when a subject is made (or a batch needs one), in this shared database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from onshore import clock
from onshore.errors import ConfigError, StorageError
from onshore.storage.crypto import KEK_NAME, new_wrapped_data_key, unwrap_data_keys
from onshore.storage.keys import (
    KEY_SIZE,
    REGION_KEYS,
    KeyState,
    ProvisionAction,
    check_key_name,
    env_key,
    named_key,
    not_provisioned,
)

log = logging.getLogger(__name__)

# The key database's own tables (never in the record store's metadata or migrations).
key_metadata = MetaData()
named_keys = Table(
    "named_keys",
    key_metadata,
    Column("region", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
subject_keys = Table(
    "subject_keys",
    key_metadata,
    Column("region", String(32), primary_key=True),
    Column("subject_ref", String(64), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),  # nonce || AES-GCM(KEK, data key), bound to region+subject
    Column("created_ms", BigInteger, nullable=False),
)
_CHUNK = 500


def _sqlite_path(database: str, base_dir: Path) -> str:
    if database and database != ":memory:" and not Path(database).is_absolute():
        return str((base_dir / database).resolve())
    return database


def key_engine(url: str, *, base_dir: Path, what: str) -> Engine:
    """An engine for a key database URL (``postgresql+psycopg://`` or ``sqlite:///``).

    Raises:
        ConfigError: not a PostgreSQL or SQLite URL.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types for bad URLs
        raise ConfigError(f"{what} {url!r} is neither file://folder nor a database URL") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=8)
    if backend != "sqlite":
        raise ConfigError(f"{what} {url!r}: only file://, postgresql+psycopg:// and sqlite:/// are supported")
    database = _sqlite_path(parsed.database or "", base_dir)
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed.set(database=database))

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA secure_delete=ON")  # a destroyed key's bytes are overwritten in the file
        cur.execute("PRAGMA journal_mode=DELETE")  # no WAL file keeping old pages
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()
        if database and database != ":memory:":
            with contextlib.suppress(OSError):
                os.chmod(database, 0o600)

    return engine


def same_database(url: str, other: str, *, base_dir: Path) -> bool:
    """Whether two database URLs name the same database (same backend, host, port and database)."""
    try:
        a, b = make_url(url), make_url(other)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by whoever opens it
        return False

    def where(u: Any) -> tuple[str, str | None, int | None, str]:
        database = u.database or ""
        if u.get_backend_name() == "sqlite":
            database = _sqlite_path(database, base_dir)
        return (u.get_backend_name(), u.host, u.port, database)

    return where(a) == where(b)


class SQLKeyStore:
    """One region's keys in a shared key database (the region column lets regions of one country share it)."""

    backend = "sql"

    def __init__(self, engine: Engine, *, region: str, hint: str) -> None:
        self.engine = engine
        self.region = region
        self.hint = hint
        self._cache: dict[str, bytes] = {}  # named keys only; subject keys are read on every call

    # -- named keys -------------------------------------------------------------------------------

    def key(self, name: str) -> bytes:
        return named_key(self._cache, self.region, name, self._provisioned_key)

    def _provisioned_key(self, name: str) -> bytes:
        with self._translate("read a key", name) as conn:
            key = self._stored_key(conn, name)
        if key is None:
            raise not_provisioned(self.region, name, self.hint)
        return key

    def ensure(self, name: str) -> bytes:
        check_key_name(name)
        if name not in self._cache and env_key(self.region, name) is None:
            with self._translate("create a key", name) as conn:
                self._insert_key_if_absent(conn, name)
        return self.key(name)

    def provision(self, names: Sequence[str] = REGION_KEYS) -> dict[str, ProvisionAction]:
        with self._translate("provision keys") as conn:
            if conn.dialect.name == "postgresql":  # two provisioners at once: one creates the tables
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('onshore-key-store'))"))
            key_metadata.create_all(conn)
            done: dict[str, ProvisionAction] = {}
            for name in names:
                check_key_name(name)
                if env_key(self.region, name) is not None:
                    done[name] = "env"  # injected from the KMS: the database never holds it
                else:
                    done[name] = "created" if self._insert_key_if_absent(conn, name) else "present"
        return done

    def status(self, names: Sequence[str] = REGION_KEYS) -> dict[str, KeyState]:
        for name in names:
            check_key_name(name)
        states: dict[str, KeyState] = {n: "env" for n in names if env_key(self.region, n) is not None}
        with self._translate("read key status") as conn:
            stored = set()
            if inspect(conn).has_table(named_keys.name):
                stored = set(
                    conn.execute(
                        select(named_keys.c.name).where(
                            named_keys.c.region == self.region, named_keys.c.name.in_(list(names))
                        )
                    ).scalars()
                )
        for name in names:
            states.setdefault(name, "present" if name in stored else "missing")
        return {name: states[name] for name in names}

    # -- subject data keys ------------------------------------------------------------------------

    def keys_for(self, subject_refs: Iterable[str], *, create: bool) -> dict[str, bytes]:
        refs = sorted(set(subject_refs))
        if not refs:
            return {}
        kek = AESGCM(self.key(KEK_NAME))
        wrapped: dict[str, bytes] = {}
        with self._translate("read subject keys") as conn:
            for start in range(0, len(refs), _CHUNK):
                chunk = refs[start : start + _CHUNK]
                wrapped.update(self._wrapped(conn, chunk))
                missing = [r for r in chunk if r not in wrapped]
                if missing and create:
                    now = clock.now_ms()
                    rows = [
                        {
                            "region": self.region,
                            "subject_ref": ref,
                            "wrapped": new_wrapped_data_key(kek, self.region, ref),
                            "created_ms": now,
                        }
                        for ref in missing
                    ]
                    conn.execute(self._insert_ignore(subject_keys), rows)
                    wrapped.update(self._wrapped(conn, missing))  # a concurrent creator's key wins
        return unwrap_data_keys(kek, self.region, wrapped)

    def destroy(self, subject_ref: str) -> bool:
        with self._translate("destroy a subject key") as conn:
            mine = (subject_keys.c.region == self.region) & (subject_keys.c.subject_ref == subject_ref)
            deleted = conn.execute(delete(subject_keys).where(mine)).rowcount
        if deleted and self.engine.dialect.name == "postgresql":
            self._vacuum()
        return bool(deleted)

    def exists(self, subject_ref: str) -> bool:
        with self._translate("read subject keys") as conn:
            return bool(self._wrapped(conn, [subject_ref]))

    def subject_key_count(self) -> int:
        with self._translate("count subject keys") as conn:
            if not inspect(conn).has_table(subject_keys.name):
                return 0
            return int(
                conn.execute(
                    select(func.count()).select_from(subject_keys).where(subject_keys.c.region == self.region)
                ).scalar_one()
            )

    def close(self) -> None:
        self.engine.dispose()

    # -- internals --------------------------------------------------------------------------------

    def _vacuum(self) -> None:
        """Remove the deleted row's dead tuple now rather than whenever autovacuum comes (best effort)."""
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f"VACUUM {subject_keys.name}"))
        except SQLAlchemyError as exc:
            log.warning("region %s: VACUUM of the subject key table failed (%s)", self.region, exc.__class__.__name__)

    def _wrapped(self, conn: Connection, refs: Sequence[str]) -> dict[str, bytes]:
        rows = conn.execute(
            select(subject_keys.c.subject_ref, subject_keys.c.wrapped).where(
                subject_keys.c.region == self.region, subject_keys.c.subject_ref.in_(list(refs))
            )
        ).all()
        return {ref: bytes(blob) for ref, blob in rows}

    def _stored_key(self, conn: Connection, name: str) -> bytes | None:
        secret = conn.execute(
            select(named_keys.c.secret).where(named_keys.c.region == self.region, named_keys.c.name == name)
        ).scalar_one_or_none()
        return None if secret is None else bytes(secret)

    def _insert_key_if_absent(self, conn: Connection, name: str) -> bool:
        row = {"region": self.region, "name": name, "secret": secrets.token_bytes(KEY_SIZE)}
        # RETURNING, not rowcount: psycopg reports -1 for a compiled INSERT .. ON CONFLICT DO NOTHING
        inserted = conn.execute(
            self._insert_ignore(named_keys).returning(named_keys.c.name), {**row, "created_ms": clock.now_ms()}
        ).first()
        return inserted is not None

    def _insert_ignore(self, table: Table) -> Any:
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    @contextlib.contextmanager
    def _translate(self, what: str, name: str | None = None) -> Iterator[Connection]:
        """One transaction; driver errors become StorageError, or KeyNotProvisionedError without the tables."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            if self._tables_missing():
                raise not_provisioned(self.region, name, self.hint) from None
            raise StorageError(
                f"region {self.region}: key store failed to {what} ({exc.__class__.__name__}); "
                "check that the key database is reachable"
            ) from exc

    def _tables_missing(self) -> bool:
        try:
            with self.engine.connect() as conn:
                found = inspect(conn)
                return not (found.has_table(named_keys.name) and found.has_table(subject_keys.name))
        except SQLAlchemyError:
            return False
