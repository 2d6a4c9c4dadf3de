"""The driver's link layer against a scripted port (pymeasure's ProtocolAdapter idea): every
frame the driver sends is compared byte for byte with the script, which answers each with
the bytes a board (or a noisy line) would send back. Frame sizes, resends, resync bytes and
counters are therefore tested exactly, with a fake clock (no real waiting)."""

import struct

import pytest

import snnkit
from snnkit import link
from snnkit import protocol as p
from snnkit.compiler import HardwareConfig
from snnkit.device import Device
from snnkit.memory_map import (
    CORE_VERSION,
    FEATURES,
    LINK_WRITABLE,
    MAGIC,
    base_features,
    link_region_sizes,
)
from snnkit.protocol import ErrorCode, Op, Region

CONFIG = HardwareConfig(n_max=64, syn_max=2048, p_max=4, pr_max=4, d_max=3, tr_max=256)
MAX_PAYLOAD = 256


class ScriptedPort:
    """A serial port that plays a script of ``(bytes the driver must send, reply)`` pairs.

    A reply is the bytes the board sends back (none: it stays silent). Time is fake: it moves
    only when the driver reads an empty port (by the read timeout) or sleeps.
    """

    def __init__(self, script, read_timeout=0.002):
        self.script, self.read_timeout = list(script), read_timeout
        self.now, self.inbox, self.sent, self.is_open = 0.0, bytearray(), [], True

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s

    def write(self, data: bytes) -> int:
        assert self.script, f"unexpected write {data.hex()}"
        want, reply = self.script.pop(0)
        assert data == want, f"sent {data.hex()}, script expects {want.hex()}"
        self.sent.append(bytes(data))
        self.inbox += reply
        self.now += 1e-4 * (len(data) + len(reply))  # 1 Mbaud-ish wire time
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self.inbox)

    def read(self, n: int) -> bytes:
        if not self.inbox:
            self.now += self.read_timeout
            return b""
        out = bytes(self.inbox[:n])
        del self.inbox[:n]
        return out

    def close(self) -> None:
        self.is_open = False


def ident_words(c: HardwareConfig) -> tuple[int, ...]:
    """The core's identify block for ``c`` (docs/hardware.md, registers ID .. R_BITS)."""
    return (MAGIC, CORE_VERSION, c.n_max, c.syn_max,
            c.p_max << 24 | c.pr_max << 16 | c.d_max << 8 | 1,
            c.weight_bits << 24 | c.state_bits << 16 | c.decay_bits << 8 | c.trace_bits,
            c.frac_bits << 24 | c.trace_frac_bits << 16 | c.stdp_frac_bits << 8 | c.a_bits,
            base_features() | (1 << FEATURES.index("delayed_reset") if c.delayed_reset else 0),
            c.tr_max, c.in_depth << 16 | c.out_depth, c.r_bits)


def ack(op: int, seq: int, payload: bytes = b"", stream: bool = False) -> bytes:
    return p.encode_frame(op | 0x80, seq, payload, stream)


def nack(op: int, seq: int, code: int) -> bytes:
    return p.encode_frame(Op.NACK, seq, bytes([op, code]))


def identify_exchange(seq: int = 1) -> tuple[bytes, bytes]:
    sizes = link_region_sizes(CONFIG)
    ident = p.Identity(p.PROTOCOL_VERSION, MAX_PAYLOAD, CONFIG.n_max,
                       tuple(sizes.get(r, 0) for r in range(p.N_REGIONS)),
                       sum(1 << r for r in LINK_WRITABLE), ident_words(CONFIG))
    return p.encode_frame(Op.IDENTIFY, seq), ack(Op.IDENTIFY, seq, p.identify_payload(ident))


def device(script, **kw) -> tuple[Device, ScriptedPort]:
    port = ScriptedPort([identify_exchange()] + script)
    dev = Device(port, timeout=1.0, **kw)
    assert dev.info.config == CONFIG and dev.max_payload == MAX_PAYLOAD
    return dev, port


def write_frame(seq: int, offset: int, values, width: int = 1) -> bytes:
    return p.encode_frame(Op.WRITE | Region.WEIGHT, seq, p.write_payload(offset, width, values))


def test_payload_shrinks_on_a_damaged_frame_and_regrows_on_a_clean_link():
    values = [(k * 7) % 200 - 100 for k in range(1600)]
    op = Op.WRITE | Region.WEIGHT
    script, seq, off = [], 2, 0
    # 251 one-byte weights fill the board's 256-byte payload; the board refuses the frame
    # as damaged: the link halves the frame size, and the transfer is split again there
    script.append((write_frame(seq, 0, values[:251]), nack(op, seq, ErrorCode.BAD_CRC)))
    seq += 1
    for per in [123] * link.GROW_AFTER + [251, 251]:  # 8 clean at 128 bytes: back to 256
        script.append((write_frame(seq, off, values[off:off + per]), ack(op, seq)))
        seq, off = seq + 1, off + per
    rest = values[off:]
    script.append((write_frame(seq, off, rest), ack(op, seq)))
    dev, port = device(script)
    dev.write_region(Region.WEIGHT, 0, values, width=1)
    assert not port.script
    assert dev.stats["payload_changes"] == 2 and dev.link.payload == MAX_PAYLOAD
    assert (dev.stats["rejected"], dev.stats["resends"]) == (1, 0)  # split again, not resent
    assert dev.link.lossy  # from now on answers are checked twice


def test_payload_halves_to_half_a_smaller_failing_frame():
    """A frame much smaller than the frame size that still fails shrinks the size below
    its own: a 100-byte run of weights that keeps failing is not sent whole again."""
    values = list(range(95))
    op = Op.WRITE | Region.WEIGHT
    script = [(write_frame(2, 0, values), nack(op, 2, ErrorCode.BAD_CRC)),
              (write_frame(3, 0, values[:45]), ack(op, 3)),
              (write_frame(4, 45, values[45:90]), ack(op, 4)),
              (write_frame(5, 90, values[90:]), ack(op, 5))]
    dev, port = device(script)
    dev.write_region(Region.WEIGHT, 0, values, width=1)
    assert not port.script and dev.link.payload == 50


def test_damaged_run_response_is_resent_unchanged_and_taken_from_the_replay():
    """A RUN runs once: after a damaged answer the same frame (same SEQ) goes again and the
    board answers it from its replay memory."""
    events = [[1, 2], [], [3]]
    out = p.encode_stream([[20], [21, 22], []])
    good = ack(Op.RUN, 2, out, stream=True)
    bad = bytearray(good)
    bad[8] ^= 0x04
    frame = p.encode_frame(Op.RUN, 2, p.encode_events(events))
    dev, port = device([(frame, bytes(bad)), (frame, good)])
    assert dev.call(Op.RUN, p.encode_events(events)) == out
    assert not port.script
    assert (dev.stats["crc_errors"], dev.stats["resends"]) == (1, 1)


def test_silent_attempt_sends_a_filler_that_completes_no_frame_then_resends():
    """No byte back: the board may hold the frame short of a lost byte. One filler byte
    that makes every such copy fail its CRC goes first; the board refuses the completed
    copy, and the frame goes again."""
    op = Op.READ | Region.FIFO  # a read that is not split again (it pops the FIFO)
    frame = p.encode_frame(op, 2, p.read_payload(0, 1, 4))
    filler = link.safe_filler(frame)
    body = frame[1:]
    for lost in range(p.HEADER - 1, len(body)):  # the filler completes no copy into a frame
        assert p.crc16(body[:lost] + body[lost + 1:] + bytes([filler])) != 0
    script = [(frame, b""), (bytes([filler]), nack(op, 2, ErrorCode.BAD_CRC)),
              (frame, ack(op, 2, struct.pack("<I", 7)))]
    dev, port = device(script)
    assert dev.read_region(Region.FIFO, 0, 1) == [7]
    assert not port.script
    assert (dev.stats["timeouts"], dev.stats["rejected"], dev.stats["resends"]) == (1, 1, 1)


def test_filler_avoids_the_byte_that_would_complete_a_frame():
    """Frames for which 0x00 would complete a copy short of one byte get another filler."""
    found = 0
    for seq in range(256):
        frame = p.encode_frame(0x25, seq, bytes(range(seq % 40)))
        body, b = frame[1:], link.safe_filler(frame)
        completes = [x for x in range(256) for i in range(p.HEADER - 1, len(body))
                     if p.crc16(body[:i] + body[i + 1:] + bytes([x])) == 0]
        assert b not in completes and b != p.SYNC
        found += 0x00 in completes
    assert found  # the case arises


def test_stray_byte_after_a_response_means_it_is_not_trusted():
    """A byte right after a response (what a duplicated byte leaves when the shifted frame
    passes its CRC by chance) makes the driver ask again."""
    op = Op.READ | Region.FIFO
    frame = p.encode_frame(op, 2, p.read_payload(0, 1, 4))
    reply = ack(op, 2, struct.pack("<I", 9))
    dev, port = device([(frame, reply + b"\x3c"), (frame, reply)])
    assert dev.read_region(Region.FIFO, 0, 1) == [9]
    assert (dev.stats["suspect"], dev.stats["resends"]) == (1, 1)


def test_silent_board_fails_loudly_after_silent_attempts():
    op = Op.READ | Region.FIFO
    frame = p.encode_frame(op, 2, p.read_payload(0, 1, 4))
    filler = bytes([link.safe_filler(frame)])
    script = [(frame, b""), (filler, b"")] * 3
    dev, port = device(script, retries=2)
    with pytest.raises(snnkit.DeviceError, match="after 3 attempts"):
        dev.read_region(Region.FIFO, 0, 1)


def test_a_nack_naming_an_unknown_region_is_reported_not_a_crash():
    assert p._op_name(0x2F) == "opcode 0x2f"  # region 15: none
    op = Op.WRITE | Region.CTRL
    frame = p.encode_frame(op, 2, p.write_payload(9, 4, [1]))
    dev, _ = device([(frame, nack(0x2F, 2, ErrorCode.BAD_ADDRESS) + ack(op, 2))])
    dev.call(op, p.write_payload(9, 4, [1]))  # a NACK of another op is not ours


def test_round_trip_timeouts_scale_with_size_and_never_undercut():
    rt = link.RoundTrip(initial=0.5, cap=2.0)
    assert rt.rto(100) == 0.5  # nothing measured yet
    rt.sample(64, 0.004)
    small, big = rt.rto(50), rt.rto(4000)
    assert link.RTO_MIN <= small < big <= 2.0
    assert big >= small * 32  # borrowed from the small class, scaled up by the size ratio
    rt.sample(4000, 0.05)
    assert rt.rto(4000) < big and rt.byte_time() < 0.05 / 2048


def test_a_tcp_board_that_hangs_up_says_another_client_may_have_taken_it():
    import socket

    import serial

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = serial.serial_for_url(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=0.1)
    conn, _ = srv.accept()
    conn.close()  # what the emulated board does when a newer client connects
    lk = link.Link(port, 0.2, 2)
    with pytest.raises(link.PortLost, match=r"the device is gone \(an emulated board serves "
                                            r"one client at a time, the newest"):
        for _ in range(50):  # the hang-up reaches the reader within a few reads
            lk._read()
    port.close()
    srv.close()
