"""The SQLite schema of the embedded store, its migrations, and how values are stored.

Times are INTEGER microseconds since the Unix epoch, UTC: exact (a datetime round-trips to the
microsecond), cheap to compare and to index, and ordered the way time is. Attribute values and
history before/after are JSON text written by msgspec, so equal values are equal strings and
`list_cis` can compare them in SQL.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

SCHEMA_VERSION = 10

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_json_encode = msgspec.json.Encoder().encode
json_decode = msgspec.json.Decoder().decode


def to_micros(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()}: pass a timezone-aware datetime "
                         "(e.g. datetime.now(timezone.utc))")
    return (when - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def encode_json(value: Any) -> str:
    return _json_encode(value).decode()


def decode_json(text: str | None) -> Any:
    return None if text is None else json_decode(text)


_V1 = (
    """CREATE TABLE ci (
        id          TEXT PRIMARY KEY,
        class       TEXT NOT NULL,
        state       TEXT NOT NULL DEFAULT 'active' CHECK (state = 'active' OR state = 'retired'),
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # list_cis by class walks this in id order; count_cis is an index-only scan.
    "CREATE INDEX ci_by_class ON ci (class, state, id)",

    """CREATE TABLE identifier (
        class       TEXT NOT NULL,
        kind        TEXT NOT NULL,
        value       TEXT NOT NULL,
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        first_seen  INTEGER NOT NULL,
        PRIMARY KEY (class, kind, value)
    ) WITHOUT ROWID""",
    "CREATE INDEX identifier_by_ci ON identifier (ci_id)",

    # Current values only; their history is in `history`. No index on value: attribute writes are
    # the hot path of reconcile, and list_cis filters through the (ci_id, name) key instead.
    """CREATE TABLE attribute (
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        name        TEXT NOT NULL,
        value       TEXT NOT NULL,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        report_id   TEXT,
        observed_at INTEGER NOT NULL,
        PRIMARY KEY (ci_id, name)
    ) WITHOUT ROWID""",

    """CREATE TABLE history (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        kind        TEXT NOT NULL CHECK (kind = 'ci.create' OR kind = 'attr.set' OR kind = 'attr.unset'
                           OR kind = 'ident.add' OR kind = 'rel.add' OR kind = 'rel.retire'),
        name        TEXT,
        before      TEXT,
        after       TEXT,
        related_ci  TEXT,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        report_id   TEXT,
        observed_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL
    )""",
    "CREATE INDEX history_by_ci ON history (ci_id, seq)",
    "CREATE INDEX history_by_related_ci ON history (related_ci, seq) WHERE related_ci IS NOT NULL",
    """CREATE TRIGGER history_no_update BEFORE UPDATE ON history
       BEGIN SELECT RAISE(ABORT, 'history is append-only: its rows cannot be updated'); END""",
    """CREATE TRIGGER history_no_delete BEFORE DELETE ON history
       BEGIN SELECT RAISE(ABORT, 'history is append-only: its rows cannot be deleted'); END""",

    # The key is UNIQUE(type, from_ci, to_ci), ordered from_ci first so that the key also serves
    # relationships_among and the outgoing side of relationships().
    """CREATE TABLE relationship (
        from_ci     TEXT NOT NULL REFERENCES ci (id),
        type        TEXT NOT NULL,
        to_ci       TEXT NOT NULL REFERENCES ci (id),
        state       TEXT NOT NULL DEFAULT 'active' CHECK (state = 'active' OR state = 'retired'),
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        report_id   TEXT,
        observed_at INTEGER NOT NULL,
        PRIMARY KEY (from_ci, type, to_ci)
    ) WITHOUT ROWID""",
    "CREATE INDEX relationship_by_to ON relationship (to_ci, type)",
    "CREATE INDEX relationship_by_state ON relationship (state, type)",

    """CREATE TABLE report (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        report_id     TEXT NOT NULL UNIQUE,
        source_kind   TEXT NOT NULL,
        source_id     TEXT NOT NULL,
        received_at   INTEGER NOT NULL,
        collected_at  INTEGER NOT NULL,
        digest        TEXT NOT NULL,
        body          BLOB NOT NULL,
        status        TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status = 'pending' OR status = 'reconciled' OR status = 'failed'),
        reconciled_at INTEGER,
        error         TEXT
    )""",
    "CREATE INDEX report_by_status ON report (status, seq)",

    # A name is unique among live tokens only, so a token can be rotated under the same name.
    """CREATE TABLE token (
        token_hash  TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        revoked_at  INTEGER
    ) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX token_live_name ON token (name) WHERE revoked_at IS NULL",
)

# The CHECKs are OR chains, not IN lists: SQLite builds an IN list's lookup table once per
# statement execution, which under executemany means once per row (measured: a third of the
# cost of a history insert).

# MIGRATIONS[n] takes a database from schema version n to n + 1. To change the schema, append a
# tuple of statements and bump SCHEMA_VERSION; never edit a migration that has shipped.
_V2 = (
    # Reconcile resolves a report's reference to "whoever holds address X" (an outbound
    # connection's remote end) through this partial index; other attribute writes do not pay for it.
    "CREATE INDEX attribute_address ON attribute (value) WHERE name = 'address'",
)

_V3 = (
    # Agent enrollment. An enrolled agent's credential is an ordinary token bound to its source id
    # (NULL: unbound, as every token before version 3); a source has at most one live credential,
    # so re-enrolling must revoke the old one in the same transaction.
    "ALTER TABLE token ADD COLUMN source_id TEXT",
    "CREATE UNIQUE INDEX token_live_source ON token (source_id) "
    "WHERE source_id IS NOT NULL AND revoked_at IS NULL",
    # The CHECK on uses is the last line of defence against redeeming a token more often than allowed.
    """CREATE TABLE enrollment_token (
        token_hash   TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER,
        max_uses     INTEGER NOT NULL CHECK (max_uses >= 1),
        uses         INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
        last_used_at INTEGER
    ) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX enrollment_token_live_name ON enrollment_token (name) WHERE revoked_at IS NULL",
)

_V4 = (
    # Scoped staleness (reconcile.staleness). A scope is one collector of one source about one
    # subject (the host CI the report is about); `last_run` is
    # the collected_at of its last complete (or unchanged) run, and a row of seen_by with missed 0
    # was stated by that run: a complete run that re-states everything writes one scope row, not
    # one row per item.
    """CREATE TABLE scope (
        id          INTEGER PRIMARY KEY,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        collector   TEXT NOT NULL,
        subject     TEXT NOT NULL REFERENCES ci (id),
        last_run    INTEGER NOT NULL,
        UNIQUE (source_kind, source_id, collector, subject)
    )""",
    # What a scope saw: a CI (rel_type = '' and to_ci = '') or a relation (ci_id is its from end).
    # last_seen_run is written when a row is stated again after a miss, or first missed; while
    # missed = 0 the scope's last_run is the row's last sighting. Rows go when their CI or relation
    # retires.
    """CREATE TABLE seen_by (
        scope_id      INTEGER NOT NULL REFERENCES scope (id),
        ci_id         TEXT NOT NULL REFERENCES ci (id),
        rel_type      TEXT NOT NULL,
        to_ci         TEXT NOT NULL,
        last_seen_run INTEGER NOT NULL,
        missed        INTEGER NOT NULL CHECK (missed >= 0),
        PRIMARY KEY (scope_id, ci_id, rel_type, to_ci)
    ) WITHOUT ROWID""",
    "CREATE INDEX seen_by_key ON seen_by (ci_id, rel_type, to_ci)",
    # History gains ci.retire and ci.reactivate. SQLite cannot change a CHECK in place: the table
    # is copied (seq values kept), and its indexes and append-only triggers are made again.
    """CREATE TABLE history_v4 (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        kind        TEXT NOT NULL CHECK (kind = 'ci.create' OR kind = 'attr.set' OR kind = 'attr.unset'
                           OR kind = 'ident.add' OR kind = 'rel.add' OR kind = 'rel.retire'
                           OR kind = 'ci.retire' OR kind = 'ci.reactivate'),
        name        TEXT,
        before      TEXT,
        after       TEXT,
        related_ci  TEXT,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        report_id   TEXT,
        observed_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL
    )""",
    "INSERT INTO history_v4 SELECT * FROM history ORDER BY seq",
    "DROP TABLE history",  # drops its indexes and triggers first, so no trigger fires
    "ALTER TABLE history_v4 RENAME TO history",
    "CREATE INDEX history_by_ci ON history (ci_id, seq)",
    "CREATE INDEX history_by_related_ci ON history (related_ci, seq) WHERE related_ci IS NOT NULL",
    """CREATE TRIGGER history_no_update BEFORE UPDATE ON history
       BEGIN SELECT RAISE(ABORT, 'history is append-only: its rows cannot be updated'); END""",
    """CREATE TRIGGER history_no_delete BEFORE DELETE ON history
       BEGIN SELECT RAISE(ABORT, 'history is append-only: its rows cannot be deleted'); END""",
)

_V5 = (
    # Every source's latest value of every attribute, the winners and the losers: the precedence
    # table picks the current value from these, and an auditor can see what each source says.
    # The winner's observation is its `attribute` row; only the others are stored here
    # (cmdb.backends.sqlite_observations), so a CI with one source has no rows here.
    """CREATE TABLE observation (
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        name        TEXT NOT NULL,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        value       TEXT NOT NULL,
        report_id   TEXT,
        observed_at INTEGER NOT NULL,
        PRIMARY KEY (ci_id, name, source_kind, source_id)
    ) WITHOUT ROWID""",
)

_V6 = (
    # A weak identifier value (a hostname, an FQDN: reconcile.rules WEAK_KINDS) is bound to one CI
    # in `identifier`; the other CIs that state it are recorded here, so that reconcile knows the
    # value is not unique and no longer matches by it.
    """CREATE TABLE shared_identifier (
        class       TEXT NOT NULL,
        kind        TEXT NOT NULL,
        value       TEXT NOT NULL,
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        first_seen  INTEGER NOT NULL,
        PRIMARY KEY (class, kind, value, ci_id)
    ) WITHOUT ROWID""",
)

_V7 = (
    # Drift events (reconcile.drift): changes of tracked attributes and sets of existing CIs,
    # written with the change set that made them. The id is derived from the report and what
    # changed, so writing an event again stores nothing. Read by CI (or its related CI) and time.
    """CREATE TABLE drift (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        class       TEXT NOT NULL,
        attribute   TEXT NOT NULL,
        before      TEXT,
        after       TEXT,
        related_ci  TEXT,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        report_id   TEXT,
        observed_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL
    )""",
    "CREATE INDEX drift_by_ci ON drift (ci_id, observed_at)",
    "CREATE INDEX drift_by_related_ci ON drift (related_ci, observed_at) WHERE related_ci IS NOT NULL",
    "CREATE INDEX drift_by_time ON drift (observed_at)",
)

_V8 = (
    # full or delta, recorded at ingest: checking a delta's base then reads one row, not the base's
    # whole body. NULL for reports stored before version 8 (read from their body when asked).
    "ALTER TABLE report ADD COLUMN mode TEXT",
)

_V9 = (
    # Merge and split (cmdb.backends.sqlite_merge): history gains ci.merge, ci.split and
    # ident.remove (an identifier moved off a CI). The table is copied as in version 4.
    """CREATE TABLE history_v9 (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        kind        TEXT NOT NULL CHECK (kind = 'ci.create' OR kind = 'attr.set' OR kind = 'attr.unset'
                           OR kind = 'ident.add' OR kind = 'rel.add' OR kind = 'rel.retire'
                           OR kind = 'ci.retire' OR kind = 'ci.reactivate'
                           OR kind = 'ci.merge' OR kind = 'ci.split' OR kind = 'ident.remove'),
        name        TEXT,
        before      TEXT,
        after       TEXT,
        related_ci  TEXT,
        source_kind TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        report_id   TEXT,
        observed_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL
    )""",
    "INSERT INTO history_v9 SELECT * FROM history ORDER BY seq",
    "DROP TABLE history",
    "ALTER TABLE history_v9 RENAME TO history",
    "CREATE INDEX history_by_ci ON history (ci_id, seq)",
    "CREATE INDEX history_by_related_ci ON history (related_ci, seq) WHERE related_ci IS NOT NULL",
    """CREATE TRIGGER history_no_update BEFORE UPDATE ON history
       BEGIN SELECT RAISE(ABORT, 'history is append-only: its rows cannot be updated'); END""",
    """CREATE TRIGGER history_no_delete BEFORE DELETE ON history
       BEGIN SELECT RAISE(ABORT, 'history is append-only: its rows cannot be deleted'); END""",
    # A CI merged into another is retired with merged_into set; splitting it back clears both.
    "ALTER TABLE ci ADD COLUMN merged_into TEXT",
    # One row per merge or split, with what moved (JSON), so that the operation can be undone.
    """CREATE TABLE ci_operation (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL CHECK (kind = 'merge' OR kind = 'split'),
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        other_ci    TEXT NOT NULL REFERENCES ci (id),
        actor       TEXT NOT NULL,
        reason      TEXT,
        moved       TEXT NOT NULL,
        at          INTEGER NOT NULL,
        undone_by   INTEGER REFERENCES ci_operation (seq)
    )""",
    "CREATE INDEX ci_operation_by_ci ON ci_operation (ci_id)",
    "CREATE INDEX ci_operation_by_other ON ci_operation (other_ci)",

    # Records (cmdb.records, reconcile.records): change records and incidents. Their number is
    # derived from seq (CHG0000001, INC0000001). `drift_ci`/`drift_attribute` are set on records
    # that unmatched drift opened: at most one open record per CI and attribute (deduplication).
    """CREATE TABLE change_record (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        type          TEXT NOT NULL CHECK (type = 'standard' OR type = 'normal' OR type = 'emergency'),
        state         TEXT NOT NULL CHECK (state = 'new' OR state = 'assess' OR state = 'authorize'
                             OR state = 'scheduled' OR state = 'implement' OR state = 'review'
                             OR state = 'closed' OR state = 'cancelled'),
        title         TEXT NOT NULL,
        description   TEXT,
        planned_start INTEGER,
        planned_end   INTEGER,
        expected      TEXT,
        verification  TEXT,
        verified_at   INTEGER,
        origin        TEXT NOT NULL CHECK (origin = 'manual' OR origin = 'drift'),
        drift_ci      TEXT REFERENCES ci (id),
        drift_attribute TEXT,
        created_by    TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        approved_by   TEXT,
        approved_at   INTEGER
    )""",
    "CREATE INDEX change_record_by_state ON change_record (state, planned_end)",
    "CREATE UNIQUE INDEX change_record_open_drift ON change_record (drift_ci, drift_attribute) "
    "WHERE drift_ci IS NOT NULL AND state <> 'closed' AND state <> 'cancelled'",
    """CREATE TABLE incident (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        state         TEXT NOT NULL CHECK (state = 'new' OR state = 'in_progress' OR state = 'resolved'
                             OR state = 'closed'),
        title         TEXT NOT NULL,
        description   TEXT,
        impact        INTEGER NOT NULL CHECK (impact >= 1 AND impact <= 3),
        urgency       INTEGER NOT NULL CHECK (urgency >= 1 AND urgency <= 3),
        priority      INTEGER NOT NULL CHECK (priority >= 1 AND priority <= 5),
        assignee      TEXT,
        resolution    TEXT,
        origin        TEXT NOT NULL CHECK (origin = 'manual' OR origin = 'drift'),
        drift_ci      TEXT REFERENCES ci (id),
        drift_attribute TEXT,
        created_by    TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        resolved_at   INTEGER,
        closed_at     INTEGER
    )""",
    "CREATE INDEX incident_by_state ON incident (state, priority)",
    "CREATE UNIQUE INDEX incident_open_drift ON incident (drift_ci, drift_attribute) "
    "WHERE drift_ci IS NOT NULL AND (state = 'new' OR state = 'in_progress')",
    # Affected CIs and linked drift of either kind of record, keyed by its number.
    """CREATE TABLE record_ci (
        record      TEXT NOT NULL,
        ci_id       TEXT NOT NULL REFERENCES ci (id),
        PRIMARY KEY (record, ci_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX record_ci_by_ci ON record_ci (ci_id)",
    """CREATE TABLE record_drift (
        record      TEXT NOT NULL,
        drift_id    TEXT NOT NULL REFERENCES drift (id),
        role        TEXT NOT NULL CHECK (role = 'evidence' OR role = 'cause'),
        PRIMARY KEY (record, drift_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX record_drift_by_drift ON record_drift (drift_id)",
    # What reconcile decided for each drift event: authorized (by a change), incident,
    # unauthorized_change, or recorded (policy: drift is only recorded); and the record.
    "ALTER TABLE drift ADD COLUMN disposition TEXT",
    "ALTER TABLE drift ADD COLUMN record TEXT",
    # Every event of every record (created, transitioned, drift attached, verified): the records'
    # audit trail, and the webhook outbox (collector.webhooks delivers them in seq order to each
    # endpoint, keeping its cursor in webhook_endpoint).
    """CREATE TABLE record_event (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        record      TEXT NOT NULL,
        event       TEXT NOT NULL,
        actor       TEXT NOT NULL,
        data        TEXT NOT NULL,
        at          INTEGER NOT NULL
    )""",
    "CREATE INDEX record_event_by_record ON record_event (record, seq)",
    """CREATE TRIGGER record_event_no_update BEFORE UPDATE ON record_event
       BEGIN SELECT RAISE(ABORT, 'record events are append-only'); END""",
    """CREATE TABLE webhook_endpoint (
        url             TEXT PRIMARY KEY,
        delivered_seq   INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        dead_letters    INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
)

_V10 = (
    # The reconcile fast path (reconcile.fastpath, cmdb.backends.sqlite_fingerprint). One row per
    # (source, item ref): the digest of what the source last stated about the item and the CI it
    # resolved to, written only when that statement left the CI holding exactly those values from
    # that source (and nothing else). Its stamp says when the source last confirmed the CI as a
    # whole: a no-change report moves it instead of each value's observed_at. The stamp is the
    # row's own `report_id`/`confirmed_at`, or, while `grouped` = 1, its source's stamp in
    # `fingerprint_source`: a report confirming what the last one did moves one row, not one per item.
    # `host_ci` is the host of a dependent item ('' for others); `op_mark` the last ci_operation
    # (merge, split) when the row was written: a later operation on its CI or host voids it.
    """CREATE TABLE fingerprint (
        source_kind  TEXT NOT NULL,
        source_id    TEXT NOT NULL,
        ref          TEXT NOT NULL,
        digest       BLOB NOT NULL,
        ci_id        TEXT NOT NULL REFERENCES ci (id),
        host_ci      TEXT NOT NULL,
        report_id    TEXT,
        confirmed_at INTEGER NOT NULL,
        op_mark      INTEGER NOT NULL,
        grouped      INTEGER NOT NULL CHECK (grouped = 0 OR grouped = 1),
        PRIMARY KEY (source_kind, source_id, ref)
    ) WITHOUT ROWID""",
    # `op_floor`: the last ci_operation already dealt with for this source's rows (when its first
    # row was written, or by the last forget_fingerprints): only newer operations are checked.
    """CREATE TABLE fingerprint_source (
        source_kind  TEXT NOT NULL,
        source_id    TEXT NOT NULL,
        report_id    TEXT,
        confirmed_at INTEGER NOT NULL,
        op_floor     INTEGER NOT NULL,
        PRIMARY KEY (source_kind, source_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX fingerprint_by_ci ON fingerprint (ci_id)",
    "CREATE INDEX fingerprint_by_host ON fingerprint (host_ci) WHERE host_ci <> ''",
    # The digest of what a scope's last complete run stated, set only while the scope's seen-by
    # rows are exactly that (every one with missed = 0): a run stating the same needs no rows read.
    "ALTER TABLE scope ADD COLUMN statement_digest BLOB",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10)
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; return the version found."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise RuntimeError(f"this database has schema version {found}, written by a newer fleetgraph; "
                               f"this one knows up to version {SCHEMA_VERSION}: upgrade fleetgraph")
        for version in range(found, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found
