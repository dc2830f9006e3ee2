"""Attribute precedence (issue #5): per attribute, which source's observation is the current value;
recency breaks ties; every source's latest value is kept as an observation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cmdb.report import CollectorStatus, Item, Report, Source, decode_report, encode_report
from reconcile.engine import compute_changes, reconcile_report
from reconcile.precedence import DEFAULT_PRECEDENCE, PrecedenceTable

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
SERIAL = "CZ2D1A0B3C"


def host_report(kind: str, hours: float, attributes: dict, *, source_id: str | None = None,
                status: str = "ok", report_id: str | None = None) -> Report:
    """One Computer, identified by its serial, as `kind` reports it `hours` after T0."""
    source_id = source_id or f"{kind}-1"
    report = Report(
        schema="fleetgraph.report/1",
        report_id=report_id or f"report-{source_id}-{hours}",
        source=Source(kind=kind, id=source_id, version="1"),
        collected_at=T0 + timedelta(hours=hours),
        mode="full",
        collectors={"hardware": CollectorStatus(status=status)},
        items=[Item(class_="Computer", ref="computer",
                    identifiers={"serial": SERIAL},
                    attributes={"manufacturer": "HPE", **attributes}, collector="hardware")],
        relations=[],
    )
    return decode_report(encode_report(report))


def run(store, report: Report, precedence: PrecedenceTable = DEFAULT_PRECEDENCE):
    changes = reconcile_report(store, report, precedence=precedence)
    return changes, changes.ci_of_ref["computer"]


def value(store, ci_id: str, name: str):
    attribute = store.get_ci(ci_id).attributes.get(name)
    return None if attribute is None else (attribute.value, attribute.provenance.source_kind)


def history_of(store, ci_id: str, name: str) -> list:
    return [(r.before, r.after, r.provenance.source_kind) for r in store.history(ci_id, name)
            if r.kind.startswith("attr.")]


def observed(store, ci_id: str, name: str) -> list[tuple]:
    return [(o.value, o.provenance.source_kind, o.current) for o in store.observations(ci_id) if o.name == name]


# -- the table --------------------------------------------------------------------------------

def test_default_order_and_unknown_kinds_rank_last():
    table = PrecedenceTable()
    assert table.order("model") == ("agent", "ssh", "ocs", "fusion", "snmp", "nmap")
    assert table.rank("agent", "model") < table.rank("snmp", "model") < table.rank("nmap", "model")
    table = PrecedenceTable(("agent", "snmp"))
    assert table.rank("nmap", "model") == table.rank("ssh", "model") == 2


def test_overrides_per_attribute_and_per_class():
    table = PrecedenceTable.from_config(["agent", "ssh", "snmp"],
                                        ["location=snmp>agent", "NetworkDevice.model=snmp>ssh>agent"])
    assert table.order("location") == ("snmp", "agent")
    assert table.order("model", "NetworkDevice") == ("snmp", "ssh", "agent")
    assert table.order("model", "Computer") == ("agent", "ssh", "snmp")
    assert table.beats("snmp", T0, "agent", T0 + timedelta(days=1), "location")
    assert table.beats("agent", T0 + timedelta(hours=1), "agent", T0, "model")  # recency between equals
    assert not table.beats("agent", T0, "agent", T0, "model")  # a full tie keeps the incumbent


@pytest.mark.parametrize("priority,overrides,words", [
    (["agent", "wmi"], [], "unknown source kind(s) 'wmi'"),
    (["agent", "agent"], [], "listed twice: agent"),
    ([], [], "name at least one source kind"),
    (["agent"], ["location"], "'location' is not ATTRIBUTE=KIND>KIND"),
    (["agent"], ["location=snmp>agnet"], "attribute_priority location: unknown source kind(s) 'agnet'"),
    (["agent"], ["a=snmp", "a=agent"], "'a' is given twice"),
])
def test_a_wrong_table_names_the_option(priority, overrides, words):
    with pytest.raises(ValueError) as err:
        PrecedenceTable.from_config(priority, overrides)
    assert words in str(err.value)


# -- reconcile with the table -----------------------------------------------------------------

def test_agent_then_snmp_with_another_model_keeps_the_agents(store):
    _, ci = run(store, host_report("agent", 1, {"model": "ProLiant DL360 Gen10"}))
    changes, _ = run(store, host_report("snmp", 2, {"model": "DL360G10", "location": "rack 4"}))
    assert value(store, ci, "model") == ("ProLiant DL360 Gen10", "agent")
    assert value(store, ci, "location") == ("rack 4", "snmp")  # what the agent does not report
    assert history_of(store, ci, "model") == [(None, "ProLiant DL360 Gen10", "agent")]
    assert observed(store, ci, "model") == [("ProLiant DL360 Gen10", "agent", True), ("DL360G10", "snmp", False)]
    assert [a.name for a in changes.attributes] == ["location"]


def test_snmp_then_agent_the_agents_model_wins_with_a_history_row(store):
    _, ci = run(store, host_report("snmp", 1, {"model": "DL360G10"}))
    run(store, host_report("agent", 2, {"model": "ProLiant DL360 Gen10"}))
    assert value(store, ci, "model") == ("ProLiant DL360 Gen10", "agent")
    assert history_of(store, ci, "model") == [(None, "DL360G10", "snmp"),
                                              ("DL360G10", "ProLiant DL360 Gen10", "agent")]
    assert observed(store, ci, "model") == [("ProLiant DL360 Gen10", "agent", True), ("DL360G10", "snmp", False)]
    # snmp's next poll still says DL360G10: its observation is refreshed, nothing else moves
    changes, _ = run(store, host_report("snmp", 3, {"model": "DL360G10"}))
    assert changes.is_empty and value(store, ci, "model") == ("ProLiant DL360 Gen10", "agent")
    assert store.observations(ci)[-1].provenance.observed_at == T0 + timedelta(hours=3)


def test_the_same_value_from_a_better_source_moves_provenance_without_history(store):
    _, ci = run(store, host_report("snmp", 1, {"model": "DL360"}))
    changes, _ = run(store, host_report("agent", 2, {"model": "DL360"}))
    assert changes.is_empty
    assert value(store, ci, "model") == ("DL360", "agent")
    assert history_of(store, ci, "model") == [(None, "DL360", "snmp")]
    # the agent now holds it: snmp's different reading later does not override it
    run(store, host_report("snmp", 3, {"model": "other"}))
    assert value(store, ci, "model") == ("DL360", "agent")


def test_nmap_never_overrides(store):
    _, ci = run(store, host_report("ssh", 1, {"hostname": "erp01", "os_guess": "RHEL 9"}))
    for hours in (2, 3):
        changes, _ = run(store, host_report("nmap", hours, {"hostname": "erp01-nat", "os_guess": "Linux 5.X"}))
        assert changes.is_empty
    assert value(store, ci, "hostname") == ("erp01", "ssh")
    assert value(store, ci, "os_guess") == ("RHEL 9", "ssh")
    assert ("Linux 5.X", "nmap", False) in observed(store, ci, "os_guess")  # kept, never current


def test_same_priority_sources_the_newest_wins(store):
    _, ci = run(store, host_report("ssh", 1, {"kernel": "5.14.0-1"}, source_id="scanner-a"))
    run(store, host_report("ssh", 2, {"kernel": "5.14.0-2"}, source_id="scanner-b"))
    assert value(store, ci, "kernel") == ("5.14.0-2", "ssh")
    assert store.get_ci(ci).attributes["kernel"].provenance.source_id == "scanner-b"
    # scanner-a's late view (collected before scanner-b's) does not win back
    run(store, host_report("ssh", 1.5, {"kernel": "5.14.0-1"}, source_id="scanner-a", report_id="report-a-late"))
    assert value(store, ci, "kernel") == ("5.14.0-2", "ssh")
    # scanner-a's newer view does
    run(store, host_report("ssh", 3, {"kernel": "5.14.0-3"}, source_id="scanner-a"))
    assert value(store, ci, "kernel") == ("5.14.0-3", "ssh")
    assert [h[1] for h in history_of(store, ci, "kernel")] == ["5.14.0-1", "5.14.0-2", "5.14.0-3"]


def test_a_late_older_report_never_overwrites_its_sources_newer_observation(store):
    _, ci = run(store, host_report("agent", 1, {"model": "A"}))
    run(store, host_report("snmp", 5, {"model": "snmp-new"}))
    changes, _ = run(store, host_report("snmp", 3, {"model": "snmp-old"}))  # delivered late
    assert not changes.observations and changes.is_empty
    assert observed(store, ci, "model") == [("A", "agent", True), ("snmp-new", "snmp", False)]


def test_the_winner_stops_stating_the_next_sources_observation_takes_over(store):
    _, ci = run(store, host_report("agent", 1, {"model": "ProLiant", "location": "hall A"}))
    run(store, host_report("snmp", 2, {"model": "DL360", "location": "rack 4"}))
    run(store, host_report("fusion", 3, {"model": "ProLiant DL360"}))
    assert value(store, ci, "model") == ("ProLiant", "agent")
    # the agent's complete run no longer states either: fusion (next by rank) takes model, snmp location
    changes, _ = run(store, host_report("agent", 4, {}))
    assert value(store, ci, "model") == ("ProLiant DL360", "fusion")
    assert value(store, ci, "location") == ("rack 4", "snmp")
    assert history_of(store, ci, "model")[-1] == ("ProLiant", "ProLiant DL360", "fusion")
    taken = next(r for r in store.history(ci, "model") if r.after == "ProLiant DL360")
    assert taken.provenance.observed_at == T0 + timedelta(hours=4)  # stamped when it took over
    assert store.get_ci(ci).attributes["model"].provenance.observed_at == T0 + timedelta(hours=3)
    assert observed(store, ci, "model") == [("ProLiant DL360", "fusion", True), ("DL360", "snmp", False)]
    assert not changes.measurements
    # snmp stops stating location too: nobody else has it, it is removed
    run(store, host_report("snmp", 5, {"model": "DL360"}))
    assert value(store, ci, "location") is None
    assert history_of(store, ci, "location")[-1] == ("rack 4", None, "snmp")


def test_a_partial_run_removes_nothing_and_falls_back_to_nothing(store):
    _, ci = run(store, host_report("agent", 1, {"model": "ProLiant"}))
    run(store, host_report("snmp", 2, {"model": "DL360"}))
    changes, _ = run(store, host_report("agent", 3, {}, status="failed"))
    assert changes.is_empty and value(store, ci, "model") == ("ProLiant", "agent")


def test_a_loser_that_stops_stating_loses_its_observation(store):
    _, ci = run(store, host_report("agent", 1, {"model": "ProLiant"}))
    run(store, host_report("snmp", 2, {"model": "DL360"}))
    run(store, host_report("snmp", 3, {}))
    assert observed(store, ci, "model") == [("ProLiant", "agent", True)]


def test_config_changes_the_order(store):
    snmp_first = PrecedenceTable.from_config(["snmp", "agent"])
    _, ci = run(store, host_report("agent", 1, {"model": "ProLiant"}), snmp_first)
    run(store, host_report("snmp", 2, {"model": "DL360"}), snmp_first)
    assert value(store, ci, "model") == ("DL360", "snmp")
    # back to the default order: the agent's observation wins at the next report that states it
    run(store, host_report("snmp", 3, {"model": "DL360"}))
    assert value(store, ci, "model") == ("ProLiant", "agent")
    assert history_of(store, ci, "model")[-1] == ("DL360", "ProLiant", "agent")


def test_a_per_attribute_override(store):
    table = PrecedenceTable.from_config(["agent", "snmp"], ["location=snmp>agent"])
    _, ci = run(store, host_report("snmp", 1, {"model": "DL360", "location": "rack 4"}), table)
    run(store, host_report("agent", 2, {"model": "ProLiant", "location": "hall A"}), table)
    assert value(store, ci, "model") == ("ProLiant", "agent")
    assert value(store, ci, "location") == ("rack 4", "snmp")


def test_idempotent_across_sources(store):
    reports = [host_report("agent", 1, {"model": "ProLiant"}), host_report("snmp", 2, {"model": "DL360"}),
               host_report("ssh", 3, {"model": "ProLiant DL360"})]
    for report in reports:
        run(store, report)
    _, ci = run(store, reports[0])
    before = (store.observations(ci), len(store.history(ci)))
    for report in reports:  # every report again, as a resend
        changes = compute_changes(store, report)
        assert changes.is_empty, changes.summary()
        store.apply(changes)
    assert (store.observations(ci), len(store.history(ci))) == before
