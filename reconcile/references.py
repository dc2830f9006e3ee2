"""References: items a source sends to point at a CI it does not own (`Item.reference`), resolved
to existing CIs; a reference never creates a CI, never gets attributes and never claims
identifiers.

Today's references are the remote ends of outbound connections: IPAddress `remote:<addr>` items,
the target of DEPENDS_ON relations that carry `remote_port` (agent/collectors/connections.py).
A relation to a reference is re-targeted to the CI that owns the address:

1. the one *active* IPAddress CI whose `address` attribute is the reference's address (none:
   unknown address; several: private addresses overlapping across sites) — otherwise the
   relation is dropped and the reference is noted in `skipped` with the reason;
2. the host of that IPAddress: the first non-dependent CI up its scope relations (HAS_IP,
   HAS_INTERFACE). Identification already walked that path and wrote it into the IPAddress's
   scoped identifier ("<host ci id>/<address>"), so one `identifiers_of` read finds every host;
3. on that host, the active Service listening on the relation's `remote_port` ("<host>/tcp/<port>"
   is the Service's scoped identifier), else the host itself.

Reads per report with references, whatever their number: one `find_by_attribute`, one
`identifiers_of`, one `resolve_identifiers`, and a `get_ci` per distinct target (its state).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cmdb.report import Item, Report
from cmdb.store import Store
from reconcile.identify import Identification
from reconcile.result import SkippedItem
from reconcile.rules import ip_address_keys

RelationKey = tuple[str, str, str]  # (type, from ci, to ci), as reconcile.merge
RESOLVABLE_CLASSES = ("IPAddress",)


@dataclass(slots=True)
class ResolvedReferences:
    relations: list[RelationKey] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)


def _address_holders(store: Store, references: list[Item], out: ResolvedReferences) -> dict[str, tuple[str, str]]:
    """{reference ref: (IPAddress ci, address)} for references held by exactly one active CI."""
    addresses_of = {item.ref: ip_address_keys(item) for item in references}
    wanted = sorted({a for addresses in addresses_of.values() for a in addresses})
    found = store.find_by_attribute("IPAddress", "address", wanted) if wanted else {}
    held: dict[str, tuple[str, str]] = {}
    for item in references:
        addresses = addresses_of[item.ref]
        if not addresses:
            out.skipped.append(SkippedItem(item.ref, item.class_, "reference without an address identifier"))
            continue
        holders = list(dict.fromkeys(ci for a in addresses for ci in found.get(a, [])))
        shown = ", ".join(addresses)
        if not holders:
            out.skipped.append(SkippedItem(item.ref, item.class_, f"reference to {shown}: no active IPAddress CI "
                                           "holds it; its relations are dropped until a source reports it"))
        elif len(holders) > 1:
            out.skipped.append(SkippedItem(item.ref, item.class_, f"reference to {shown}: ambiguous, held by "
                                           f"{len(holders)} IPAddress CIs ({', '.join(holders[:5])}); "
                                           "its relations are dropped"))
        else:
            held[item.ref] = (holders[0], addresses[0])
    return held


def _hosts_of(store: Store, ip_cis: Iterable[str]) -> dict[str, str]:
    """{IPAddress ci: host ci} from the scoped identifiers ("<host ci id>/<address>")."""
    hosts = {}
    for ci_id, identifiers in store.identifiers_of(sorted(set(ip_cis))).items():
        for identifier in identifiers:
            if identifier.kind == "address" and "/" in identifier.value:
                hosts[ci_id] = identifier.value.partition("/")[0]
                break
    return hosts


def _port_of(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 < value < 65536:
        return value
    return None


def resolve_references(store: Store, report: Report, identification: Identification) -> ResolvedReferences:
    """The relations to reference items of `report`, re-targeted to the CIs that own the
    addresses (see the module docstring); what cannot be resolved is noted in `skipped`."""
    out = ResolvedReferences()
    references = [item for item in report.items if item.reference]
    if not references:
        return out
    resolvable = []
    for item in references:
        if item.class_ in RESOLVABLE_CLASSES:
            resolvable.append(item)
        else:
            out.skipped.append(SkippedItem(item.ref, item.class_, f"a reference to a {item.class_} is not resolved "
                                           f"(references to {', '.join(RESOLVABLE_CLASSES)} are)"))
    held = _address_holders(store, resolvable, out)
    hosts = _hosts_of(store, (ip for ip, _ in held.values())) if held else {}

    # (type, from ci, reference ref, host ci, remote port, protocol) of each relation to a resolved
    # reference from an item reconcile placed (a reference itself is never placed: never a source).
    wanted: list[tuple[str, str, str, str, int | None, str]] = []
    for rel in report.relations:
        from_ci = identification.ci_of_ref.get(rel.from_)
        if rel.to not in held or from_ci is None:
            continue
        ip_ci = held[rel.to][0]
        host = hosts.get(ip_ci, ip_ci)  # an IPAddress without a host in its key: the address itself
        protocol = rel.attributes.get("protocol", "tcp")
        wanted.append((rel.type, from_ci, rel.to, host, _port_of(rel.attributes.get("remote_port")),
                       protocol if isinstance(protocol, str) else "tcp"))

    service_names = sorted({f"{host}/{proto}/{port}" for _, _, _, host, port, proto in wanted if port})
    services = store.resolve_identifiers("Service", "name", service_names) if service_names else {}
    active: dict[str, bool] = {}

    def is_active(ci_id: str) -> bool:
        if ci_id not in active:
            ci = store.get_ci(ci_id)
            active[ci_id] = ci is not None and ci.state == "active"
        return active[ci_id]

    relations: dict[RelationKey, None] = {}
    for rel_type, from_ci, ref, host, port, proto in wanted:
        service = services.get(f"{host}/{proto}/{port}") if port else None
        target = service if service and is_active(service) else host
        if not is_active(target):
            target = held[ref][0]
        if target != from_ci:
            relations[(rel_type, from_ci, target)] = None
    out.relations = list(relations)
    return out
