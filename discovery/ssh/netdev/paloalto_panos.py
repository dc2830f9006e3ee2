"""Palo Alto PAN-OS: `show system info` ("key: value" lines). Pure function of the text."""

from __future__ import annotations

from discovery.ssh.netdev.model import DeviceFacts, key_values, value


def parse_show_system_info(text: str) -> DeviceFacts:
    fields = key_values(text)
    facts = DeviceFacts(
        hostname=value(fields.get("hostname")), model=value(fields.get("model")),
        serial=value(fields.get("serial")), os_version=value(fields.get("sw-version")),
        chassis_mac=value(fields.get("mac-address")), uptime=value(fields.get("uptime")),
    )
    for key in ("family", "ip-address", "vm-mode", "app-version", "threat-version", "vm-uuid"):
        if found := value(fields.get(key)):
            facts.extra[key.replace("-", "_")] = found
    return facts
