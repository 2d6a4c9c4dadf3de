"""Soak of the RTL command decoder: the emulated board (Verilated hdl/host_top.v: UART,
decoder, core) is fed rounds of junk on its socket -- random bytes, frames with bad CRCs,
frames with LEN over the buffer or wrong for the command -- and after each round, once the
line has been quiet longer than the decoder's idle timeout, one valid frame, which must be
answered (no hang, resynchronised). At the end the board's link counters must add up with
what came back: every NACK it counted arrived, every bad CRC it counted was answered
BAD_CRC, and every response is one received frame.

benchmarks/decoder_soak.py runs it at 10^5 bytes and more; tests/test_decoder_soak.py a short
round.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from snnkit import protocol as p
from snnkit.protocol import Op, Region

LINK_READ = p.read_payload(0, 4, 4)  # frames, CRC errors, NACKs, replays


@dataclass
class SoakResult:
    junk_bytes: int = 0  # bytes of junk sent
    junk_frames: int = 0  # of them, in valid-looking frames (bad CRC or length)
    probes: int = 0  # valid frames sent after a round
    answered: int = 0  # of them, answered with their ACK
    worst_answer_s: float = 0.0  # the longest a probe waited for its answer
    responses: Counter = field(default_factory=Counter)  # what came back, by kind
    before: tuple = ()  # LINK counters before and after (frames, CRC errors, NACKs, replays)
    after: tuple = ()

    def counters_add_up(self) -> list[str]:
        """What does not add up (empty: all does)."""
        d = [a - b for a, b in zip(self.after, self.before)]
        frames, crc, nacks, replays = d
        r = self.responses
        out = []
        if nacks != r["nack"]:
            out.append(f"the board counted {nacks} NACKs, {r['nack']} arrived")
        if crc != r["nack BAD_CRC"]:
            out.append(f"the board counted {crc} bad CRCs, {r['nack BAD_CRC']} NACK BAD_CRC "
                       f"arrived")
        total = r["ack"] + r["nack"]
        # each response answers a good frame, a bad CRC, or a LEN over the buffer (refused at
        # once with BAD_LENGTH, not counted as a frame)
        if not frames + crc <= total <= frames + crc + r["nack BAD_LENGTH"]:
            out.append(f"{total} responses for {frames} good frames and {crc} bad CRCs")
        if replays > r["ack"]:
            out.append(f"{replays} replays but {r['ack']} ACKs")
        if r["damaged"]:
            out.append(f"{r['damaged']} damaged responses on a clean socket")
        return out


class _Reader(threading.Thread):
    """Collects every byte the board sends."""

    def __init__(self, sock: socket.socket):
        super().__init__(daemon=True)
        self.sock, self.data, self.lock = sock, bytearray(), threading.Lock()
        self.last = time.monotonic()

    def run(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk
                self.last = time.monotonic()


def junk(rng: random.Random, n: int, max_payload: int) -> tuple[bytes, int]:
    """About ``n`` bytes of junk: random bytes (many SYNCs among them) and frames that look
    valid but have a bad CRC, a LEN over the buffer, or a good CRC and a LEN wrong for the
    command. Returns the bytes and how many such frames they hold."""
    out, frames = bytearray(), 0
    while len(out) < n:
        kind = rng.random()
        if kind < 0.5:
            out += bytes(rng.choice((p.SYNC, rng.randrange(256)))
                         for _ in range(rng.randrange(1, 200)))
            continue
        frames += 1
        op = rng.choice([Op.IDENTIFY, Op.RESET, Op.RUN, Op.WRITE | Region.WEIGHT,
                         Op.READ | Region.WEIGHT, Op.WRITE | Region.POP, rng.randrange(256)])
        body = rng.randbytes(rng.randrange(0, 64))
        frame = bytearray(p.encode_frame(op, rng.randrange(256), body))
        if kind < 0.75:  # a bad CRC
            frame[-1 - rng.randrange(2)] ^= 1 << rng.randrange(8)
        elif kind < 0.85:  # LEN over the buffer: refused as soon as LEN is in
            frame[3:5] = struct.pack("<H", rng.randrange(max_payload + 1, 0xFFFF))
        else:  # a good CRC, and a length no command of these has
            op = rng.choice([Op.READ | Region.WEIGHT, Op.RUN, Op.IDENTIFY, Op.RESET])
            bad = {Op.RUN: p.encode_events([[1, 2]])[:-1], Op.IDENTIFY: b"x",
                   Op.RESET: b"xy"}.get(op, p.read_payload(0, 1, 4) + b"\x00")
            frame = bytearray(p.encode_frame(op, rng.randrange(256), bad))
        out += frame
    return bytes(out), frames


def soak(url: str, total: int, rounds: int, seed: int = 0, max_payload: int = 4096,
         idle_s: float = 0.3, answer_s: float = 5.0) -> SoakResult:
    """Feed ``total`` bytes of junk in ``rounds`` rounds to the board at ``url``; after each
    round, once the board has surely taken all of it in and has been silent for ``idle_s``
    (longer than its idle timeout), one valid READ of the link counters, answered within
    ``answer_s`` or the probe counts as unanswered."""
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    rng, res = random.Random(seed), SoakResult()
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = _Reader(sock)
        reader.start()
        seq = 0

        def ask(op: int, payload: bytes = b"") -> tuple[p.Frame | None, float]:
            nonlocal seq
            seq = (seq + 1) & 0xFF
            with reader.lock:
                start = len(reader.data)
            sock.sendall(p.encode_frame(op, seq, payload))
            t0 = time.monotonic()
            while time.monotonic() - t0 < answer_s:
                with reader.lock:
                    tail = bytes(reader.data[start:])
                for f in p.FrameParser().feed(tail):
                    if isinstance(f, p.Frame) and f.seq == seq and f.op == op | 0x80:
                        return f, time.monotonic() - t0
                time.sleep(0.002)
            return None, answer_s

        # the seconds a byte takes on this board, at most (the IDENTIFY exchange's time over
        # its bytes: latency included)
        f, t = ask(Op.IDENTIFY)
        byte_s = t / (2 * p.OVERHEAD + len(f.payload)) if f else 1e-3

        def probe() -> tuple:
            _quiet(reader, idle_s)
            f, t = ask(Op.READ | Region.LINK, LINK_READ)
            res.probes += 1
            if f is None:
                return ()
            res.answered += 1
            res.worst_answer_s = max(res.worst_answer_s, t)
            return struct.unpack("<4I", f.payload)

        res.before = probe()
        with reader.lock:
            mark = len(reader.data)  # what came back from here on is counted
        for _ in range(rounds):
            data, frames = junk(rng, total // rounds, max_payload)
            res.junk_bytes += len(data)
            res.junk_frames += frames
            for k in range(0, len(data), 4096):
                sock.sendall(data[k:k + 4096])
            time.sleep(2 * len(data) * byte_s)  # the board takes it all in
            res.after = probe()
        time.sleep(idle_s)
        with reader.lock:
            received = bytes(reader.data[mark:])
    for f in p.FrameParser().feed(received):
        if not isinstance(f, p.Frame):
            res.responses["damaged"] += 1
        elif f.op == Op.NACK:
            res.responses["nack"] += 1
            code = f.payload[1] if len(f.payload) == 2 else -1
            res.responses[f"nack {p.error_name(code)}"] += 1
        else:
            res.responses["ack"] += 1
    return res


def _quiet(reader: _Reader, s: float) -> None:
    """Wait until the board has sent nothing for ``s`` seconds."""
    while True:
        with reader.lock:
            since = time.monotonic() - reader.last
        if since >= s:
            return
        time.sleep(s - since)

