"""API tokens: stored hashed, with a role, an optional expiry, and revocation."""

from __future__ import annotations

import pytest

from tests.contract.fleet import at


def test_a_valid_token_has_its_name_and_role(store):
    store.add_token("hash-reader", "dashboards", "reader")
    store.add_token("hash-admin", "ops", "admin", expires_at=at(60))
    assert store.token_role("hash-reader", at(10_000)) == ("dashboards", "reader")
    assert store.token_role("hash-admin", at(59)) == ("ops", "admin")
    assert store.token_role("hash-unknown", at(0)) is None


def test_an_expired_token_is_refused(store):
    store.add_token("hash-admin", "ops", "admin", expires_at=at(60))
    assert store.token_role("hash-admin", at(60)) is None
    assert store.token_role("hash-admin", at(61)) is None


def test_a_revoked_token_is_refused_and_its_name_can_be_reused(store):
    store.add_token("hash-1", "ci-bot", "auditor")
    assert store.revoke_token("ci-bot") == 1
    assert store.token_role("hash-1", at(0)) is None
    assert store.revoke_token("ci-bot") == 0
    assert store.revoke_token("nobody") == 0
    store.add_token("hash-2", "ci-bot", "auditor")  # rotated under the same name
    assert store.token_role("hash-2", at(0)) == ("ci-bot", "auditor")
    assert store.token_role("hash-1", at(0)) is None


def test_live_token_names_and_hashes_are_unique(store):
    store.add_token("hash-1", "ci-bot", "auditor")
    with pytest.raises(ValueError, match="ci-bot"):
        store.add_token("hash-2", "ci-bot", "reader")
    with pytest.raises(ValueError):
        store.add_token("hash-1", "other", "reader")
    assert store.token_role("hash-1", at(0)) == ("ci-bot", "auditor")
    assert store.token_role("hash-2", at(0)) is None
