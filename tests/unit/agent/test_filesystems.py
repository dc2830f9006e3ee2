"""File systems: hand-made /proc/mounts of a workstation and a container (pseudo, snap, overlay
and bind mounts left out, network shares listed without size), and this machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.collectors.hardware.filesystems import FilesystemCollector, parse_df, parse_mounts, real_mounts
from agent.context import LocalContext
from tests.unit.agent.conftest import RecordedContext

MOUNTS = Path(__file__).resolve().parents[2] / "fixtures" / "host" / "handmade" / "mounts"
CASES = sorted(p.name.removesuffix(".expected.json") for p in MOUNTS.glob("*.expected.json"))


def _recorded(case: str) -> RecordedContext:
    text = (MOUNTS / case).read_text()
    points = [m.mount for m in real_mounts(parse_mounts(text)) if not m.network]
    return RecordedContext(files={"/proc/mounts": text},
                           commands={("df", "-P", "-k", "--", *points): (MOUNTS / f"{case}.df").read_text()})


@pytest.mark.parametrize("case", CASES)
def test_recorded_mounts(case):
    expected = json.loads((MOUNTS / f"{case}.expected.json").read_text())["file_systems"]
    out = FilesystemCollector().collect(_recorded(case))
    items = [i for i in out.items.values() if i.class_ == "FileSystem"]
    assert [i.attributes for i in items] == expected
    for item in items:
        assert item.identifiers == {"mount": item.attributes["mount"]}
        assert ("computer", "HAS_FILESYSTEM", item.ref) in out.relations


def test_escaped_names_and_refs():
    out = FilesystemCollector().collect(_recorded("workstation"))
    stick = next(i for i in out.items.values() if i.attributes.get("mount") == "/media/alice/MY STICK")
    assert stick.ref == "fs:/media/alice/MY_STICK"
    assert parse_mounts("a /x\\011y ext4 ro 0 0\n")[0].mount == "/x\ty" and parse_mounts("a /x\\011y ext4 ro")[0].read_only


def test_df_parser_keeps_spaces_in_mount_points():
    assert parse_df((MOUNTS / "workstation.df").read_text())["/media/alice/MY STICK"] == 30284752 * 1024
    assert parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\nbad line\n") == {}


def test_failing_df_leaves_sizes_absent():
    ctx = RecordedContext(files={"/proc/mounts": (MOUNTS / "workstation").read_text()})  # no df at all
    items = [i for i in FilesystemCollector().collect(ctx).items.values()]
    assert items and all("size_bytes" not in i.attributes for i in items)


def test_this_machine_sizes_are_stable():
    """Two runs in a row give identical items: no used or free space, nothing volatile."""
    ctx = LocalContext(agent_id="x")
    first, second = FilesystemCollector().collect(ctx), FilesystemCollector().collect(ctx)
    assert {r: i.attributes for r, i in first.items.items()} == {r: i.attributes for r, i in second.items.items()}
    root = next(i for i in first.items.values() if i.attributes["mount"] == "/")
    st = os.statvfs("/")
    assert root.attributes["size_bytes"] == st.f_blocks * st.f_frsize
    assert not any(i.attributes["fs_type"] in ("proc", "sysfs", "tmpfs", "cgroup", "devpts")
                   for i in first.items.values())
