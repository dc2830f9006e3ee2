"""ReconcilePolicy: everything [reconcile] configures, validated once, as the collector uses it."""

from __future__ import annotations

import pytest

from cmdb.config import load_config
from reconcile.policy import DEFAULT_POLICY, ReconcilePolicy
from tests.integration.lab import fleetgraph


def test_the_default_config_gives_the_default_policy():
    policy = ReconcilePolicy.from_config(load_config(env={}).reconcile)
    assert policy.retire_after_missed_runs == DEFAULT_POLICY.retire_after_missed_runs == 1
    assert policy.engine_kwargs().keys() == {"retire_after_missed_runs", "precedence", "drift_policy",
                                            "response_policy"}


@pytest.mark.parametrize("env,words", [
    ({"FLEETGRAPH_RECONCILE_RETIRE_AFTER_MISSED_RUNS": "0"}, "retire_after_missed_runs"),
    ({"FLEETGRAPH_RECONCILE_SOURCE_PRIORITY": "agent,telnet"}, "telnet"),
    ({"FLEETGRAPH_RECONCILE_DRIFT_TRACKED": "Toaster.colour"}, "Toaster"),
    ({"FLEETGRAPH_RECONCILE_DRIFT_RESPONSE": "Computer.serial=panic"}, "panic"),
    ({"FLEETGRAPH_RECONCILE_DRIFT_RESPONSE": "Computer.serial=incident:urgent"}, "urgent"),
    ({"FLEETGRAPH_RECONCILE_DRIFT_RESPONSE": "Toaster.*=record"}, "Toaster"),
    ({"FLEETGRAPH_RECONCILE_DRIFT_RESPONSE": "memory; rm -rf /"}, "SELECTOR=RESPONSE"),
])
def test_a_bad_reconcile_option_is_refused_naming_it(env, words):
    with pytest.raises(ValueError, match=words):
        ReconcilePolicy.from_config(load_config(env=env).reconcile)


def test_collector_serve_refuses_a_bad_policy_before_listening(tmp_path):
    out = fleetgraph("collector", "serve", "--listen", "127.0.0.1:0", "--store", f"sqlite:///{tmp_path}/db.sqlite",
                     "--retire-after-missed-runs", "0", check=False, timeout=30)
    assert out.returncode == 2 and "retire_after_missed_runs" in out.stderr
    assert "listening" not in out.stdout
