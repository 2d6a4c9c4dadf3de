"""The pyserial driver: :class:`Device` talks the framed protocol (docs/uart-protocol.md) to
a board, real or emulated (``snnkit emulate``), through any pyserial URL.

The same code serves both: the emulated board is an ordinary ``socket://`` or pty port.
Every exchange is one command frame and one response frame (stop and wait, so the board is
never overrun), through :class:`snnkit.link.Link`, which adapts frame sizes and timeouts to
a noisy line. Above it, this module makes every answer trustworthy: uploads are verified by
reading them back (and repaired), reads and writes are checked twice once the line has
damaged a frame, each sample's step count and input errors are checked, and the board's
frame counter tells whether the board was reset or replaced since the network was loaded
(then a clear :class:`~snnkit.errors.DeviceError`, or with ``reconnect=True`` the network is
reloaded and the interrupted operation repeated). A multi-core board (``snnkit emulate
--cores K``) gets the network partitioned over its cores, each core's part through CORE_SEL,
on the same verified and resumable paths.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from dataclasses import dataclass
from typing import Self

import numpy as np
import torch

from . import protocol as p
from .board_session import BoardReset, BoardSession
from .board_upload import BoardUpload, _sign
from .compiler import HardwareConfig
from .errors import DeviceError
from .inputs import check_inputs
from .link import Link, PortLost, Shrunk
from .memory_map import (
    COUNTER_WORDS,
    FEATURES,
    IDENT_WORDS,
    LINK_COUNTERS,
    MAGIC,
    PLASTIC,
    STATE_STRIDE,
    MultiReg,
    Reg,
    StateField,
    Status,
    link_offset,
)
from .network import Network
from .protocol import Op, Region
from .quantize import QuantizationReport, integer_weights
from .result import Result

CTRL_LEARN = link_offset(Region.CTRL, Reg.LEARN)  # word offsets in Region.CTRL
CTRL_STATUS = link_offset(Region.CTRL, Reg.STATUS)  # (STEP_COUNT follows it)
VOLATILE = (Region.LINK, Region.FIFO)  # reading changes them: never read twice to compare


@dataclass(frozen=True)
class BoardInfo:
    """What :meth:`Device.identify` reports."""

    protocol_version: int
    max_payload: int  # bytes of payload the board buffers per frame
    neurons: int  # N_MAX, inputs included
    synapses: int  # weight words
    config: HardwareConfig  # the core's parameters (docs/hardware.md)
    features: tuple[str, ...]
    regions: tuple[int, ...]  # words per protocol region
    cores: int = 1  # cores on the board (snn_multi: identify word 0x00B)


def _bytes_of(word: int, k: int) -> int:
    return (word >> (8 * k)) & 0xFF


_SOCKET = re.compile(r"socket://(?P<host>[^:/?]+|\[[^\]]+\]):(?P<port>\d+)/?(?P<options>\?.*)?")
_HOST_PORT = re.compile(r"(?:(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):)?(?P<port>\d+)")


def port_url(text: str, lowest: int = 1) -> str:
    """A pyserial URL from ``5555`` or ``localhost:5555`` (an emulated board's TCP port), or
    a URL / device path as given (``socket://...``, ``/dev/ttyUSB0``, a pty path, ``COM3``).

    Raises
    ------
    ValueError : empty, a ``socket://`` URL without ``HOST:PORT``, or a TCP port outside
        ``lowest``..65535
    """
    text = text.strip()
    if not text:
        raise ValueError("empty: give 5555, HOST:5555, socket://HOST:PORT or a serial device "
                         "(/dev/ttyUSB1, COM3)")
    if text.startswith(":"):
        raise ValueError(f"{text!r}: a host before the colon (localhost{text}), or the port "
                         f"alone")
    m = _SOCKET.fullmatch(text) or _HOST_PORT.fullmatch(text)
    if m is None:
        if text.startswith("socket://"):
            raise ValueError(f"{text!r}: expected socket://HOST:PORT")
        return text  # a device path
    port = int(m["port"])
    if not lowest <= port < 65536:
        raise ValueError(f"port {port} is outside {lowest}..65535")
    # pyserial's options (?logging=debug) kept
    return f"socket://{m['host'] or 'localhost'}:{port}{m.groupdict().get('options') or ''}"


def board_info(ident: p.Identity) -> BoardInfo:
    """Decode the core's identify words (docs/hardware.md, registers ID .. R_BITS).

    Raises
    ------
    DeviceError : the identify block is not an snn_core's
    """
    c = ident.core  # region IDENT: word k is register k (Reg.ID is 0)
    if len(c) < IDENT_WORDS or c[Reg.ID] != MAGIC:
        raise DeviceError(f"identify: not an snnkit board (magic {c[0] if c else None!r})")
    sizes, widths, fracs, fifos = c[Reg.SIZES], c[Reg.WIDTHS], c[Reg.FRACS], c[Reg.FIFOS]
    config = HardwareConfig(
        n_max=c[Reg.N_MAX], syn_max=c[Reg.SYN_MAX], p_max=_bytes_of(sizes, 3),
        pr_max=_bytes_of(sizes, 2), d_max=_bytes_of(sizes, 1), tr_max=c[Reg.TR_MAX],
        weight_bits=_bytes_of(widths, 3),
        state_bits=_bytes_of(widths, 2), decay_bits=_bytes_of(widths, 1),
        trace_bits=_bytes_of(widths, 0), frac_bits=_bytes_of(fracs, 3),
        trace_frac_bits=_bytes_of(fracs, 2), stdp_frac_bits=_bytes_of(fracs, 1),
        a_bits=_bytes_of(fracs, 0), r_bits=c[Reg.R_BITS], in_depth=fifos >> 16,
        out_depth=fifos & 0xFFFF)
    feats = tuple(f for k, f in enumerate(FEATURES) if c[Reg.FEATURES] >> k & 1)
    config = dataclasses.replace(config, delayed_reset="delayed_reset" in feats)
    cores = c[MultiReg.CORES] if len(c) > MultiReg.CORES else 1
    return BoardInfo(ident.version, ident.max_payload, c[Reg.N_MAX], c[Reg.SYN_MAX], config,
                     feats, ident.regions, cores)


class Device(BoardUpload, BoardSession):
    """A board behind a serial link.

    Parameters
    ----------
    port : a pyserial URL (``/dev/ttyUSB0``, a pty path, ``socket://host:port``), an emulated
        board's TCP port as ``5555`` or ``host:5555`` (as on the command line), or an
        already-open ``serial.Serial``-like object (it is not closed by :meth:`close`)
    baudrate : 1_000_000 by default; 3_000_000 for boards built for it
    timeout : seconds: the longest the board may stay silent before an operation fails
        (each wait for a response is a few measured round trips, at most a quarter of it)
    retries : resends of one frame (after a timeout, a damaged response or a NACK for a
        damaged frame) before it fails; a noisy line needs many: at 3% of bytes damaged,
        the 130-byte IDENTIFY exchange gets through once in about 50 attempts
    max_payload : cap on frame payloads (default the board's buffer); the driver shrinks
        frames on a noisy link by itself
    reconnect : after the port failed (reopened for up to ``max(10, timeout)`` s) or the
        board was reset or replaced, reload the network and repeat the interrupted
        operation, instead of raising :class:`~snnkit.errors.DeviceError`

    Raises
    ------
    DeviceError : the port cannot be opened, or the board does not identify itself
    """

    def __init__(self, port, baudrate: int = 1_000_000, timeout: float = 2.0, retries: int = 250,
                 max_payload: int | None = None, reconnect: bool = False):
        if isinstance(port, int) and not isinstance(port, bool):
            port = str(port)  # an emulated board's TCP port, as on the command line
        if not isinstance(port, str) and not all(hasattr(port, a) for a in ("read", "write")):
            raise DeviceError(f"port: expected a URL, a device path, a TCP port or an open "
                              f"serial port, got {type(port).__name__}")
        try:
            self._url = port_url(port) if isinstance(port, str) else None
        except ValueError as e:
            raise DeviceError(f"port {port!r}: {e}") from None
        self._baudrate, self.reconnect = baudrate, bool(reconnect)
        self._port, self._owns = (self._open() if self._url else port), self._url is not None
        self.timeout, self.retries = float(timeout), int(retries)
        self.link = Link(self._port, timeout, retries)
        self.stats = self.link.stats  # link counters (docs/uart-protocol.md; bytes_out,
        # bytes_in: of the frames sent, of the responses taken), and:
        self.stats.update(board_resets=0, reconnects=0, repairs=0, sample_retries=0)
        self.net: Network | None = None
        self._report = None
        self._images = None
        self.quantization: QuantizationReport | None = None  # of the last load
        self._part = self._multi = None  # multi-core boards: the partition, its images
        self._sel = 0  # the core CORE_SEL addresses (multi-core boards; part of upload keys)
        self._floor: tuple[int, int] | None = None  # (board frame count, link.acks then)
        self._journal: dict = {}  # an upload's progress: (region, offset, ...) -> items done
        self._journal_key = None
        self._learning, self._evolved, self._stateful = True, False, False  # evolved: the
        # board's weights learned since the load (or restore_weights)
        self._bar = None  # load(progress=True): the upload's bar, in payload bytes
        try:
            self.info = self.identify()
        except BaseException:
            self.close()
            raise
        self.max_payload = min(max_payload or self.info.max_payload, self.info.max_payload)
        self.link.set_cap(self.max_payload)
        neurons = self.info.neurons * self.info.cores
        self._steps_per_frame = max(1, (self.max_payload - 4) // (2 + 2 * neurons))
        self._events = max(1.0, neurons / 8)  # output events per step (estimate)

    # ------------------------------------------------------------------ link

    def _open(self):
        import serial

        try:
            return serial.serial_for_url(self._url, baudrate=self._baudrate, timeout=0.002)
        except (serial.SerialException, ValueError, OSError) as e:
            raise DeviceError(f"port {self._url!r}: cannot open ({e})") from e

    def call(self, op: int, payload: bytes = b"", **kw) -> bytes:
        """Send one command and return its ACK payload (:meth:`snnkit.link.Link.call`).

        Raises
        ------
        NackError : the board refused the command (bad address, width ...)
        DeviceError : no valid answer after ``retries`` resends, or the port failed
        """
        return self.link.call(op, payload, **kw)

    def identify(self) -> BoardInfo:
        """The board's protocol version, sizes, bit widths and features."""
        ident = p.parse_identify(self.call(Op.IDENTIFY, expect=8 + 4 * (p.N_REGIONS
                                                                           + IDENT_WORDS)))
        return board_info(ident)

    def close(self) -> None:
        """Close the port (unless it was handed in open)."""
        if self._owns and self._port is not None and self._port.is_open:
            self._port.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ regions

    def write_region(self, region: Region, offset: int, values, width: int = 4,
                     flag: bool = False, resume: bool = False) -> None:
        """Write elements from word ``offset`` on, in as many frames as the link's frame size
        needs; ``resume``: skip what an interrupted upload of the same network wrote."""
        values = [int(v) for v in values]
        key = (self._sel, region, offset, width, flag, len(values))
        k = self._journal.get(key, 0) if resume else 0
        while k < len(values):
            chunk = values[k:k + max(1, (self.link.payload - 5) // width)]
            try:
                self.call(Op.WRITE | region, p.write_payload(offset + k, width, chunk, flag),
                          splittable=True)
            except Shrunk:
                continue
            k += len(chunk)
            self._tick(len(chunk) * width)
            if resume:
                self._journal[key] = k

    def read_region(self, region: Region, offset: int, count: int, width: int = 4,
                    signed: bool = False) -> list[int]:
        """Read ``count`` elements from word ``offset`` on; once the line has damaged a
        frame, twice, until two reads agree (a damaged frame's CRC can match by chance)."""
        got = self._read_once(region, offset, count, width, signed)
        for _ in range(5 if self.link.lossy and region not in VOLATILE else 0):
            again = self._read_once(region, offset, count, width, signed)
            if again == got:
                return got
            got = again
        if self.link.lossy and region not in VOLATILE:
            raise DeviceError(f"READ({region.name}): reads of the same words keep differing")
        return got

    def _read_once(self, region, offset, count, width, signed) -> list[int]:
        out: list[int] = []
        while len(out) < count:
            n = min(max(1, self.link.payload // width), 0xFFFF, count - len(out))
            try:
                data = self.call(Op.READ | region, p.read_payload(offset + len(out), n, width),
                                 expect=n * width, check=lambda d, n=n: len(d) == n * width,
                                 splittable=region != Region.FIFO)
            except Shrunk:
                continue
            out += p.unpack_elements(data, width, signed)
            if region != Region.LINK:  # (the session checks around an upload: not its payload)
                self._tick(n * width)
        return out

    def read_counters(self) -> dict[str, int]:
        """Core counters (steps, cycles, synaptic events) and link counters of the board."""
        def read():
            steps, lo, hi, syn = self.read_region(Region.COUNTER, 0, COUNTER_WORDS)
            frames, crc, nacks, replays = self.read_region(Region.LINK, 0, LINK_COUNTERS)
            frames = self._board_frames(frames)
            self._check_session(frames)
            return {"steps": steps, "cycles": lo | hi << 32, "synaptic_events": syn,
                    "frames_received": frames, "crc_errors": crc, "nacks": nacks,
                    "replays": replays}
        return self._guarded(read, keeps_state=True, check=False)

    def reset(self) -> None:
        """Reset the core's state (v = v_init, currents, traces, spike history, counters)."""
        self.call(Op.RESET)

    def set_learning(self, on: bool) -> None:
        """Switch on-chip STDP on or off for projections whose STDP is enabled."""
        if not isinstance(on, (bool, np.bool_)):  # "no" or "off" would read as True
            raise DeviceError(f"set_learning: expected True or False, got {on!r}")
        self._guarded(lambda: self._set_learning(on))

    def _set_learning(self, on: bool) -> None:
        self.call(Op.WRITE | Region.CTRL, p.write_payload(CTRL_LEARN, 4, [int(bool(on))]))
        if self.link.lossy:
            self._verify(Region.CTRL, [int(bool(on))], CTRL_LEARN)
        self._learning = bool(on)

    def _need_net(self) -> Network:
        if self.net is None:
            raise DeviceError("no network loaded: call device.load(net) first")
        return self.net

    def _write_all_weights(self, images, verify: bool) -> None:
        """Weight images onto the board (one per core on a multi-core board, None for an
        empty core); read back and repaired when ``verify``."""
        bits = self.net.quantization.weight_bits
        for k, w in enumerate([images] if self._part is None else images):
            if w is None:
                continue
            if self._part is not None:
                self._select(k)
            self._write_weights(w, bits)
            if verify:
                self._verify_weights(w, bits)

    def _read_words(self):
        """The board's weight words; on a multi-core board, each core's (None: empty)."""
        if self._part is None:
            return np.asarray(self.read_region(Region.WEIGHT, 0, self._report.weight_words),
                              np.int64)
        out = []
        for core, rep in zip(self._part.cores, self._multi.reports):
            if core.net is None:
                out.append(None)
                continue
            self._select(core.index)
            out.append(np.asarray(self.read_region(Region.WEIGHT, 0, rep.weight_words),
                                  np.int64))
        return out

    def _matrices(self, words) -> dict[str, np.ndarray]:
        """Every projection's weights ``[target, source]`` from :meth:`_read_words`'s words
        (a multi-core board's put together from its cores' blocks)."""
        net = self.net
        if self._part is None:
            return {pr.name: self._matrix(words, i) for i, pr in enumerate(net.projections)}
        out = {pr.name: integer_weights(net, j, net.quantization)
               for j, pr in enumerate(net.projections)}
        for core, rep, w in zip(self._part.cores, self._multi.reports, words):
            if w is None:
                continue
            for li, (j, tgt, src) in enumerate(core.blocks):
                out[net.projections[j].name][np.ix_(tgt, src)] = rep.matrix(_sign(w, 31), li)
        return out

    def read_weights(self) -> dict[str, torch.Tensor]:
        """Current weights of every projection, ``[target, source]`` int64 in LSBs."""
        self._need_net()
        words = self._guarded(self._read_words, keeps_state=self._evolved)
        return {name: torch.from_numpy(m) for name, m in self._matrices(words).items()}

    def _matrix(self, words: np.ndarray, i: int) -> np.ndarray:
        bits = PLASTIC.bit_length() - 1  # the weight, sign-extended below the plastic bit
        return self._report.matrix(_sign(words, bits), i)

    def restore_weights(self) -> None:
        """Write back the weights of the last :meth:`load` (undoes on-chip learning)."""
        self._need_net()
        self._guarded(lambda: self._write_all_weights(self._weights, self.link.lossy))
        self._evolved = False

    def read_state(self) -> dict[str, dict[str, np.ndarray]]:
        """Neuron state (debug): ``{population: {v, i, refractory, theta}}`` in LSBs."""
        net = self._need_net()
        n = net.n_inputs + net.n_neurons
        w = np.asarray(self._guarded(
            lambda: self.read_region(Region.STATE, 0, STATE_STRIDE * n, signed=True),
            keeps_state=self._stateful))
        w = w.reshape(n, STATE_STRIDE)
        return {pop.name: dict(zip((f.name.lower() for f in StateField),
                                   w[net.offset(pop.name):net.offset(pop.name) + pop.size].T))
                for pop in net.neuron_populations}

    # ------------------------------------------------------------------ running

    def run(self, inputs, steps: int | None = None, progress: bool = False) -> Result:
        """Run the loaded network; the same :class:`Result` as ``simulate(backend="fixed")``.

        Batch samples run one after another, each from the reset state; with learning, each
        starts from the weights of the load (as the simulator's per-sample copies do) and
        ``Result.weights`` holds each sample's final plastic weights. A sample the link
        spoiled (a RUN that could not be answered, a step count or input error the board
        reports) runs again from its start.

        Raises
        ------
        SimulationError : bad inputs
        DeviceError : no network loaded, or the link failed
        """
        net = self._need_net()
        arrays, steps, batch = check_inputs(net, inputs, steps)
        learning = self._guarded(lambda: self.read_region(Region.CTRL, CTRL_LEARN, 1)[0] & 1)
        plastic = [i for i, pr in enumerate(net.projections)
                   if learning and pr.stdp is not None and pr.stdp.enabled]
        n = net.n_inputs + net.n_neurons
        spk = np.zeros((steps, batch, n), bool)
        final = {i: [] for i in plastic}
        samples = range(batch)
        if progress:
            from tqdm.auto import tqdm

            samples = tqdm(samples, desc="device", unit="sample", leave=False)
        evolved, recoveries = self._evolved, self.stats["reconnects"]
        for b in samples:
            events, words = self._guarded(lambda b=b: self._sample(
                net, arrays, b, steps, plastic, evolved, recoveries))
            for t, ev in enumerate(events):
                spk[t, b, ev] = True
            if plastic:
                mats = self._matrices(words)
                for i in plastic:
                    final[i].append(mats[net.projections[i].name])
        spikes = {pop.name: (arrays[pop.name].to(torch.bool).cpu() if pop.is_input else
                             torch.from_numpy(spk[:, :, net.offset(pop.name):
                                                  net.offset(pop.name) + pop.size].copy()))
                  for pop in net.populations}
        weights = {net.projections[i].name: torch.from_numpy(np.stack(final[i]))
                   for i in plastic}
        return Result("device", steps, batch, spikes, {}, weights,
                      lsb=2.0 ** -net.quantization.frac_bits)

    def _sample(self, net: Network, arrays, b: int, steps: int, plastic: list[int],
                evolved: bool, recoveries: int) -> tuple[list[list[int]], object]:
        """Run sample ``b`` from the reset state: its output events per step, and the weight
        words after it when it learns (:meth:`_read_words`). A learning sample starts from
        the load's weights, written again unless they are surely still there (the first
        attempt of the first sample, the board's weights not ``evolved`` by an earlier run,
        no reconnect since the run began). A sample that does not learn after a run that did
        also starts from the load's weights: they are written back once."""
        offs = {pop.name: net.offset(pop.name) for pop in net.inputs}
        x = {name: arrays[name][:, b].cpu().numpy() for name in offs}
        inputs = [[int(g) for name, o in offs.items() for g in np.flatnonzero(x[name][t]) + o]
                  for t in range(steps)]
        for attempt in range(3):
            self._stateful = True
            fresh = (b == 0 and attempt == 0 and not evolved
                     and self.stats["reconnects"] == recoveries)
            if (plastic and not fresh) or (not plastic and self._evolved):
                self._write_all_weights(self._weights, self.link.lossy)
                self._evolved = False
            self.reset()
            try:
                events = self._run_steps(net, inputs)
                if self.link.lossy:  # a RUN the line garbled: wrong steps or inputs
                    status, count = self._read_once(Region.CTRL, CTRL_STATUS, 2, 4, False)
                    if status & Status.INPUT_ERROR or count != steps:
                        raise DeviceError(f"sample {b}: the board ran {count} of {steps} "
                                          f"steps, input error {bool(status & 2)}")
            except (PortLost, BoardReset):
                raise
            except DeviceError as e:
                if attempt == 2 or isinstance(e, p.NackError):
                    raise
                self.stats["sample_retries"] += 1
                continue
            words = None
            if plastic:
                words = self._read_words()
                self._evolved = True
            return events, words
        raise AssertionError("unreachable")

    def run_events(self, inputs: list[list[int]]) -> list[list[int]]:
        """Run ``len(inputs)`` steps from the core's present state; ``inputs[t]`` are the
        global indices of the input neurons spiking in step t. Returns the global indices of
        the neurons that spiked in each step, in the core's order.

        A step-by-step primitive (:class:`snnkit.Cluster`): unlike :meth:`run`, nothing is
        repeated when the link fails (the state has moved on) and there is no board-reset
        check per call (the next :meth:`run`, :meth:`read_weights` or
        :meth:`read_counters` makes it).

        Raises
        ------
        DeviceError : no network loaded, the board aborted a step, or the link failed
        """
        net = self._need_net()
        self._stateful = True
        return self._run_steps(net, inputs)

    def _run_steps(self, net: Network, inputs: list[list[int]]) -> list[list[int]]:
        """Output events (global indices) of each step, from the core's present state."""
        steps = len(inputs)
        n = net.n_inputs + net.n_neurons
        out_ok = np.ones(n, bool)
        for pop in net.inputs:
            out_ok[net.offset(pop.name):net.offset(pop.name) + pop.size] = False
        # The board runs the steps whose events surely fit its response buffer and reports
        # how many; steps it did not run would be sent twice. So the steps per frame start
        # at the worst case (every neuron spiking) and adapt: doubled after a frame done in
        # full, cut to what the board managed otherwise. The link's frame size bounds the
        # request and the expected response too.
        out: list[list[int]] = []
        t = 0
        while t < steps:
            size, k = 2, 0
            budget, per_step = self.link.payload, 2 + 2 * self._events
            while t + k < steps and k < self._steps_per_frame \
                    and size + 2 + 2 * len(inputs[t + k]) <= self.max_payload \
                    and (k == 0 or (size + 2 + 2 * len(inputs[t + k]) <= budget
                                    and 4 + (k + 1) * per_step <= budget)):
                size += 2 + 2 * len(inputs[t + k])
                k += 1
            if k == 0:
                raise DeviceError(f"step {t}: {len(inputs[t])} input spikes do not fit one "
                                  f"frame of {self.max_payload} bytes")
            resp = self.call(Op.RUN, p.encode_events(inputs[t:t + k]),
                             expect=int(4 + k * per_step),
                             check=lambda d, k=k: _valid_stream(d, k, out_ok))
            done, abort = p.parse_stream(resp)
            if abort is not None:
                raise DeviceError(f"RUN: the board aborted step {t + len(done)} "
                                  f"({p.error_name(abort)}); its state is now unknown")
            if not done:
                raise DeviceError(f"RUN: board reports 0 of {k} steps done")
            self._steps_per_frame = 2 * k if len(done) == k else len(done)
            self._events = 0.75 * self._events + 0.25 * sum(map(len, done)) / len(done)
            out += done
            t += len(done)
        return out


def _valid_stream(payload: bytes, k: int, out_ok: np.ndarray) -> bool:
    """A RUN response that parses, covers at most ``k`` steps, and names each output neuron
    at most once per step (a damaged frame that slipped through its CRC rarely does)."""
    try:
        done, _ = p.parse_stream(payload)
    except (p.ProtocolError, struct.error):
        return False
    if len(done) > k:
        return False
    for ev in done:
        a = np.asarray(ev, np.int64)
        if a.size and (a.max() >= out_ok.size or not out_ok[a].all() or np.unique(a).size
                       != a.size):
            return False
    return True

