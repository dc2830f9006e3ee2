"""A change set as people read it: what `fleetgraph reconcile --dry-run REPORT` prints.

Counts first, then the first `limit` changes of each kind. CI ids are printed whole: they are
time-ordered (cmdb.ids), so CIs created by one report share their first 12+ digits and a short
prefix would not tell them apart.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from cmdb.changes import ChangeSet


def format_value(value: Any, width: int = 60) -> str:
    """A value as compact JSON, cut to `width` characters (package lists can be long)."""
    text = "∅" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _section(title: str, total: int, lines: Iterable[str], limit: int) -> list[str]:
    if not total:
        return []
    out = [f"{title} ({total}):"]
    out += [f"  {line}" for _, line in zip(range(limit), lines)]
    if total > limit:
        out.append(f"  … and {total - limit} more")
    return out


def describe(changes: ChangeSet, limit: int = 10) -> str:
    """A human-readable dry run of a change set: counts, then the first `limit` of each kind."""
    p = changes.provenance
    class_of = {c.ci_id: c.ci_class for c in changes.created}

    def label(ci_id: str) -> str:
        return f"{class_of[ci_id]} {ci_id}" if ci_id in class_of else ci_id

    counts = changes.summary()
    out = [
        f"report {p.report_id} from {p.source_kind}:{p.source_id}, observed {p.observed_at.isoformat()}",
        "  " + ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in counts.items()),
    ]
    if changes.is_empty:
        out.append("no changes: the store already holds everything this report says "
                   "(only last-seen stamps would move)")
    removed = [a for a in changes.attributes if a.after is None]
    updated = [a for a in changes.attributes if a.after is not None]
    retired = [r for r in changes.relations if r.action == "retire"]
    added = [r for r in changes.relations if r.action == "add"]
    out += _section("new CIs", len(changes.created),
                    (f"+ {c.ci_class} {c.ci_id}" for c in changes.created), limit)
    out += _section("identifiers claimed", len(changes.identifiers),
                    (f"+ {label(c.ci_id)} {c.kind}={c.value!r}" for c in changes.identifiers), limit)
    out += _section("attributes set", len(updated),
                    (f"~ {label(a.ci_id)} {a.name}: {format_value(a.before)} -> {format_value(a.after)}"
                     for a in updated), limit)
    out += _section("attributes removed", len(removed),
                    (f"- {label(a.ci_id)} {a.name} (was {format_value(a.before)})" for a in removed), limit)
    out += _section("relations added", len(added),
                    (f"+ {label(r.from_ci)} -{r.type}-> {label(r.to_ci)}" for r in added), limit)
    out += _section("relations retired", len(retired),
                    (f"- {label(r.from_ci)} -{r.type}-> {label(r.to_ci)}" for r in retired), limit)
    conflicts = getattr(changes, "conflicts", [])
    out += _section("identification conflicts (nothing written for these)", len(conflicts),
                    (c.describe() for c in conflicts), limit)
    skipped = getattr(changes, "skipped", [])
    out += _section("items skipped", len(skipped),
                    (f"{s.ci_class} {s.item_ref}: {s.reason}" for s in skipped), limit)
    return "\n".join(out)
