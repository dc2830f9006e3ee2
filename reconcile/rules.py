"""Identification rules as data: per CI class, ordered strongest first (Open-AudIT's match rules,
ServiceNow's IRE). The engine tries them in order; the first rule whose key is bound to a CI wins.

Every key value goes through the junk denylist again (`cmdb.junk`): the collector does not trust
the edge filtering of whoever sent the report.

Decisions worth knowing before changing a rule:

- **Computer, manufacturer + serial.** The key value is "<normalised manufacturer>|<serial>",
  from `identifiers.serial` and `attributes.manufacturer`. When the manufacturer is unknown (absent
  or junk) the serial is *not used at all*, neither to match nor to claim: serials are only unique
  per vendor, white-box boards ship whole batches with one serial, and a bare short serial from
  one vendor collides with another's. Such a machine is identified by its UUID, MACs or names, and
  gets its serial key the first time a report names the manufacturer. Manufacturer spellings are
  folded ("Dell Inc." = "DELL" = "dell", "Hewlett-Packard" = "HP" = "HPE") so that the agent and a
  scanner that spell the vendor differently still meet on one key.
- **Exclusive kinds** (serial, system UUID): a machine has one of each for life. When a weaker rule
  (MAC, FQDN, hostname, agent id) points at a CI whose serial or UUID differs from the item's, the
  match is refused: that is a clone, a re-imaged template, a shared USB/dock NIC or a reused name,
  not the same machine. A board swap therefore makes a new Computer CI, on purpose.
- **MAC**: only universally administered addresses identify (`cmdb.junk.is_identity_mac` drops
  docker's 02:42:..., veth, VPN taps). An item whose MACs are bound to two different CIs matches
  neither by MAC (ambiguous), and the engine notes it.
- **Dependent classes** (model `scope`): the rules give raw values; the engine prefixes them with
  the id of the host CI ("<host ci id>/<value>"), so eth0 of one host never meets eth0 of another.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from cmdb.junk import clean, clean_mac, clean_uuid, is_identity_mac
from cmdb.model import CI_CLASSES
from cmdb.report import Item

KeyExtractor = Callable[[Item], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class IdentificationRule:
    name: str  # shown in notes and dry runs
    kind: str  # the identifier kind the key values are bound under in the store
    key_values: KeyExtractor  # the item's clean key values, () when it has none
    # A CI holds one value of an exclusive kind for life: an item and a candidate that both carry
    # one, and differ, are different CIs whatever a weaker rule says.
    exclusive: bool = False


# -- reading identifier values ---------------------------------------------------------------

def identifier_values(item: Item, kind: str) -> list[str]:
    """The raw values of one identifier kind (a report may send one string or a list)."""
    raw = item.identifiers.get(kind)
    if raw is None:
        return []
    return [raw] if isinstance(raw, str) else list(raw)


def _unique(values: list[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


# A machine re-sends the same identifier values every run (a package name, a service name):
# remembering the cleaned form saves the junk checks of a whole report.
_clean_remembered = lru_cache(maxsize=1 << 16)(clean)


def plain_keys(kind: str) -> KeyExtractor:
    def keys(item: Item) -> tuple[str, ...]:
        raw = item.identifiers.get(kind)
        if isinstance(raw, str):  # the common case: one value
            value = _clean_remembered(raw)
            return (value,) if value else ()
        return _unique([_clean_remembered(v) for v in identifier_values(item, kind)])
    return keys


# -- normalisers ------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_LEGAL_FORMS = {"inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited",
                "llc", "gmbh", "ag", "sa", "bv", "nv", "plc", "srl", "spa", "kk", "oy", "ab"}
# Folded spellings of one vendor. HP and HPE share the ProLiant serial space, and firmware updates
# changed servers' SMBIOS manufacturer from "HP" to "HPE": the key must survive that.
_MANUFACTURER_ALIASES = {
    "hewlett packard": "hp", "hewlett packard enterprise": "hp", "hpe": "hp",
    "dell computer": "dell", "dell emc": "dell",
    "lenovo group": "lenovo", "international business machines": "ibm",
    "super micro computer": "supermicro", "super micro": "supermicro",
    "asustek computer": "asus", "asustek": "asus",
    "gigabyte technology": "gigabyte", "micro star international": "msi",
    "fujitsu siemens": "fujitsu", "fujitsu client computing": "fujitsu",
    "vmware": "vmware", "innotek": "virtualbox", "oracle": "oracle",
}


def normalise_manufacturer(value: object) -> str | None:
    """Fold a vendor spelling to one token ("Dell Inc." -> "dell"), None when unknown or junk."""
    if not isinstance(value, str):
        return None
    text = clean(value)
    if text is None:
        return None
    words = _NON_ALNUM.sub(" ", text.lower()).split()
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    if not words:
        return None
    name = " ".join(words)
    return _MANUFACTURER_ALIASES.get(name, name)


def normalise_serial(value: str) -> str | None:
    """Serials compare case-insensitively and with runs of blanks folded (tools differ on both)."""
    text = clean(value)
    return " ".join(text.upper().split()) if text else None


def manufacturer_serial_keys(item: Item) -> tuple[str, ...]:
    manufacturer = normalise_manufacturer(item.attributes.get("manufacturer"))
    if manufacturer is None:
        return ()  # serial alone is not unique enough to identify (see the module docstring)
    return _unique([
        f"{manufacturer}|{serial}" for serial in map(normalise_serial, identifier_values(item, "serial"))
        if serial
    ])


def system_uuid_keys(item: Item) -> tuple[str, ...]:
    return _unique([clean_uuid(v) for v in identifier_values(item, "system_uuid")])


def identity_mac_keys(kind: str) -> KeyExtractor:
    def keys(item: Item) -> tuple[str, ...]:
        macs = (clean_mac(v) for v in identifier_values(item, kind))
        return _unique([m for m in macs if m and is_identity_mac(m)])
    return keys


# Names every fresh install answers to: never an identity.
JUNK_HOST_NAMES = {"localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6",
                   "localdomain", "(none)", "ip6-localhost", "ip6-loopback"}


def _host_name(value: str) -> str | None:
    text = clean(value)
    if text is None:
        return None
    name = text.lower().rstrip(".")
    return None if not name or name in JUNK_HOST_NAMES else name


def fqdn_keys(item: Item) -> tuple[str, ...]:
    # A name without a dot is a hostname, not an FQDN: as an FQDN it would merge unrelated hosts.
    return _unique([n for n in map(_host_name, identifier_values(item, "fqdn")) if n and "." in n])


def hostname_keys(item: Item) -> tuple[str, ...]:
    return _unique([_host_name(v) for v in identifier_values(item, "hostname")])


def ip_address_keys(item: Item) -> tuple[str, ...]:
    """Addresses in canonical form (IPv6 compressed, lower case) so two spellings are one key."""
    out: list[str | None] = []
    for raw in identifier_values(item, "address"):
        text = clean(raw)
        if text is None:
            continue
        try:
            out.append(ipaddress.ip_interface(text).ip.compressed)
        except ValueError:
            out.append(text)
    return _unique(out)


# -- the rule tables --------------------------------------------------------------------------

# How a kind's values are read when a class just lists it in `identifier_kinds`.
_KEY_BY_KIND: dict[str, KeyExtractor] = {
    "system_uuid": system_uuid_keys,
    "mac": identity_mac_keys("mac"),
    "chassis_mac": identity_mac_keys("chassis_mac"),
    "fqdn": fqdn_keys,
    "hostname": hostname_keys,
    "address": ip_address_keys,
}
_EXCLUSIVE_KINDS = {"serial", "system_uuid"}

COMPUTER_RULES: tuple[IdentificationRule, ...] = (
    IdentificationRule("manufacturer+serial", "serial", manufacturer_serial_keys, exclusive=True),
    IdentificationRule("system_uuid", "system_uuid", system_uuid_keys, exclusive=True),
    IdentificationRule("mac", "mac", identity_mac_keys("mac")),
    IdentificationRule("fqdn", "fqdn", fqdn_keys),
    IdentificationRule("hostname", "hostname", hostname_keys),
    IdentificationRule("agent_id", "agent_id", plain_keys("agent_id")),  # a reinstall changes it
)


def declared_kind_rules(class_name: str) -> tuple[IdentificationRule, ...]:
    """Rules for a class that has no table of its own: its declared identifier kinds, in order.
    Dependent classes get no exclusive kinds: their values are only unique within the host."""
    ci_class = CI_CLASSES[class_name]
    return tuple(
        IdentificationRule(kind, kind, _KEY_BY_KIND.get(kind) or plain_keys(kind),
                           exclusive=kind in _EXCLUSIVE_KINDS and not ci_class.is_dependent)
        for kind in ci_class.identifier_kinds
    )


RULES: dict[str, tuple[IdentificationRule, ...]] = {
    name: declared_kind_rules(name) for name in CI_CLASSES
}
RULES["Computer"] = COMPUTER_RULES


def rules_for(class_name: str) -> tuple[IdentificationRule, ...]:
    return RULES[class_name]


# Attributes whose junk values (cmdb.junk) are read as unknown, like identifiers: hardware facts
# where vendors put placeholders. Free-form attributes are kept as sent ("default", "none" can be
# real values of a setting).
JUNK_CHECKED_ATTRIBUTES = frozenset({
    "manufacturer", "model", "serial", "system_uuid", "asset_tag", "vendor", "product_name",
    "board_serial", "board_vendor", "chassis_serial", "chassis_vendor", "bios_vendor",
})
