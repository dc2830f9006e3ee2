"""The BER reader against pysnmp's own encoder (the truth about the wire format), and against
truncated, oversized and random datagrams (BerError, nothing else, never a hang)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.ber import encoder as ber_encoder
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message

from discovery.snmp.ber import BerError, decode_oid, decode_response, encode_discovery_probe, v3_engine_id
from discovery.snmp.values import END_OF_MIB_VIEW, IpAddressValue, ObjectId

OIDS = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20).map(lambda arcs: "1.3." + ".".join(map(str, arcs)))
VALUES = st.one_of(
    st.integers(-2**31, 2**31 - 1).map(lambda v: (rfc1902.Integer32(v), v)),
    st.binary(max_size=300).map(lambda v: (rfc1902.OctetString(v), v)),
    st.integers(0, 2**32 - 1).map(lambda v: (rfc1902.Counter32(v), v)),
    st.integers(0, 2**32 - 1).map(lambda v: (rfc1902.Gauge32(v), v)),
    st.integers(0, 2**32 - 1).map(lambda v: (rfc1902.TimeTicks(v), v)),
    st.integers(0, 2**64 - 1).map(lambda v: (rfc1902.Counter64(v), v)),
    st.binary(min_size=4, max_size=4).map(lambda v: (rfc1902.IpAddress(v), IpAddressValue(v))),
    OIDS.map(lambda v: (rfc1902.ObjectIdentifier(v), ObjectId(v))),
    st.just((rfc1905.EndOfMibView(""), END_OF_MIB_VIEW)),
    st.just((rfc1905.NoSuchObject(""), None)),
)


def response(request_id: int, varbinds, error_status: int = 0) -> bytes:
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_error_status(pdu, error_status)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, "public")
    v2c.apiMessage.set_pdu(message, pdu)
    return ber_encoder.encode(message)


@settings(max_examples=300, deadline=None)
@given(st.integers(-2**31, 2**31 - 1), st.lists(st.tuples(OIDS, VALUES), max_size=30))
def test_decodes_what_pysnmp_encodes(request_id, pairs):
    varbinds = [(v2c.ObjectIdentifier(oid), asn1) for oid, (asn1, _) in pairs]
    decoded = decode_response(response(request_id, varbinds))
    assert decoded.request_id == request_id and decoded.version == 1 and decoded.community == b"public"
    assert decoded.varbinds == [(oid, plain) for oid, (_, plain) in pairs]


def test_error_status_and_index_are_read():
    decoded = decode_response(response(7, [(v2c.ObjectIdentifier("1.3.6.1"), v2c.null)], error_status=5))
    assert (decoded.error_status, decoded.varbinds) == (5, [("1.3.6.1", None)])


def test_an_empty_ip_address_is_kept_as_what_it_is():
    # Broken agents send an IpAddress of zero bytes: it is read (as an empty value the parsers
    # then ignore), and the rest of the PDU with it.
    good = response(1, [(v2c.ObjectIdentifier("1.3.6.1"), rfc1902.OctetString(b"")),
                        (v2c.ObjectIdentifier("1.3.6.2"), rfc1902.Integer32(5))]).replace(b"\x04\x00", b"\x40\x00")
    assert decode_response(good).varbinds == [("1.3.6.1", IpAddressValue(b"")), ("1.3.6.2", 5)]


@given(st.binary(max_size=600))
@settings(max_examples=500, deadline=None)
def test_random_bytes_raise_ber_error_only(data):
    try:
        decode_response(data)
    except BerError:
        pass


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_every_truncation_of_a_real_response_is_refused(data):
    whole = response(42, [(v2c.ObjectIdentifier("1.3.6.1.2.1.1.1.0"), rfc1902.OctetString(b"x" * 200))])
    cut = data.draw(st.integers(0, len(whole) - 1))
    with pytest.raises(BerError):
        decode_response(whole[:cut])


def test_oversized_lengths_and_oids_are_refused():
    with pytest.raises(BerError):
        decode_response(b"\x30\x84\xff\xff\xff\xff")
    with pytest.raises(BerError):
        decode_oid(bytes([0x2B] + [0x01] * 200))
    with pytest.raises(BerError):
        decode_oid(b"\x2b\x86")  # ends inside a sub-identifier


def test_v3_messages_are_not_taken_for_v2c_and_their_engine_id_is_read():
    probe = encode_discovery_probe(99)
    message, rest = ber_decoder.decode(probe, asn1Spec=SNMPv3Message())  # pysnmp reads our hand-built probe
    assert not rest and int(message["msgVersion"]) == 3
    with pytest.raises(BerError, match="not a v1/v2c"):
        decode_response(probe)
    assert v3_engine_id(probe) == b""
    assert v3_engine_id(b"\x30\x03\x02\x01\x01") is None
