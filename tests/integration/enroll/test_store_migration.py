"""Schema version 3 (enrollment) applied to a store written by version 2: its tokens keep working,
unbound."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from cmdb.backends.sqlite import SQLiteStore
from cmdb.backends.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from cmdb.store import TokenPrincipal


def test_a_version_2_store_upgrades_in_place(tmp_path):
    path = tmp_path / "cmdb.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    for statement in (s for version in MIGRATIONS[:2] for s in version):
        conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO token (token_hash, name, role, created_at) VALUES ('h1', 'scanner', 'agent', 0)")
    conn.close()

    store = SQLiteStore(path)
    try:
        now = datetime.now(UTC)
        assert store.token_principal("h1", now) == TokenPrincipal("scanner", "agent", None)
        store.add_enrollment_token("e1", "batch")
        store.enroll("e1", now, "h2", "agent-x", "agent", "4b0f5e3c-3f7a-4c55-9a59-6f4c6b1f3a01")
        assert store.token_principal("h2", now).source_id == "4b0f5e3c-3f7a-4c55-9a59-6f4c6b1f3a01"
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    conn.close()
