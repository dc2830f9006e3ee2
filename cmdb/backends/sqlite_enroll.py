"""Agent enrollment on the SQLite store: enrollment tokens and the one transaction that redeems
one and issues the agent's own credential.

The functions take the connection of a transaction the store opened (BEGIN IMMEDIATE, under its
write lock), so a use is counted and the credential stored together or not at all. Redeeming is a
single conditional UPDATE (`uses < max_uses`): two agents racing for the last use cannot both
pass it, whichever process they run in, and the CHECK on the table backs that up.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from cmdb.backends.sqlite_schema import from_micros, to_micros
from cmdb.store import Enrollment, EnrollmentRefused, EnrollmentTokenInfo

_ENROLLMENT_COLUMNS = "name, created_at, expires_at, revoked_at, max_uses, uses"


def add_enrollment_token(conn: sqlite3.Connection, token_hash: str, name: str, max_uses: int,
                         expires_at: datetime | None, now: datetime) -> None:
    if isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1:
        raise ValueError(f"an enrollment token is good for at least one use, not {max_uses!r}")
    taken = conn.execute("SELECT token_hash = ? FROM enrollment_token WHERE token_hash = ? OR "
                         "(name = ? AND revoked_at IS NULL)", (token_hash, token_hash, name)).fetchone()
    if taken is not None:
        what = "this enrollment token is already stored" if taken[0] else \
            f"a live enrollment token is named {name!r}"
        raise ValueError(f"{what}; revoke it first or pick another name")
    conn.execute("INSERT INTO enrollment_token (token_hash, name, created_at, expires_at, max_uses) "
                 "VALUES (?, ?, ?, ?, ?)",
                 (token_hash, name, to_micros(now), None if expires_at is None else to_micros(expires_at),
                  max_uses))


def list_enrollment_tokens(conn: sqlite3.Connection) -> list[EnrollmentTokenInfo]:
    when = lambda v: None if v is None else from_micros(v)  # noqa: E731
    rows = conn.execute(f"SELECT {_ENROLLMENT_COLUMNS} FROM enrollment_token ORDER BY created_at DESC")
    return [EnrollmentTokenInfo(r[0], from_micros(r[1]), when(r[2]), when(r[3]), r[4], r[5]) for r in rows]


def revoke_enrollment_token(conn: sqlite3.Connection, name: str, now: datetime) -> int:
    return conn.execute("UPDATE enrollment_token SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                        (to_micros(now), name)).rowcount


def enroll(conn: sqlite3.Connection, enrollment_hash: str, now: datetime, token_hash: str, name: str,
           role: str, source_id: str) -> Enrollment:
    """Redeem one use and store the bound credential; raise (the caller rolls back) otherwise."""
    if not source_id:
        raise ValueError("an enrolled credential must be bound to a source id")
    now_us = to_micros(now)
    redeemed = conn.execute(
        "UPDATE enrollment_token SET uses = uses + 1, last_used_at = ? WHERE token_hash = ? "
        "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND uses < max_uses "
        "RETURNING name", (now_us, enrollment_hash, now_us)).fetchone()
    if redeemed is None:
        raise _refusal(conn, enrollment_hash, now_us)
    revoked = conn.execute("UPDATE token SET revoked_at = ? WHERE source_id = ? AND revoked_at IS NULL",
                           (now_us, source_id)).rowcount
    taken = conn.execute("SELECT token_hash = ? FROM token WHERE token_hash = ? OR "
                         "(name = ? AND revoked_at IS NULL)", (token_hash, token_hash, name)).fetchone()
    if taken is not None:
        what = "this token is already stored" if taken[0] else f"a live token is named {name!r}"
        raise ValueError(f"{what}; revoke it first ('fleetgraph token revoke --name {name}')")
    conn.execute("INSERT INTO token (token_hash, name, role, created_at, source_id) VALUES (?, ?, ?, ?, ?)",
                 (token_hash, name, role, now_us, source_id))
    return Enrollment(enrollment_token=redeemed[0], revoked_previous=revoked)


def _refusal(conn: sqlite3.Connection, enrollment_hash: str, now_us: int) -> EnrollmentRefused:
    row = conn.execute("SELECT name, revoked_at, expires_at, uses, max_uses FROM enrollment_token "
                       "WHERE token_hash = ?", (enrollment_hash,)).fetchone()
    if row is None:
        return EnrollmentRefused("unknown")
    name, revoked_at, expires_at, uses, max_uses = row
    if revoked_at is not None:
        return EnrollmentRefused("revoked", name)
    if expires_at is not None and expires_at <= now_us:
        return EnrollmentRefused("expired", name)
    return EnrollmentRefused("used_up", name)
