"""The driver's link layer: one command frame, one response, over a serial line that may
damage, lose or duplicate bytes (docs/uart-protocol.md, "Reliability").

:class:`Link` sends a command and returns its ACK payload, adapting to the line:

- **frame size**: :attr:`Link.payload` is the size transfers are split into. It halves after
  a damaged or lost exchange of about that size and doubles after ``GROW_AFTER`` clean ones
  in a row, between ``MIN_PAYLOAD`` and the board's buffer, as ZMODEM adapts its blocks;
- **waiting**: an attempt waits a retransmission timeout from the round trips measured for
  exchanges of its size (Jacobson/Karels: SRTT + 4 RTTVAR), doubled after each unanswered
  attempt, at most ``timeout``; response bytes that keep coming extend it;
- **resynchronising**: after an attempt that got no byte back, the board may hold part of the
  frame: one filler byte is sent that cannot complete it into a frame with a good CRC (the
  board refuses it at once), and if the board still says nothing, a silence longer than its
  idle timeout (``p.IDLE_BITS``) makes it drop whatever it holds;
- **never a wrong answer**: a response followed by a stray byte (the trace of a duplicated
  byte, which a CRC-16 misses once in 65,536 times) or that fails the caller's check is
  treated as damaged. A frame is resent unchanged (the board answers a repeated frame from
  its replay memory, so a command never runs twice); a transfer the caller may split
  (``splittable``) is split again after the frame size shrank (:class:`Shrunk`).

A command fails with :class:`~snnkit.errors.DeviceError` after ``retries + 1`` attempts, or
sooner once the board has sent nothing at all for ``timeout`` seconds (over at least
``SILENT_ATTEMPTS`` attempts).
"""

from __future__ import annotations

import binascii
import collections
import time
from collections.abc import Callable

from . import protocol as p
from .errors import DeviceError
from .protocol import ErrorCode, Op

MIN_PAYLOAD = 16  # the smallest frame payload the link shrinks to (bytes)
GROW_AFTER = 8  # clean exchanges in a row of the current size before it doubles
RTO_MIN = 0.01  # seconds: the shortest wait for the first byte of a response
GAP_MIN = 0.01  # seconds: the shortest wait for the rest of a response that began
SILENT_ATTEMPTS = 12  # attempts in a row without a byte back before a silent board fails
LINK_ERRORS = (ErrorCode.BAD_CRC, ErrorCode.BAD_LENGTH)  # the frame, not the command: resend
FILLERS = (0x00, 0xFF, 0x55, 0x0F, 0xF0, 0x33)  # preferred resync bytes, in order


class Shrunk(DeviceError):
    """The frame size shrank below a splittable command's: split it again (internal)."""


class PortLost(DeviceError):
    """The port failed (a serial adapter unplugged, a socket closed)."""


class RoundTrip:
    """Retransmission timeouts from measured round trips, per size class of exchange
    (powers of two of the bytes on the wire), after Jacobson and Karels.

    A class not measured yet borrows the nearest measured one: a smaller class's timeout
    scaled by the size ratio, or a larger class's as it is (both overestimate, so a first
    exchange of a new size is never cut short).
    """

    def __init__(self, initial: float, cap: float):
        self.initial, self.cap = initial, cap
        self.classes: dict[int, list[float]] = {}  # class -> [srtt, rttvar]
        self.gaps = collections.deque([0.05], maxlen=64)  # longest pauses inside responses

    def gap_sample(self, g: float) -> None:
        """The longest pause between the bytes of a response that arrived whole (the host's
        and the OS's scheduling: a loaded machine pauses for tens of milliseconds)."""
        self.gaps.append(g)

    def gap(self) -> float:
        """How long a response that began may pause before its rest counts as lost: twice
        the longest pause of the last 64 whole responses."""
        return min(max(GAP_MIN, 2 * max(self.gaps)), self.cap)

    @staticmethod
    def size_class(n: int) -> int:
        return max(0, int(n) - 1).bit_length()

    def sample(self, n: int, rtt: float) -> None:
        """A round trip of ``n`` wire bytes answered at the first attempt (Karn's rule),
        scaled to the largest exchange of its class (so that it bounds the whole class)."""
        k = self.size_class(n)
        rtt *= (1 << k) / max(1, n)
        c = self.classes.get(k)
        if c is None:
            self.classes[k] = [rtt, rtt / 2]
        else:
            c[1] = 0.75 * c[1] + 0.25 * abs(c[0] - rtt)
            c[0] = 0.875 * c[0] + 0.125 * rtt

    def rto(self, n: int) -> float:
        """Seconds to wait for the response to an exchange of ``n`` wire bytes."""
        if not self.classes:
            return min(self.initial, self.cap)
        k = self.size_class(n)
        near = min(self.classes, key=lambda c: (abs(c - k), c > k))
        srtt, var = self.classes[near]
        t = (srtt + 4 * var) * (2.0 ** (k - near) if near < k else 1.0)
        return min(max(RTO_MIN, t), self.cap)

    def byte_time(self) -> float:
        """An upper bound of the seconds one byte takes on the wire (latency included)."""
        if not self.classes:
            return 1e-4
        c = max(self.classes)
        return self.classes[c][0] / (1 << c)


class Link:
    """Stop-and-wait exchanges with a board over ``port`` (a pyserial-like object).

    Parameters
    ----------
    port : an open port with ``write``, ``read``, ``in_waiting``
    timeout : seconds: the longest wait for one response and the longest the board may stay
        silent before a command fails
    retries : resends of one command before it fails
    cap : the largest frame payload (the board's buffer, or less)

    A port with ``clock()`` and ``sleep(s)`` methods of its own (a scripted port in tests)
    keeps the link's time; otherwise it is the system's.
    """

    def __init__(self, port, timeout: float, retries: int, cap: int = p.MAX_LEN):
        self.port, self.timeout, self.retries = port, float(timeout), int(retries)
        self.clock = getattr(port, "clock", time.monotonic)
        self.sleep = getattr(port, "sleep", time.sleep)
        self.seq = 0
        self.parser = p.FrameParser(max_len=p.MAX_LEN)
        self.rtt = RoundTrip(initial=min(self.timeout / 4, 0.25), cap=self.timeout)
        self.cap = self.payload = max(MIN_PAYLOAD, int(cap))
        self.clean = 0  # clean exchanges in a row at the current frame size
        self.lossy = False  # the line damaged a frame this session (sticky)
        self.acks = 0  # responses accepted: good frames the board surely received
        self.stats = {"frames": 0, "resends": 0, "crc_errors": 0, "rejected": 0,
                      "timeouts": 0, "suspect": 0, "payload_changes": 0,
                      "payload": self.payload, "bytes_out": 0, "bytes_in": 0}

    # ------------------------------------------------------------------ frame size

    def set_cap(self, cap: int) -> None:
        """The board's buffer (from IDENTIFY) or the user's limit: the frame size's ceiling."""
        self.cap = max(MIN_PAYLOAD, int(cap))
        self.parser.max_len = max(self.parser.max_len, self.cap)
        self.payload = min(self.payload, self.cap)
        self.stats["payload"] = self.payload

    def _resize(self, size: int) -> None:
        size = min(max(MIN_PAYLOAD, size), self.cap)
        if size != self.payload:
            self.payload = size
            self.stats["payload_changes"] += 1
            self.stats["payload"] = size
        self.clean = 0

    def _outcome(self, size: int, ok: bool) -> None:
        """Adapt the frame size to an exchange of ``size`` payload bytes: a damaged one (a
        bad CRC either way: a lost byte shows as one when the resync byte completes the
        frame) halves it, to half that exchange's size if that is smaller (exchanges too
        small to split say nothing); clean ones in a row of at least half the size double
        it. A timeout alone does not count: on a loaded host it may be a late answer."""
        if not ok:
            if size >= 2 * MIN_PAYLOAD:
                self._resize(min(self.payload, size) // 2)
        elif 2 * size >= self.payload:
            self.clean += 1
            if self.clean >= GROW_AFTER and self.payload < self.cap:
                self._resize(self.payload * 2)

    # ------------------------------------------------------------------ I/O

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except Exception as e:  # noqa: BLE001 - pyserial, sockets and OS raise many types
            raise PortLost(f"port: write failed ({e}); {self._gone()}") from e
        self.stats["bytes_out"] += len(data)

    def _read(self, n: int | None = None) -> bytes:
        try:
            return self.port.read(max(1, self.port.in_waiting) if n is None else n)
        except Exception as e:  # noqa: BLE001
            raise PortLost(f"port: read failed ({e}); {self._gone()}") from e

    def _pending(self) -> int:
        try:
            return self.port.in_waiting
        except Exception as e:  # noqa: BLE001
            raise PortLost(f"port: read failed ({e}); {self._gone()}") from e

    def _gone(self) -> str:
        """What a lost port means (a TCP one: often the emulated board taken by another)."""
        if "protocol_socket" in type(self.port).__module__:
            return ("the device is gone (an emulated board serves one client at a time, the "
                    "newest: did another client connect to it?)")
        return "the device is gone"

    def _drain(self) -> None:
        """Drop stale bytes (late answers to earlier commands) before a new command."""
        while self._pending():
            if not self._read(self._pending()):
                break
        self.parser.reset()

    # ------------------------------------------------------------------ one command

    def call(self, op: int, payload: bytes = b"", *, expect: int = 0,
             check: Callable[[bytes], bool] | None = None, splittable: bool = False) -> bytes:
        """Send one command; return its ACK payload.

        Parameters
        ----------
        expect : payload bytes the response should carry (sizes the wait and the frame-size
            bookkeeping of reads and runs)
        check : a test of the ACK payload; a response that fails it counts as damaged and
            the command is sent again (the board replays its response)
        splittable : the caller may split the transfer: raise :class:`Shrunk` instead of
            resending once the frame size has shrunk to half this frame's or less

        Raises
        ------
        NackError : the board refused the command (bad address, width ...)
        Shrunk : (``splittable``) split the transfer again
        PortLost : the port failed
        DeviceError : no valid answer after ``retries`` resends, or a silent board
        """
        self.seq = (self.seq + 1) & 0xFF
        frame = p.encode_frame(op, self.seq, payload)
        size = max(len(payload), expect)
        wire = len(frame) + p.OVERHEAD + expect
        self._drain()
        last_heard = self.clock()
        why, backoff, ambiguous, silent = "no answer", 1.0, False, 0
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["resends"] += 1
            t0 = self.clock()
            self._write(frame)
            self.stats["frames"] += 1
            wait = min(self.rtt.rto(wire) * backoff, self.timeout / 4)
            kind, value, heard = self._await(op, wait, check)
            timed_out = kind in ("partial", "nothing")
            if kind == "nothing":  # the board may hold part of the frame
                silent += 1
                kind, value, heard = self._resync(frame, op, check, value, silent, t0)
            else:
                silent = 0
            last_heard = heard or last_heard
            t1 = heard or self.clock()
            if not ambiguous and kind in ("ack", "damaged", "rejected") and op != Op.RUN:
                # (the answer to this copy: a copy is resent only after a quiet line, or a
                # timeout, after which times are ambiguous; a RUN's time is the core's too)
                self.rtt.sample(wire if kind != "rejected" else len(frame) + 9, t1 - t0)
            if kind == "ack":
                self.acks += 1
                self._outcome(size, True)
                return value
            why = value
            if kind in ("damaged", "rejected"):  # bytes came damaged: answers may be wrong
                self.lossy = True  # (a lost byte alone never passes for a frame)
                self._outcome(size, False)  # (a late answer is no reason to shrink)
            if timed_out:
                self.stats["timeouts"] += 1
            if kind in ("partial", "nothing"):
                backoff, ambiguous = min(1.5 * backoff, 4.0), True
            else:  # the board answered: its round trip is as measured
                backoff = 1.0
                self._quiet()  # it may still be sending: resend to a listening board
            self.parser.reset()  # a false SYNC may claim a long LEN
            if silent >= SILENT_ATTEMPTS and self.clock() - last_heard >= self.timeout:
                why = f"the board was silent for {self.clock() - last_heard:.1f} s"
                break
            self._settle(t0, len(frame))
            if splittable and 2 * self.payload <= size:
                raise Shrunk(f"{p._op_name(op)}: frame size now {self.payload}")
        n = attempt + 1
        raise DeviceError(f"{p._op_name(op)}: {why} after {n} attempt{'s' * (n > 1)}; is the "
                          f"board connected and powered?")

    def _await(self, op: int, wait: float, check) -> tuple[str, object, float | None]:
        """Read until our response, or ``wait`` seconds (pushed on while bytes arrive).

        Returns ``(kind, the ACK payload or why it failed, when the board was last heard)``,
        kind one of ack, damaged, rejected; or, after the wait, partial (bytes came, but not
        our whole response: a byte of it was lost) or nothing (no byte at all).
        """
        t0 = self.clock()
        deadline, heard, begun, raw = t0 + wait, None, False, bytearray()
        gap, longest = self.rtt.gap(), 0.0
        ours = (p.SYNC, op | 0x80, self.seq)
        while self.clock() < deadline:
            data = self._read()
            if not data:
                continue
            raw += data
            now = self.clock()
            if begun:
                longest = max(longest, now - heard)
            heard = now
            deadline = heard + gap if begun else max(deadline, heard + gap)
            for item in self.parser.feed(data):
                if isinstance(item, p.ProtocolError):
                    self.stats["crc_errors"] += 1
                    if getattr(item, "seq", None) == self.seq:  # (its header says) ours
                        return "damaged", f"a damaged response ({item})", heard
                    continue
                if item.seq != self.seq or item.op not in (op | 0x80, Op.NACK):
                    continue  # a late answer to an earlier command, or garbage
                if self._stray_byte(item, raw) or (item.op != Op.NACK and check is not None
                                                   and not check(item.payload)):
                    self.stats["suspect"] += 1
                    return "damaged", "a response that failed its checks", heard
                if item.op != Op.NACK:
                    self.stats["bytes_in"] += len(item.payload) + p.OVERHEAD
                    self.rtt.gap_sample(longest)
                    return "ack", item.payload, heard
                try:
                    err = p.parse_nack(item.payload)
                except p.ProtocolError:
                    continue
                if err.op != op:
                    continue  # a NACK of garbage that carried our SEQ
                if err.code in LINK_ERRORS:
                    self.stats["rejected"] += 1
                    return "rejected", str(err), heard
                raise err
            buf = self.parser.buf
            begun = begun or (len(buf) >= 3 and buf[0] == p.SYNC and buf[2] == self.seq
                              and buf[1] in ours[1:2] + (Op.NACK,))
        why = f"no answer within {self.clock() - t0:.2f} s"
        return ("nothing" if heard is None else "partial"), why, heard

    def _stray_byte(self, frame: p.Frame, raw: bytearray) -> bool:
        """A byte right after the response ``frame`` (in ``raw``, the bytes of this attempt)
        that starts no frame: the response may be a duplicated byte's shifted copy whose CRC
        matched by chance (1 in 65,536)."""
        enc = p.encode_frame(frame.op, frame.seq, frame.payload, stream=frame.op == Op.RUN | 0x80)
        end = raw.rfind(enc)
        rest = bytes(raw[end + len(enc):]) if end >= 0 else b""
        if not rest and self._pending():
            rest = self._read(self._pending())
            self.parser.feed(rest)
        return bool(rest) and rest[0] != p.SYNC

    def _quiet(self) -> None:
        """Read (and drop) until the line has been quiet for a few byte times."""
        quiet = min(max(0.005, 16 * self.rtt.byte_time()), 0.05)
        last = self.clock()
        while self.clock() - last < quiet:
            if self._read():
                last = self.clock()

    def _settle(self, t0: float, n: int) -> None:
        """Resend only once the previous copy is surely all on the wire (a board that
        refused its header early hunts SYNC through the tail)."""
        left = t0 + n * self.rtt.byte_time() - self.clock()
        if left > 0:
            self.sleep(min(left, self.timeout / 4))

    def _idle(self) -> float:
        """Seconds of silence after which the board surely dropped a partial frame (its idle
        timeout, from an upper bound of the byte time)."""
        return 1.5 * p.IDLE_BITS / 10 * self.rtt.byte_time()

    def _resync(self, frame: bytes, op: int, check, why: str, silent: int, t0: float):
        """After the ``silent``-th attempt in a row of which no byte came back: make sure the
        board does not hold part of a frame that the resend would complete.

        One filler byte, which makes a copy of the frame short of one byte (a byte lost on
        the way) fail its CRC: the board refuses it, or ignores the filler while it hunts
        SYNC (no filler once the line has been quiet longer than the board's idle timeout:
        it dropped the partial frame). From the second silent attempt on, the board may be
        inside a false frame that garbage started, which every resend feeds: a silence
        longer than its idle timeout, doubled each time (the idle timeout in the host's
        time is only estimated). Returns :meth:`_await`'s result (a late answer is taken).
        """
        if self.clock() - t0 < self._idle():
            self._write(bytes([safe_filler(frame)]))
            kind, value, heard = self._await(op, self.rtt.rto(2 * p.OVERHEAD), check)
            if kind != "nothing":
                return kind, value, heard
        if silent > 1:
            self.sleep(min(max(0.02, self._idle()) * 2 ** (silent - 2), self.timeout / 2))
            self._drain()
        return "nothing", why, None


_TABLE = {binascii.crc_hqx(bytes([x]), 0): x for x in range(256)}  # CRC step -> its byte


def safe_filler(frame: bytes) -> int:
    """A byte, not SYNC, that turns no copy of ``frame`` short of one payload or CRC byte
    into a frame with a good CRC (at most one byte per lost position would)."""
    body = frame[1:]
    bad = set()
    for i in range(p.HEADER - 1, len(body)):  # a lost header byte changes LEN: no completion
        r = p.crc16(body[:i] + body[i + 1:])
        x = _TABLE.get((r << 8) & 0xFFFF)  # the CRC after byte b is 0 iff T[r>>8 ^ b] == r<<8
        if x is not None:
            bad.add(x ^ (r >> 8))
    return next(b for b in FILLERS + tuple(range(256)) if b != p.SYNC and b not in bad)
