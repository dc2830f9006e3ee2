"""Talking SNMP: sessions (one per host and credential) and the walker.

A `Session` does two things: GET a list of OIDs, and fetch the next OIDs after one OID (GETBULK in
v2c/v3, GETNEXT in v1). `walk()` builds subtree walks on that, shared by every version.

- v1/v2c (`CommunitySession`): requests are built with pysnmp's message API (pysnmp.proto.api),
  sent on one connected UDP socket per session, and answers are read with `ber.decode_response`.
  A connected socket also hears ICMP port-unreachable, so a closed port fails at once
  ("connection refused") instead of after every retry.
- v3 (`discovery.snmp.usm.UsmSession`): pysnmp's asyncio engine (USM auth and privacy).

Walks survive broken agents: a GETBULK answered with genErr or tooBig is retried with fewer
repetitions; an endOfMibView, or an error that persists at one repetition, inside a subtree is
skipped past (`find_past_gap` locates the broken instance) up to `MAX_SKIPS` times, and each skip
is reported as a gap. A recorded device with one malformed value (an empty IpAddress) therefore still yields
the rest of its table.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pyasn1.codec.ber import encoder as ber_encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto.api import v1 as api_v1
from pysnmp.proto.api import v2c as api_v2c

from discovery.snmp.ber import REPORT_PDU, RESPONSE_PDU, BerError, decode_response
from discovery.snmp.values import END_OF_MIB_VIEW, Value, oid_key

DEFAULT_MAX_REPETITIONS = 50
MAX_SKIPS = 16  # malformed instances skipped per walk before giving up on the subtree
MAX_WALK_REQUESTS = 20_000  # an agent that never ends a subtree (a loop) stops here
ERROR_STATUS = {0: "noError", 1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr",
                6: "noAccess", 7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue",
                11: "noCreation", 12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed",
                15: "undoFailed", 16: "authorizationError", 17: "notWritable", 18: "inconsistentName"}


class SnmpError(Exception):
    """A request that got no usable answer. `kind` is one of timeout, auth, refused, protocol."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class SnmpErrorStatus(Exception):
    """The agent answered with a non-zero error-status (tooBig, genErr, noSuchName...)."""

    def __init__(self, status: int, index: int):
        super().__init__(f"agent answered {ERROR_STATUS.get(status, status)} (error-index {index})")
        self.status = status
        self.index = index


Varbinds = list[tuple[str, object]]


class Session(Protocol):
    """One credential on one host. `next_oids` returns the varbinds after `oid` (GETBULK with
    `max_repetitions`, or GETNEXT for v1); both methods raise SnmpError or SnmpErrorStatus."""

    version: str
    requests: int

    async def get(self, oids: Sequence[str]) -> Varbinds: ...

    async def next_oids(self, oid: str, max_repetitions: int) -> Varbinds: ...

    def close(self) -> None: ...


# -- v1/v2c on our own UDP socket ---------------------------------------------------------------

class _Channel(asyncio.DatagramProtocol):
    """A connected UDP socket with request-id matching. Datagrams that do not decode, or answer
    no pending request (late answers to a retried request), are counted and dropped."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.dropped = 0
        self.refused = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        try:
            response = decode_response(data)
        except BerError:
            self.dropped += 1
            return
        future = self.pending.get(response.request_id)
        if future is None or future.done() or response.pdu_type not in (RESPONSE_PDU, REPORT_PDU):
            self.dropped += 1
            return
        future.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused = True
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(SnmpError("refused", "connection refused (ICMP port unreachable): "
                                                              "no SNMP agent listens on that UDP port"))

    def connection_lost(self, exc: Exception | None) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(SnmpError("protocol", "socket closed"))


_request_ids = itertools.count(random.randrange(1, 1 << 30))


def _next_request_id() -> int:
    return next(_request_ids) % 0x7FFFFFFF or 1


class CommunitySession:
    """SNMP v1 or v2c with one community, over one connected UDP socket."""

    def __init__(self, address: str, port: int, community: str, version: str, timeout: float, retries: int):
        if version not in ("1", "2c"):
            raise ValueError(f"CommunitySession speaks v1 and v2c, not {version!r}")
        self.address, self.port, self.version = address, port, version
        self.timeout, self.retries = timeout, retries
        self.requests = 0
        self._community = community
        self._api = api_v1 if version == "1" else api_v2c
        self._channel: _Channel | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> _Channel:
        if self._channel is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self._channel is None:
                    loop = asyncio.get_running_loop()
                    try:
                        _, channel = await loop.create_datagram_endpoint(
                            _Channel, remote_addr=(self.address, self.port))
                    except OSError as exc:
                        raise SnmpError("unreachable", f"cannot open a UDP socket to {self.address}:{self.port}: "
                                                       f"{exc.strerror or exc}") from None
                    self._channel = channel
        return self._channel

    def _message(self, pdu, request_id: int, oids: Iterable[str]) -> bytes:
        api = self._api
        api.apiPDU.set_defaults(pdu)
        api.apiPDU.set_request_id(pdu, request_id)
        api.apiPDU.set_varbinds(pdu, [(api.ObjectIdentifier(oid), api.null) for oid in oids])
        message = api.Message()
        api.apiMessage.set_defaults(message)
        api.apiMessage.set_community(message, self._community)
        api.apiMessage.set_pdu(message, pdu)
        return ber_encoder.encode(message)

    async def _exchange(self, build) -> Varbinds:
        channel = await self._open()
        request_id = _next_request_id()
        try:
            data = build(request_id)
        except PyAsn1Error as exc:  # an OID pysnmp cannot encode ("1", "1.3.x.-1"): our bug or bad input
            raise ValueError(f"cannot encode the SNMP request: {str(exc)[:200]}") from None
        loop = asyncio.get_running_loop()
        try:
            for _attempt in range(self.retries + 1):
                if channel.refused:
                    raise SnmpError("refused", "connection refused (ICMP port unreachable): "
                                               "no SNMP agent listens on that UDP port")
                future = loop.create_future()
                channel.pending[request_id] = future
                self.requests += 1
                assert channel.transport is not None
                channel.transport.sendto(data)
                try:
                    response = await asyncio.wait_for(future, self.timeout)
                except asyncio.TimeoutError:
                    continue
                if response.error_status:
                    raise SnmpErrorStatus(response.error_status, response.error_index)
                return response.varbinds
        finally:
            channel.pending.pop(request_id, None)
        raise SnmpError("timeout", f"no answer within {self.timeout:g} s x {self.retries + 1} tries")

    async def get(self, oids: Sequence[str]) -> Varbinds:
        return await self._exchange(lambda rid: self._message(self._api.GetRequestPDU(), rid, oids))

    async def next_oids(self, oid: str, max_repetitions: int) -> Varbinds:
        if self.version == "1":
            return await self._exchange(lambda rid: self._message(self._api.GetNextRequestPDU(), rid, [oid]))

        def build(rid: int) -> bytes:
            pdu = api_v2c.GetBulkRequestPDU()
            api_v2c.apiBulkPDU.set_defaults(pdu)
            api_v2c.apiBulkPDU.set_non_repeaters(pdu, 0)
            api_v2c.apiBulkPDU.set_max_repetitions(pdu, max_repetitions)
            api_v2c.apiBulkPDU.set_request_id(pdu, rid)
            api_v2c.apiBulkPDU.set_varbinds(pdu, [(api_v2c.ObjectIdentifier(oid), api_v2c.null)])
            message = api_v2c.Message()
            api_v2c.apiMessage.set_defaults(message)
            api_v2c.apiMessage.set_community(message, self._community)
            api_v2c.apiMessage.set_pdu(message, pdu)
            return ber_encoder.encode(message)
        return await self._exchange(build)

    def close(self) -> None:
        if self._channel is not None and self._channel.transport is not None:
            self._channel.transport.close()
        self._channel = None


# -- walking ------------------------------------------------------------------------------------

@dataclass
class WalkResult:
    values: dict[str, Value] = field(default_factory=dict)
    # OIDs after which the agent failed (endOfMibView or an error) and that were skipped past.
    gaps: list[str] = field(default_factory=list)
    # Subtrees whose walk failed (timeout, ...) with the reason: their values are incomplete.
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0

    def merge(self, other: WalkResult) -> None:
        self.values.update(other.values)
        self.gaps.extend(other.gaps)
        self.failed.update(other.failed)
        self.requests += other.requests


MAX_PROBES_PER_GAP = 48


async def _answers_past(session: Session, oid: str) -> bool:
    """Whether a GETNEXT from `oid` returns a value (not endOfMibView, not an error)."""
    try:
        varbinds = await session.next_oids(oid, 1)
    except SnmpErrorStatus:
        return False
    return bool(varbinds) and varbinds[0][1] is not END_OF_MIB_VIEW


async def find_past_gap(session: Session, last: str, root: str) -> str | None:
    """The OID of the instance the agent cannot return, just after `last`, or None when nothing
    follows (the real end of the agent's MIB). An agent that fails on instance B answers a
    GETNEXT from any OID before B with endOfMibView and from B itself with what follows B, so
    B is the smallest OID that gets an answer: found by doubling the last sub-identifier, then
    bisecting (climbing one level when a level is exhausted), within MAX_PROBES_PER_GAP."""
    arcs = [int(a) for a in last.split(".")]
    floor = len(root.split("."))
    probes = 0
    for depth in range(len(arcs) - 1, max(floor - 1, len(arcs) - 4), -1):
        head, low = arcs[:depth], arcs[depth]
        high = None
        step = 1
        while probes < MAX_PROBES_PER_GAP and low + step < 1 << 32:
            probes += 1
            if await _answers_past(session, ".".join(map(str, head + [low + step]))):
                high = low + step
                break
            low += step
            step *= 2
        if high is None:
            if probes >= MAX_PROBES_PER_GAP:
                return None
            continue
        while high - low > 1 and probes < MAX_PROBES_PER_GAP:
            probes += 1
            middle = (low + high) // 2
            if await _answers_past(session, ".".join(map(str, head + [middle]))):
                high = middle
            else:
                low = middle
        return ".".join(map(str, head + [high]))
    return None


async def walk(session: Session, root: str, max_repetitions: int = DEFAULT_MAX_REPETITIONS) -> WalkResult:
    """Every OID under `root`, in order. Raises SnmpError only when the first request got no
    answer; a walk cut short later keeps what it read and says why in `failed`."""
    result = WalkResult()
    started = time.perf_counter()
    prefix = root + "."
    last, last_key = root, oid_key(root)
    repetitions = max(1, max_repetitions)
    skips = 0

    async def skip_past(oid: str) -> bool:
        """Resume after the broken instance that follows `oid`; False at the real end."""
        nonlocal skips, last, last_key
        skips += 1
        before = session.requests
        broken = await find_past_gap(session, oid, root)
        result.requests += session.requests - before
        if broken is None:
            return False
        result.gaps.append(broken)
        last, last_key = broken, oid_key(broken)
        return True

    while result.requests < MAX_WALK_REQUESTS:
        result.requests += 1
        try:
            varbinds = await session.next_oids(last, repetitions)
        except SnmpErrorStatus as exc:
            if exc.status == 2 and session.version == "1":  # noSuchName: v1's end of the view
                break
            if exc.status in (1, 5) and repetitions > 1:  # tooBig, genErr: ask for less
                repetitions = max(1, repetitions // 4)
                continue
            if exc.status == 5 and last != root and skips < MAX_SKIPS and await skip_past(last):
                continue  # one broken instance, skipped
            result.failed[root] = f"{exc} after {last}"
            break
        except SnmpError as exc:
            if result.requests == 1:
                raise
            result.failed[root] = f"walk cut short after {len(result.values)} values: {exc}"
            break
        progressed = False
        outcome = "more" if varbinds else "left"
        for oid, value in varbinds:
            if value is END_OF_MIB_VIEW:
                outcome = "end"
                break
            if not oid.startswith(prefix):
                outcome = "left"
                break
            key = oid_key(oid)
            if key <= last_key:
                result.failed[root] = f"agent returned {oid} after {last} (OIDs not increasing): walk stopped"
                outcome = "left"
                break
            result.values[oid] = value
            last, last_key = oid, key
            progressed = True
        if outcome == "end":
            # Inside a subtree, snmpsim (and some agents) answer endOfMibView for a value they
            # cannot encode: try the next instance once before believing it is the end.
            if last != root and skips < MAX_SKIPS and await skip_past(last):
                continue
            break
        if outcome == "left":
            break
        if progressed:
            repetitions = max(1, max_repetitions)
    else:
        result.failed[root] = f"walk stopped after {MAX_WALK_REQUESTS} requests"
    result.seconds = time.perf_counter() - started
    return result


async def _table_present(session: Session, entry: str) -> bool:
    """Whether anything exists under `entry` (one GETNEXT): an absent table then costs one
    request instead of one per column."""
    try:
        varbinds = await session.next_oids(entry, 1)
    except SnmpErrorStatus:
        return True  # cannot tell: walk the columns, which handle errors one by one
    return bool(varbinds) and varbinds[0][1] is not END_OF_MIB_VIEW and varbinds[0][0].startswith(entry + ".")


async def walk_many(session: Session, roots: Sequence[str], max_repetitions: int = DEFAULT_MAX_REPETITIONS,
                    concurrency: int = 4) -> WalkResult:
    """Several subtree walks, `concurrency` of them in flight at once (hides the round trip of
    each without flooding the agent). Columns of one table are walked only when a first GETNEXT
    shows the table exists. Raises the first SnmpError only if every walk failed so."""
    semaphore = asyncio.Semaphore(max(1, concurrency))
    started = time.perf_counter()
    tables: dict[str, list[str]] = {}
    for root in roots:
        tables.setdefault(root.rpartition(".")[0], []).append(root)

    async def one(root: str) -> WalkResult | SnmpError:
        async with semaphore:
            try:
                return await walk(session, root, max_repetitions)
            except SnmpError as exc:
                return exc

    async def table(entry: str, columns: list[str]) -> list[WalkResult | SnmpError]:
        if len(columns) > 1:
            async with semaphore:
                try:
                    present = await _table_present(session, entry)
                except SnmpError as exc:
                    return [exc] * len(columns)
            if not present:
                return [WalkResult(requests=1)] + [WalkResult()] * (len(columns) - 1)
        return list(await asyncio.gather(*(one(column) for column in columns)))

    grouped = await asyncio.gather(*(table(entry, columns) for entry, columns in tables.items()))
    merged = WalkResult()
    errors = []
    for columns, outcomes in zip(tables.values(), grouped):
        for root, outcome in zip(columns, outcomes):
            if isinstance(outcome, SnmpError):
                errors.append(outcome)
                merged.failed[root] = str(outcome)
            else:
                merged.merge(outcome)
    if errors and len(errors) == len(roots):
        raise errors[0]
    merged.seconds = time.perf_counter() - started
    return merged


async def get_values(session: Session, oids: Sequence[str]) -> dict[str, Value]:
    """GET several scalars; instances the agent does not have are left out. In v1 one missing
    OID fails the whole PDU (noSuchName), so it is dropped and the rest asked again."""
    wanted = list(oids)
    while wanted:
        try:
            varbinds = await session.get(wanted)
        except SnmpErrorStatus as exc:
            if exc.status == 2 and 1 <= exc.index <= len(wanted):
                del wanted[exc.index - 1]
                continue
            raise
        return {oid: value for oid, value in varbinds if value is not None and value is not END_OF_MIB_VIEW}
    return {}
