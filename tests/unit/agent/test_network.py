"""Interfaces: the text parser against GLPI's recorded `ip addr show` outputs (correct where GLPI
is quirky), the JSON parser against this machine, the collector's shape and MAC identity rules."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

import pytest

from agent.collectors.network import NetworkCollector, driver_name, parse_ip_addr_text, parse_ip_json
from agent.context import CommandFailed, LocalContext
from tests.unit.agent.conftest import GLPI, RecordedContext, glpi_expected

IP_CASES = sorted(p.name for p in (GLPI / "ip").glob("ip_addr-*"))


def _parse_case(case: str):
    return parse_ip_addr_text((GLPI / "ip" / case).read_text())


@pytest.mark.parametrize("case", IP_CASES)
def test_ip_addr_text_matches_glpi_where_glpi_is_right(case):
    interfaces = {i.name: i for i in _parse_case(case)}
    entries = glpi_expected("ip", case, "interfaces")["value"]
    # GLPI names an alias address by its label (eth0:0) and a macvlan by name@parent; the
    # interface is the part before both.
    assert {e["DESCRIPTION"].split("@")[0].split(":")[0] for e in entries} == set(interfaces)
    for entry in entries:
        iface = interfaces[entry["DESCRIPTION"].split("@")[0].split(":")[0]]
        assert iface.admin_up is (entry["STATUS"] == "Up")
        glpi_mac = entry["MACADDR"]
        if glpi_mac in (None, "00:00:00:00:00:00"):
            assert iface.mac is None  # loopback/tunnels: no hardware address, not a null one
        elif glpi_mac.count(":") == 5:
            assert iface.mac == glpi_mac
        else:
            assert iface.hw_address == glpi_mac and iface.mac is None  # InfiniBand GUID
        if "IPADDRESS" in entry:
            addr = next(a for a in iface.addresses if a.address == entry["IPADDRESS"])
            assert addr.family == 4
            if ":" in entry["DESCRIPTION"]:
                assert addr.label == entry["DESCRIPTION"]
            if entry["IPMASK"]:
                net = ipaddress.ip_network(f"{addr.address}/{addr.prefix_length}", strict=False)
                assert str(net.netmask) == entry["IPMASK"]
                assert str(net.network_address) == entry["IPSUBNET"]
            else:  # point-to-point: GLPI gives up, the peer's /32 is the prefix
                assert addr.prefix_length == 32 and addr.peer
        if "IPADDRESS6" in entry:
            addr = next(a for a in iface.addresses if a.address == entry["IPADDRESS6"])
            assert addr.family == 6
            net = ipaddress.ip_network(f"{addr.address}/{addr.prefix_length}", strict=False)
            if addr.address == "::1":  # GLPI's quirk: fff0:: / :: ; the loopback is a /128
                assert addr.prefix_length == 128
            else:
                assert str(net.netmask) == str(ipaddress.ip_address(entry["IPMASK6"]))
                assert str(net.network_address) == str(ipaddress.ip_address(entry["IPSUBNET6"]))
    # Nothing beyond what GLPI saw: one address per GLPI (interface, address) entry.
    glpi_addresses = sorted(e.get("IPADDRESS") or e.get("IPADDRESS6") for e in entries
                            if "IPADDRESS" in e or "IPADDRESS6" in e)
    assert sorted(a.address for i in interfaces.values() for a in i.addresses) == glpi_addresses


def test_ip_addr_text_details():
    el8 = {i.name: i for i in _parse_case("ip_addr-el8")}
    assert el8["macvlan0"].parent == "eth0"
    assert el8["eth0"].addresses[0].label == "eth0:srv" and el8["eth0"].addresses[0].prefix_length == 32
    assert el8["eth0"].operstate == "up" and el8["eth2"].operstate == "down"
    old = {i.name: i for i in _parse_case("ip_addr-3")}
    assert old["eth0"].operstate is None  # this iproute2 does not print the state
    assert old["eth0"].link_type == "ether" and old["eth0"].mtu == 1500
    assert old["lo"].addresses[1].prefix_length == 128 and old["lo"].addresses[1].scope == "host"
    tun = {i.name: i for i in _parse_case("ip_addr-1")}["tun0"]
    assert (tun.addresses[0].address, tun.addresses[0].peer) == ("192.168.41.6", "192.168.41.5")
    ib = _parse_case("ip_addr-4")[0]
    assert ib.link_type == "infiniband" and ib.carrier is True


def _live_ip_json() -> list[dict]:
    return json.loads(subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, check=True).stdout)


def test_ip_json_on_this_machine_agrees_with_ip_text():
    ctx = LocalContext(agent_id="x")
    from_json = parse_ip_json(ctx.run(["ip", "-j", "addr", "show"]))
    from_text = parse_ip_addr_text(ctx.run(["ip", "addr", "show"]))
    assert [i.name for i in from_json] == [link["ifname"] for link in _live_ip_json()]
    assert len(from_json) == len(from_text)
    for j, t in zip(from_json, from_text, strict=True):
        assert (j.name, j.mac, j.mtu, j.operstate, j.admin_up, j.link_type) == \
            (t.name, t.mac, t.mtu, t.operstate, t.admin_up, t.link_type)
        assert [(a.address, a.prefix_length, a.scope) for a in j.addresses] == \
            [(a.address, a.prefix_length, a.scope) for a in t.addresses]


def test_ip_json_fields():
    doc = [{"ifindex": 6, "ifname": "macvlan0", "link": "eth0", "flags": ["BROADCAST", "UP", "LOWER_UP"],
            "mtu": 1500, "operstate": "UP", "link_type": "ether", "address": "4E:05:62:03:69:E7",
            "permaddr": "e4:11:5b:ed:36:0c",
            "addr_info": [{"family": "inet", "local": "10.0.0.5", "address": "10.0.0.6", "prefixlen": 32,
                           "scope": "global", "label": "macvlan0:1"}]}]
    iface = parse_ip_json(json.dumps(doc))[0]
    assert (iface.parent, iface.mac, iface.permanent_mac, iface.operstate) == \
        ("eth0", "4e:05:62:03:69:e7", "e4:11:5b:ed:36:0c", "up")
    assert (iface.addresses[0].peer, iface.addresses[0].label) == ("10.0.0.6", "macvlan0:1")


def test_collector_on_old_iproute_dedups_addresses_and_picks_identity_macs():
    text = (GLPI / "ip" / "ip_addr-5").read_text()
    ctx = RecordedContext(
        commands={("ip", "-j", "addr", "show"): CommandFailed(["ip"], 255, 'Option "-j" is unknown'),
                  ("ip", "addr", "show"): text},
        links={"/sys/class/net/lo": "../../devices/virtual/net/lo",
               "/sys/class/net/wlan0": "../../devices/pci0000:00/0000:00:1c.1/0000:03:00.0/net/wlan0",
               "/sys/class/net/eth0": "../../devices/pci0000:00/0000:00:19.0/net/eth0",
               "/sys/class/net/bond0": "../../devices/virtual/net/bond0",
               "/sys/class/net/br0": "../../devices/virtual/net/br0"})
    out = NetworkCollector().collect(ctx)
    ip_items = [i for i in out.items.values() if i.class_ == "IPAddress"]
    shared = out.items["ip:192.168.1.11"]
    assert shared.attributes["interface"] == "wlan0" and shared.attributes["label"] == "wlan0:0"
    assert len(ip_items) == 5  # six (interface, address) pairs, one address twice
    assert out.items["computer"].identifiers == {"mac": ["00:1a:6b:0d:78:03", "f0:1f:af:0f:a4:0c"]}
    assert ("if:wlan0", "HAS_IP", "ip:192.168.1.11") in out.relations
    assert ("if:eth0", "HAS_IP", "ip:192.168.1.11") not in out.relations


def test_driver_of_each_interface_from_sysfs():
    assert driver_name("../../../../bus/virtio/drivers/virtio_net") == "virtio_net"
    assert driver_name("../../../../../../bus/pci/drivers/e1000e/") == "e1000e"
    assert driver_name(None) is None and driver_name("") is None
    ctx = RecordedContext(
        commands={("ip", "addr", "show"): (GLPI / "ip" / "ip_addr-5").read_text()},
        links={"/sys/class/net/eth0/device/driver": "../../../../bus/pci/drivers/e1000e",
               "/sys/class/net/wlan0/device/driver": "../../../../../bus/pci/drivers/iwlwifi"})
    items = NetworkCollector().collect(ctx).items
    assert items["if:eth0"].attributes["driver"] == "e1000e"
    assert items["if:wlan0"].attributes["driver"] == "iwlwifi"
    assert "driver" not in items["if:lo"].attributes  # a software device has no driver link


def test_identity_macs_without_sysfs_skip_virtual_and_local_macs():
    text = (GLPI / "ip" / "ip_addr-el8").read_text()
    ctx = RecordedContext(commands={("ip", "-j", "addr", "show"): ValueError("bad json"),
                                    ("ip", "addr", "show"): text})
    out = NetworkCollector().collect(ctx)
    # macvlan0 and docker0 carry locally administered MACs; eth0-3 are burned-in.
    assert out.items["computer"].identifiers["mac"] == [
        "e4:11:5b:ed:36:0c", "e4:11:5b:ed:36:0e", "e4:11:5b:ed:36:38", "e4:11:5b:ed:36:3a"]
    assert out.items["if:lo"].attributes.get("mac") is None


def test_null_and_local_macs_never_identify():
    text = (GLPI / "ip" / "ip_addr-2").read_text()  # lo 00:00:.. and 0f:0f:.. (locally administered)
    ctx = RecordedContext(commands={("ip", "addr", "show"): text,
                                    ("ip", "-j", "addr", "show"): ValueError("no json")})
    out = NetworkCollector().collect(ctx)
    assert "mac" not in out.items["computer"].identifiers


def test_psutil_fallback_when_ip_is_missing(tmp_path):
    import psutil

    ctx = LocalContext(agent_id="x", path_env=str(tmp_path))  # an empty PATH: no `ip`
    out = NetworkCollector().collect(ctx)
    names = {i.identifiers["name"] for i in out.items.values() if i.class_ == "Interface"}
    assert names == set(psutil.net_if_addrs())
    live = {a["local"]: a["prefixlen"] for link in _live_ip_json() for a in link.get("addr_info", [])}
    for item in out.items.values():
        if item.class_ == "IPAddress":
            assert live[item.identifiers["address"]] == item.attributes["prefix_length"]


# Default gateways and DNS servers.
from agent.collectors.network import (  # noqa: E402
    RESOLV_CONF,
    RESOLVED_UPSTREAM,
    parse_default_route_json,
    parse_default_route_text,
    parse_resolv_conf,
    read_default_gateway,
    read_dns_servers,
)

GATEWAY_CASES = sorted(p.name for p in (GLPI / "ip").glob("default-gateway-*"))


@pytest.mark.parametrize("case", GATEWAY_CASES)
def test_default_gateway_text_matches_glpi(case):
    expected = glpi_expected("ip", case, "default_gateway")["value"]
    assert parse_default_route_text((GLPI / "ip" / case).read_text()) == expected


def test_default_gateway_prefers_the_lowest_metric_and_reads_multipath():
    text = ("default via 10.0.0.1 dev wlan0 proto dhcp metric 600\n"
            "default via 192.168.1.1 dev eth0 proto dhcp metric 100\n")
    assert parse_default_route_text(text) == "192.168.1.1"
    multipath = "default proto ra metric 1024 pref medium\\\tnexthop via fe80::1 dev eth0 weight 1\\\tnexthop via fe80::2 dev eth1 weight 1"
    assert parse_default_route_text(multipath) == "fe80::1"
    assert parse_default_route_text("") is None
    doc = [{"dst": "default", "gateway": "10.0.0.1", "dev": "wlan0", "metric": 600, "flags": []},
           {"dst": "default", "gateway": "192.168.1.1", "dev": "eth0", "metric": 100, "flags": []},
           {"dst": "default", "dev": "wg0", "flags": []}]  # no gateway: a point-to-point default
    assert parse_default_route_json(json.dumps(doc)) == "192.168.1.1"
    six = [{"dst": "default", "protocol": "ra", "metric": 1024, "flags": [],
            "nexthops": [{"gateway": "fe80::1", "dev": "eth0", "weight": 1, "flags": []}]}]
    assert parse_default_route_json(json.dumps(six)) == "fe80::1"
    assert parse_default_route_json("[]") is None


def test_default_gateway_falls_back_to_text_on_old_iproute():
    ctx = RecordedContext(commands={
        ("ip", "-j", "route", "show", "default"): CommandFailed(["ip"], 255, 'Option "-j" is unknown'),
        ("ip", "-o", "route", "list", "default"): (GLPI / "ip" / "default-gateway-2").read_text(),
        ("ip", "-j", "-6", "route", "show", "default"): "[]"})
    assert read_default_gateway(ctx, 4) == "192.168.1.254"
    assert read_default_gateway(ctx, 6) is None


def test_resolv_conf():
    text = ("# Generated by NetworkManager\nsearch corp.example\nnameserver 10.0.0.53\n"
            "nameserver 2001:db8::53 # secondary\nnameserver 10.0.0.53\nnameserver bogus\n"
            ";nameserver 10.9.9.9\noptions edns0\n")
    assert parse_resolv_conf(text) == ["10.0.0.53", "2001:db8::53"]
    assert parse_resolv_conf("") == []


def test_systemd_resolved_stub_reads_the_upstream_servers():
    stub = "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\n"
    upstream = "nameserver 192.168.1.1\nnameserver fd00::1\n"
    ctx = RecordedContext(files={RESOLV_CONF: stub, RESOLVED_UPSTREAM: upstream})
    assert read_dns_servers(ctx) == ["192.168.1.1", "fd00::1"]
    assert read_dns_servers(RecordedContext(files={RESOLV_CONF: stub})) == ["127.0.0.53"]


def test_this_machine_gateways_and_dns():
    ctx = LocalContext(agent_id="x")
    attrs = NetworkCollector().collect(ctx).items["computer"].attributes
    routes = json.loads(subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True,
                                       check=True).stdout)
    assert attrs.get("default_gateway") == next((r["gateway"] for r in routes if r.get("gateway")), None)
    assert attrs.get("dns_servers", []) == parse_resolv_conf(open("/etc/resolv.conf").read()) or \
        os.path.exists(RESOLVED_UPSTREAM)



def test_this_machine_drivers():
    items = NetworkCollector().collect(LocalContext(agent_id="x")).items.values()
    for item in (i for i in items if i.class_ == "Interface"):
        link = f"/sys/class/net/{item.attributes['name']}/device/driver"
        expected = os.path.basename(os.readlink(link)) if os.path.islink(link) else None
        assert item.attributes.get("driver") == expected
