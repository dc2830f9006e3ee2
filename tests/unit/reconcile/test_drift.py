"""Drift (reconcile.drift): changes of tracked attributes and sets of existing CIs become DriftEvents,
stored with the change set on the real SQLite store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmdb.config import DEFAULT_DRIFT_TRACKED, ConfigError, load_config
from reconcile.drift import DEFAULT_DRIFT_POLICY, DriftPolicy, detect_drift
from reconcile.engine import compute_changes, reconcile_report
from tests.unit.reconcile.reports import DEFAULT_ATTRIBUTES, again, machine_report
from tests.unit.reconcile.test_measurements import with_filesystem

PACKAGES = {"bash": "5.2.15-2", "coreutils": "9.1-1"}


def host_id(store) -> str:
    [ci] = store.list_cis("Computer")
    return ci.ci_id


def test_first_report_of_a_machine_is_no_drift(store):
    changes = reconcile_report(store, machine_report(packages=PACKAGES))
    assert changes.created and changes.drift == []
    assert store.drift_events() == []


def test_ram_upgrade_is_one_event_with_before_and_after(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    upgraded = again(first, items=[
        item if item.ref != "computer" else type(item)(
            class_=item.class_, ref=item.ref, identifiers=item.identifiers, collector=item.collector,
            attributes={**DEFAULT_ATTRIBUTES, "memory_bytes": 137438953472})
        for item in first.items])
    changes = reconcile_report(store, upgraded)
    [event] = changes.drift
    host = host_id(store)
    assert (event.ci_id, event.ci_class, event.attribute, event.before, event.after, event.related_ci) == (
        host, "Computer", "memory_bytes", 68719476736, 137438953472, None)
    [stored] = store.drift_events(ci_id=host)
    assert stored.drift_id == event.drift_id and stored.recorded_at is not None
    assert (stored.before, stored.after) == (68719476736, 137438953472)
    assert stored.provenance.report_id == upgraded.report_id
    assert stored.provenance.observed_at == upgraded.collected_at
    assert (stored.provenance.source_kind, stored.provenance.source_id) == ("agent", "agent-01")


def test_untracked_attribute_change_is_no_drift(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    renamed = machine_report(packages=PACKAGES, attributes={**DEFAULT_ATTRIBUTES, "cpu_count": 32},
                             collected_at=first.collected_at + timedelta(hours=1))
    changes = reconcile_report(store, renamed)
    assert changes.attributes and changes.drift == []


def test_package_installed_removed_and_upgraded_are_events_on_the_host(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    host = host_id(store)
    t = first.collected_at

    installed = reconcile_report(store, machine_report(
        packages={**PACKAGES, "telnet": "0.17+2.4-2"}, collected_at=t + timedelta(hours=1)))
    [event] = installed.drift
    assert (event.ci_id, event.ci_class, event.attribute, event.before) == (host, "Computer", "software", None)
    assert event.after == {"package": "deb:telnet:amd64", "name": "telnet", "version": "0.17+2.4-2",
                           "arch": "amd64"}
    telnet = event.related_ci

    removed = reconcile_report(store, machine_report(packages=PACKAGES, collected_at=t + timedelta(hours=2)))
    [event] = removed.drift
    assert (event.ci_id, event.attribute, event.after, event.related_ci) == (host, "software", None, telnet)
    assert event.before["name"] == "telnet" and event.before["version"] == "0.17+2.4-2"

    upgraded = reconcile_report(store, machine_report(packages={**PACKAGES, "bash": "5.2.15-2+deb12u1"},
                                                      collected_at=t + timedelta(hours=3)))
    [event] = upgraded.drift
    assert (event.ci_class, event.attribute, event.before, event.after, event.related_ci) == (
        "SoftwareInstall", "version", "5.2.15-2", "5.2.15-2+deb12u1", host)

    on_host = store.drift_events(ci_id=host)
    assert [(e.attribute, e.before is None, e.after is None) for e in on_host] == [
        ("software", True, False), ("software", False, True), ("version", False, False)]
    assert [e.attribute for e in store.drift_events(ci_id=telnet)] == ["software", "software"]


def test_a_reinstalled_package_is_drift_again(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    t = first.collected_at
    reconcile_report(store, machine_report(packages={"bash": "5.2.15-2"}, collected_at=t + timedelta(hours=1)))
    back = reconcile_report(store, machine_report(packages=PACKAGES, collected_at=t + timedelta(hours=2)))
    assert back.reactivated
    [event] = back.drift
    assert event.attribute == "software" and event.before is None and event.after["name"] == "coreutils"


def test_measurements_never_drift(store):
    base = machine_report(packages=PACKAGES)
    reconcile_report(store, with_filesystem(base, free=40_000))
    changes = reconcile_report(store, with_filesystem(again(base), free=39_000))
    assert changes.measurements and changes.drift == []
    assert store.drift_events() == []
    with pytest.raises(ValueError, match="free_bytes is a measurement of FileSystem"):
        DriftPolicy.from_config(["FileSystem.free_bytes"])


def test_same_report_twice_and_a_late_report_make_no_second_event(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    newer = machine_report(packages={**PACKAGES, "telnet": "0.17"},
                           collected_at=first.collected_at + timedelta(hours=2))
    assert len(reconcile_report(store, newer).drift) == 1
    assert reconcile_report(store, newer).drift == []
    late = machine_report(packages={**PACKAGES, "telnet": "0.17"},
                          collected_at=first.collected_at + timedelta(hours=1))
    assert reconcile_report(store, late).drift == []
    assert len(store.drift_events()) == 1


def test_writing_an_event_twice_stores_it_once(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    newer = machine_report(packages={"bash": "5.2.15-2"}, collected_at=first.collected_at + timedelta(hours=1))
    changes = compute_changes(store, newer)
    assert len(changes.drift) == 1
    store.apply(changes)
    store.apply(changes)
    assert len(store.drift_events()) == 1


def test_drift_events_filter_by_time_and_limit(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    t = first.collected_at
    for hours, packages in ((1, {"bash": "5.2.15-2"}), (2, PACKAGES), (3, {"bash": "5.2.15-2"})):
        reconcile_report(store, machine_report(packages=packages, collected_at=t + timedelta(hours=hours)))
    assert len(store.drift_events()) == 3
    assert [e.provenance.observed_at for e in store.drift_events(since=t + timedelta(hours=2))] == [
        t + timedelta(hours=2), t + timedelta(hours=3)]
    assert len(store.drift_events(until=t + timedelta(hours=2))) == 2
    assert len(store.drift_events(limit=1)) == 1
    assert store.drift_events(ci_id="0" * 32) == []


def test_a_policy_without_the_set_tracks_no_packages(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    policy = DriftPolicy.from_config(["Computer.memory_bytes"])
    changes = compute_changes(store, machine_report(packages={"bash": "5.2.15-2"},
                                                    collected_at=first.collected_at + timedelta(hours=1)),
                              drift_policy=policy)
    assert changes.relations and changes.drift == []
    assert detect_drift(changes, None, store, DriftPolicy()) == []


# -- policy parsing ----------------------------------------------------------------------------

def test_default_policy_covers_the_documented_defaults():
    policy = DEFAULT_DRIFT_POLICY
    assert ("Computer", "memory_bytes") in policy.attributes
    assert ("SoftwareInstall", "version") in policy.attributes
    assert policy.sets[("Computer", "SoftwareInstall")] == "software"
    assert policy.sets[("Computer", "Disk")] == "disks"
    assert policy.sets[("Computer", "Service")] == "services"
    assert load_config(env={}).reconcile.drift_tracked == DEFAULT_DRIFT_TRACKED


@pytest.mark.parametrize("entry,words", [
    ("memory_bytes", 'expected "Class.attribute"'),
    ("Computr.memory_bytes", "unknown class 'Computr'"),
    ("Computer:HAS_DISK", "HAS_DISK is a relation type: name the member class"),
    ("Computer:Software", "Software does not hang off a host"),
    ("SoftwareInstall:Disk", "SoftwareInstall is a dependent class"),
    ("Computer.Memory", "'Memory' is not an attribute name"),
    ("FileSystem.used_bytes", "is a measurement"),
])
def test_bad_policy_entries_name_the_entry_and_the_rule(entry, words):
    with pytest.raises(ValueError) as err:
        DriftPolicy.from_config([entry])
    assert words in str(err.value) and repr(entry) in str(err.value)


def test_an_entry_listed_twice_is_an_error():
    with pytest.raises(ValueError, match="listed twice"):
        DriftPolicy.from_config(["Computer:Disk", " Computer:Disk"])


def test_drift_tracked_from_file_and_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[reconcile]\ndrift_tracked = ["Computer.memory_bytes", "Computer:SoftwareInstall"]\n')
    cfg = load_config(path, env={})
    policy = DriftPolicy.from_config(cfg.reconcile.drift_tracked)
    assert policy.attributes == {("Computer", "memory_bytes")}
    assert dict(policy.sets) == {("Computer", "SoftwareInstall"): "software"}
    cfg = load_config(env={"FLEETGRAPH_RECONCILE_DRIFT_TRACKED": "Computer.serial, Computer:Disk"})
    assert cfg.reconcile.drift_tracked == ("Computer.serial", "Computer:Disk")
    path.write_text("[reconcile]\ndrift_tracked = 3\n")
    with pytest.raises(ConfigError, match="drift_tracked: expected tuple"):
        load_config(path, env={})
