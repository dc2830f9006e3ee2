"""Identification rules as data: key extraction, normalisation and the junk denylist (no store)."""

from __future__ import annotations

import pytest

from cmdb.model import CI_CLASSES
from cmdb.report import Item
from reconcile.rules import (
    BARRED_FROM_CREATING,
    RULES,
    WEAK_KINDS,
    fqdn_keys,
    hostname_keys,
    identity_mac_keys,
    ip_address_keys,
    manufacturer_serial_keys,
    may_create,
    normalise_manufacturer,
    rules_for,
    system_uuid_keys,
    uuid_byte_swapped,
)

JUNK_SERIALS = ["To Be Filled By O.E.M.", "To be filled by O.E.M.", "System Serial Number", "Default string",
                "Not Specified", "Not Available", "None", "N/A", "  ", "00000000", "Chassis Serial Number",
                "0123456789", "XXXXXXXXXX", "........", "Base Board Serial Number", "\x00\x00"]
JUNK_UUIDS = ["00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
              "03000200-0400-0500-0006-000700080009", "Not Settable", "11111111-1111-1111-1111-111111111111"]
JUNK_MACS = ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "02:42:ac:11:00:02", "02:42:7f:3a:9b:01",
             "fe:54:00:12:34:56", "0a:00:27:00:00:00", "not-a-mac"]


def computer(identifiers: dict, manufacturer: str | None = "Dell Inc.") -> Item:
    attributes = {} if manufacturer is None else {"manufacturer": manufacturer}
    return Item(class_="Computer", ref="computer", identifiers=identifiers, attributes=attributes)


@pytest.mark.parametrize("serial", JUNK_SERIALS)
def test_junk_serial_gives_no_key(serial):
    assert manufacturer_serial_keys(computer({"serial": serial})) == ()


@pytest.mark.parametrize("manufacturer",
                         [None, "To Be Filled By O.E.M.", "System manufacturer", "Default string"])
def test_serial_without_known_manufacturer_gives_no_key(manufacturer):
    assert manufacturer_serial_keys(computer({"serial": "CZJ1020BTL"}, manufacturer)) == ()


@pytest.mark.parametrize("spellings", [
    ("Dell Inc.", "DELL", "dell", "Dell Inc"),
    ("HP", "Hewlett-Packard", "HPE", "Hewlett Packard Enterprise"),
    ("LENOVO", "Lenovo"),
    ("Supermicro", "Super Micro Computer, Inc."),
    ("ASUSTeK COMPUTER INC.", "ASUSTeK Computer Inc."),
])
def test_manufacturer_spellings_fold_to_one_key(spellings):
    keys = {manufacturer_serial_keys(computer({"serial": " czj1020btl "}, m)) for m in spellings}
    assert len(keys) == 1 and list(keys)[0][0].endswith("|CZJ1020BTL")


def test_manufacturer_serial_key_shape():
    item = computer({"serial": "VMware-42 1a  2b"}, "VMware, Inc.")
    assert manufacturer_serial_keys(item) == ("vmware|VMWARE-42 1A 2B",)
    assert normalise_manufacturer("Dell Inc.") == "dell"


@pytest.mark.parametrize("uuid", JUNK_UUIDS)
def test_junk_uuid_gives_no_key(uuid):
    assert system_uuid_keys(computer({"system_uuid": uuid})) == ()


def test_uuid_key_is_canonical():
    assert system_uuid_keys(computer({"system_uuid": "4C4C4544-0042-3510-8052-B4C04F4D3732"})) == (
        "4c4c4544-0042-3510-8052-b4c04f4d3732",)


@pytest.mark.parametrize("mac", JUNK_MACS)
def test_virtual_and_null_macs_never_identify(mac):
    assert identity_mac_keys("mac")(computer({"mac": [mac]})) == ()


def test_identity_macs_are_canonical_and_deduplicated():
    item = computer({"mac": ["00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e", "02:42:ac:11:00:02",
                             "b4:96:91:00:00:01"]})
    assert identity_mac_keys("mac")(item) == ("00:1a:2b:3c:4d:5e", "b4:96:91:00:00:01")


@pytest.mark.parametrize("name", ["localhost", "localhost.localdomain", "LOCALHOST", "(none)", "None", "  "])
def test_junk_host_names_never_identify(name):
    item = computer({"fqdn": name, "hostname": name})
    assert fqdn_keys(item) == () and hostname_keys(item) == ()


def test_fqdn_needs_a_dot_and_is_case_folded():
    assert fqdn_keys(computer({"fqdn": "Web01.Example.COM."})) == ("web01.example.com",)
    assert fqdn_keys(computer({"fqdn": "web01"})) == ()


def test_ip_addresses_are_canonical():
    item = Item(class_="IPAddress", ref="ip", identifiers={"address": "FE80:0:0:0::1"})
    assert ip_address_keys(item) == ("fe80::1",)


def test_computer_rules_are_ordered_strongest_first():
    assert [r.name for r in rules_for("Computer")] == [
        "manufacturer+serial", "system_uuid", "mac", "fqdn", "hostname", "agent_id"]
    assert [r.exclusive for r in rules_for("Computer")] == [True, True, False, False, False, False]


def test_every_class_has_rules_for_every_declared_kind():
    for name, ci_class in CI_CLASSES.items():
        assert {r.kind for r in RULES[name]} == set(ci_class.identifier_kinds), name
        if ci_class.is_dependent:
            assert not any(r.exclusive for r in RULES[name]), name


# -- weak kinds, other spellings, sources barred from creating ---------------------------------

def test_uuid_byte_swap_reverses_the_first_three_fields_only():
    assert uuid_byte_swapped("4c4c4544-0039-3510-8048-b4c04f4a4b31") == ("44454c4c-3900-1035-8048-b4c04f4a4b31",)
    assert uuid_byte_swapped("44454c4c-3900-1035-8048-b4c04f4a4b31") == ("4c4c4544-0039-3510-8048-b4c04f4a4b31",)
    assert uuid_byte_swapped("abcdcdab-1212-3434-8048-b4c04f4a4b31") == ()  # reads the same both ways
    assert uuid_byte_swapped("<host id>/not-a-uuid") == ()  # a scoped or odd value has no other spelling


def test_the_system_uuid_rule_looks_up_both_byte_orders_of_the_cleaned_value():
    (rule,) = [r for r in rules_for("Computer") if r.kind == "system_uuid"]
    (value,) = rule.key_values(computer({"system_uuid": "44454C4C-3900-1035-8048-B4C04F4A4B31"}))
    assert rule.equivalents is not None and rule.equivalents(value) == ("4c4c4544-0039-3510-8048-b4c04f4a4b31",)
    assert all(r.equivalents is None for r in rules_for("Computer") if r.kind != "system_uuid")


def test_names_are_the_weak_kinds_of_a_computer_and_strong_keys_are_not():
    weak = {r.kind for r in rules_for("Computer") if r.weak}
    assert weak == WEAK_KINDS["Computer"] == {"fqdn", "hostname"}
    assert not any(r.weak for r in rules_for("Computer") if r.exclusive)
    for ci_class, kinds in WEAK_KINDS.items():  # the table and the rules agree, and name real kinds
        assert {r.kind for r in rules_for(ci_class) if r.weak} == kinds
    assert not any(r.weak for name, rules in RULES.items() if CI_CLASSES[name].is_dependent for r in rules)


@pytest.mark.parametrize("source_kind", ["agent", "ssh", "snmp", "ocs", "fusion"])
def test_credentialed_sources_may_create_every_class(source_kind):
    assert all(may_create(source_kind, name) for name in CI_CLASSES)


def test_nmap_may_not_create_hosts_but_may_create_what_hangs_off_a_host_it_matched():
    assert BARRED_FROM_CREATING["nmap"] >= {"Computer", "NetworkDevice"}
    assert not may_create("nmap", "Computer") and not may_create("nmap", "NetworkDevice")
    assert may_create("nmap", "IPAddress") and may_create("nmap", "Service")
    assert not any(CI_CLASSES[name].is_dependent for name in BARRED_FROM_CREATING["nmap"])
