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
- **System UUID byte order** (`EQUIVALENT_SPELLINGS`): SMBIOS before 2.6 left the byte order of
  the first three UUID fields open, and readers still differ (old dmidecode, some WMI paths read
  4c4c4544-0039-3510-... where dmidecode >= 2.10 reads 44454c4c-3900-1035-...). A UUID matches a
  CI holding it in either order, the exact spelling first; the swapped spelling is only another
  way to read the same key, so a stronger exclusive key (manufacturer + serial) that differs still
  refuses the match (two machines whose UUIDs collide once swapped stay two), and a CI holding one
  spelling does not also claim the other.
- **Weak kinds** (`WEAK_KINDS`): names anyone can give any machine. A weak key matches only when
  it is unique on both sides: exactly one CI holds it (the CI it is bound to, and no *active* CI
  recorded as sharing it) and the report states it for exactly one item of the class. The store
  binds a value to one CI only; a second CI stating a weak value bound elsewhere is recorded as
  sharing it (`Store.shared_identifiers`), which makes the value ambiguous for weak matching until
  the sharers are retired. A retired holder with an active sharer stays ambiguous too: the name is
  not handed over on a guess.
- **Sources barred from creating** (`BARRED_FROM_CREATING`): a source that sees a host only from
  the network (nmap: an address, a reverse-DNS name, open ports) enriches the CI it matches and
  creates no host CI: its items that match none are skipped with a note, and what hangs off them
  with them. It still creates the dependent CIs (an address, a service) of a host it matched.
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
    # A weak key matches only when unique on both sides (see WEAK_KINDS).
    weak: bool = False
    # Other spellings of one key value, looked up with it (see EQUIVALENT_SPELLINGS); None: none.
    equivalents: Callable[[str], tuple[str, ...]] | None = None


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


_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def uuid_byte_swapped(value: str) -> tuple[str, ...]:
    """The same SMBIOS UUID read in the other byte order: its first three fields (time_low, time_mid,
    time_hi) byte-reversed. () when the value is no canonical UUID or reads the same both ways."""
    if not _CANONICAL_UUID.match(value):
        return ()
    fields = value.split("-")
    for i in range(3):
        fields[i] = "".join(reversed([fields[i][j:j + 2] for j in range(0, len(fields[i]), 2)]))
    swapped = "-".join(fields)
    return () if swapped == value else (swapped,)


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

# Per class, the identifier kinds that are *weak*: names that DNS, DHCP, an admin or a reverse
# lookup give any machine. A weak key matches only when exactly one CI of the class holds it and
# the report states it for exactly one item (see the module docstring). Stronger kinds (serial,
# UUID, MAC, agent id) have their own guards (exclusive kinds, MAC ambiguity). A class not listed
# has no weak kind.
WEAK_KINDS: dict[str, frozenset[str]] = {
    "Computer": frozenset({"fqdn", "hostname"}),
    "VirtualMachine": frozenset({"fqdn", "hostname"}),
    "NetworkDevice": frozenset({"sysname_ip"}),
    "Printer": frozenset({"sysname_ip"}),
}

# Per identifier kind, the other spellings of one key value that are looked up with it (and match
# it when nothing stronger contradicts): the byte-swapped reading of an SMBIOS UUID.
EQUIVALENT_SPELLINGS: dict[str, Callable[[str], tuple[str, ...]]] = {
    "system_uuid": uuid_byte_swapped,
}

# Per source kind, the classes it may not create: its items of these classes that match no CI are
# skipped (noted in the change set's `skipped`), and the items scoped by them with them. nmap sees
# a host from the network only (an address, a reverse-DNS name, open ports, an OS guess): it
# enriches a host it matches uniquely, and waits for an agent or a credentialed scan to create it.
# A source kind not listed (agent, ssh, snmp, ocs, fusion) may create every class.
BARRED_FROM_CREATING: dict[str, frozenset[str]] = {
    "nmap": frozenset({"Computer", "VirtualMachine", "NetworkDevice", "Printer"}),
}


def may_create(source_kind: str, class_name: str) -> bool:
    """Whether a report of `source_kind` may create a CI of the class when its item matches none."""
    return class_name not in BARRED_FROM_CREATING.get(source_kind, frozenset())


def _rule(class_name: str, name: str, kind: str, key_values: KeyExtractor,
          exclusive: bool = False) -> IdentificationRule:
    return IdentificationRule(name, kind, key_values, exclusive=exclusive,
                              weak=kind in WEAK_KINDS.get(class_name, frozenset()),
                              equivalents=EQUIVALENT_SPELLINGS.get(kind))


COMPUTER_RULES: tuple[IdentificationRule, ...] = (
    _rule("Computer", "manufacturer+serial", "serial", manufacturer_serial_keys, exclusive=True),
    _rule("Computer", "system_uuid", "system_uuid", system_uuid_keys, exclusive=True),
    _rule("Computer", "mac", "mac", identity_mac_keys("mac")),
    _rule("Computer", "fqdn", "fqdn", fqdn_keys),
    _rule("Computer", "hostname", "hostname", hostname_keys),
    _rule("Computer", "agent_id", "agent_id", plain_keys("agent_id")),  # a reinstall changes it
)


def declared_kind_rules(class_name: str) -> tuple[IdentificationRule, ...]:
    """Rules for a class that has no table of its own: its declared identifier kinds, in order.
    Dependent classes get no exclusive kinds: their values are only unique within the host."""
    ci_class = CI_CLASSES[class_name]
    return tuple(
        _rule(class_name, kind, kind, _KEY_BY_KIND.get(kind) or plain_keys(kind),
              exclusive=kind in _EXCLUSIVE_KINDS and not ci_class.is_dependent)
        for kind in ci_class.identifier_kinds
    )


RULES: dict[str, tuple[IdentificationRule, ...]] = {
    name: declared_kind_rules(name) for name in CI_CLASSES
}
RULES["Computer"] = COMPUTER_RULES
# The tables name real classes and kinds (a typo would silently disable a rule).
assert all(kinds <= set(CI_CLASSES[c].identifier_kinds) for c, kinds in WEAK_KINDS.items())
assert all(c in CI_CLASSES for barred in BARRED_FROM_CREATING.values() for c in barred)


def rules_for(class_name: str) -> tuple[IdentificationRule, ...]:
    return RULES[class_name]


# Attributes whose junk values (cmdb.junk) are read as unknown, like identifiers: hardware facts
# where vendors put placeholders. Free-form attributes are kept as sent ("default", "none" can be
# real values of a setting).
JUNK_CHECKED_ATTRIBUTES = frozenset({
    "manufacturer", "model", "serial", "system_uuid", "asset_tag", "vendor", "product_name",
    "board_serial", "board_vendor", "chassis_serial", "chassis_vendor", "bios_vendor",
})
