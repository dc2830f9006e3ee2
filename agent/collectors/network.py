"""Network interfaces and their addresses, the default gateways and the DNS servers.

Sources, best first: `ip -j addr show` (iproute2 >= 4.13), `ip addr show` text (older iproute2,
SSH targets), psutil (no `ip` at all). The parsers are pure and return the same shape.

Where GLPI's parser is quirky this one is correct instead: an alias label (`eth0:0`) names an
address, not an interface; `macvlan0@eth0` is interface `macvlan0` on parent `eth0`; a
point-to-point address takes the peer's prefix; `::1/128` has a /128 prefix; `operstate` is the
kernel's operational state (absent when old `ip` does not print it), the UP flag is `admin_up`.

Default gateways come from `ip -j route show default` (IPv4) and `ip -j -6 route show default`,
or the text form `ip -o route list default` on older iproute2; DNS servers from
/etc/resolv.conf, or, when that only names systemd-resolved's local stub (127.0.0.53), from the
upstream list systemd-resolved keeps in /run/systemd/resolve/resolv.conf.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from dataclasses import dataclass, field

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.context import CommandError, Context
from cmdb.junk import clean_mac, is_identity_mac

# Names of software-made interfaces, used only when sysfs cannot say which ones are virtual.
VIRTUAL_NAME = re.compile(r"^(lo|docker|veth|br-|virbr|vnet|tun|tap|bond|team|dummy|ifb|wg|"
                          r"cali|flannel|cni|kube|zt|vxlan|gre|sit|ip6tnl|tailscale)")


@dataclass
class IfAddress:
    address: str
    prefix_length: int | None
    family: int  # 4 or 6
    scope: str | None = None
    label: str | None = None  # the alias label (eth0:0) when it differs from the interface
    peer: str | None = None


@dataclass
class NetInterface:
    name: str
    parent: str | None = None  # the lower device of macvlan/vlan/veth (name@parent)
    mac: str | None = None  # a 6-byte hardware address, canonical; None for lo/tun/sit
    permanent_mac: str | None = None  # the burned-in address when bonding/teaming replaced it
    hw_address: str | None = None  # any other link-layer address (InfiniBand GUIDs: 20 bytes)
    link_type: str | None = None
    mtu: int | None = None
    operstate: str | None = None
    admin_up: bool | None = None
    carrier: bool | None = None
    addresses: list[IfAddress] = field(default_factory=list)


def _link_address(iface: NetInterface, raw: str | None) -> None:
    if not raw:
        return
    mac = clean_mac(raw) if raw.count(":") == 5 else None
    if mac:
        iface.mac = mac
    elif iface.link_type not in ("loopback", "none", "sit", "ipip", "gre") and raw.count(":") > 5:
        iface.hw_address = raw.lower()


def _address(local: str, prefix: int | None, scope: str | None, label: str | None,
             peer: str | None, ifname: str) -> IfAddress | None:
    try:
        ip = ipaddress.ip_address(local.split("%", 1)[0])
    except ValueError:
        return None
    return IfAddress(address=ip.compressed, prefix_length=prefix, family=ip.version, scope=scope,
                     label=label if label and label != ifname else None, peer=peer)


def parse_ip_json(text: str) -> list[NetInterface]:
    """`ip -j addr show` output."""
    result = []
    for link in json.loads(text or "[]"):
        if "ifname" not in link:
            continue
        flags = set(link.get("flags") or [])
        iface = NetInterface(
            name=link["ifname"], parent=link.get("link"), link_type=link.get("link_type"),
            mtu=link.get("mtu"), operstate=(link.get("operstate") or "").lower() or None,
            admin_up="UP" in flags, carrier="LOWER_UP" in flags,
        )
        _link_address(iface, link.get("address"))
        iface.permanent_mac = clean_mac(link.get("permaddr"))
        for info in link.get("addr_info") or []:
            family = info.get("family")
            if family not in ("inet", "inet6") or not info.get("local"):
                continue
            addr = _address(info["local"], info.get("prefixlen"), info.get("scope"),
                            info.get("label"), info.get("address"), iface.name)
            if addr:
                iface.addresses.append(addr)
        result.append(iface)
    return result


_HEADER = re.compile(r"^\d+:\s+(?P<name>[^:@\s]+)(?:@(?P<parent>[^:\s]+))?:\s+<(?P<flags>[^>]*)>(?P<rest>.*)$")
_INET = re.compile(r"^\s+(?P<family>inet6?)\s+(?P<local>[0-9a-fA-F.:]+)(?:/(?P<prefix>\d+))?"
                   r"(?:\s+peer\s+(?P<peer>[0-9a-fA-F.:]+)(?:/(?P<peer_prefix>\d+))?)?(?P<rest>.*)$")
# Words of an inet line that are not the label: flags and the values of keyed fields.
_INET_WORDS = {"dynamic", "noprefixroute", "secondary", "temporary", "deprecated", "tentative",
               "permanent", "mngtmpaddr", "nodad", "optimistic", "home", "dadfailed", "stable-privacy"}


def _keyed(words: list[str], key: str) -> str | None:
    return words[words.index(key) + 1] if key in words[:-1] else None


def parse_ip_addr_text(text: str) -> list[NetInterface]:
    """`ip addr show` (text) output, any iproute2 version."""
    result: list[NetInterface] = []
    iface: NetInterface | None = None
    for line in text.splitlines():
        if header := _HEADER.match(line):
            words = header["rest"].split()
            flags = set(header["flags"].split(","))
            mtu = _keyed(words, "mtu")
            iface = NetInterface(
                name=header["name"], parent=header["parent"], mtu=int(mtu) if mtu and mtu.isdigit() else None,
                operstate=(_keyed(words, "state") or "").lower() or None,
                admin_up="UP" in flags, carrier="LOWER_UP" in flags,
            )
            result.append(iface)
            continue
        if iface is None:
            continue
        stripped = line.strip()
        if stripped.startswith("link/"):
            words = stripped.split()
            iface.link_type = words[0][5:]
            _link_address(iface, words[1] if len(words) > 1 and words[1] != "brd" else None)
            iface.permanent_mac = clean_mac(_keyed(words, "permaddr"))
            continue
        if inet := _INET.match(line):
            words = inet["rest"].split()
            scope = _keyed(words, "scope")
            rest = [w for i, w in enumerate(words) if w not in _INET_WORDS
                    and (i == 0 or words[i - 1] not in ("scope", "brd", "metric", "proto"))
                    and w not in ("scope", "brd", "metric", "proto")]
            label = rest[-1] if inet["family"] == "inet" and rest else None
            prefix = inet["prefix"] or inet["peer_prefix"]
            addr = _address(inet["local"], int(prefix) if prefix else None, scope, label,
                            inet["peer"], iface.name)
            if addr:
                iface.addresses.append(addr)
    return result


def interfaces_from_psutil() -> list[NetInterface]:
    """The local machine's interfaces from psutil, when `ip` is missing."""
    import psutil

    stats = psutil.net_if_stats()
    result = []
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        iface = NetInterface(name=name, mtu=st.mtu if st else None,
                             admin_up=st.isup if st else None,
                             operstate=("up" if st.isup else "down") if st else None)
        for a in addrs:
            if a.family == psutil.AF_LINK:
                _link_address(iface, a.address)
            elif a.family in (socket.AF_INET, socket.AF_INET6):
                prefix = None
                if a.netmask:
                    try:
                        prefix = ipaddress.ip_network(f"0.0.0.0/{a.netmask}").prefixlen \
                            if a.family == socket.AF_INET else \
                            bin(int(ipaddress.IPv6Address(a.netmask))).count("1")
                    except ValueError:
                        prefix = None
                if addr := _address(a.address, prefix, None, None, None, name):
                    iface.addresses.append(addr)
        result.append(iface)
    return result


def read_interfaces(ctx: Context) -> list[NetInterface]:
    if ctx.has_command("ip"):
        try:
            return parse_ip_json(ctx.run(["ip", "-j", "addr", "show"]))
        except (CommandError, ValueError):
            pass  # iproute2 older than 4.13 has no -j (or prints it broken): read the text form
        return parse_ip_addr_text(ctx.run(["ip", "addr", "show"]))
    if ctx.local:
        return interfaces_from_psutil()
    raise CommandError(["ip"], "command not found and the host is remote: no interface source")


def _route_metric(route: dict) -> int:
    metric = route.get("metric")
    return metric if isinstance(metric, int) else 0


def parse_default_route_json(text: str) -> str | None:
    """The gateway of the preferred default route (lowest metric, then first listed) in
    `ip -j route show default` output; multipath routes give their first next hop."""
    best: tuple[int, str] | None = None
    for route in json.loads(text or "[]"):
        if not isinstance(route, dict) or route.get("dst", "default") != "default":
            continue
        gateway = route.get("gateway")
        if not gateway:
            gateway = next((hop.get("gateway") for hop in route.get("nexthops") or [] if hop.get("gateway")), None)
        gateway = _valid_ip(gateway)
        if gateway and (best is None or _route_metric(route) < best[0]):
            best = (_route_metric(route), gateway)
    return best[1] if best else None


def parse_default_route_text(text: str) -> str | None:
    """The gateway of the preferred default route in `ip -o route list default` output
    (one route per line; `ip route` prints "default via 192.168.1.254 dev eth0 ... metric 100")."""
    best: tuple[int, str] | None = None
    for line in text.splitlines():
        words = line.replace("\\", " ").split()
        if not words or words[0] != "default":
            continue
        gateway = _valid_ip(_keyed(words, "via"))
        metric = _keyed(words, "metric")
        rank = int(metric) if metric and metric.isdigit() else 0
        if gateway and (best is None or rank < best[0]):
            best = (rank, gateway)
    return best[1] if best else None


def _valid_ip(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).compressed
    except ValueError:
        return None


def read_default_gateway(ctx: Context, family: int) -> str | None:
    """The default gateway of one address family (4 or 6), or None when there is none."""
    flag = ["-6"] if family == 6 else []
    try:
        return parse_default_route_json(ctx.run(["ip", "-j", *flag, "route", "show", "default"]))
    except (CommandError, ValueError):
        pass  # no -j before iproute2 4.13: the text form says the same
    try:
        return parse_default_route_text(ctx.run(["ip", "-o", *flag, "route", "list", "default"]))
    except CommandError:
        return None


RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"
RESOLVED_STUBS = {"127.0.0.53", "127.0.0.54"}


def parse_resolv_conf(text: str) -> list[str]:
    """The `nameserver` addresses of a resolv.conf, in order, without duplicates or junk."""
    servers: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            address = _valid_ip(words[1])
            if address and address not in servers:
                servers.append(address)
    return servers


def read_dns_servers(ctx: Context) -> list[str]:
    servers = parse_resolv_conf(ctx.read_file(RESOLV_CONF) or "")
    if servers and set(servers) <= RESOLVED_STUBS:
        upstream = ctx.read_file(RESOLVED_UPSTREAM)
        if upstream is not None:
            return parse_resolv_conf(upstream)
    return servers


def is_virtual(ctx: Context, iface: NetInterface) -> bool:
    """Software-made (lo, bridge, bond, veth, tunnel...) rather than a NIC: sysfs says so when
    it can (virtual devices live under /sys/devices/virtual); otherwise guess from the name."""
    target = ctx.read_link(f"/sys/class/net/{iface.name}")
    if target is not None:
        return "/devices/virtual/" in target
    return (iface.link_type not in (None, "ether", "infiniband")) or bool(VIRTUAL_NAME.match(iface.name))


def driver_name(link: str | None) -> str | None:
    """The kernel driver from the target of /sys/class/net/X/device/driver
    ("../../../../bus/virtio/drivers/virtio_net" -> "virtio_net"); software devices have none."""
    name = (link or "").rstrip("/").rsplit("/", 1)[-1]
    return name or None


def identity_macs(ctx: Context, interfaces: list[NetInterface]) -> list[str]:
    """Sorted MACs fit to identify this machine: burned-in addresses of hardware NICs."""
    macs = set()
    for iface in interfaces:
        mac = iface.permanent_mac or iface.mac
        if mac and is_identity_mac(mac) and not is_virtual(ctx, iface):
            macs.add(mac)
    return sorted(macs)


class NetworkCollector:
    name = "network"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.has_command("ip") or ctx.local

    def collect(self, ctx: Context) -> Contribution:
        interfaces = read_interfaces(ctx)
        has_ip = ctx.has_command("ip")
        out = Contribution()
        out.computer(identifiers={"mac": identity_macs(ctx, interfaces)}, attributes={
            "default_gateway": read_default_gateway(ctx, 4) if has_ip else None,
            "default_gateway6": read_default_gateway(ctx, 6) if has_ip else None,
            "dns_servers": read_dns_servers(ctx),
        })
        for iface in interfaces:
            virtual = is_virtual(ctx, iface)
            if_ref = out.add("Interface", f"if:{iface.name}", {"name": iface.name}, {
                "name": iface.name, "mac": iface.mac, "permanent_mac": iface.permanent_mac,
                "hw_address": iface.hw_address, "mtu": iface.mtu, "operstate": iface.operstate,
                "admin_up": iface.admin_up, "carrier": iface.carrier, "type": iface.link_type,
                "parent": iface.parent, "virtual": virtual,
                "driver": driver_name(ctx.read_link(f"/sys/class/net/{iface.name}/device/driver")),
            })
            out.relate(COMPUTER_REF, "HAS_INTERFACE", if_ref)
            for addr in iface.addresses:
                ip_ref = f"ip:{addr.address}"
                if ip_ref in out.items:
                    continue  # the same address on two interfaces: the first one keeps it
                out.add("IPAddress", ip_ref, {"address": addr.address}, {
                    "address": addr.address, "prefix_length": addr.prefix_length,
                    "family": addr.family, "interface": iface.name, "scope": addr.scope,
                    "label": addr.label, "peer": addr.peer,
                })
                out.relate(if_ref, "HAS_IP", ip_ref)
        return out
