"""Agent enrollment: one-time enrollment tokens (hashed, expiring, revocable, use-counted) and the
credential an enrollment issues: an API token bound to the agent's source id."""

from __future__ import annotations

import threading

import pytest

from cmdb.store import Enrollment, EnrollmentRefused, TokenPrincipal
from tests.contract.fleet import at

AGENT_A = "4b0f5e3c-3f7a-4c55-9a59-6f4c6b1f3a01"
AGENT_B = "0c7d9a52-8f1e-4f0a-b6a2-2d8f6c0e9b02"


def _enroll(store, enrollment_hash: str, credential_hash: str, source_id: str = AGENT_A, minutes: float = 0):
    return store.enroll(enrollment_hash, at(minutes), credential_hash, f"agent-{source_id}", "agent", source_id)


def test_enrolling_issues_a_credential_bound_to_the_source(store):
    store.add_enrollment_token("enroll-1", "batch-1", max_uses=2, expires_at=at(60))
    assert _enroll(store, "enroll-1", "cred-a") == Enrollment("batch-1", revoked_previous=0)
    assert store.token_principal("cred-a", at(1)) == TokenPrincipal(f"agent-{AGENT_A}", "agent", AGENT_A)
    assert store.token_role("cred-a", at(1)) == (f"agent-{AGENT_A}", "agent")
    (info,) = store.list_tokens()
    assert (info.name, info.role, info.source_id, info.expires_at) == (f"agent-{AGENT_A}", "agent", AGENT_A, None)
    (batch,) = store.list_enrollment_tokens()
    assert (batch.name, batch.max_uses, batch.uses, batch.expires_at, batch.revoked_at) == \
        ("batch-1", 2, 1, at(60), None)


def test_unbound_tokens_have_no_source(store):
    store.add_token("hash-scanner", "scanner", "agent")
    assert store.token_principal("hash-scanner", at(0)) == TokenPrincipal("scanner", "agent", None)
    assert store.list_tokens()[0].source_id is None
    assert store.token_principal("hash-unknown", at(0)) is None


def test_a_single_use_token_enrolls_once(store):
    store.add_enrollment_token("enroll-1", "one-shot")
    _enroll(store, "enroll-1", "cred-a")
    with pytest.raises(EnrollmentRefused) as refused:
        _enroll(store, "enroll-1", "cred-b", AGENT_B)
    assert (refused.value.reason, refused.value.name) == ("used_up", "one-shot")
    assert store.token_principal("cred-b", at(0)) is None
    assert [t.source_id for t in store.list_tokens()] == [AGENT_A]
    assert store.list_enrollment_tokens()[0].uses == 1


@pytest.mark.parametrize("setup,reason", [
    (lambda s: None, "unknown"),
    (lambda s: s.add_enrollment_token("enroll-1", "old", expires_at=at(10)), "expired"),
    (lambda s: (s.add_enrollment_token("enroll-1", "gone"), s.revoke_enrollment_token("gone")), "revoked"),
])
def test_a_refused_enrollment_stores_nothing(store, setup, reason):
    setup(store)
    with pytest.raises(EnrollmentRefused) as refused:
        _enroll(store, "enroll-1", "cred-a", minutes=10)
    assert refused.value.reason == reason
    assert store.list_tokens() == []
    assert all(t.uses == 0 for t in store.list_enrollment_tokens())


def test_re_enrolling_rotates_the_credential(store):
    store.add_enrollment_token("enroll-1", "first")
    store.add_enrollment_token("enroll-2", "second")
    _enroll(store, "enroll-1", "cred-old")
    assert _enroll(store, "enroll-2", "cred-new", minutes=5).revoked_previous == 1
    assert store.token_principal("cred-old", at(6)) is None
    assert store.token_principal("cred-new", at(6)).source_id == AGENT_A
    live = [t for t in store.list_tokens() if t.revoked_at is None]
    assert [(t.name, t.source_id) for t in live] == [(f"agent-{AGENT_A}", AGENT_A)]


def test_a_name_clash_rolls_the_enrollment_back(store):
    store.add_token("hash-manual", f"agent-{AGENT_A}", "reader")  # unbound, but holds the name
    store.add_enrollment_token("enroll-1", "batch")
    with pytest.raises(ValueError, match=f"agent-{AGENT_A}"):
        _enroll(store, "enroll-1", "cred-a")
    assert store.list_enrollment_tokens()[0].uses == 0  # the use was not spent
    assert store.token_principal("cred-a", at(0)) is None


def test_enrollment_token_names_are_unique_among_live_ones(store):
    store.add_enrollment_token("enroll-1", "batch")
    with pytest.raises(ValueError, match="batch"):
        store.add_enrollment_token("enroll-2", "batch")
    with pytest.raises(ValueError):
        store.add_enrollment_token("enroll-1", "other")
    with pytest.raises(ValueError):
        store.add_enrollment_token("enroll-3", "zero", max_uses=0)
    assert store.revoke_enrollment_token("batch") == 1
    assert store.revoke_enrollment_token("batch") == 0
    store.add_enrollment_token("enroll-2", "batch")  # reusable once revoked
    assert [(t.name, t.revoked_at is None) for t in store.list_enrollment_tokens()] == \
        [("batch", True), ("batch", False)]


def test_enrollment_tokens_are_not_api_tokens(store):
    store.add_enrollment_token("enroll-1", "batch")
    assert store.token_principal("enroll-1", at(0)) is None
    store.add_token("api-1", "ops", "admin")
    with pytest.raises(EnrollmentRefused):
        _enroll(store, "api-1", "cred-a")


def test_racing_for_the_last_use_exactly_one_wins(store):
    store.add_enrollment_token("enroll-1", "one-shot")
    agents = [f"00000000-0000-4000-8000-{n:012d}" for n in range(8)]
    barrier = threading.Barrier(len(agents))
    outcomes: dict[str, object] = {}

    def race(agent_id: str) -> None:
        barrier.wait()
        try:
            outcomes[agent_id] = _enroll(store, "enroll-1", f"cred-{agent_id}", agent_id)
        except EnrollmentRefused as exc:
            outcomes[agent_id] = exc.reason

    threads = [threading.Thread(target=race, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [a for a, o in outcomes.items() if isinstance(o, Enrollment)]
    assert len(winners) == 1 and sorted(o for o in outcomes.values() if isinstance(o, str)) == ["used_up"] * 7
    assert [t.source_id for t in store.list_tokens()] == winners
    assert store.list_enrollment_tokens()[0].uses == 1


def test_enrollment_survives_a_reopen(backend, store, tmp_path):
    store.add_enrollment_token("enroll-1", "batch", max_uses=3)
    _enroll(store, "enroll-1", "cred-a")
    store.close()
    reopened = backend.open(tmp_path)
    try:
        assert reopened.token_principal("cred-a", at(0)).source_id == AGENT_A
        assert reopened.list_enrollment_tokens()[0].uses == 1
    finally:
        reopened.close()
