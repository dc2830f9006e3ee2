"""Every folder under tests/fixtures/reconcile/ is a scenario: its reports are put in the raw log and
reconciled in name order on the real SQLite store, then expected.json is checked. A new case is a
new folder; see tests/unit/reconcile/scenarios.py for the recipe format. expected.json keys (all
optional):

    xfail           reason: the scenario shows a known gap (run as xfail, strict)
    counts          {class: n} active CIs of the listed classes; retired_counts likewise
    cis             [{ref: "NN:<item ref>", class, state, identifiers {kind: [values]} (exact per
                    kind listed, host prefix of dependent keys stripped), attributes {name: value}
                    (null: absent), attribute_history {name: [after, ...]}, history_kinds [kinds its
                    rows must include], no_history_kinds [kinds they must not]}]
    same            [[ref, ref, ...]]  refs that must be one CI;  different: pairwise distinct CIs
    relations       [[from ref, type, to ref]] active;  no_relations: none active
    reports         {"NN": {empty, new_history_rows, created {class: n}, conflicts [[reason,
                    kind]], no_conflicts, skipped [[item ref, reason substring]], unplaced [ref],
                    duplicate_id, drift [{ci: ref, attribute, before, after, related: ref}]}}
                    drift: exactly these drift events (reconcile.drift), any order; before/after that
                    are objects match as subsets (a set member's summary), "related" is optional
    drift_count     drift events in the store after the last report
    reconcile       {"drift_response": [...]}: the response policy (reconcile.records) to use
    reports.NN.dispositions   [[attribute, disposition]]: exactly these drift actions, any order
    records         [{number, kind?, state, origin, type, cis: [refs] (exact), drift: n linked,
                    verification}] records in the store after the last report
    record_counts   {"changes": n, "incidents": n, "open_incidents": n}
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from cmdb.records import ExpectedOutcome, NewChange
from reconcile.engine import reconcile_report
from reconcile.records import DEFAULT_RESPONSE_POLICY, DriftResponsePolicy, verify_due_changes
from reconcile.result import AnnotatedChangeSet
from tests.unit.reconcile.scenarios import FIXTURES, Scenario, discover, load

_CI_ID = re.compile(r"^[0-9a-f]{32}/")


def _param(path: Path):
    expected = load(path).expected
    marks = [pytest.mark.xfail(strict=True, reason=expected["xfail"])] if expected.get("xfail") else []
    return pytest.param(path, id=path.name, marks=marks)


SCENARIOS = discover()


def history_size(store) -> int:
    return sum(len(store.history(c.ci_id, limit=1_000_000)) for c in store.list_cis(state=None, limit=100_000))


class Run:
    """A scenario replayed: the change set of every report, for the checks to read."""

    def __init__(self, scenario: Scenario, store):
        self.scenario, self.store = scenario, store
        self.changes: dict[str, AnnotatedChangeSet] = {}
        responses = scenario.expected.get("reconcile", {}).get("drift_response")
        self.response_policy = (DriftResponsePolicy.from_config(responses) if responses is not None
                                else DEFAULT_RESPONSE_POLICY)

    def where(self, number: str | None, what: str) -> str:
        report = next((r.name for r in self.scenario.reports if r.number == number), "final state")
        return f"scenario {self.scenario.name}, report {report}: {what}"

    def replay(self) -> None:
        for rf in self.scenario.reports:
            report = rf.report
            put = self.store.put_report(report.report_id, report.source.kind, report.source.id,
                                        report.collected_at, rf.body)
            self.run_records(rf.number, rf.recipe.get("records", []))
            rows = history_size(self.store)
            # A resend (report_id already stored) is replayed without its seq, as a worker that
            # crashed between apply and ack would: reconcile itself must still add nothing.
            changes = reconcile_report(self.store, report, put.seq if put.created else None,
                                       response_policy=self.response_policy)
            self.changes[rf.number] = changes
            self.check_report(rf.number, changes, put.created, history_size(self.store) - rows)

    def run_records(self, number: str, steps: list[dict]) -> None:
        """Record steps before report `number` (a CI ref "NN:ref" names a CI placed earlier)."""
        for step in steps:
            if "change" in step:
                spec = step["change"]
                when = {k: datetime.fromisoformat(spec[k]) for k in ("planned_start", "planned_end") if k in spec}
                change = self.store.create_change(NewChange(
                    spec.get("type", "normal"), spec["title"], "scenario", cis=tuple(self.ci(r) for r in spec["cis"]),
                    expected=tuple(ExpectedOutcome.from_json(e) for e in spec.get("expected", [])), **when))
                for state in step.get("to", []):
                    self.store.transition_change(change.number, state, "scenario")
            elif "transition" in step:
                self.store.transition_change(step["transition"], step["to"], "scenario")
            elif "incident" in step:
                self.store.update_incident(step["incident"], "scenario", state=step.get("state"),
                                           resolution=step.get("resolution"))
            elif "verify_at" in step:
                verify_due_changes(self.store, datetime.fromisoformat(step["verify_at"]))
            else:
                raise AssertionError(self.where(number, f"unknown record step {step}"))

    # -- per-report expectations ---------------------------------------------------------
    def check_report(self, number: str, changes: AnnotatedChangeSet, created: bool, new_rows: int) -> None:
        exp = self.scenario.expected.get("reports", {}).get(number)
        if not exp:
            return
        if "duplicate_id" in exp:
            assert (not created) == exp["duplicate_id"], self.where(number, f"duplicate_id={exp['duplicate_id']}")
        if "empty" in exp:
            assert changes.is_empty == exp["empty"], self.where(
                number, f"empty change set expected {exp['empty']}, got {changes.summary()} "
                        f"{[(a.name, a.before, a.after) for a in changes.attributes]}")
        if "new_history_rows" in exp:
            assert new_rows == exp["new_history_rows"], self.where(
                number, f"new history rows: expected {exp['new_history_rows']}, got {new_rows}")
        if "created" in exp:
            got = dict(Counter(c.ci_class for c in changes.created))
            assert got == exp["created"], self.where(number, f"created CIs: expected {exp['created']}, got {got}")
        notes = {(c.reason, c.kind) for c in changes.conflicts} | {(c.reason,) for c in changes.conflicts}
        for conflict in exp.get("conflicts", []):
            assert tuple(conflict) in notes, self.where(
                number, f"conflict {conflict} expected; notes: {[c.describe() for c in changes.conflicts]}")
        if exp.get("no_conflicts"):
            assert not changes.conflicts, self.where(
                number, f"no conflicts expected: {[c.describe() for c in changes.conflicts]}")
        for ref, reason in exp.get("skipped", []):
            assert any(s.item_ref == ref and reason in s.reason for s in changes.skipped), self.where(
                number, f"{ref} skipped with {reason!r} expected; skipped: {changes.skipped}")
        for ref in exp.get("unplaced", []):
            assert ref not in changes.ci_of_ref, self.where(number, f"{ref} must not be placed on a CI")
        if "drift" in exp:
            self.check_drift(number, changes, exp["drift"])
        if "dispositions" in exp:
            attribute_of = {e.drift_id: e.attribute for e in changes.drift}
            got = sorted([attribute_of[a.drift_id], a.disposition] for a in changes.drift_actions)
            assert got == sorted(exp["dispositions"]), self.where(
                number, f"drift dispositions: expected {sorted(exp['dispositions'])}, got {got}")

    def check_drift(self, number: str, changes: AnnotatedChangeSet, expected: list[dict]) -> None:
        got = [(e.ci_id, e.attribute, e.before, e.after, e.related_ci) for e in changes.drift]
        assert len(got) == len(expected), self.where(number, f"drift: expected {len(expected)} events, got {got}")
        left = list(got)
        for spec in expected:
            match = next((g for g in left if g[0] == self.ci(spec["ci"]) and g[1] == spec["attribute"]
                          and _like(g[2], spec.get("before")) and _like(g[3], spec.get("after"))
                          and ("related" not in spec or g[4] == self.ci(spec["related"]))), None)
            assert match is not None, self.where(number, f"drift event {spec} expected; events: {got}")
            left.remove(match)

    # -- final-state expectations --------------------------------------------------------
    def ci(self, spec: str) -> str:
        number, _, ref = spec.partition(":")
        assert number in self.changes, self.where(None, f"{spec!r}: no report {number}")
        ci_id = self.changes[number].ci_of_ref.get(ref)
        assert ci_id, self.where(number, f"{ref!r} was not placed on a CI (ci_of_ref has "
                                         f"{sorted(self.changes[number].ci_of_ref)[:20]})")
        return ci_id

    def check_final(self) -> None:
        exp, store = self.scenario.expected, self.store
        if "drift_count" in exp:
            got = len(store.drift_events(limit=1_000_000))
            assert got == exp["drift_count"], self.where(None, f"drift events: expected {exp['drift_count']}, got {got}")
        self.check_records(exp)
        for key, state in (("counts", "active"), ("retired_counts", "retired")):
            if key in exp:
                counts = store.count_cis(state)
                got = {cls: counts.get(cls, 0) for cls in exp[key]}
                assert got == exp[key], self.where(None, f"{state} CIs: expected {exp[key]}, got {got}")
        for group in exp.get("same", []):
            ids = {spec: self.ci(spec) for spec in group}
            assert len(set(ids.values())) == 1, self.where(None, f"one CI expected for {group}, got {ids}")
        for group in exp.get("different", []):
            ids = {spec: self.ci(spec) for spec in group}
            assert len(set(ids.values())) == len(group), self.where(None, f"distinct CIs expected: {ids}")
        for spec in exp.get("cis", []):
            self.check_ci(spec)
        active = {(r.from_ci, r.type, r.to_ci) for c in store.list_cis(limit=100_000)
                  for r in store.relationships(c.ci_id, "out")}
        for from_, type_, to in exp.get("relations", []):
            assert (self.ci(from_), type_, self.ci(to)) in active, self.where(
                None, f"active relation {from_} -{type_}-> {to} expected")
        for from_, type_, to in exp.get("no_relations", []):
            assert (self.ci(from_), type_, self.ci(to)) not in active, self.where(
                None, f"no active relation {from_} -{type_}-> {to} expected")

    def check_records(self, exp: dict) -> None:
        store = self.store
        if "record_counts" in exp:
            got = {"changes": len(store.list_changes(limit=100_000)),
                   "incidents": len(store.list_incidents(limit=100_000)),
                   "open_incidents": store.count_open_incidents()}
            got = {k: got[k] for k in exp["record_counts"]}
            assert got == exp["record_counts"], self.where(None, f"records: expected {exp['record_counts']}, got {got}")
        for spec in exp.get("records", []):
            number = spec["number"]
            record = store.get_change(number) if number.startswith("CHG") else store.get_incident(number)
            assert record is not None, self.where(None, f"record {number} expected")
            for key in ("state", "origin", "type", "verification", "priority", "impact", "urgency"):
                if key in spec:
                    got = getattr(record, key)
                    assert got == spec[key], self.where(None, f"{number}: {key} {got!r}, expected {spec[key]!r}")
            if "cis" in spec:
                want = sorted(self.ci(r) for r in spec["cis"])
                assert sorted(record.cis) == want, self.where(None, f"{number}: CIs {record.cis}, expected {want}")
            if "drift" in spec:
                linked = record.evidence if number.startswith("CHG") else record.drift
                assert len(linked) == spec["drift"], self.where(
                    None, f"{number}: {len(linked)} drift events linked, expected {spec['drift']}")

    def check_ci(self, spec: dict) -> None:
        ci_id = self.ci(spec["ref"])
        ci = self.store.get_ci(ci_id)
        what = f"CI of {spec['ref']}"
        assert ci is not None, self.where(None, f"{what} is not in the store")
        if "class" in spec:
            assert ci.ci_class == spec["class"], self.where(None, f"{what}: class {ci.ci_class}")
        if "state" in spec:
            assert ci.state == spec["state"], self.where(None, f"{what}: state {ci.state}, expected {spec['state']}")
        for kind, values in spec.get("identifiers", {}).items():
            got = sorted(_CI_ID.sub("", i.value) for i in ci.identifiers if i.kind == kind)
            assert got == sorted(values), self.where(None, f"{what}: identifiers {kind}={got}, expected {values}")
        for name, value in spec.get("attributes", {}).items():
            got = ci.attributes[name].value if name in ci.attributes else None
            assert got == value, self.where(None, f"{what}: attribute {name}={got!r}, expected {value!r}")
        rows = self.store.history(ci_id, limit=1_000_000)
        for name, afters in spec.get("attribute_history", {}).items():
            got = [r.after for r in rows if r.ci_id == ci_id and r.name == name and r.kind.startswith("attr.")]
            assert got == afters, self.where(None, f"{what}: history of {name} {got}, expected {afters}")
        kinds = {r.kind for r in rows if r.ci_id == ci_id}
        missing = set(spec.get("history_kinds", [])) - kinds
        unwanted = set(spec.get("no_history_kinds", [])) & kinds
        assert not missing and not unwanted, self.where(
            None, f"{what}: history kinds {sorted(kinds)}; missing {sorted(missing)}, unwanted {sorted(unwanted)}")


def _like(got, expected) -> bool:
    """A drift value matches: equal, or for objects every expected key equal."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return all(got.get(k) == v for k, v in expected.items())
    return got == expected


def test_every_scenario_folder_is_complete():
    assert len(SCENARIOS) >= 25
    for path in SCENARIOS:
        assert (path / "README.md").is_file() and (path / "expected.json").is_file(), path.name
        assert sorted((path / "reports").glob("[0-9][0-9]-*.json")), f"{path.name}: no reports/NN-*.json"


def test_a_failed_expectation_names_scenario_report_and_expectation(store):
    scenario = load(FIXTURES / "same-machine-reported-twice")
    scenario.expected["reports"]["02"]["created"] = {"Computer": 1}
    with pytest.raises(AssertionError, match=r"same-machine-reported-twice, report 02-agent-next-run: created CIs"):
        Run(scenario, store).replay()


@pytest.mark.parametrize("path", [_param(p) for p in SCENARIOS])
def test_scenario(store, path):
    run = Run(load(path), store)
    run.replay()
    run.check_final()


def test_a_wrong_drift_expectation_fails(store):
    scenario = load(FIXTURES / "drift-ram-upgrade-and-kernel-update")
    scenario.expected["reports"]["02"]["drift"][0]["after"] = 1
    with pytest.raises(AssertionError, match=r"report 02-upgraded: drift event .*memory_bytes"):
        Run(scenario, store).replay()
