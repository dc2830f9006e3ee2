"""Identification on every recorded real device: the 16 corpora walks and the 116 snmpsim-data
walks, against tests/fixtures/snmp/identification/expected.json; the corpora's chassis rows
(model, serial, firmware) against the corpora's own ground truth."""

from __future__ import annotations

import json
from functools import lru_cache

import pytest

from discovery.snmp.device import read_device
from discovery.snmp.identify import RuleError, default_enterprises, default_rules, identify, parse_rules
from discovery.snmp.system import SystemInfo
from tests.unit.discovery.snmp.conftest import (
    CORPORA,
    FIXTURES,
    corpora_devices,
    corpora_expected,
    snmpsim_data_devices,
    snmpsim_data_path,
)
from tests.unit.discovery.snmp.snmprec import IDENTIFICATION_PREFIXES, read_snmprec

EXPECTED = json.loads((FIXTURES / "identification" / "expected.json").read_text())["devices"]


@lru_cache(maxsize=None)
def identified(key: str):
    source, _, name = key.partition("/")
    path = CORPORA / "snmpsim" / f"{name}.snmprec" if source == "corpora" else snmpsim_data_path(name)
    return read_device(read_snmprec(path, IDENTIFICATION_PREFIXES))


ALL = [f"corpora/{n}" for n in corpora_devices()] + [f"snmpsim-data/{n}" for n in snmpsim_data_devices()]


def test_every_recording_has_an_expectation():
    assert len(ALL) == 132
    assert sorted(ALL) == sorted(EXPECTED), "a recording without an expectation (or the reverse)"


@pytest.mark.parametrize("key", ALL)
def test_identification(key):
    identity = identified(key).identity
    got = {"vendor": identity.vendor, "type": identity.device_type, "os": identity.os,
           "os_version": identity.os_version, "model": identity.model, "serial": identity.serial,
           "class": identity.ci_class, "rule": identity.rule}
    assert got == EXPECTED[key]


@pytest.mark.parametrize("community", [c for c in corpora_devices() if c != "force10s"])
def test_chassis_matches_corpora_ground_truth(community):
    expected = corpora_expected(community)
    identity = identified(f"corpora/{community}").identity
    if expected["entity_chassis"]:
        chassis = expected["entity_chassis"][0]
        assert identity.serial == (chassis["entPhysicalSerialNum"] or None)
        assert identity.firmware == (chassis["entPhysicalFirmwareRev"] or None)
        assert identity.software_version == (chassis["entPhysicalSoftwareRev"] or None)
        assert identity.model in (chassis["entPhysicalModelName"] or None, "S5720-36C-EI-AC")
    else:
        assert identity.firmware is None
    number = int(expected["system"]["sysObjectID"].split(".")[6])
    assert identity.enterprise_number == number
    assert number in default_enterprises(), f"enterprise {number} missing from data/enterprises.tsv"


def test_force10_stack_units_give_glpis_chassis():
    expected = corpora_expected("force10s")["chassis_summary"][0]
    identity = identified("corpora/force10s").identity
    assert (identity.vendor, identity.model, identity.serial, identity.firmware) == (
        "Dell", expected["MODEL"], expected["SERIAL"], expected["FIRMWARE"])


def test_every_enterprise_of_the_recordings_is_listed():
    missing = {identified(k).system.enterprise_number for k in ALL} - set(default_enterprises()) - {None, 0}
    assert not missing


def test_rules_file_loads_and_ids_are_unique():
    rules = default_rules()
    assert len({r.id for r in rules}) == len(rules) > 40


@pytest.mark.parametrize("entry, words", [
    ({"id": "x", "object_id": ["1.3"], "type": "toaster"}, "type 'toaster'"),
    ({"id": "x", "descr": "(unclosed"}, "not a valid regular expression"),
    ({"id": "x"}, "needs object_id, descr or when"),
    ({"id": "x", "when": ["magic"]}, "unknown trait"),
    ({"id": "x", "object_id": ["1.3"], "colour": "red"}, "unknown key"),
])
def test_bad_rules_are_refused_with_the_reason(entry, words):
    with pytest.raises(RuleError, match=words):
        parse_rules({"rule": [entry]})


def test_an_unknown_enterprise_still_identifies_and_says_so():
    identity = identify(SystemInfo(descr="Widget OS 1.0", object_id="1.3.6.1.4.1.999999.1"))
    assert identity.vendor is None and identity.enterprise_number == 999999
    assert identity.notes == ("enterprise 999999 is not in data/enterprises.tsv",)


def test_hostile_sysdescr_does_not_blow_up_the_rules():
    identity = identify(SystemInfo(descr="Cisco IOS " + "A" * 100_000, object_id="1.3.6.1.4.1.9.1.1"))
    assert identity.vendor == "Cisco" and identity.os == "Cisco IOS"
