"""PostgreSQL: ``records`` partitioned by time, one partition per calendar month (UTC) of ``ts_ms``.

Layout (migration 0006): ``records`` is ``PARTITION BY RANGE (ts_ms)``; the partition of a month is the table
``records_pYYYY_MM`` holding ``[first millisecond of the month, first of the next)``. There is no default
partition: a row's month must have its partition before the row is inserted. SQLite is not partitioned and
every function here does nothing there.

Creation, nothing by hand: ``ensure_partitions`` runs before every insert of records, in the inserting
transaction, for the months the batch touches. It takes the partitions lock (a transaction-scoped advisory lock
of the database, so two processes, or two regions sharing a database, never create one partition twice), reads
which exist and creates the others (``CREATE TABLE``, then ``ATTACH PARTITION``, which neither readers nor
writers of ``records`` wait for). Each process remembers the months it found, but only while a month is not
over: a past month can be dropped by retention in another process, so it is looked up again each time (late
data of past months costs one catalog query under the lock). Retention prepares the current and the next month
ahead, so the first batch of a month rarely has to create one.

Retention (``drop_expired_partitions``): a month partition whose every row one of the pack's retention rules has
expired is dropped as a whole (``DROP TABLE``: no row-by-row delete, nothing left to vacuum), once the month has
been over for a day. The drop locks ``records`` against readers too, so it waits at most two seconds for them;
otherwise the month is left for the next run and the rules delete its expired rows one by one. A drop leaves
what a row delete leaves: a tombstone per row covered by a store event and one ledger ``delete`` event
(``storage.content``), and the rows' keys go from ``record_keys``.
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, Engine, and_, false, func, literal, not_, or_, select, text
from sqlalchemy.exc import OperationalError

from onshore import clock
from onshore.model import LifecycleEvent
from onshore.storage.content import CONTENT_COLUMNS, commit_deletion, row_digest
from onshore.storage.predicates import RecordFilter
from onshore.storage.record_keys import forget_partition_keys
from onshore.storage.schema import records
from onshore.storage.store_batches import STORE_IDX, WITH_BATCHES
from onshore.storage.writes import region_lock_key

if TYPE_CHECKING:
    from onshore.storage.sql import SQLRecordStore

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAME = re.compile(r"^records_p(\d{4})_(\d{2})$")
_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:key)")
_LOCK_KEY = region_lock_key("\x00records-partitions")  # one per database, apart from every region's write lock
_PRESENT = text(
    "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = to_regclass('records')"
)
# A month is dropped no earlier than this after it ended, so a process whose clock lags behind still trusts only
# months that cannot have been dropped.
_DROP_GRACE_MS = 86_400_000
_PAGE = 10_000
_DROP_LOCK_TIMEOUT = "2s"
_LOCK_NOT_AVAILABLE = "55P03"
_CREATED = "onshore_partitions_created"


class Month(NamedTuple):
    """A calendar month (UTC): one partition of ``records``."""

    year: int
    month: int

    @classmethod
    def of(cls, ts_ms: int) -> Month:
        at = _EPOCH + dt.timedelta(milliseconds=ts_ms)
        return cls(at.year, at.month)

    @property
    def start_ms(self) -> int:
        return _ms(dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC))

    @property
    def end_ms(self) -> int:
        return self.next().start_ms

    @property
    def name(self) -> str:
        return f"records_p{self.year:04d}_{self.month:02d}"

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)


def _ms(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(milliseconds=1)


def is_partition_name(name: str) -> bool:
    """Whether ``name`` is a month partition of ``records`` (what schema comparison leaves out)."""
    return _NAME.match(name) is not None


def months_touched(ts_ms: Sequence[int]) -> set[Month]:
    """The months of these times (the usual batch, all in one month, costs a min and a max)."""
    first = Month.of(min(ts_ms))
    if max(ts_ms) < first.end_ms:
        return {first}
    return {Month.of(ts) for ts in set(ts_ms)}


# Per engine (one per record store in a process): months found to exist, trusted while they are not over.
_known: weakref.WeakKeyDictionary[Engine, set[Month]] = weakref.WeakKeyDictionary()


def ensure_partitions(conn: Connection, ts_ms: Sequence[int]) -> None:
    """Make sure the month partition of each time exists, in ``conn``'s transaction (PostgreSQL; SQLite: nothing).

    Call it before the transaction touches ``records`` or ``record_keys``: taking the partitions lock before any
    lock on them means no two transactions can wait for each other in a circle.
    """
    if conn.dialect.name != "postgresql" or not ts_ms:
        return
    months = months_touched(ts_ms)
    known = _known.setdefault(conn.engine, set())
    now = clock.now_ms()
    if all(m in known and m.end_ms > now for m in months):
        return
    conn.execute(_LOCK_SQL, {"key": _LOCK_KEY})
    present = present_months(conn)
    created = _created_in(conn)
    known.update(m for m in present - created if m.end_ms > now)  # what this transaction made may roll back
    for month in sorted(months - present):
        # Made apart, then attached: ATTACH takes a lock on records that neither readers nor writers wait for
        # (CREATE ... PARTITION OF would lock them all out until this transaction ends). The new table is empty, so
        # attaching checks nothing and makes its indexes at once. The name and bounds come from integers.
        conn.exec_driver_sql(f"CREATE TABLE {month.name} (LIKE records INCLUDING DEFAULTS)")
        conn.exec_driver_sql(
            f"ALTER TABLE records ATTACH PARTITION {month.name} FOR VALUES FROM ({month.start_ms}) TO ({month.end_ms})"
        )
        created.add(month)


def _created_in(conn: Connection) -> set[Month]:
    """The months created in ``conn``'s current transaction (kept on the connection, reset by a new transaction)."""
    transaction = conn.get_transaction()
    slot = conn.info.get(_CREATED)
    if slot is None or slot[0] is not transaction:
        slot = conn.info[_CREATED] = (transaction, set())
    return slot[1]  # type: ignore[no-any-return]


def present_months(conn: Connection) -> set[Month]:
    """The months whose partition exists (PostgreSQL)."""
    found = set()
    for name in conn.execute(_PRESENT).scalars():
        match = _NAME.match(name)
        if match:
            found.add(Month(int(match[1]), int(match[2])))
    return found


def layout_diff(conn: Connection) -> list[tuple[str, ...]]:
    """Where the store's partitioning differs from the metadata's (PostgreSQL), which Alembic does not compare.

    A table declared with ``postgresql_partition_by`` must be partitioned so, and its primary key must be the
    declared one plus the partition key columns. Each difference is ``("partitioning", table, wanted, found)``.
    """
    diffs: list[tuple[str, ...]] = []
    for table in records.metadata.tables.values():
        declared = table.dialect_options["postgresql"].get("partition_by")
        if not declared:
            continue
        found = conn.execute(text("SELECT pg_get_partkeydef(to_regclass(:t))"), {"t": table.name}).scalar()
        if found != declared:
            diffs.append(("partitioning", table.name, f"PARTITION BY {declared}", f"PARTITION BY {found}"))
        keys = [c.strip() for c in declared[declared.index("(") + 1 : declared.rindex(")")].split(",")]
        wanted = [*table.primary_key.columns.keys(), *(k for k in keys if k not in table.primary_key.columns)]
        pk = conn.execute(
            text(
                "SELECT a.attname FROM pg_index AS i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(n, o)"
                " JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.n"
                " WHERE i.indrelid = to_regclass(:t) AND i.indisprimary ORDER BY k.o"
            ),
            {"t": table.name},
        ).scalars()
        if (have := list(pk)) != wanted:
            diffs.append(("partitioning", table.name, f"PRIMARY KEY ({', '.join(wanted)})", f"({', '.join(have)})"))
    return diffs


@dataclass(frozen=True)
class DroppedPartition:
    """A month partition retention dropped: how many records it held and the delete event (None when empty)."""

    name: str
    records: int
    ledger_index: int | None


def drop_expired_partitions(
    store: SQLRecordStore,
    expired: Sequence[RecordFilter],
    make_event: Callable[[int, str | None], LifecycleEvent],
    *,
    now_ms: int,
) -> list[DroppedPartition]:
    """Drop each month partition whose every record one of ``expired`` selects (PostgreSQL; SQLite: none).

    First prepares the current and the next month's partitions. Then each past month (over for a day) that
    starts before the latest cutoff of ``expired`` is checked and, when nothing in it is kept, dropped in its own
    write transaction with its tombstones and one delete event, ``make_event(records, digest)``.
    """
    if store.engine.dialect.name != "postgresql":
        return []
    this_month = Month.of(now_ms)
    with store.transaction("prepare partitions") as conn:
        ensure_partitions(conn, [this_month.start_ms, this_month.end_ms])
    cutoffs = [f.until_ms if f.until_ms is not None else now_ms for f in expired]
    if not cutoffs:
        return []
    with store.read("list partitions") as conn:
        months = sorted(present_months(conn))
    dropped = []
    for month in months:
        if month.end_ms + _DROP_GRACE_MS > now_ms or month.start_ms >= max(cutoffs):
            continue
        with store.transaction("retention: drop partition") as conn:
            result = _drop_if_expired(conn, month, expired, store, make_event)
        if result is not None:
            dropped.append(result)
    return dropped


def _drop_if_expired(
    conn: Connection,
    month: Month,
    expired: Sequence[RecordFilter],
    store: SQLRecordStore,
    make_event: Callable[[int, str | None], LifecycleEvent],
) -> DroppedPartition | None:
    conn.execute(_LOCK_SQL, {"key": _LOCK_KEY})  # no process creates or fills it meanwhile (ensure_partitions)
    if month not in present_months(conn):
        return None  # another process dropped it
    conn.exec_driver_sql(f"LOCK TABLE {month.name} IN SHARE MODE")  # and no other region's writer changes it
    in_month = and_(records.c.ts_ms >= month.start_ms, records.c.ts_ms < month.end_ms)
    selected = or_(*[f.where("postgresql") for f in expired])
    kept = select(literal(1)).select_from(records).where(in_month, not_(func.coalesce(selected, false()))).limit(1)
    if conn.execute(kept).first() is not None:
        return None
    rows = 0
    covered: list[tuple[int, bytes]] = []
    stmt = select(STORE_IDX, *[records.c[c] for c in CONTENT_COLUMNS]).select_from(WITH_BATCHES).where(in_month)
    for chunk in conn.execute(stmt, execution_options={"yield_per": _PAGE}).partitions():
        rows += len(chunk)
        covered.extend((int(row[0]), row_digest(row[1:])) for row in chunk if row[0] is not None)
    try:
        with conn.begin_nested():  # a savepoint: a drop that waits too long leaves the month for the next run
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_DROP_LOCK_TIMEOUT}'")
            # DROP locks records against readers too: wait a little, never behind a long read for long
            conn.exec_driver_sql("LOCK TABLE records IN ACCESS EXCLUSIVE MODE")
            conn.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
            forget_partition_keys(conn, month.name)
            conn.exec_driver_sql(f"DROP TABLE {month.name}")
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        return None  # the rules delete its expired rows row by row meanwhile
    _known.get(conn.engine, set()).discard(month)
    index = commit_deletion(conn, rows, covered, store.journal, make_event) if rows else None
    return DroppedPartition(month.name, rows, index)
