"""The no-change fast path: a delta run skips the collectors whose input files did not change.

Some sections are a function of a few files. dpkg's packages and their licenses follow from
/var/lib/dpkg/status (with its journal, the file lists and os-release); rpm's packages follow
from the rpm database. Running them costs most of a run (dpkg-query, ~900 copyright files read
and parsed) to find, almost always, that nothing changed. The registry names these groups and
their files (`agent.collectors.UNCHANGED_WHILE_SAME`); this module decides when a group may be
skipped and keeps what it needs in `<state_dir>/fastpath.json`.

The design, correctness first:

- **Fingerprint**: the stat of every input file or folder (device, inode, size, mtime and ctime
  in ns; "absent" for a missing one), the agent version, and the stat of the source files of
  the group's collector modules (a changed collector may say more about the same packages).
  dpkg replaces status by renaming a new file over it and journals into updates/ first, so an
  install, removal or upgrade changes the fingerprint; so does a new doc folder or file list.
  (Like make's and rsync's, a stat fingerprint would miss a same-size rewrite in place within
  one timestamp tick; dpkg and rpm do not write their databases that way.)
- **What is kept**: per group, the fingerprint taken *before* its last real collection and the
  section digest each of its collectors produced then (no content). It is written only after a
  real collection in which every collector of the group was ok; a failure removes it.
- **When a group is skipped**, all of these must hold: the report will be a delta (decided
  before collecting; a full report, which is sent every `full_every` runs, after any loss and
  first of all, always collects for real, so a cache can never hide a drift for more than
  `full_every` runs); the context can fingerprint files (LocalContext); every collector of the
  group is in this run; the fingerprint equals the stored one; and each stored digest equals the
  digest the CMDB is known to hold (the delta ledger's projection, `agent.delta.project`). The
  skipped collectors are then reported `ok, unchanged`, exactly as a real run would find them.
  Anything else, including an unreadable cache or a file that cannot be stat'ed, collects for
  real.
- **A group skips whole or runs whole**: licenses.dpkg adds to software.dpkg's items, and a
  delta made from half a group would differ from the one a real run makes.
- The fingerprint is taken before the collection, so a change during it shows at the next run.
- A report with skipped sections is not a full inventory: when the collector refuses the delta's
  base and asks for a full report, the runner collects again, for real.

Dry runs neither read nor write the cache: they always inventory for real.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import FLEETGRAPH_VERSION
from agent.collectors import InputGroup
from agent.collectors.base import Collector, Contribution
from agent.context import Context
from agent.delta import Section

FASTPATH_FILE = "fastpath.json"
_FORMAT = 1

Fingerprint = list[Any]

__all__ = ["FASTPATH_FILE", "FastPath", "InputGroup", "Unchanged"]


class Unchanged:
    """Stands in for a skipped collector: reported ok, contributes nothing; the runner marks its
    section with the stored digest, so the plan calls it unchanged."""

    def __init__(self, name: str):
        self.name = name

    def is_enabled(self, ctx: Context) -> bool:
        return True

    def collect(self, ctx: Context) -> Contribution:
        return Contribution()


def _module_file_signature(collector: Collector) -> list[Any]:
    module = sys.modules.get(type(collector).__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return [type(collector).__module__, None]
    try:
        st = os.stat(path)
    except OSError:
        return [path, None]
    return [path, st.st_size, st.st_mtime_ns]


@dataclass
class FastPath:
    """What one run may skip, and what it records for the next one."""

    state_dir: Path
    groups: list[InputGroup]
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)  # this run's, before collecting
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # fastpath.json's groups
    skipped: dict[str, Section] = field(default_factory=dict)  # collector name -> stored digest

    @classmethod
    def prepare(cls, state_dir: Path, ctx: Context, collectors: Sequence[Collector],
                groups: Iterable[InputGroup]) -> FastPath:
        """Fingerprint every group whose collectors all run here (before any collection)."""
        signature = getattr(ctx, "file_signature", None)
        by_name = {c.name: c for c in collectors}
        usable = [g for g in groups if all(name in by_name for name in g.collectors)]
        fast = cls(Path(state_dir), usable if signature is not None else [])
        for group in fast.groups:
            try:
                inputs = [[path, signature(path)] for path in group.paths]
            except OSError:
                continue  # a file that cannot be stat'ed: no fingerprint, a real collection
            code = [_module_file_signature(by_name[name]) for name in group.collectors]
            fast.fingerprints[group.key] = [_FORMAT, FLEETGRAPH_VERSION, inputs, code]
        fast.stored = _load(fast.state_dir / FASTPATH_FILE) if fast.fingerprints else {}
        return fast

    def skip_unchanged(self, known_digests: Mapping[str, str]) -> dict[str, Section]:
        """The collectors to skip in a delta run: groups whose fingerprint is the stored one and
        whose stored digests are those the CMDB holds (`known_digests`, the ledger's projection)."""
        for group in self.groups:
            fingerprint = self.fingerprints.get(group.key)
            record = self.stored.get(group.key)
            if fingerprint is None or not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
                continue
            digests = record.get("digests")
            if not isinstance(digests, dict):
                continue
            if all(isinstance(digests.get(n), str) and known_digests.get(n) == digests[n] for n in group.collectors):
                for name in group.collectors:
                    self.skipped[name] = Section(digest=digests[name], attributes={}, relations=frozenset())
        return self.skipped

    def substitute(self, collectors: Sequence[Collector]) -> list[Collector]:
        """`collectors` with the skipped ones replaced by stand-ins (the order is kept)."""
        return [Unchanged(c.name) if c.name in self.skipped else c for c in collectors]

    def record(self, statuses: Mapping[str, Any], sections: Mapping[str, Section]) -> None:
        """After a collection: keep the fingerprint and digests of every group that ran for real
        and fully succeeded; forget the groups that did not. Saved only when something changed."""
        stored = dict(self.stored)
        for group in self.groups:
            if any(name in self.skipped for name in group.collectors):
                continue  # not collected this time: what is stored still holds
            fingerprint = self.fingerprints.get(group.key)
            ok = fingerprint is not None and all(
                getattr(statuses.get(n), "status", None) == "ok" and n in sections for n in group.collectors)
            if ok:
                stored[group.key] = {"fingerprint": fingerprint,
                                     "digests": {n: sections[n].digest for n in group.collectors}}
            else:
                stored.pop(group.key, None)
        if stored != self.stored:
            _save(self.state_dir / FASTPATH_FILE, stored)
            self.stored = stored


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}  # missing or damaged: everything is collected for real, and recorded again
    groups = doc.get("groups") if isinstance(doc, dict) and doc.get("format") == _FORMAT else None
    return groups if isinstance(groups, dict) else {}


def _save(path: Path, groups: Mapping[str, Any]) -> None:
    """Written atomically, owner-only. Not fsync'ed: a cache lost in a power cut costs one real
    collection, and a torn file is refused by `_load`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps({"format": _FORMAT, "groups": groups}, sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
