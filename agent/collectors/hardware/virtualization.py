"""Is this a VM, a container or bare metal, and which technology?

systemd-detect-virt answers when it is there (its vocabulary: "kvm", "vmware", "microsoft",
"oracle", "xen", "docker", "podman", "lxc", "wsl", "none" ...). Otherwise `guess_virtualization`
reads the same evidence it would (container marker files, DMI vendor strings, the CPUID
hypervisor bit) and answers in the same vocabulary, so the value does not change when the
command appears or disappears. Unknown is None; "none" is a real answer (bare metal).
"""

from __future__ import annotations

from agent.context import CommandError, Context

CONTAINERS = {"docker", "podman", "lxc", "lxc-libvirt", "systemd-nspawn", "openvz", "rkt", "wsl",
              "proot", "pouch", "container-other"}
# DMI vendor/product substrings, lower-cased, to systemd-detect-virt's names; first match wins.
_DMI_HINTS = (("vmware", "vmware"), ("virtualbox", "oracle"), ("innotek", "oracle"),
              ("qemu", "qemu"), ("kvm", "kvm"), ("openstack", "kvm"), ("amazon ec2", "amazon"),
              ("google compute engine", "google"), ("parallels", "parallels"), ("bochs", "bochs"),
              ("xen", "xen"), ("bhyve", "bhyve"), ("apple virtualization", "apple"))


def container_from_files(files: dict[str, str | None]) -> str | None:
    """The container technology from marker files ({path: text, None when absent})."""
    marker = (files.get("/run/systemd/container") or "").strip()
    if marker:
        return marker
    if files.get("/run/.containerenv") is not None:
        return "podman"
    if files.get("/.dockerenv") is not None:
        return "docker"
    environ = (files.get("/proc/1/environ") or "").split("\0")
    for entry in environ:
        if entry.startswith("container=") and entry[10:]:
            return entry[10:]
    cgroup = files.get("/proc/1/cgroup") or ""
    if "/docker" in cgroup or "/kubepods" in cgroup:
        return "docker" if "/docker" in cgroup else "container-other"
    if "/lxc" in cgroup:
        return "lxc"
    if "microsoft" in (files.get("/proc/sys/kernel/osrelease") or "").lower():
        return "wsl"
    return None


def vm_from_dmi(dmi: dict[str, object], hypervisor_bit: bool, xen: str | None = None) -> str | None:
    """The hypervisor from DMI strings, /sys/hypervisor/type, then the CPUID bit ("vm")."""
    if (xen or "").strip() == "xen":
        return "xen"
    text = " ".join(str(dmi.get(k) or "") for k in ("manufacturer", "model", "bios_vendor", "board_vendor")).lower()
    if "microsoft corporation" in text and "virtual machine" in text:
        return "microsoft"
    for needle, name in _DMI_HINTS:
        if needle in text:
            return name
    return "vm" if hypervisor_bit else None


def virtualization_kind(tech: str | None) -> str | None:
    """"container", "vm" or "none" for a systemd-detect-virt answer."""
    if tech is None:
        return None
    if tech == "none":
        return "none"
    return "container" if tech in CONTAINERS else "vm"


_MARKERS = ("/run/systemd/container", "/run/.containerenv", "/.dockerenv", "/proc/1/environ",
            "/proc/1/cgroup", "/proc/sys/kernel/osrelease")


def guess_virtualization(ctx: Context, dmi: dict[str, object], hypervisor_bit: bool) -> str | None:
    container = container_from_files({path: ctx.read_file(path) for path in _MARKERS})
    return container or vm_from_dmi(dmi, hypervisor_bit, ctx.read_file("/sys/hypervisor/type"))


def detect_virtualization(ctx: Context, dmi: dict[str, object], hypervisor_bit: bool) -> str | None:
    """systemd-detect-virt's answer, else the guess from the same evidence."""
    if ctx.has_command("systemd-detect-virt"):
        try:
            return ctx.run(["systemd-detect-virt"], timeout=5).strip() or None
        except CommandError as exc:
            if getattr(exc, "returncode", None) == 1:  # it exits 1 after printing "none"
                return "none"
    return guess_virtualization(ctx, dmi, hypervisor_bit)
