"""Credential dicts (from the credentials file) into SnmpCredential, with errors that say what
to fix, and secrets that never show in repr, str or messages."""

from __future__ import annotations

import pytest

from discovery.snmp.credentials import (
    CredentialError,
    SnmpCredential,
    parse_snmp_credential,
    parse_snmp_credentials,
)

V3 = {"version": "3", "user": "labv3", "auth_protocol": "SHA", "auth_key": "labAuthPass123",
      "priv_protocol": "AES", "priv_key": "labPrivPass123"}


def test_parses_each_version_in_order():
    creds = parse_snmp_credentials([{"version": "2c", "community": "public"}, {"version": "1", "community": "c1"}, V3])
    assert [c.version for c in creds] == ["2c", "1", "3"]
    assert creds[2].security_level == "authPriv" and creds[2].priv_protocol == "AES"


@pytest.mark.parametrize("spelling, expected", [("sha256", "SHA-256"), ("SHA-512", "SHA-512"), ("md5", "MD5"),
                                                ("sha_224", "SHA-224")])
def test_protocol_spellings_fold(spelling, expected):
    assert parse_snmp_credential({**V3, "auth_protocol": spelling}).auth_protocol == expected


def test_defaults_sha_and_aes_when_only_keys_are_given():
    cred = parse_snmp_credential({"version": "3", "user": "u", "auth_key": "12345678", "priv_key": "abcdefgh"})
    assert (cred.auth_protocol, cred.priv_protocol) == ("SHA", "AES")


@pytest.mark.parametrize("entry, words", [
    ({"community": "x"}, "missing key 'version'"),
    ({"version": "4", "community": "x"}, "not an SNMP version"),
    ({"version": "2c"}, "needs a community"),
    ({"version": "3"}, "needs a user name"),
    ({**V3, "auth_protocol": "SHA-1024"}, "unknown auth_protocol 'SHA-1024'"),
    ({**V3, "priv_protocol": "ROT13"}, "unknown priv_protocol 'ROT13'"),
    ({**V3, "auth_key": "short"}, "at least 8"),
    ({**V3, "priv_key": "1234567"}, "at least 8"),
    ({"version": "3", "user": "u", "priv_key": "abcdefgh"}, "needs an authentication key"),
    ({**V3, "community": "public"}, "does not use a community"),
    ({"version": "2c", "community": "public", "user": "u"}, "takes a community only"),
    ({"version": "2c", "community": "x" * 300}, "longer than 256"),
    ({"version": "2c", "community": "pub\nlic"}, "control characters"),
    ({"version": "2c", "community": ["a"]}, "must be a string"),
    ({"version": "2c", "community": "p", "comunity": "typo"}, "unknown key"),
])
def test_bad_entries_name_the_problem(entry, words):
    with pytest.raises(CredentialError, match=words) as info:
        parse_snmp_credential(entry, "creds.toml [[snmp]] #3")
    assert str(info.value).startswith("creds.toml [[snmp]] #3: ")


def test_not_a_list_or_not_a_table():
    with pytest.raises(CredentialError, match="must be a list"):
        parse_snmp_credentials({"version": "2c"})  # type: ignore[arg-type]
    with pytest.raises(CredentialError, match="expected a table"):
        parse_snmp_credentials(["public"])  # type: ignore[list-item]


def test_secrets_never_show():
    cred = parse_snmp_credential({**V3, "name": "core"})
    community = SnmpCredential("2c", community="s3cr3tcommunity")
    for text in (repr(cred), str(cred), cred.describe(), repr(community), str(community)):
        assert "labAuthPass123" not in text and "labPrivPass123" not in text and "s3cr3t" not in text
    assert cred.describe() == "v3 user 'labv3' 'core' SHA/AES"
