"""File systems: hand-made /proc/mounts of a workstation and a container (pseudo, snap, overlay
and bind mounts left out, network shares listed without size), and this machine (used and free
space are measurements: they may differ between two runs, nothing else may)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.collectors.hardware.filesystems import (
    FilesystemCollector,
    Usage,
    parse_df,
    parse_mounts,
    real_mounts,
    usage_from_statvfs,
)
from agent.context import LocalContext
from cmdb.model import CI_CLASSES
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
    assert parse_df((MOUNTS / "workstation.df").read_text())["/media/alice/MY STICK"] == \
        Usage(30284752 * 1024, used_bytes=1452080 * 1024, free_bytes=28832672 * 1024)
    assert parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                    "fuse 1000 - - - /mnt/x\n") == {"/mnt/x": Usage(1024000)}
    assert parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\nbad line\n") == {}


def test_failing_df_leaves_sizes_absent():
    ctx = RecordedContext(files={"/proc/mounts": (MOUNTS / "workstation").read_text()})  # no df at all
    items = [i for i in FilesystemCollector().collect(ctx).items.values()]
    assert items and all("size_bytes" not in i.attributes for i in items)


def test_statvfs_usage_counts_like_df():
    st = os.statvfs_result((4096, 4096, 1000, 300, 250, 0, 0, 0, 0, 255))  # 5% reserved for root
    assert usage_from_statvfs(st) == Usage(4096000, used_bytes=700 * 4096, free_bytes=250 * 4096)


def test_this_machine_sizes_are_stable():
    """Two runs in a row give identical items but for the measurements (used and free space)."""
    ctx = LocalContext(agent_id="x")
    first, second = FilesystemCollector().collect(ctx), FilesystemCollector().collect(ctx)
    measured = CI_CLASSES["FileSystem"].measurements
    assert measured == {"used_bytes", "free_bytes"}

    def stable(out):
        return {r: {k: v for k, v in i.attributes.items() if k not in measured} for r, i in out.items.items()}

    assert stable(first) == stable(second)
    root = next(i for i in first.items.values() if i.attributes["mount"] == "/")
    st = os.statvfs("/")
    assert root.attributes["size_bytes"] == st.f_blocks * st.f_frsize
    assert 0 <= root.attributes["free_bytes"] <= root.attributes["size_bytes"]
    assert root.attributes["used_bytes"] + root.attributes["free_bytes"] <= root.attributes["size_bytes"]
    assert not any(i.attributes["fs_type"] in ("proc", "sysfs", "tmpfs", "cgroup", "devpts")
                   for i in first.items.values())
