"""The framed UART protocol's pure functions: CRC vectors, known frames, round trips, resync."""

import random
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snnkit import DeviceError
from snnkit import protocol as p


def crc_bitwise(data: bytes) -> int:
    """CRC-16/IBM-3740 from its definition (poly 0x1021, init 0xFFFF, MSB first)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


# Catalogue values (reveng CRC catalogue, CRC-16/IBM-3740 a.k.a. CCITT-FALSE).
CRC_VECTORS = [(b"123456789", 0x29B1), (b"", 0xFFFF)]


@pytest.mark.parametrize("data,expected", CRC_VECTORS)
def test_crc_catalogue_vectors(data, expected):
    assert p.crc16(data) == expected


@given(st.binary(max_size=300))
def test_crc_matches_bitwise_definition_and_residue_is_zero(data):
    c = p.crc16(data)
    assert c == crc_bitwise(data)
    assert p.crc16(data + struct.pack(">H", c)) == 0


# Frames written out byte by byte from the spec (docs/uart-protocol.md).
def test_known_frame_bytes():
    body = bytes([0x21, 0x07, 0x06, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0xFE])
    crc = crc_bitwise(body)
    expected = bytes([0xA5]) + body + bytes([crc >> 8, crc & 0xFF])
    payload = p.write_payload(16, 1, [-2])
    assert payload == bytes([0x10, 0, 0, 0, 0x01, 0xFE])
    assert p.encode_frame(p.Op.WRITE | p.Region.CTRL, 7, payload) == expected


def test_identify_frame_is_seven_bytes():
    f = p.encode_frame(p.Op.IDENTIFY, 0)
    assert f[:5] == bytes([0xA5, 0x01, 0x00, 0x00, 0x00])
    assert int.from_bytes(f[5:], "big") == crc_bitwise(bytes([1, 0, 0, 0]))


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=600))
def test_frame_round_trip(op, seq, payload):
    f = p.decode_frame(p.encode_frame(op, seq, payload))
    assert (f.op, f.seq, f.payload) == (op, seq, payload)


def test_single_bit_flip_is_detected():
    frame = bytearray(p.encode_frame(0x22, 3, bytes(range(40))))
    for i in range(1, len(frame)):  # every bit after SYNC
        for b in range(8):
            bad = bytearray(frame)
            bad[i] ^= 1 << b
            with pytest.raises(p.ProtocolError):
                p.decode_frame(bytes(bad))


def test_decode_errors_name_the_problem():
    good = p.encode_frame(1, 0, b"ab")
    with pytest.raises(p.ProtocolError, match="SYNC"):
        p.decode_frame(b"\x00" + good[1:])
    with pytest.raises(p.ProtocolError, match="truncated"):
        p.decode_frame(good[:4])
    with pytest.raises(p.ProtocolError, match="LEN says 2"):
        p.decode_frame(good[:-1])
    with pytest.raises(p.CrcError, match="CRC"):
        p.decode_frame(good[:-1] + bytes([good[-1] ^ 1]))
    assert issubclass(p.CrcError, DeviceError)


def test_parser_resynchronises_after_garbage():
    rng = random.Random(1)
    frames = [(rng.randrange(256), k, rng.randbytes(rng.randrange(30))) for k in range(50)]
    stream = bytearray()
    for op, seq, pl in frames:
        stream += rng.randbytes(rng.randrange(20))  # garbage, may contain SYNC bytes
        stream += p.encode_frame(op, seq, pl)
    parser = p.FrameParser(max_len=64)
    got = []
    for k in range(0, len(stream), 7):  # arbitrary chunking
        got += parser.feed(bytes(stream[k:k + 7]))
    good = [(f.op, f.seq, f.payload) for f in got if isinstance(f, p.Frame)]
    assert good == frames


def test_parser_corrupted_frame_does_not_hide_next():
    a = bytearray(p.encode_frame(0x30, 1, b"\xa5" * 10))
    a[8] ^= 0xFF
    b = p.encode_frame(0x31, 2, b"x")
    out = p.FrameParser(max_len=64).feed(bytes(a) + b)  # false SYNCs claim LEN 0xA5A5
    assert any(isinstance(o, p.CrcError) for o in out)
    assert out[-1] == p.Frame(0x31, 2, b"x")


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 4]), st.data())
def test_write_payload_round_trip(offset, width, data):
    vals = data.draw(st.lists(st.integers(-(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1),
                              max_size=20))
    o, w, flag, got = p.parse_write(p.write_payload(offset, width, vals, flag=width < 4))
    assert (o, w, flag) == (offset, width, width < 4)
    assert got == [v & ((1 << (8 * width)) - 1) for v in vals]
    payload = p.write_payload(offset, width, vals)
    assert p.unpack_elements(payload[5:], width, signed=True) == vals


def test_payload_errors():
    with pytest.raises(p.ProtocolError, match="width"):
        p.write_payload(0, 3, [1])
    assert p.write_payload(1, 2, [-1], flag=True) == bytes([1, 0, 0, 0, 0x82, 0xFF, 0xFF])
    with pytest.raises(p.ProtocolError, match=r"values\[1\]"):
        p.write_payload(0, 1, [1, 256])
    with pytest.raises(p.ProtocolError, match="count"):
        p.read_payload(0, 0, 4)
    with pytest.raises(p.ProtocolError, match="offset"):
        p.read_payload(-1, 1, 4)
    assert p.read_payload(0x01020304, 0x0506, 2) == bytes([4, 3, 2, 1, 6, 5, 2])


def test_events_known_bytes_and_errors():
    pl = p.encode_events([[1, 0x8000], [], [5]])
    assert pl == bytes([3, 0, 2, 0, 1, 0, 0, 0x80, 0, 0, 1, 0, 5, 0])
    resp = struct.pack("<HH2HHH3H", 3, 2, 7, 9, 0, 3, 1, 2, 3)
    assert p.parse_events(resp) == [[7, 9], [], [1, 2, 3]]
    with pytest.raises(p.ProtocolError, match="truncated"):
        p.parse_events(resp[:-1])
    with pytest.raises(p.ProtocolError, match="trailing"):
        p.parse_events(resp + b"\x00")
    with pytest.raises(p.ProtocolError, match=r"steps\[0\]"):
        p.encode_events([[70000]])


@given(st.lists(st.lists(st.integers(0, 65535), max_size=10), max_size=10))
def test_events_round_trip(steps):
    assert p.parse_events(p.encode_events(steps)) == steps


def test_identify_round_trip_and_version_check():
    ident = p.Identity(1, 1024, 64, tuple(range(16)), 0b1_0011_1110, (5, 6, 7))
    assert p.parse_identify(p.identify_payload(ident)) == ident
    bad = bytearray(p.identify_payload(ident))
    bad[0] = 2
    with pytest.raises(p.ProtocolError, match="version 2"):
        p.parse_identify(bytes(bad))


def test_nack_names_error():
    e = p.parse_nack(bytes([p.Op.WRITE | p.Region.WEIGHT, p.ErrorCode.BAD_ADDRESS]))
    assert isinstance(e, DeviceError) and e.code == p.ErrorCode.BAD_ADDRESS
    assert "BAD_ADDRESS" in str(e) and "WRITE(WEIGHT)" in str(e)


def test_doc_test_vectors_decode_with_independent_crc():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "uart-protocol.md").read_text()
    lines = re.findall(r"^((?:[0-9a-f]{2} )+[0-9a-f]{2})   ", doc, re.MULTILINE)
    assert len(lines) >= 7
    for line in lines:
        raw = bytes.fromhex(line)
        assert crc_bitwise(raw[1:]) == 0, line
        f = p.decode_frame(raw)
        assert p.encode_frame(f.op, f.seq, f.payload, stream=raw[3:5] == b"\xff\xff") == raw
    write = p.decode_frame(bytes.fromhex(lines[1]))
    assert p.parse_write(write.payload) == (16, 1, True, [0xFE, 5])


def test_stream_frames_known_bytes_round_trip_and_parser():
    payload = p.encode_stream([[20], [], [21, 22]])
    assert payload == bytes([1, 0, 20, 0, 0, 0, 2, 0, 21, 0, 22, 0, 0xFF, 0xFF])
    frame = p.encode_frame(0x83, 4, payload, stream=True)
    assert frame[3:5] == b"\xff\xff" and crc_bitwise(frame[1:]) == 0
    assert p.parse_stream(p.decode_frame(frame).payload) == ([[20], [], [21, 22]], None)
    aborted = p.encode_stream([[1]], abort=p.ErrorCode.RUN_TIMEOUT)
    assert aborted[-4:] == bytes([0xFE, 0xFF, 8, 0])
    assert p.parse_stream(aborted) == ([[1]], p.ErrorCode.RUN_TIMEOUT)
    parser, got = p.FrameParser(max_len=64), []
    for b in frame + p.encode_frame(0x81, 5, b"ok"):  # byte by byte, as a UART delivers
        got += parser.feed(bytes([b]))
    assert got == [p.Frame(0x83, 4, payload), p.Frame(0x81, 5, b"ok")]


def test_stream_errors():
    with pytest.raises(p.ProtocolError, match="end marker"):
        p.encode_frame(0x83, 0, b"\x01\x00\x05\x00", stream=True)
    with pytest.raises(p.ProtocolError, match="end marker"):
        p.parse_stream(p.encode_stream([[3]]) + b"\x00")
    runaway = p.encode_frame(0x83, 0, p.encode_stream([[7] * 40]), stream=True)
    out = p.FrameParser(max_len=32).feed(runaway + p.encode_frame(1, 1))
    assert isinstance(out[0], p.ProtocolError) and out[-1] == p.Frame(1, 1, b"")


@given(st.lists(st.lists(st.integers(0, 65535), max_size=8), max_size=8),
       st.one_of(st.none(), st.integers(1, 9)))
def test_stream_round_trip(steps, abort):
    assert p.parse_stream(p.encode_stream(steps, abort)) == (steps, abort)
