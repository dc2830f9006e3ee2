"""Reconcile against the real SQLite store: identification, merge, idempotence, scoping."""

from __future__ import annotations

import pytest

from cmdb.changes import ChangeSet, Provenance
from cmdb.report import Item
from reconcile.dryrun import describe
from reconcile.engine import compute_changes, reconcile_report
from tests.unit.reconcile.reports import DEFAULT_ATTRIBUTES, T0, again, machine_report
from tests.unit.reconcile.test_rules import JUNK_SERIALS, JUNK_UUIDS

NO_PACKAGES: dict[str, str] = {}


def ids_of(store, ci_class: str) -> list[str]:
    return [c.ci_id for c in store.list_cis(ci_class, limit=10_000)]


def history_size(store) -> int:
    cis = store.list_cis(state=None, limit=100_000)
    return sum(len(store.history(c.ci_id, limit=1_000_000)) for c in cis)


def test_first_report_builds_the_graph(store):
    report = machine_report()
    changes = reconcile_report(store, report)
    assert store.count_cis() == {"Computer": 1, "OperatingSystem": 1, "Disk": 1, "Interface": 1,
                                 "IPAddress": 1, "Software": 2, "SoftwareInstall": 2}
    assert sum(store.count_relationships().values()) == len(report.relations) == 8
    assert len(changes.created) == len(report.items) == len(changes.seen)
    assert changes.provenance.report_id == report.report_id
    assert changes.provenance.observed_at == report.collected_at
    assert changes.provenance.source_kind == "agent" and changes.provenance.source_id == "agent-01"
    computer = store.get_ci(changes.ci_of_ref["computer"])
    assert computer.attributes["memory_bytes"].value == 68719476736
    assert {(i.kind, i.value) for i in computer.identifiers} == {
        ("serial", "dell|SN-0001"), ("system_uuid", "4c4c4544-0042-3510-8052-b4c04f4d3732"),
        ("mac", "00:1a:2b:3c:4d:5e"), ("fqdn", "web01.example.com"), ("hostname", "web01"),
        ("agent_id", "agent-01")}
    assert not changes.conflicts and not changes.skipped


def test_a_second_identical_report_is_an_empty_change_set(store):
    first = machine_report()
    reconcile_report(store, first)
    rows = history_size(store)
    changes = reconcile_report(store, again(first))
    assert changes.is_empty, changes.summary()
    assert history_size(store) == rows
    assert len(changes.seen) == len(first.items)
    assert len(changes.relations_seen) == len(first.relations)
    assert len(changes.confirmed) == sum(len(i.attributes) for i in first.items)
    assert not changes.conflicts


def test_two_reports_of_one_machine_make_one_computer(store):
    reconcile_report(store, machine_report())
    second = machine_report(attributes={"hostname": "web01-renamed", "manufacturer": "DELL"},
                            interfaces={"eth0": ["10.0.0.5"], "eth1": ["192.168.1.7"]})
    changes = reconcile_report(store, second)
    assert len(ids_of(store, "Computer")) == 1
    assert changes.ci_of_ref["computer"] not in {c.ci_id for c in changes.created}
    assert {c.ci_class for c in changes.created} == {"Interface", "IPAddress"}


def test_an_attribute_change_is_one_change_with_before_after_and_provenance(store):
    reconcile_report(store, machine_report())
    attributes = dict(DEFAULT_ATTRIBUTES, memory_bytes=137438953472)
    report = machine_report(attributes=attributes)
    changes = reconcile_report(store, report)
    computer_id = changes.ci_of_ref["computer"]
    assert [(a.ci_id, a.name, a.before, a.after) for a in changes.attributes] == [
        (computer_id, "memory_bytes", 68719476736, 137438953472)]
    assert not (changes.created or changes.identifiers or changes.relations)
    row = store.history(computer_id, "memory_bytes")[-1]
    assert (row.before, row.after) == (68719476736, 137438953472)
    assert row.provenance.report_id == report.report_id and row.provenance.observed_at == report.collected_at
    assert store.get_ci(computer_id).attributes["memory_bytes"].provenance.report_id == report.report_id


def test_numbers_compare_as_json_values(store):
    reconcile_report(store, machine_report())
    attributes = dict(DEFAULT_ATTRIBUTES, memory_bytes=68719476736.0)
    assert compute_changes(store, machine_report(attributes=attributes)).is_empty


FULL_ATTRIBUTES = {"hostname": "web01", "manufacturer": "Dell Inc.", "memory_bytes": 1024, "cpu_count": 16}


@pytest.mark.parametrize("status, mode, removed", [
    ("ok", "full", True), ("failed", "full", False), ("not_applicable", "full", False),
    ("ok", "delta", False)])
def test_an_omitted_attribute_is_removed_only_after_a_complete_full_run(store, status, mode, removed):
    reconcile_report(store, machine_report(attributes=FULL_ATTRIBUTES))
    without_cpu = {k: v for k, v in FULL_ATTRIBUTES.items() if k != "cpu_count"}
    report = machine_report(attributes=without_cpu, statuses={"hardware": status}, mode=mode)
    changes = compute_changes(store, report)
    expected = [("cpu_count", 16, None)] if removed else []
    assert [(a.name, a.before, a.after) for a in changes.attributes] == expected


def test_an_attribute_another_source_kind_set_is_not_removed(store):
    reconcile_report(store, machine_report(attributes=FULL_ATTRIBUTES))
    ssh_attributes = dict(FULL_ATTRIBUTES, kernel="6.1.0-18-amd64")
    reconcile_report(store, machine_report(attributes=ssh_attributes, source_kind="ssh",
                                           source_id="ssh-scan"))
    changes = compute_changes(store, machine_report(attributes=FULL_ATTRIBUTES))
    assert changes.is_empty, [(a.name, a.before, a.after) for a in changes.attributes]


def test_an_older_report_does_not_overwrite_a_newer_value(store):
    newer = machine_report(attributes=dict(FULL_ATTRIBUTES, memory_bytes=2048))
    older = machine_report(attributes=FULL_ATTRIBUTES, collected_at=newer.collected_at.replace(year=2024))
    reconcile_report(store, newer)
    assert compute_changes(store, older).attributes == []


# -- identification -----------------------------------------------------------------------------

JUNK_IDENTIFIERS = ([("serial", v) for v in JUNK_SERIALS] + [("system_uuid", v) for v in JUNK_UUIDS]
                    + [("mac", ["02:42:ac:11:00:02"]), ("mac", ["00:00:00:00:00:00"]),
                       ("fqdn", "localhost.localdomain"), ("hostname", "localhost")])


@pytest.mark.parametrize("kind, junk", JUNK_IDENTIFIERS)
def test_junk_identifiers_never_identify_nor_get_claimed(store, kind, junk):
    """Two machines that share nothing but a junk value stay two Computers."""
    for agent in ("agent-a", "agent-b"):
        changes = reconcile_report(store, machine_report(
            identifiers={kind: junk, "agent_id": agent}, attributes={"manufacturer": "Dell Inc."},
            packages=NO_PACKAGES, source_id=agent))
        assert [c.kind for c in changes.identifiers if c.ci_class == "Computer"] == ["agent_id"]
    assert len(ids_of(store, "Computer")) == 2


VALUES = {
    "serial": ("SN-AAAA", "SN-BBBB"),
    "system_uuid": ("4c4c4544-0000-0000-0000-00000000000a", "4c4c4544-0000-0000-0000-00000000000b"),
    "mac": (["00:1a:2b:00:00:0a"], ["00:1a:2b:00:00:0b"]),
    "fqdn": ("a.example.com", "b.example.com"),
    "hostname": ("host-a", "host-b"),
    "agent_id": ("agent-a", "agent-b"),
}
ORDER = list(VALUES)


@pytest.mark.parametrize("strong, weak", list(zip(ORDER, ORDER[1:])))
def test_the_stronger_identifier_wins(store, strong, weak):
    def report(identifiers):
        return machine_report(identifiers=identifiers, attributes={"manufacturer": "Dell Inc."},
                              packages=NO_PACKAGES)
    a = reconcile_report(store, report({strong: VALUES[strong][0]})).ci_of_ref["computer"]
    b = reconcile_report(store, report({weak: VALUES[weak][1]})).ci_of_ref["computer"]
    changes = reconcile_report(store, report({strong: VALUES[strong][0], weak: VALUES[weak][1]}))
    assert changes.ci_of_ref["computer"] == a != b
    assert [(c.reason, c.kind, c.other_ci_id) for c in changes.conflicts] == [
        ("identifier_bound_elsewhere", weak, b)]
    assert not [c for c in changes.identifiers if c.ci_class == "Computer"]  # nothing stolen


def test_serial_without_manufacturer_is_not_an_identity(store):
    """Two vendors' machines with one serial and no known manufacturer are not merged by it."""
    for agent in ("agent-a", "agent-b"):
        reconcile_report(store, machine_report(identifiers={"serial": "12345678", "agent_id": agent},
                                               attributes={}, packages=NO_PACKAGES))
    assert len(ids_of(store, "Computer")) == 2


def test_a_clone_with_the_same_uuid_and_another_serial_is_another_computer(store):
    uuid = "4c4c4544-0042-3510-8052-b4c04f4d3732"
    original = reconcile_report(store, machine_report(
        identifiers={"serial": "SN-1", "system_uuid": uuid, "hostname": "tmpl"}, packages=NO_PACKAGES))
    clone = reconcile_report(store, machine_report(
        identifiers={"serial": "SN-2", "system_uuid": uuid, "hostname": "tmpl"}, packages=NO_PACKAGES))
    assert clone.ci_of_ref["computer"] != original.ci_of_ref["computer"]
    reasons = {(c.reason, c.kind) for c in clone.conflicts}
    assert {("candidate_contradicted", "system_uuid"), ("candidate_contradicted", "hostname"),
            ("identifier_bound_elsewhere", "system_uuid")} <= reasons
    assert {(c.ci_id, c.other_ci_id) for c in clone.conflicts if c.item_ref == "computer"} == {
        (clone.ci_of_ref["computer"], original.ci_of_ref["computer"])}
    assert "identification conflicts" in describe(clone)


def test_macs_bound_to_two_computers_match_neither(store):
    def report(macs):
        return machine_report(identifiers={"mac": macs}, packages=NO_PACKAGES)
    a = reconcile_report(store, report(["00:1a:2b:00:00:0a"]))
    b = reconcile_report(store, report(["00:1a:2b:00:00:0b"]))
    both = compute_changes(store, report(["00:1a:2b:00:00:0a", "00:1a:2b:00:00:0b"]))
    assert both.ci_of_ref["computer"] not in {a.ci_of_ref["computer"], b.ci_of_ref["computer"]}
    assert "ambiguous_match" in {c.reason for c in both.conflicts}


def test_docker_macs_never_identify(store):
    docker = ["02:42:ac:11:00:02", "02:42:7f:3a:9b:01"]
    for name in ("host-a", "host-b"):
        changes = reconcile_report(store, machine_report(identifiers={"mac": docker, "hostname": name},
                                                         packages=NO_PACKAGES))
        assert not [c for c in changes.identifiers if c.kind == "mac"]
    assert len(ids_of(store, "Computer")) == 2


# -- dependent CIs ------------------------------------------------------------------------------

def other_machine(**kwargs):
    identifiers = {"serial": "SN-0002", "system_uuid": "4c4c4544-0042-3510-8052-b4c04f4d3799",
                   "mac": ["00:1a:2b:3c:4d:99"], "hostname": "web02", "agent_id": "agent-02"}
    return machine_report(identifiers=identifiers, source_id="agent-02", **kwargs)


def test_two_computers_with_eth0_have_two_interfaces_and_one_each_on_rereport(store):
    first_a = reconcile_report(store, machine_report())
    first_b = reconcile_report(store, other_machine())
    assert first_a.ci_of_ref["if:eth0"] != first_b.ci_of_ref["if:eth0"]
    assert store.count_cis()["Interface"] == 2
    assert store.count_cis()["OperatingSystem"] == 2 and store.count_cis()["SoftwareInstall"] == 4
    assert store.count_cis()["Software"] == 2  # products are global, installs are per host
    again_a = reconcile_report(store, machine_report())
    assert again_a.ci_of_ref["if:eth0"] == first_a.ci_of_ref["if:eth0"]
    assert again_a.ci_of_ref["pkg:deb:bash:amd64"] == first_a.ci_of_ref["pkg:deb:bash:amd64"]
    assert again_a.is_empty


def test_an_ip_is_keyed_by_host_not_by_interface(store):
    a = reconcile_report(store, machine_report(interfaces={"eth0": ["10.0.0.5"]}))
    moved_to_eth1 = reconcile_report(store, machine_report(interfaces={"eth0": [], "eth1": ["10.0.0.5"]}))
    assert moved_to_eth1.ci_of_ref["ip:10.0.0.5"] == a.ci_of_ref["ip:10.0.0.5"]
    host = a.ci_of_ref["computer"]
    key = f"{host}/10.0.0.5"
    assert store.resolve_identifiers("IPAddress", "address", [key]) == {key: a.ci_of_ref["ip:10.0.0.5"]}


def test_an_ip_moving_to_another_host_is_another_ip_ci(store):
    a = reconcile_report(store, machine_report(interfaces={"eth0": ["10.0.0.5"]}))
    b = reconcile_report(store, other_machine(interfaces={"eth0": ["10.0.0.5"]}))
    assert a.ci_of_ref["ip:10.0.0.5"] != b.ci_of_ref["ip:10.0.0.5"]
    assert store.count_cis()["IPAddress"] == 2


def test_a_dependent_item_without_a_host_is_skipped_with_a_reason(store):
    report = machine_report(packages=NO_PACKAGES)
    report.items.append(Item(class_="Interface", ref="if:orphan", identifiers={"name": "orphan0"}))
    changes = compute_changes(store, report)
    assert [(s.item_ref, s.ci_class) for s in changes.skipped] == [("if:orphan", "Interface")]
    assert "HAS_INTERFACE" in changes.skipped[0].reason
    assert "if:orphan" not in changes.ci_of_ref


# -- packages -----------------------------------------------------------------------------------

def test_a_removed_package_is_retired_and_an_upgraded_one_changes(store):
    first = reconcile_report(store, machine_report(packages={"bash": "5.2.15-2", "coreutils": "9.1-1"}))
    bash = first.ci_of_ref["pkg:deb:bash:amd64"]
    changes = reconcile_report(store, machine_report(packages={"coreutils": "9.4-3"}))
    coreutils = changes.ci_of_ref["pkg:deb:coreutils:amd64"]
    assert coreutils == first.ci_of_ref["pkg:deb:coreutils:amd64"]
    assert [(a.ci_id, a.name, a.before, a.after) for a in changes.attributes] == [
        (coreutils, "version", "9.1-1", "9.4-3")]
    # the complete software run no longer states bash: retired with its relations (reconcile.staleness)
    assert bash not in changes.seen and changes.retired == [bash]
    assert {(r.type, r.action) for r in changes.relations if bash in (r.from_ci, r.to_ci)} == {
        ("INSTALLED_ON", "retire"), ("INSTANCE_OF", "retire")}
    assert store.get_ci(bash).state == "retired" and store.count_cis()["SoftwareInstall"] == 1


def test_a_report_is_read_in_batches_not_per_item(counting_store):
    report = machine_report(packages={f"pkg{i}": "1.0" for i in range(50)})
    for _ in range(2):  # first run: all new; second run: all existing
        counting_store.calls.clear()
        reconcile_report(counting_store, report)
        pairs = [args for name, args in counting_store.calls if name == "resolve_identifiers"]
        assert len(pairs) == len(set(pairs)) <= 12
        assert counting_store.count("current_attributes") <= 1
        assert counting_store.count("relationships_among") <= 1
        assert counting_store.count("identifiers_of") <= 1
        report = again(report)


def test_two_items_of_one_report_with_one_key_are_one_ci_every_time(store):
    report = machine_report(packages={"bash": "5.2.15-2"})
    report.items.append(Item(class_="Software", ref="sw:dup", identifiers={"purl": "pkg:deb/debian/bash"}))
    first = reconcile_report(store, report)
    assert first.ci_of_ref["sw:dup"] == first.ci_of_ref["sw:deb:bash"]
    assert [(c.reason, c.item_ref) for c in first.conflicts] == [("duplicate_item", "sw:dup")]
    assert reconcile_report(store, again(report)).is_empty
    assert store.count_cis()["Software"] == 1


# -- weak keys, byte-swapped UUIDs, sources barred from creating ---------------------------------

def host_only(identifiers: dict, source_kind: str = "agent", source_id: str = "agent-01", **kw):
    return machine_report(identifiers=identifiers, attributes={"manufacturer": "Dell Inc."}, interfaces={},
                          packages=NO_PACKAGES, disks=(), source_kind=source_kind, source_id=source_id, **kw)


def test_a_hostname_stated_by_a_second_machine_is_shared_and_stops_matching(store):
    first = reconcile_report(store, host_only({"serial": "SN-A", "hostname": "kiosk"}, source_id="a"))
    second = reconcile_report(store, host_only({"serial": "SN-B", "hostname": "kiosk"}, source_id="b"))
    a, b = first.ci_of_ref["computer"], second.ci_of_ref["computer"]
    assert a != b
    assert [(c.ci_id, c.kind, c.value) for c in second.shared_identifiers] == [(b, "hostname", "kiosk")]
    assert store.shared_identifiers("Computer", "hostname", ["kiosk"]) == {"kiosk": {b}}
    # The second machine's next run records nothing new.
    assert not reconcile_report(store, host_only({"serial": "SN-B", "hostname": "kiosk"}, source_id="b")).shared_identifiers
    # A report with the name alone matches neither, and says why.
    third = reconcile_report(store, host_only({"hostname": "kiosk"}, source_kind="ssh", source_id="ssh"))
    assert third.ci_of_ref["computer"] not in (a, b)
    assert [(c.reason, c.kind, c.other_ci_id) for c in third.conflicts][0] == ("weak_key_not_unique", "hostname", a)
    assert "weak key" in third.conflicts[0].describe()


def test_a_name_is_unique_again_once_the_machines_sharing_it_are_retired(store):
    a = reconcile_report(store, host_only({"serial": "SN-A", "hostname": "kiosk"}, source_id="a")).ci_of_ref["computer"]
    b = reconcile_report(store, host_only({"serial": "SN-B", "hostname": "kiosk"}, source_id="b")).ci_of_ref["computer"]
    store.apply(ChangeSet(Provenance("agent", "admin", None, T0), retired=[b]))
    changes = reconcile_report(store, host_only({"hostname": "kiosk"}, source_kind="nmap", source_id="nmap"))
    assert changes.ci_of_ref["computer"] == a and not changes.created


def test_a_weak_key_stated_by_two_items_of_one_report_matches_neither(store):
    a = reconcile_report(store, host_only({"serial": "SN-A", "hostname": "db"}, source_id="a")).ci_of_ref["computer"]
    report = host_only({"hostname": "db"}, source_kind="nmap", source_id="nmap")
    twin = Item(class_="Computer", ref="other", identifiers={"hostname": "db"}, attributes={}, collector="hardware")
    changes = compute_changes(store, again(report, items=[*report.items, twin]))
    assert not changes.ci_of_ref and not changes.created
    assert {s.item_ref for s in changes.skipped} >= {"computer", "other"}
    assert all("weak_key_not_unique" in s.reason for s in changes.skipped if s.item_ref in ("computer", "other"))
    assert store.get_ci(a).attributes.keys() == {"manufacturer"}


def test_a_byte_swapped_uuid_finds_the_machine_without_claiming_the_other_spelling(store):
    first = reconcile_report(store, host_only({"system_uuid": "4c4c4544-0039-3510-8048-b4c04f4a4b31"}))
    second = reconcile_report(store, host_only({"system_uuid": "44454c4c-3900-1035-8048-b4c04f4a4b31"},
                                               source_kind="fusion", source_id="fusion"))
    ci_id = first.ci_of_ref["computer"]
    assert second.ci_of_ref["computer"] == ci_id and not second.created and not second.conflicts
    assert not second.identifiers
    assert [i.value for i in store.get_ci(ci_id).identifiers if i.kind == "system_uuid"] == [
        "4c4c4544-0039-3510-8048-b4c04f4a4b31"]


def test_a_byte_swapped_uuid_of_a_machine_with_another_serial_is_another_machine(store):
    first = reconcile_report(store, host_only({"serial": "SN-A", "system_uuid": "4c4c4544-0039-3510-8048-b4c04f4a4b31"}))
    second = reconcile_report(store, host_only({"serial": "SN-B", "system_uuid": "44454c4c-3900-1035-8048-b4c04f4a4b31"},
                                               source_id="b"))
    assert second.ci_of_ref["computer"] != first.ci_of_ref["computer"]
    assert ("candidate_contradicted", "system_uuid") in {(c.reason, c.kind) for c in second.conflicts}
    assert [c.value for c in second.identifiers if c.kind == "system_uuid"] == ["44454c4c-3900-1035-8048-b4c04f4a4b31"]


def test_nmap_creates_no_host_and_skips_what_hangs_off_it(store):
    report = machine_report(identifiers={"hostname": "nobody", "fqdn": "nobody.example.com"},
                            source_kind="nmap", source_id="nmap", packages=NO_PACKAGES)
    changes = reconcile_report(store, report)
    assert not changes.created and not changes.identifiers and not changes.ci_of_ref
    assert store.count_cis() == {}
    reasons = {s.item_ref: s.reason for s in changes.skipped}
    assert "may not create a Computer" in reasons["computer"]
    assert "its host computer was not placed" in reasons["ip:10.0.0.5"]
    assert set(reasons) == {i.ref for i in report.items}


def test_weak_keys_cost_one_shared_read_per_kind_and_none_without_bound_names(counting_store):
    reconcile_report(counting_store, machine_report())
    assert counting_store.count("shared_identifiers") == 0  # nothing was bound yet
    counting_store.calls.clear()
    reconcile_report(counting_store, machine_report())
    assert counting_store.count("shared_identifiers") == 2  # hostname and fqdn
