"""A real-sized report (1,500 packages, ~3,000 items) reconciled end to end; and the dry-run print."""

from __future__ import annotations

import time

from reconcile.dryrun import describe
from reconcile.engine import compute_changes, reconcile_report
from tests.unit.reconcile.reports import again, machine_report, synthetic_packages


def test_speed_of_a_1500_package_report(store, capsys):
    """Printed, not asserted: timing depends on the machine. Target: tens of milliseconds."""
    report = machine_report(packages=synthetic_packages(1500))
    timings = {}
    for run in ("first", "second"):
        start = time.perf_counter()
        changes = compute_changes(store, report)
        computed = time.perf_counter()
        store.apply(changes)
        applied = time.perf_counter()
        timings[run] = (computed - start, applied - computed, changes)
        report = again(report)
    with capsys.disabled():
        print(f"\n{len(report.items)} items, {len(report.relations)} relations")
        for run, (compute_s, apply_s, changes) in timings.items():
            print(f"  {run} run: compute_changes {compute_s * 1000:.1f} ms, apply {apply_s * 1000:.1f} ms, "
                  f"{changes.summary()}")
    assert timings["second"][2].is_empty


def test_describe_prints_counts_and_the_first_changes(store):
    report = machine_report(packages=synthetic_packages(30))
    text = describe(compute_changes(store, report), limit=5)
    assert f"report {report.report_id} from agent:agent-01" in text
    assert f"created: {len(report.items)}" in text
    assert "new CIs (" in text and "+ Computer " in text
    assert "… and" in text  # long sections are cut
    assert "memory_bytes: ∅ -> 68719476736" in text or "attributes set" in text
    reconcile_report(store, report)

    upgraded = machine_report(packages=dict(synthetic_packages(30), **{"package-00000": "2.0-1"}))
    text = describe(compute_changes(store, upgraded))
    assert 'version: "1.0.0-0" -> "2.0-1"' in text

    text = describe(compute_changes(store, again(upgraded)))
    assert "identification conflicts" not in text


def test_describe_says_when_nothing_changes(store):
    report = machine_report()
    reconcile_report(store, report)
    assert "no changes" in describe(compute_changes(store, again(report)))
