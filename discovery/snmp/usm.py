"""SNMPv3 (USM) sessions on pysnmp 7's asyncio engine, and the probe that says why one failed.

pysnmp does the USM work (engine discovery, time windows, HMAC-SHA-2, AES); its values are
turned into the plain shapes of `discovery.snmp.values` so parsers never see pyasn1 objects.
Names are never resolved through MIBs (`lookupMib=False`): numeric OIDs only.

When a v3 request times out, `probe_v3_engine` tells the cases apart with one unauthenticated
engine-discovery message on a connected socket: ICMP port unreachable (nothing listens), an
engine that answers (so the key or privacy settings are wrong), or silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
    usmAesBlumenthalCfb192Protocol,
    usmAesBlumenthalCfb256Protocol,
    usmAesCfb128Protocol,
    usmAesCfb192Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto import errind, rfc1902, rfc1905

from discovery.snmp.ber import encode_discovery_probe, v3_engine_id
from discovery.snmp.client import SnmpError, SnmpErrorStatus, Varbinds
from discovery.snmp.credentials import SnmpCredential
from discovery.snmp.values import END_OF_MIB_VIEW, IpAddressValue, ObjectId

AUTH = {"SHA": usmHMACSHAAuthProtocol, "SHA-224": usmHMAC128SHA224AuthProtocol,
        "SHA-256": usmHMAC192SHA256AuthProtocol, "SHA-384": usmHMAC256SHA384AuthProtocol,
        "SHA-512": usmHMAC384SHA512AuthProtocol, "MD5": usmHMACMD5AuthProtocol}
PRIV = {"AES": usmAesCfb128Protocol, "AES-192": usmAesBlumenthalCfb192Protocol,
        "AES-256": usmAesBlumenthalCfb256Protocol, "AES-192-C": usmAesCfb192Protocol,
        "AES-256-C": usmAesCfb256Protocol, "DES": usmDESPrivProtocol}

# pysnmp's error indications, as the words an operator acts on.
_AUTH_ERRORS = {
    errind.WrongDigest: "authentication failure: wrong v3 auth key or auth protocol (Wrong SNMP PDU digest)",
    errind.UnknownUserName: "authentication failure: the agent has no such v3 user (Unknown USM user)",
    errind.UnsupportedSecurityLevel: "authentication failure: the agent refuses this security level for the user",
    errind.DecryptionError: "privacy failure: wrong v3 privacy key or privacy protocol (decryption error)",
    errind.AuthenticationFailure: "authentication failure",
    errind.UnknownSecurityName: "authentication failure: unknown security name",
    errind.NotInTimeWindow: "authentication failure: not in time window (agent clock or engine boots)",
    errind.UnknownEngineID: "authentication failure: unknown engine id",
}


def usm_user(cred: SnmpCredential) -> UsmUserData:
    kwargs = {}
    if cred.auth_key:
        kwargs["authKey"] = cred.auth_key
        kwargs["authProtocol"] = AUTH[cred.auth_protocol or "SHA"]
    if cred.priv_key:
        kwargs["privKey"] = cred.priv_key
        kwargs["privProtocol"] = PRIV[cred.priv_protocol or "AES"]
    return UsmUserData(cred.user, **kwargs)


def plain_value(value: object) -> object:
    """A pyasn1 value as the plain shape parsers read (see discovery.snmp.values)."""
    tag = value.tagSet  # type: ignore[attr-defined]
    if tag == rfc1905.EndOfMibView.tagSet:
        return END_OF_MIB_VIEW
    if tag in (rfc1905.NoSuchObject.tagSet, rfc1905.NoSuchInstance.tagSet, rfc1902.Null.tagSet):
        return None
    if tag == rfc1902.IpAddress.tagSet:
        return IpAddressValue(value.asOctets())  # type: ignore[attr-defined]
    if tag in (rfc1902.OctetString.tagSet, rfc1902.Opaque.tagSet):
        return bytes(value.asOctets())  # type: ignore[attr-defined]
    if tag == rfc1902.ObjectIdentifier.tagSet:
        return ObjectId(".".join(map(str, value)))  # type: ignore[call-overload]
    return int(value)  # type: ignore[call-overload]


class UsmSession:
    """One v3 user on one host, on a pysnmp engine (shared across hosts when the caller passes
    one: engine discovery results are cached in it)."""

    version = "3"

    def __init__(self, address: str, port: int, cred: SnmpCredential, timeout: float, retries: int,
                 engine: SnmpEngine | None = None):
        self.address, self.port, self.timeout, self.retries = address, port, timeout, retries
        self.requests = 0
        self._user = usm_user(cred)
        self._context = ContextData(contextName=cred.context or "")
        self._own_engine = engine is None
        self._engine = engine or SnmpEngine()
        self._target: UdpTransportTarget | None = None

    async def _target_(self) -> UdpTransportTarget:
        if self._target is None:
            self._target = await UdpTransportTarget.create((self.address, self.port), timeout=self.timeout,
                                                           retries=self.retries)
        return self._target

    def _check(self, error_indication, error_status, error_index) -> None:
        if error_indication:
            for kind, words in _AUTH_ERRORS.items():
                if isinstance(error_indication, kind):
                    raise SnmpError("auth", words)
            if isinstance(error_indication, errind.RequestTimedOut):
                raise SnmpError("timeout", f"no answer within {self.timeout:g} s x {self.retries + 1} tries")
            raise SnmpError("protocol", str(error_indication))
        if error_status:
            raise SnmpErrorStatus(int(error_status), int(error_index))

    async def get(self, oids: Sequence[str]) -> Varbinds:
        self.requests += 1
        result = await get_cmd(self._engine, self._user, await self._target_(), self._context,
                               *(ObjectType(ObjectIdentity(oid)) for oid in oids), lookupMib=False)
        error_indication, error_status, error_index, varbinds = result
        self._check(error_indication, error_status, error_index)
        return [(str(name), plain_value(value)) for name, value in varbinds]

    async def next_oids(self, oid: str, max_repetitions: int) -> Varbinds:
        self.requests += 1
        target = await self._target_()
        if max_repetitions <= 1:
            result = await next_cmd(self._engine, self._user, target, self._context,
                                    ObjectType(ObjectIdentity(oid)), lookupMib=False)
        else:
            result = await bulk_cmd(self._engine, self._user, target, self._context, 0, max_repetitions,
                                    ObjectType(ObjectIdentity(oid)), lookupMib=False)
        error_indication, error_status, error_index, varbinds = result
        self._check(error_indication, error_status, error_index)
        return [(str(name), plain_value(value)) for name, value in varbinds]

    def close(self) -> None:
        if self._own_engine:
            self._engine.close_dispatcher()


class _ProbeProtocol(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future):
        self.done = done

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        engine = v3_engine_id(data)
        if engine is not None and not self.done.done():
            self.done.set_result(("engine", engine))

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError) and not self.done.done():
            self.done.set_result(("refused", None))


async def probe_v3_engine(address: str, port: int, timeout: float) -> tuple[str, bytes | None]:
    """("refused", None), ("engine", <engine id>) or ("silent", None): what answers one
    unauthenticated SNMPv3 engine-discovery message (RFC 3414 4)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: _ProbeProtocol(done),
                                                           remote_addr=(address, port))
    except OSError:
        return ("silent", None)
    try:
        transport.sendto(encode_discovery_probe(0x1F2E3D))
        return await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        return ("silent", None)
    finally:
        transport.close()
