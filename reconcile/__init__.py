"""Reconcile: turn reports into CIs, relationships and history, as a change set applied in one go.

`reconcile.engine.compute_changes` / `reconcile_report` are the entry points, `reconcile.rules`
holds the identification rules, `reconcile.dryrun.describe` prints a change set.
"""
