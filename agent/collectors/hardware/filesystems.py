"""Mounted file systems: one FileSystem item per real mount, HAS_FILESYSTEM from the Computer.

Mounts come from /proc/mounts (pure parser); sizes and fill from statvfs on this machine, from
`df -P -k -- <mount points>` elsewhere (an SSH host). Pseudo file systems (proc, sysfs, tmpfs,
cgroup, snap squashfs, container overlays...) are left out; network file systems are listed
without a size, and nothing ever stats them, so a dead NFS server cannot hang the inventory.

Used and free space (`used_bytes`, `free_bytes`, as df counts them: free is what an unprivileged
user may still write) change on every run: cmdb/model.py declares them *measurements* of
FileSystem, readings kept as current values without history, drift or delta of their own, so a
second run on an unchanged machine still changes nothing. Capacity (`size_bytes`) is an ordinary
attribute. ZFS datasets report no size: theirs is the pool's free space plus their own use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.context import CommandError, Context

PSEUDO_FS = {
    "proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "ramfs", "cgroup", "cgroup2", "securityfs",
    "pstore", "bpf", "tracefs", "debugfs", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs",
    "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs", "nfsd", "rootfs", "devfs",
    "usbfs", "fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal", "fuse.snapfuse", "fuse.doc",
    "sockfs", "pipefs", "anon_inodefs", "zsmalloc", "xenfs", "vboxsf", "overlayfs",
}
# Layers of images and snaps: only interesting as the root of a container or a live system.
ROOT_ONLY_FS = {"overlay", "aufs", "squashfs"}
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "fuse.sshfs", "glusterfs",
              "fuse.glusterfs", "ceph", "fuse.ceph", "afs", "davfs", "fuse.s3fs", "lustre", "gpfs",
              "9p", "virtiofs", "fuse.rclone"}
VARIABLE_SIZE_FS = {"zfs"}  # a dataset's size is its pool's free space plus its own use
PSEUDO_PREFIXES = ("/proc/", "/sys/", "/dev/")
# Files container engines bind-mount into every container (docker, podman, kubernetes).
CONTAINER_BIND_FILES = {"/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/termination-log"}
DF_TIMEOUT = 10.0
_OCTAL = re.compile(r"\\([0-7]{3})")
_DF_LINE = re.compile(r"^(?P<device>.+?)\s+(?P<blocks>\d+)\s+(?P<used>\d+|-)\s+(?P<avail>\d+|-)\s+"
                      r"(?P<capacity>\d+%|-)\s+(?P<mount>/.*)$")
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]")


@dataclass(frozen=True)
class Usage:
    size_bytes: int
    used_bytes: int | None = None
    free_bytes: int | None = None  # available to unprivileged users (df's "Available")


@dataclass(frozen=True)
class Mount:
    device: str
    mount: str
    fs_type: str
    options: tuple[str, ...] = ()

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def network(self) -> bool:
        return self.fs_type in NETWORK_FS or self.device.startswith("//")


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m[1], 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """/proc/mounts (or /etc/mtab): every line, spaces in names (\\040) decoded."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mounts.append(Mount(_unescape(fields[0]), _unescape(fields[1]), fields[2],
                            tuple(fields[3].split(",")) if len(fields) > 3 else ()))
    return mounts


def real_mounts(mounts: list[Mount]) -> list[Mount]:
    """The mounts worth an item: no pseudo file systems, no image layers except a root one, no
    second view of a block device already listed (bind mounts; btrfs subvolumes are kept), and
    for a mount point mounted over, the last (visible) mount only."""
    visible: dict[str, Mount] = {}
    for m in mounts:
        if m.fs_type in PSEUDO_FS or m.mount.startswith(PSEUDO_PREFIXES) or m.mount in ("/proc", "/sys", "/dev"):
            continue
        if (m.fs_type in ROOT_ONLY_FS and m.mount != "/") or m.mount in CONTAINER_BIND_FILES:
            continue
        visible.pop(m.mount, None)
        visible[m.mount] = m
    result, devices = [], set()
    for m in visible.values():
        if m.device.startswith("/dev/") and m.fs_type != "btrfs":
            if m.device in devices:
                continue
            devices.add(m.device)
        result.append(m)
    return result


def _kib(field: str) -> int | None:
    return int(field) * 1024 if field.isdigit() else None


def parse_df(text: str) -> dict[str, Usage]:
    """`df -P -k` output: {mount point: size, used and available bytes}."""
    usage = {}
    for line in text.splitlines()[1:]:
        if match := _DF_LINE.match(line.rstrip()):
            usage[match["mount"]] = Usage(int(match["blocks"]) * 1024, _kib(match["used"]),
                                          _kib(match["avail"]))
    return usage


def usage_from_statvfs(st: os.statvfs_result) -> Usage:
    """df's arithmetic: used = total - free blocks; available = blocks free to non-root users."""
    return Usage(st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize,
                 st.f_bavail * st.f_frsize)


def _statvfs_usage(mount_points: list[str]) -> dict[str, Usage]:
    usage = {}
    for path in mount_points:
        try:
            usage[path] = usage_from_statvfs(os.statvfs(path))
        except OSError:
            continue
    return usage


def read_usage(ctx: Context, mounts: list[Mount]) -> dict[str, Usage]:
    """Size and fill of the local (non-network) mounts; {} when nothing can say."""
    points = [m.mount for m in mounts if not m.network and m.fs_type not in VARIABLE_SIZE_FS]
    if not points:
        return {}
    if ctx.local:
        return _statvfs_usage(points)
    try:
        return parse_df(ctx.run(["df", "-P", "-k", "--", *points], timeout=DF_TIMEOUT))
    except CommandError:
        return {}


def mount_ref(mount: str) -> str:
    return "fs:" + _REF_UNSAFE.sub("_", mount)


class FilesystemCollector:
    name = "filesystems"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.read_file("/proc/mounts") is not None

    def collect(self, ctx: Context) -> Contribution:
        mounts = real_mounts(parse_mounts(ctx.read_file("/proc/mounts") or ""))
        usage = read_usage(ctx, mounts)
        out = Contribution()
        for m in mounts:
            ref = mount_ref(m.mount)
            fill = usage.get(m.mount) or Usage(0)
            while ref in out.items:  # two mount points that differ only by unsafe characters
                ref += "_"
            out.add("FileSystem", ref, {"mount": m.mount}, {
                "mount": m.mount, "device": m.device, "fs_type": m.fs_type,
                "size_bytes": fill.size_bytes or None, "read_only": m.read_only,
                "network": m.network or None,
                # measurements (cmdb.model): readings, not changes
                "used_bytes": fill.used_bytes if fill.size_bytes else None,
                "free_bytes": fill.free_bytes if fill.size_bytes else None,
            })
            out.relate(COMPUTER_REF, "HAS_FILESYSTEM", ref)
        return out
