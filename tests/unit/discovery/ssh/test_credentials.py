"""SSH credential sets from the credentials file: valid ones parse, bad ones are refused with the
entry and the key named, and no secret ever shows in a repr or an error."""

from __future__ import annotations

import tomllib

import pytest

from discovery.ssh.credentials import CredentialError, SshCredential, parse_ssh_credentials

SECRET = "s3cr3t-Pa55!word"


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "id_ed25519"
    path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot checked here\n-----END OPENSSH PRIVATE KEY-----\n")
    path.chmod(0o600)
    return path


def test_a_credentials_file_parses_in_order(tmp_path, key_file):
    text = f"""
[[ssh]]
name = "inventory-key"
username = "inventory"
key_file = "{key_file.name}"

[[ssh]]
name = "legacy"
username = "audit"
password = "{SECRET}"
"""
    creds = parse_ssh_credentials(tomllib.loads(text)["ssh"], base_dir=tmp_path)
    assert [c.name for c in creds] == ["inventory-key", "legacy"]
    assert creds[0].key_file == key_file and creds[0].password is None
    assert creds[1].password == SECRET and creds[1].key_file is None
    assert creds[1].label == "'legacy' (audit, password)"


def test_secrets_never_show_in_repr_str_or_label(key_file):
    cred = SshCredential("ops", password=SECRET, key_file=key_file, key_passphrase=SECRET + "2", name="both")
    for text in (repr(cred), str(cred), cred.label, repr([cred])):
        assert SECRET not in text
    assert cred.label == "'both' (ops, key+password)"


@pytest.mark.parametrize(("entry", "message"), [
    ({"username": "a"}, "give a password or a key_file"),
    ({"password": SECRET}, "username is missing"),
    ({"username": "", "password": SECRET}, "username is empty"),
    ({"username": 42, "password": SECRET}, "username must be a string, not int"),
    ({"username": "a", "password": ""}, "password is empty"),
    ({"username": "a", "password": ["x"]}, "password must be a string, not list"),
    ({"username": "a", "password": SECRET + "\n"}, "password contains a control character (a trailing newline?)"),
    ({"username": "a\nInjected: log line", "password": SECRET}, "username contains a control character"),
    ({"username": "a" * 300, "password": SECRET}, "username is longer than 256 characters"),
    ({"username": "a", "password": "x" * 2000}, "password is longer than 1024 characters"),
    ({"username": "a", "password": SECRET, "key_passphrase": SECRET}, "key_passphrase without a key_file"),
    ({"username": "a", "pasword": SECRET}, "unknown key(s) 'pasword'"),
    ({"username": "a", "password": SECRET, "name": ""}, "name is empty"),
    ("not a table", "must be a table, not str"),
])
def test_bad_entries_are_refused_naming_the_key_not_the_secret(entry, message):
    with pytest.raises(CredentialError) as err:
        parse_ssh_credentials([entry])
    assert message in str(err.value)
    assert "ssh credential #1" in str(err.value) or "ssh credential '" in str(err.value)
    assert SECRET not in str(err.value)


def test_a_named_entry_is_named_in_its_error():
    with pytest.raises(CredentialError, match=r"^ssh credential 'ops': give a password or a key_file"):
        parse_ssh_credentials([{"name": "ops", "username": "a"}])


@pytest.mark.parametrize(("entries", "message"), [
    ([], "no ssh credentials"),
    ({"username": "a"}, "must be a list of tables"),
    ("ssh", "must be a list of tables"),
    ([{"username": "a", "password": "x"}] * 65, "at most 64"),
    ([{"name": "x", "username": "a", "password": "p"}, {"name": "x", "username": "b", "password": "q"}],
     "two ssh credentials are named 'x'"),
])
def test_bad_lists_are_refused(entries, message):
    with pytest.raises(CredentialError, match=message):
        parse_ssh_credentials(entries)


def test_key_files_must_exist_be_small_regular_and_owner_only(tmp_path, key_file):
    def parse(path):
        return parse_ssh_credentials([{"username": "a", "key_file": str(path)}])

    with pytest.raises(CredentialError, match="does not exist"):
        parse(tmp_path / "missing")
    with pytest.raises(CredentialError, match="is not a regular file"):
        parse(tmp_path)
    key_file.chmod(0o644)
    with pytest.raises(CredentialError, match=r"readable by others \(mode 0644\); run: chmod 600"):
        parse(key_file)
    key_file.chmod(0o600)
    key_file.write_bytes(b"x" * 70_000)
    with pytest.raises(CredentialError, match="far smaller"):
        parse(key_file)
    # the check can be deferred (a credentials file read on another machine than the scanner's)
    assert parse_ssh_credentials([{"username": "a", "key_file": "/nowhere"}], check_key_files=False)
