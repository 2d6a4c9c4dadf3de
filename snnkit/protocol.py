"""The framed UART protocol (docs/uart-protocol.md): frames, CRC, opcodes, payloads.

Pure functions and one incremental parser, no I/O: :mod:`snnkit.device` does the talking.
Every frame is ``SYNC | OP | SEQ | LEN (u16 LE) | PAYLOAD | CRC (u16 BE)``; the CRC is
CRC-16/IBM-3740 (also called CCITT-FALSE: polynomial 0x1021, init 0xFFFF, no reflection, no
final XOR) over ``OP .. PAYLOAD``, computed by the standard library's ``binascii.crc_hqx``.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

from .errors import DeviceError

SYNC = 0xA5
HEADER = 5  # SYNC, OP, SEQ, LEN lo, LEN hi
OVERHEAD = HEADER + 2  # + CRC
PROTOCOL_VERSION = 1
MAX_LEN = 0xFFFE
IDLE_BITS = 20_000  # bit periods of silence inside a frame after which the board drops it
STREAM_LEN = 0xFFFF  # LEN of a self-delimiting payload (the RUN response, sent as it is made)
END_OF_STREAM, ABORT = 0xFFFF, 0xFFFE  # block counts that end a stream


class Op(IntEnum):
    """Command opcodes. A response carries ``op | 0x80`` (ACK) or :attr:`NACK`."""

    IDENTIFY = 0x01  # -> decoder header + the core's identify block; clears the replay memory
    RESET = 0x02  # pulse the core's soft reset (neuron state, traces, counters)
    RUN = 0x03  # load inputs and run steps; -> output spikes as address events
    WRITE = 0x20  # | region: write elements at a word offset of a region
    READ = 0x30  # | region: read elements from a word offset of a region
    NACK = 0xFF  # response only: payload = (request op, error code)


class Region(IntEnum):
    """Word-addressed areas of the core's host bus (docs/hardware.md); sizes come from IDENTIFY,
    where each starts on the core's bus: :data:`snnkit.memory_map.LINK_BASE`."""

    IDENT = 0  # read-only: neurons, synapses, bit widths, features
    CTRL = 1  # control registers: STEPS, LEARN, STATUS, N_POP, N_PROJ ...
    POP = 2  # population table: neuron parameters
    PROJ = 3  # projection table: delays, STDP parameters
    STATE = 4  # neuron state v, i, refractory, theta (debug)
    WEIGHT = 5  # weights, bit 31 = plastic (the plasticity mask)
    TRACE = 6  # STDP traces (debug, read-only)
    COUNTER = 7  # step count, cycles lo/hi, synaptic events (read-only)
    LINK = 8  # the decoder's own counters: frames, CRC errors, NACKs, replays (read-only)
    FIFO = 9  # IN_FIFO, IN_LEVEL, OUT_FIFO, OUT_LEVEL: manual stepping
    ROUTE = 10  # multi-core boards: the spike router's route table
    INMAP = 11  # multi-core boards: each core's index of each network input
    WAVES = 12  # multi-core boards: N_WAVES, then each core's {enabled, wave}
    BIAS = 13  # per-neuron bias (word g: neuron g), signed


N_REGIONS = 16


class ErrorCode(IntEnum):
    """Reasons a board refuses a frame (second byte of a NACK payload)."""

    BAD_CRC = 1  # CRC mismatch: nothing was executed
    BAD_OPCODE = 2  # unknown opcode
    BAD_LENGTH = 3  # LEN too long for the buffer or wrong for the opcode
    BAD_ADDRESS = 4  # offset + count outside the region, or the region does not exist
    BAD_WIDTH = 5  # element width not 1, 2 or 4
    READ_ONLY = 6  # write to a read-only region
    BUS_TIMEOUT = 7  # the core did not answer a bus transaction in time
    RUN_TIMEOUT = 8  # a step did not finish in time
    EVENT_OVERFLOW = 9  # more output events in one step than max_events


WIDTHS = (1, 2, 4)


# --------------------------------------------------------------------------- errors


class ProtocolError(DeviceError):
    """A frame or payload is malformed (raised by the pure functions here)."""


class CrcError(ProtocolError):
    """A received frame's CRC does not match its contents; ``op`` and ``seq`` are what its
    (possibly damaged) header says."""

    def __init__(self, message: str, op: int | None = None, seq: int | None = None):
        super().__init__(message)
        self.op, self.seq = op, seq


class NackError(DeviceError):
    """The board refused a command; ``code`` is an :class:`ErrorCode` (or raw int)."""

    def __init__(self, op: int, code: int):
        self.op, self.code = op, code
        super().__init__(f"board refused {_op_name(op)}: {error_name(code)}")


def error_name(code: int) -> str:
    """Name of an :class:`ErrorCode`, or ``error N`` for an unknown one."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


def _op_name(op: int) -> str:
    base = op & 0xF0 if op & 0xF0 in (Op.WRITE, Op.READ) else op
    try:
        name = Op(base).name
        region = Region(op & 0x0F).name if base != op else ""
    except ValueError:
        return f"opcode 0x{op:02x}"
    return f"{name}({region})".replace("()", "")


# --------------------------------------------------------------------------- frames


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/IBM-3740 (poly 0x1021, init 0xFFFF); check value ``crc16(b"123456789") == 0x29B1``.

    Appending the CRC big-endian gives a message whose CRC is 0 (what the RTL checks).
    """
    return binascii.crc_hqx(bytes(data), crc)


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    op: int
    seq: int
    payload: bytes


def stream_length(data: bytes, start: int = 0) -> int | None:
    """Length of the self-delimiting payload at ``data[start:]``, None if incomplete.

    A stream is blocks ``count u16, count x u16``, ended by a count of 0xFFFF, or by 0xFFFE
    and a u16 error code (a RUN aborted by the board).
    """
    pos = start
    while pos + 2 <= len(data):
        n = data[pos] | data[pos + 1] << 8
        pos += 2
        if n == END_OF_STREAM:
            return pos - start
        if n == ABORT:
            return pos + 2 - start if pos + 2 <= len(data) else None
        pos += 2 * n
    return None


def encode_frame(op: int, seq: int, payload: bytes = b"", stream: bool = False) -> bytes:
    """Serialise a frame; ``stream``: LEN is 0xFFFF and the payload delimits itself.

    Raises
    ------
    ProtocolError : op or seq not a byte, payload longer than 65534 bytes, or a stream
        payload that does not end exactly with its end marker
    """
    if not 0 <= op <= 0xFF:
        raise ProtocolError(f"op: must be a byte, got {op!r}")
    if not 0 <= seq <= 0xFF:
        raise ProtocolError(f"seq: must be a byte, got {seq!r}")
    if len(payload) > MAX_LEN:
        raise ProtocolError(f"payload: {len(payload)} bytes exceeds {MAX_LEN}")
    if stream and stream_length(bytes(payload)) != len(payload):
        raise ProtocolError("payload: not a stream ending with its end marker")
    length = STREAM_LEN if stream else len(payload)
    body = struct.pack("<BBH", op, seq, length) + bytes(payload)
    return bytes([SYNC]) + body + struct.pack(">H", crc16(body))


class FrameParser:
    """Incremental parser: feed bytes, collect frames; resynchronises after garbage.

    Bytes before a SYNC are dropped (counted in :attr:`dropped`). A frame whose CRC fails is
    reported as a :class:`CrcError` in the output list and scanning restarts one byte after
    its SYNC, so a SYNC value inside a corrupted frame cannot hide the next good frame.
    """

    def __init__(self, max_len: int = MAX_LEN):
        self.max_len = max_len
        self.buf = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> list[Frame | ProtocolError]:
        """Add bytes; return the frames (or errors) completed by them, in order."""
        self.buf += data
        out: list[Frame | ProtocolError] = []
        while True:
            start = self.buf.find(SYNC)
            if start < 0:
                self.dropped += len(self.buf)
                self.buf.clear()
                return out
            if start:
                self.dropped += start
                del self.buf[:start]
            if len(self.buf) < HEADER:
                return out
            length = self.buf[3] | self.buf[4] << 8
            if length == STREAM_LEN:
                length = stream_length(self.buf, HEADER)
                if length is None:
                    if len(self.buf) - HEADER <= self.max_len:
                        return out
                    length = len(self.buf)  # runaway stream: report it below
            if length > self.max_len:
                out.append(ProtocolError(f"frame: LEN {length} exceeds {self.max_len}"))
                self._skip()
                continue
            end = HEADER + length + 2
            if len(self.buf) < end:
                return out
            if crc16(self.buf[1:end]) != 0:
                out.append(CrcError(f"frame: CRC mismatch (op 0x{self.buf[1]:02x}, "
                                    f"seq {self.buf[2]}, {length} payload bytes)",
                                    self.buf[1], self.buf[2]))
                self._skip()
                continue
            out.append(Frame(self.buf[1], self.buf[2], bytes(self.buf[HEADER:end - 2])))
            del self.buf[:end]

    def reset(self) -> None:
        """Drop buffered bytes (after a timeout: a false SYNC may claim a long LEN)."""
        self.dropped += len(self.buf)
        self.buf.clear()

    def _skip(self) -> None:
        self.dropped += 1
        del self.buf[:1]


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame (no leading or trailing bytes).

    Raises
    ------
    CrcError : the CRC does not match
    ProtocolError : truncated, too long, or not starting with SYNC
    """
    data = bytes(data)
    if not data or data[0] != SYNC:
        raise ProtocolError("frame: does not start with the SYNC byte 0xA5")
    if len(data) < OVERHEAD:
        raise ProtocolError(f"frame: truncated ({len(data)} bytes, at least {OVERHEAD} needed)")
    length = data[3] | data[4] << 8
    if length == STREAM_LEN:
        length = stream_length(data, HEADER)
        if length is None:
            raise ProtocolError("frame: stream payload has no end marker")
    if len(data) != OVERHEAD + length:
        raise ProtocolError(f"frame: LEN says {length} payload bytes, got "
                            f"{len(data) - OVERHEAD}")
    out = FrameParser().feed(data)
    if isinstance(out[0], ProtocolError):
        raise out[0]
    return out[0]


# --------------------------------------------------------------------------- payloads


def _check_width(width: int) -> None:
    if width not in WIDTHS:
        raise ProtocolError(f"width: element width must be 1, 2 or 4 bytes, got {width!r}")


def _check_offset(offset: int) -> None:
    if not 0 <= offset < 1 << 32:
        raise ProtocolError(f"offset: must fit 32 bits, got {offset!r}")


def write_payload(offset: int, width: int, values, flag: bool = False) -> bytes:
    """``offset u32 | mode u8 | values`` (little-endian, two's complement, ``width`` bytes each).

    ``mode`` is ``width | 0x80 * flag``. The board sign-extends 1- and 2-byte elements to 31
    bits and sets bit 31 of every written word to ``flag`` (the plastic bit of a weight).

    Raises
    ------
    ProtocolError : bad width or offset, or a value that does not fit ``width`` bytes
    """
    _check_offset(offset)
    _check_width(width)
    lo, hi = -(1 << (8 * width - 1)), (1 << (8 * width)) - 1
    out = bytearray(struct.pack("<IB", offset, width | (0x80 if flag else 0)))
    for k, v in enumerate(values):
        v = int(v)
        if not lo <= v <= hi:
            raise ProtocolError(f"values[{k}]: {v} does not fit {width} byte(s)")
        out += (v & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return bytes(out)


def parse_write(payload: bytes) -> tuple[int, int, bool, list[int]]:
    """Inverse of :func:`write_payload`: ``(offset, width, flag, unsigned values)``."""
    if len(payload) < 5:
        raise ProtocolError(f"write payload: {len(payload)} bytes, at least 5 needed")
    offset, mode = struct.unpack_from("<IB", payload)
    width, flag = mode & 0x7F, bool(mode & 0x80)
    _check_width(width)
    data = payload[5:]
    if len(data) % width:
        raise ProtocolError(f"write payload: {len(data)} data bytes is not a multiple of "
                            f"width {width}")
    return offset, width, flag, unpack_elements(data, width, signed=False)


def read_payload(offset: int, count: int, width: int) -> bytes:
    """``offset u32 | count u16 | width u8``."""
    _check_offset(offset)
    _check_width(width)
    if not 1 <= count <= 0xFFFF:
        raise ProtocolError(f"count: must be in 1..65535, got {count!r}")
    return struct.pack("<IHB", offset, count, width)


def unpack_elements(data: bytes, width: int, signed: bool) -> list[int]:
    """Little-endian elements of ``width`` bytes."""
    _check_width(width)
    if len(data) % width:
        raise ProtocolError(f"data: {len(data)} bytes is not a multiple of width {width}")
    return [int.from_bytes(data[k:k + width], "little", signed=signed)
            for k in range(0, len(data), width)]


def encode_events(steps: list[list[int]]) -> bytes:
    """``steps u16 | per step: count u16, count x index u16``: address events of each step.

    The RUN payload (input spikes, global input indices) and the RUN response (output spikes,
    global neuron indices) both use this format.

    Raises
    ------
    ProtocolError : more than 65535 steps or events in a step, or an index above 65535
    """
    if len(steps) > 0xFFFF:
        raise ProtocolError(f"steps: at most 65535 per frame, got {len(steps)}")
    out = bytearray(struct.pack("<H", len(steps)))
    for t, ev in enumerate(steps):
        if len(ev) > 0xFFFF or any(not 0 <= int(i) <= 0xFFFF for i in ev):
            raise ProtocolError(f"steps[{t}]: at most 65535 events with indices 0..65535")
        out += struct.pack(f"<H{len(ev)}H", len(ev), *(int(i) for i in ev))
    return bytes(out)


run_payload = encode_events


def parse_events(payload: bytes) -> list[list[int]]:
    """Inverse of :func:`encode_events`: the address events of each step.

    Raises
    ------
    ProtocolError : the payload is truncated or has trailing bytes
    """
    if len(payload) < 2:
        raise ProtocolError("events: shorter than its 2-byte step count")
    steps, pos, out = struct.unpack_from("<H", payload)[0], 2, []
    for s in range(steps):
        if pos + 2 > len(payload):
            raise ProtocolError(f"events: truncated at step {s} of {steps}")
        n = struct.unpack_from("<H", payload, pos)[0]
        pos += 2
        if pos + 2 * n > len(payload):
            raise ProtocolError(f"events: step {s} claims {n} events, payload truncated")
        out.append(list(struct.unpack_from(f"<{n}H", payload, pos)))
        pos += 2 * n
    if pos != len(payload):
        raise ProtocolError(f"events: {len(payload) - pos} trailing bytes")
    return out


@dataclass(frozen=True)
class Identity:
    """What IDENTIFY returns: the decoder header and the core's identify block."""

    version: int  # protocol version
    max_payload: int  # longest command payload the board buffers (bytes)
    max_events: int  # address events one step can produce (sizes RUN frames)
    regions: tuple[int, ...]  # size in words of each Region (0 = absent)
    writable: int  # bit r set: region r accepts writes
    core: tuple[int, ...]  # the core's identify words (meaning: docs/hardware.md)

    def region_size(self, region: Region) -> int:
        return self.regions[region]


IDENT_HEADER = struct.Struct("<BBHHH")  # version, n_regions, max_payload, max_events, writable


def identify_payload(ident: Identity) -> bytes:
    """Serialise an :class:`Identity` (what the RTL sends; used by tests and models)."""
    return (IDENT_HEADER.pack(ident.version, len(ident.regions), ident.max_payload,
                              ident.max_events, ident.writable)
            + struct.pack(f"<{len(ident.regions)}I", *ident.regions)
            + struct.pack(f"<{len(ident.core)}I", *ident.core))


def parse_identify(payload: bytes) -> Identity:
    """Inverse of :func:`identify_payload`.

    Raises
    ------
    ProtocolError : truncated, or a protocol version this driver does not speak
    """
    if len(payload) < IDENT_HEADER.size:
        raise ProtocolError(f"identify: {len(payload)} bytes, header needs {IDENT_HEADER.size}")
    version, n, max_payload, max_events, writable = IDENT_HEADER.unpack_from(payload)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"identify: board speaks protocol version {version}, this driver "
                            f"speaks {PROTOCOL_VERSION}")
    rest = payload[IDENT_HEADER.size:]
    if len(rest) < 4 * n or (len(rest) - 4 * n) % 4:
        raise ProtocolError(f"identify: {len(rest)} bytes after the header do not hold "
                            f"{n} region sizes plus whole words")
    regions = struct.unpack_from(f"<{n}I", rest)
    core = struct.unpack_from(f"<{(len(rest) - 4 * n) // 4}I", rest, 4 * n)
    regions = tuple(regions) + (0,) * max(0, N_REGIONS - n)
    return Identity(version, max_payload, max_events, regions, writable, tuple(core))


def parse_nack(payload: bytes) -> NackError:
    """A NACK payload ``(request op, error code)`` as the exception to raise."""
    if len(payload) != 2:
        raise ProtocolError(f"nack: payload must be 2 bytes, got {len(payload)}")
    return NackError(payload[0], payload[1])


def encode_stream(steps: list[list[int]], abort: int | None = None) -> bytes:
    """A RUN response payload: per step ``count u16, count x index u16``, then 0xFFFF (or
    0xFFFE and the error code when the board aborted the run)."""
    body = encode_events(steps)[2:]
    tail = struct.pack("<HH", ABORT, abort) if abort is not None else struct.pack("<H",
                                                                                 END_OF_STREAM)
    return body + tail


def parse_stream(payload: bytes) -> tuple[list[list[int]], int | None]:
    """Inverse of :func:`encode_stream`: ``(events of each step done, abort code or None)``.

    Raises
    ------
    ProtocolError : malformed or trailing bytes
    """
    if stream_length(payload) != len(payload):
        raise ProtocolError("run response: not a stream ending exactly with its end marker")
    steps, pos = [], 0
    while True:
        n = struct.unpack_from("<H", payload, pos)[0]
        pos += 2
        if n == END_OF_STREAM:
            return steps, None
        if n == ABORT:
            return steps, struct.unpack_from("<H", payload, pos)[0]
        steps.append(list(struct.unpack_from(f"<{n}H", payload, pos)))
        pos += 2 * n
