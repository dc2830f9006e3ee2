"""Everything `[reconcile]` configures, in one object: built once from the config, handed to the
reconcile worker, and spread into `reconcile.engine.reconcile_report`'s parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconcile.drift import DEFAULT_DRIFT_POLICY, DriftPolicy
from reconcile.precedence import DEFAULT_PRECEDENCE, PrecedenceTable
from reconcile.records import DEFAULT_RESPONSE_POLICY, DriftResponsePolicy


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    retire_after_missed_runs: int = 1
    precedence: PrecedenceTable = field(default=DEFAULT_PRECEDENCE)
    drift_policy: DriftPolicy = field(default=DEFAULT_DRIFT_POLICY)
    response_policy: DriftResponsePolicy = field(default=DEFAULT_RESPONSE_POLICY)

    def __post_init__(self) -> None:
        if self.retire_after_missed_runs < 1:
            raise ValueError("reconcile.retire_after_missed_runs must be at least 1")

    @classmethod
    def from_config(cls, reconcile_config: Any) -> ReconcilePolicy:
        """From `cmdb.config.ReconcileConfig`; ValueError naming the option that is wrong."""
        return cls(retire_after_missed_runs=reconcile_config.retire_after_missed_runs,
                   precedence=PrecedenceTable.from_config(reconcile_config.source_priority,
                                                          reconcile_config.attribute_priority),
                   drift_policy=DriftPolicy.from_config(reconcile_config.drift_tracked),
                   response_policy=DriftResponsePolicy.from_config(reconcile_config.drift_response))

    def engine_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `reconcile_report` / `compute_changes`."""
        return {"retire_after_missed_runs": self.retire_after_missed_runs,
                "precedence": self.precedence, "drift_policy": self.drift_policy,
                "response_policy": self.response_policy}


DEFAULT_POLICY = ReconcilePolicy()
