"""Tables of a region's record store (SQLite or PostgreSQL, one code path), on onshore's one ``MetaData``.

Feature packages declare their own tables on ``metadata`` (``onshore.ledger.store``, ``onshore.ledger.signing``,
``onshore.border.tables``); storage never imports them back. The schema itself is made by the Alembic revisions in
``storage/migrations`` (``onshore.storage.migrate``), never by ``create_all``: a test checks that the head of the
migrations equals this metadata with every feature's tables registered (``onshore.tables``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()
# The migration whose result this metadata is: the revision the runtime opens a store at (``migrate.require_current``,
# read without loading Alembic). A new revision moves it; a test holds it to the migrations' head.
REVISION = "0010"

# An auto-incrementing BIGINT that SQLite also treats as its rowid alias.
_Id = BigInteger().with_variant(Integer(), "sqlite")
# A text array on PostgreSQL (a GIN index serves any-of); comma-wrapped text on SQLite.
TagSet = Text().with_variant(ARRAY(Text()), "postgresql")

vehicles = Table(
    "vehicles",
    metadata,
    Column("ref", String(64), primary_key=True, comment="region-keyed HMAC pseudonym of the VIN"),
    Column("market", String(3), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
    # 0008: a fleet back-end that speaks for the vehicle (its records are admitted from that gateway's token)
    Column("gateway", String(64), nullable=True, comment="the gateway that speaks for the vehicle"),
    Index("ix_vehicles_gateway", "gateway"),
)

records = Table(
    "records",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("vehicle_ref", String(64), nullable=False),
    Column("msg_id", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("signal", String(200), nullable=False),
    Column("value", Text, nullable=True),
    Column("categories", String(100), nullable=False),
    Column("tags", String(200), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("rule_id", String(100), nullable=False),
    Column("origin", String(3), nullable=False),
    Column("zone", String(100), nullable=True),
    Column("received_ms", BigInteger, nullable=False),
    Column("subject_ref", String(64), nullable=False, comment="the person the datum is about (pseudonym)"),
    # Rows stored before 0010 name their store event's ledger index here; later rows name their batch in
    # ``batch_ref``, whose store event ``store_batches`` gives (``storage.store_batches``).
    Column("store_idx", BigInteger, nullable=True, comment="ledger index of the store event that stored the row"),
    Column("batch_ref", BigInteger, nullable=True, comment="the batch of the row: store_batches.batch_ref"),
    # Derived from ``categories`` and ``tags`` so an index serves filters on them (``storage.predicates``; 0004).
    Column("category_bits", SmallInteger, nullable=False, comment="one bit per category (storage.predicates)"),
    Column("tag_set", TagSet, nullable=False, comment="the tags: a text array (PostgreSQL), ',a,b,' (SQLite)"),
    # The one index on the hot path: de-duplication by (vehicle, message id). SQLite only: a partitioned table's
    # unique constraints must hold the partition key, so PostgreSQL de-duplicates in ``record_keys`` (0006).
    UniqueConstraint("vehicle_ref", "msg_id", name="uq_records_vehicle_msg").ddl_if(dialect="sqlite"),
    Index("ix_records_subject", "subject_ref"),
    # A category over a time range (0004), and a time range alone (``category_bits IN (every mask)``: 0005 dropped
    # the index on ts_ms alone, one index fewer on every insert).
    Index("ix_records_category_ts", "category_bits", "ts_ms"),
    # PostgreSQL: one partition per calendar month (UTC) of ts_ms, so retention drops whole months
    # (``storage.partitions``; 0006). Its primary key is (id, ts_ms) there, as a partitioned table's must hold the
    # partition key; SQLite keeps id alone, its rowid. ``migrate.schema_diff`` checks both, which Alembic does not.
    postgresql_partition_by="RANGE (ts_ms)",
)
# Tags any-of (``tag_set && ARRAY[...]``) on PostgreSQL; SQLite has no index for it (see ``migrate.schema_diff``).
Index("ix_records_tag_set", records.c.tag_set, postgresql_using="gin").ddl_if(dialect="postgresql")

# PostgreSQL only (0006): the (vehicle, message id) of every stored record, one row each, not partitioned, so a
# resend is a duplicate whatever its time; an insert claims its keys here first (``storage.record_keys``), and every
# delete of records removes theirs in the same transaction. ``ts_ms`` finds the record's partition.
record_keys = Table(
    "record_keys",
    metadata,
    Column("vehicle_ref", String(64), primary_key=True),
    Column("msg_id", String(128), primary_key=True),
    Column("ts_ms", BigInteger, nullable=False, comment="the record's time: which partition of records holds it"),
    info={"dialect": "postgresql"},
)

subjects = Table(
    "subjects",
    metadata,
    Column("ref", String(64), primary_key=True, comment="random id of a person; never derived from personal data"),
    Column("kind", String(16), nullable=False, comment="owner | driver | passenger"),
    Column("token_sha256", String(64), nullable=True, unique=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("erased_ms", BigInteger, nullable=True),
)

# Who drives or owns which vehicle when: a datum's subject is found from vehicle + time (+ driver profile).
bindings = Table(
    "bindings",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("subject_ref", String(64), nullable=False, index=True),
    Column("vehicle_ref", String(64), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("profile", String(64), nullable=True, comment="the vehicle's own driver-profile id, if any"),
    Column("from_ms", BigInteger, nullable=False),
    Column("until_ms", BigInteger, nullable=True),
)

consents = Table(
    "consents",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("subject_ref", String(64), nullable=False, index=True),
    Column("purpose", String(64), nullable=False),
    Column("level", String(16), nullable=False, comment="ordinary | separate"),
    Column("granted_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=True),
    Column("withdrawn_ms", BigInteger, nullable=True),
)

unclassified_signals = Table(
    "unclassified_signals",
    metadata,
    Column("signal", String(200), primary_key=True),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("batches", BigInteger, nullable=False),
)

# Camera frames not stored, per UTC day and reason (sensitive_zone, no_consent, hard_conditions): what the officer
# sees in /v1/stats; each drop is also a ledger event.
frame_drops = Table(
    "frame_drops",
    metadata,
    Column("day", String(10), primary_key=True, comment="UTC date, YYYY-MM-DD"),
    Column("reason", String(32), primary_key=True),
    Column("frames", BigInteger, nullable=False),
)

# The store event of each batch of rows (0010): a batch takes its reference before the region's write lock and
# gets its store event's ledger index under it (``storage.store_batches``), so its rows are written outside the lock.
store_batches = Table(
    "store_batches",
    metadata,
    Column("batch_ref", _Id, primary_key=True, autoincrement=True),
    Column("store_idx", BigInteger, nullable=True, comment="ledger index of the batch's store event"),
)

# What a delete event removed: per row, the store event that had committed to it and the row's digest (no content).
# The delete event's digest commits to these, so a batch's live rows plus its tombstones re-derive its store event.
record_tombstones = Table(
    "record_tombstones",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("store_idx", BigInteger, nullable=False, index=True),
    Column("delete_idx", BigInteger, nullable=False),
    Column("row_digest", LargeBinary(32), nullable=False),
)

# Batches a bus worker has committed, by the batch id the gateway gave them: written in the same transaction as the
# batch's rows and ledger events, so a redelivered message is answered from here instead of being processed again.
# ``outcome`` is the answer the batch got (counts and ledger index, no personal data); rows are pruned after the
# bus's stream can no longer redeliver them (``onshore.storage.processed``).
processed_batches = Table(
    "processed_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("processed_ms", BigInteger, nullable=False, index=True),
    Column("outcome", Text, nullable=False, comment="the batch's answer as JSON: counts, no personal data"),
)
