"""The pyserial driver: :class:`Device` talks the framed protocol (docs/uart-protocol.md) to
a board, real or emulated (``snnkit emulate``), through any pyserial URL.

The same code serves both: the emulated board is an ordinary ``socket://`` or pty port.
Every exchange is one command frame and one response frame (stop and wait, so the board is
never overrun); a response is awaited with a timeout, and a lost or corrupted frame is sent
again (the board answers a repeated frame from its replay memory instead of running it
twice). A board that stops answering raises :class:`~snnkit.errors.DeviceError` after
``retries + 1`` timeouts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Self

import numpy as np
import torch

from . import protocol as p
from .board_format import ADVICE, board_quantization, to_board
from .compiler import HardwareConfig, check_kinds
from .errors import DeviceError, NetworkError
from .inputs import check_inputs
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
    link_offset,
)
from .network import Network
from .protocol import ErrorCode, Op, Region
from .quantize import QuantizationReport, quantize
from .result import Result

CTRL_LEARN = link_offset(Region.CTRL, Reg.LEARN)  # word offsets in Region.CTRL
CTRL_N_POP = link_offset(Region.CTRL, Reg.N_POP)  # (N_PROJ follows it)
CTRL_CORE_SEL = link_offset(Region.CTRL, MultiReg.CORE_SEL)  # multi-core boards
LINK_ERRORS = (ErrorCode.BAD_CRC, ErrorCode.BAD_LENGTH)  # the link, not the command: resend


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
    cores = c[MultiReg.CORES] if len(c) > MultiReg.CORES else 1
    return BoardInfo(ident.version, ident.max_payload, c[Reg.N_MAX], c[Reg.SYN_MAX], config,
                     feats, ident.regions, cores)


def _hex_words(text: str) -> list[int]:
    return [int(x, 16) for x in text.split()]


def _sign(x: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(x, np.int64) & ((1 << bits) - 1)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x)


class Device:
    """A board behind a serial link.

    Parameters
    ----------
    port : a pyserial URL (``/dev/ttyUSB0``, a pty path, ``socket://host:port``) or an
        already-open ``serial.Serial``-like object (it is not closed by :meth:`close`)
    baudrate : 1_000_000 by default; 3_000_000 for boards built for it
    timeout : seconds to wait for each response before sending the frame again
    retries : resends after a timeout, a CRC error or a NACK for a damaged frame
    max_payload : cap on frame payloads (default the board's buffer); smaller frames
        survive a noisy link better

    Raises
    ------
    DeviceError : the port cannot be opened, or the board does not identify itself
    """

    def __init__(self, port, baudrate: int = 1_000_000, timeout: float = 2.0, retries: int = 5,
                 max_payload: int | None = None):
        import serial

        if isinstance(port, str):
            try:
                self._port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
            except (serial.SerialException, ValueError, OSError) as e:
                raise DeviceError(f"port {port!r}: cannot open ({e})") from e
            self._owns = True
        else:
            self._port, self._owns = port, False
        self.timeout, self.retries = float(timeout), int(retries)
        self._seq = 0
        self._parser = p.FrameParser(max_len=p.MAX_LEN)
        self.stats = {"frames": 0, "resends": 0, "crc_errors": 0, "bytes_out": 0,
                      "bytes_in": 0}  # bytes of frames sent, of the responses taken
        self.net: Network | None = None
        self._report = None
        self._images = None
        self.quantization: QuantizationReport | None = None  # of the last load
        self._part = None  # multi-core boards: the partition of the loaded network
        try:
            self.info = self.identify()
        except BaseException:
            self.close()
            raise
        self.max_payload = min(max_payload or self.info.max_payload, self.info.max_payload)
        self._steps_per_frame = max(1, (self.max_payload - 4)
                                    // (2 + 2 * self.info.neurons * self.info.cores))
        self._parser.max_len = self.info.max_payload

    # ------------------------------------------------------------------ link

    def _read_frames(self, deadline: float):
        """Yield decoded frames (or errors) until ``deadline``."""
        while time.monotonic() < deadline:
            try:
                data = self._port.read(max(1, self._port.in_waiting))
            except Exception as e:
                raise DeviceError(f"port: read failed ({e}); the device is gone") from e
            yield from self._parser.feed(data)

    def call(self, op: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one command and return its ACK payload.

        Raises
        ------
        NackError : the board refused the command (bad address, width ...)
        DeviceError : no valid answer after ``retries`` resends, or the port failed
        """
        self._seq = (self._seq + 1) & 0xFF
        frame = p.encode_frame(op, self._seq, payload)
        why = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["resends"] += 1
            try:
                self._port.write(frame)
            except Exception as e:
                raise DeviceError(f"port: write failed ({e}); the device is gone") from e
            self.stats["frames"] += 1
            self.stats["bytes_out"] += len(frame)
            deadline = time.monotonic() + (timeout or self.timeout)
            for item in self._read_frames(deadline):
                if isinstance(item, p.ProtocolError):
                    self.stats["crc_errors"] += 1
                    why = str(item)
                    continue
                if item.op == Op.NACK:
                    err = p.parse_nack(item.payload)
                    if item.seq != self._seq or err.op != op:
                        continue  # about garbage or an older frame (a damaged one times out)
                    if err.code in LINK_ERRORS:
                        why = str(err)
                        break  # our frame arrived damaged: send it again
                    raise err
                if item.seq == self._seq and item.op == (op | 0x80):
                    self.stats["bytes_in"] += len(item.payload) + p.OVERHEAD
                    return item.payload
            else:
                why = f"no answer within {timeout or self.timeout:g} s"
            self._parser.reset()
        raise DeviceError(f"{p._op_name(op)}: {why} after {self.retries + 1} attempts; "
                          f"is the board connected and powered?")

    def identify(self) -> BoardInfo:
        """The board's protocol version, sizes, bit widths and features."""
        ident = p.parse_identify(self.call(Op.IDENTIFY))
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
                     flag: bool = False) -> None:
        """Write elements from word ``offset`` on, in as many frames as needed."""
        values = [int(v) for v in values]
        per = (self.max_payload - 5) // width
        for k in range(0, len(values), per):
            self.call(Op.WRITE | region, p.write_payload(offset + k, width, values[k:k + per],
                                                         flag))

    def read_region(self, region: Region, offset: int, count: int, width: int = 4,
                    signed: bool = False) -> list[int]:
        """Read ``count`` elements from word ``offset`` on."""
        per = min(self.max_payload // width, 0xFFFF)
        out: list[int] = []
        for k in range(0, count, per):
            n = min(per, count - k)
            data = self.call(Op.READ | region, p.read_payload(offset + k, n, width))
            if len(data) != n * width:
                raise DeviceError(f"READ({region.name}): {len(data)} bytes for {n} elements")
            out += p.unpack_elements(data, width, signed)
        return out

    def read_counters(self) -> dict[str, int]:
        """Core counters (steps, cycles, synaptic events) and link counters of the board."""
        steps, lo, hi, syn = self.read_region(Region.COUNTER, 0, COUNTER_WORDS)
        frames, crc, nacks, replays = self.read_region(Region.LINK, 0, LINK_COUNTERS)
        return {"steps": steps, "cycles": lo | hi << 32, "synaptic_events": syn,
                "frames_received": frames, "crc_errors": crc, "nacks": nacks,
                "replays": replays}

    def reset(self) -> None:
        """Reset the core's state (v = v_init, currents, traces, spike history, counters)."""
        self.call(Op.RESET)

    def set_learning(self, on: bool) -> None:
        """Switch on-chip STDP on or off for projections whose STDP is enabled."""
        self.call(Op.WRITE | Region.CTRL, p.write_payload(CTRL_LEARN, 4, [int(bool(on))]))

    # ------------------------------------------------------------------ network

    def load(self, net: Network, progress: bool = False) -> QuantizationReport:
        """Quantise ``net`` to the board's format (:func:`snnkit.board_format.to_board`),
        upload it, verify it by reading it back, reset.

        Returns
        -------
        the quantisation report (each parameter's error in the board's format); the
        quantised network is ``device.net``, what :meth:`run` results equal
        ``simulate(device.net, ..., backend="fixed")`` for

        Raises
        ------
        DeviceError : the network does not fit the board's format or sizes (what, by how
            much, what to do; nothing is written then), or the read-back differs
        """
        if "neuron_bias" not in self.info.features:
            raise DeviceError("the board's core predates per-neuron biases (its IDENTIFY "
                              "lacks the 'neuron_bias' feature, core version 2); rebuild its "
                              "bitstream with this snnkit (snnkit build)")
        try:
            check_kinds(net)  # what no board takes: no advice to size one
        except NetworkError as e:
            raise DeviceError(f"the board cannot run this network, nothing written: {e}") from e
        if self.info.cores > 1:
            return self._load_multi(net)
        self._part = None
        try:
            fit = to_board(net, self.info.config)
        except NetworkError as e:
            raise DeviceError(f"the board cannot hold this network, nothing written: {e}") from e
        net, report, images = fit.net, fit.compiled, fit.images
        pop, proj = _hex_words(images["pop.hex"]), _hex_words(images["proj.hex"])
        n_pop, n_proj = _hex_words(images["regs.hex"])[:2]
        weights = np.asarray(_hex_words(images["weights.hex"])[:report.weight_words], np.int64)
        self.write_region(Region.CTRL, CTRL_N_POP, [n_pop, n_proj])
        self.write_region(Region.POP, 0, pop)
        self.write_region(Region.PROJ, 0, proj)
        self._write_biases(images["bias.hex"], net.quantization.state_bits)
        self._write_weights(weights, net.quantization.weight_bits)
        self._verify(Region.POP, pop)
        self._verify(Region.PROJ, proj)
        self._verify_biases(images["bias.hex"], net.quantization.state_bits)
        self._verify_weights(weights, net.quantization.weight_bits)
        self.set_learning(True)
        self.reset()
        self.net, self._report, self._weights = net, report, weights
        self.quantization = fit.quantization
        return fit.quantization

    def _load_multi(self, net: Network) -> QuantizationReport:
        """A multi-core board: the network in the board's format, partitioned over its cores
        (each core's images through CORE_SEL, verified), the router's tables, then reset."""
        from .multicore import build_multi_images
        from .partition import partition

        try:
            net, qreport = quantize(net, board_quantization(net, self.info.config))
            part = partition(net, self.info.cores, self.info.config)
            mi = build_multi_images(part, self.info.config)
        except NetworkError as e:
            raise DeviceError(f"the board cannot hold this network, nothing written: {e}; "
                              f"{ADVICE}") from e
        bits, weights = net.quantization.weight_bits, []
        for core, rep in zip(part.cores, mi.reports):
            self.write_region(Region.CTRL, CTRL_CORE_SEL, [core.index])
            if core.net is None:
                weights.append(None)
                continue
            img = {n: _hex_words(mi.images[f"c{core.index}_{n}.hex"])
                   for n in ("pop", "proj", "weights", "regs")}
            bias = mi.images[f"c{core.index}_bias.hex"]
            w = np.asarray(img["weights"][:rep.weight_words], np.int64)
            self.write_region(Region.CTRL, CTRL_N_POP, img["regs"][:2])
            self.write_region(Region.POP, 0, img["pop"])
            self.write_region(Region.PROJ, 0, img["proj"])
            self._write_biases(bias, net.quantization.state_bits)
            self._write_weights(w, bits)
            self._verify(Region.POP, img["pop"])
            self._verify(Region.PROJ, img["proj"])
            self._verify_biases(bias, net.quantization.state_bits)
            self._verify_weights(w, bits)
            weights.append(w)
        for region, name in ((Region.ROUTE, "route"), (Region.INMAP, "inmap"),
                             (Region.WAVES, "waves")):
            words = _hex_words(mi.images[f"{name}.hex"])
            if name == "waves":  # N_WAVES first, then the cores
                words = words[-1:] + words[:-1]
            self.write_region(region, 0, words)
        self.set_learning(True)
        self.reset()
        self.net, self._part, self._multi, self._weights = net, part, mi, weights
        self.quantization = qreport
        return qreport

    def _write_biases(self, image: str, bits: int) -> None:
        """Every neuron's bias (bias.hex, ``bits`` wide) into region BIAS."""
        values = _sign(_hex_words(image), bits)
        self.write_region(Region.BIAS, 0, values, 2 if bits <= 16 else 4)

    def _verify_biases(self, image: str, bits: int) -> None:
        self._verify(Region.BIAS, [int(b) & 0xFFFF_FFFF for b in _sign(_hex_words(image), bits)])


    def _write_weights(self, image: np.ndarray, bits: int, offset: int = 0) -> None:
        """Weights in runs of equal plastic bit, as narrow signed elements when they fit."""
        width = 1 if bits <= 8 else 2 if bits <= 16 else 4
        plastic = (image >> bits) & 1
        values = _sign(image, bits)
        cuts = np.flatnonzero(np.diff(plastic)) + 1
        for run in np.split(np.arange(len(image)), cuts):
            if run.size:
                self.write_region(Region.WEIGHT, offset + int(run[0]), values[run], width,
                                  flag=bool(plastic[run[0]]))

    def _verify(self, region: Region, words: list[int]) -> None:
        got = self.read_region(region, 0, len(words))
        bad = [k for k, (a, b) in enumerate(zip(got, words)) if a != b]
        if bad:
            raise DeviceError(f"load: {region.name} word {bad[0]} reads back "
                              f"0x{got[bad[0]]:08x}, wrote 0x{words[bad[0]]:08x}")

    def _verify_weights(self, image: np.ndarray, bits: int) -> None:
        got = np.asarray(self.read_region(Region.WEIGHT, 0, len(image)), np.int64)
        want = ((image >> bits) & 1) * PLASTIC | (_sign(image, bits) & (PLASTIC - 1))
        bad = np.flatnonzero(got != want)
        if bad.size:
            raise DeviceError(f"load: weight word {bad[0]} reads back 0x{got[bad[0]]:08x}, "
                              f"wrote 0x{want[bad[0]]:08x}")

    def _need_net(self) -> Network:
        if self.net is None:
            raise DeviceError("no network loaded: call device.load(net) first")
        return self.net

    def read_weights(self) -> dict[str, torch.Tensor]:
        """Current weights of every projection, ``[target, source]`` int64 in LSBs."""
        net = self._need_net()
        if self._part is not None:
            return self._read_weights_multi()
        words = np.asarray(self.read_region(Region.WEIGHT, 0, self._report.weight_words),
                           np.int64)
        return {pr.name: torch.from_numpy(self._matrix(words, i)) for i, pr in
                enumerate(net.projections)}

    def _read_weights_multi(self) -> dict[str, torch.Tensor]:
        """Each core's weights through CORE_SEL, put together as the whole network's."""
        from .quantize import integer_weights

        part, net = self._part, self.net
        out = {pr.name: torch.from_numpy(integer_weights(net, j, net.quantization))
               for j, pr in enumerate(net.projections)}
        for core, rep in zip(part.cores, self._multi.reports):
            if core.net is None:
                continue
            self.write_region(Region.CTRL, CTRL_CORE_SEL, [core.index])
            words = np.asarray(self.read_region(Region.WEIGHT, 0, rep.weight_words), np.int64)
            for li, (j, tgt, src) in enumerate(core.blocks):
                m = rep.matrix(_sign(words, 31), li)
                out[net.projections[j].name][np.ix_(tgt, src)] = torch.from_numpy(m.copy())
        return out

    def _matrix(self, words: np.ndarray, i: int) -> np.ndarray:
        bits = PLASTIC.bit_length() - 1  # the weight, sign-extended below the plastic bit
        return self._report.matrix(_sign(words, bits), i)

    def read_state(self) -> dict[str, dict[str, np.ndarray]]:
        """Neuron state (debug): ``{population: {v, i, refractory, theta}}`` in LSBs."""
        net = self._need_net()
        n = net.n_inputs + net.n_neurons
        w = np.asarray(self.read_region(Region.STATE, 0, STATE_STRIDE * n, signed=True))
        w = w.reshape(n, STATE_STRIDE)
        return {pop.name: dict(zip((f.name.lower() for f in StateField),
                                   w[net.offset(pop.name):net.offset(pop.name) + pop.size].T))
                for pop in net.neuron_populations}

    # ------------------------------------------------------------------ running

    def run(self, inputs, steps: int | None = None, progress: bool = False) -> Result:
        """Run the loaded network; the same :class:`Result` as ``simulate(backend="fixed")``.

        Batch samples run one after another, each from the reset state; with learning, each
        starts from the weights of the load (as the simulator's per-sample copies do) and
        ``Result.weights`` holds each sample's final plastic weights.

        Raises
        ------
        SimulationError : bad inputs
        DeviceError : no network loaded, or the link failed
        """
        net = self._need_net()
        arrays, steps, batch = check_inputs(net, inputs, steps)
        learning = self.read_region(Region.CTRL, CTRL_LEARN, 1)[0] & 1
        plastic = [i for i, pr in enumerate(net.projections)
                   if learning and pr.stdp is not None and pr.stdp.enabled]
        n = net.n_inputs + net.n_neurons
        spk = np.zeros((steps, batch, n), bool)
        final = {i: [] for i in plastic}
        samples = range(batch)
        if progress:
            from tqdm.auto import tqdm

            samples = tqdm(samples, desc="device", unit="sample", leave=False)
        for b in samples:
            if b and plastic:
                self.restore_weights()
            self.reset()
            for t, events in enumerate(self._run_sample(net, arrays, b, steps)):
                spk[t, b, events] = True
            if plastic and self._part is not None:
                ws = self._read_weights_multi()
                for i in plastic:
                    final[i].append(ws[net.projections[i].name].numpy())
            elif plastic:
                words = np.asarray(self.read_region(Region.WEIGHT, 0, self._report.weight_words),
                                   np.int64)
                for i in plastic:
                    final[i].append(self._matrix(words, i))
        spikes = {pop.name: (arrays[pop.name].to(torch.bool).cpu() if pop.is_input else
                             torch.from_numpy(spk[:, :, net.offset(pop.name):
                                                  net.offset(pop.name) + pop.size].copy()))
                  for pop in net.populations}
        weights = {net.projections[i].name: torch.from_numpy(np.stack(final[i]))
                   for i in plastic}
        return Result("device", steps, batch, spikes, {}, weights,
                      lsb=2.0 ** -net.quantization.frac_bits)

    def restore_weights(self) -> None:
        """Write back the weights of the last :meth:`load` (undoes on-chip learning)."""
        bits = self._need_net().quantization.weight_bits
        if self._part is None:
            self._write_weights(self._weights, bits)
            return
        for k, w in enumerate(self._weights):
            if w is not None:
                self.write_region(Region.CTRL, CTRL_CORE_SEL, [k])
                self._write_weights(w, bits)

    def _run_sample(self, net: Network, arrays, b: int, steps: int) -> list[list[int]]:
        """Output events (global indices) of each step of sample ``b``."""
        offs = {pop.name: net.offset(pop.name) for pop in net.inputs}
        x = {name: arrays[name][:, b].cpu().numpy() for name in offs}
        return self.run_events([[int(g) for name, o in offs.items()
                                 for g in np.flatnonzero(x[name][t]) + o]
                                for t in range(steps)])

    def run_events(self, inputs: list[list[int]]) -> list[list[int]]:
        """Run ``len(inputs)`` steps from the core's present state; ``inputs[t]`` are the
        global indices of the input neurons spiking in step t. Returns the global indices of
        the neurons that spiked in each step, in the core's order.

        Raises
        ------
        DeviceError : the board aborted a step, or the link failed
        """
        steps = len(inputs)
        # The board runs the steps whose events surely fit its response buffer and reports
        # how many; steps it did not run would be sent twice. So the steps per frame start
        # at the worst case (every neuron spiking) and adapt: doubled after a frame done in
        # full, cut to what the board managed otherwise.
        out: list[list[int]] = []
        t = 0
        while t < steps:
            size, k = 2, 0
            while t + k < steps and k < self._steps_per_frame \
                    and size + 2 + 2 * len(inputs[t + k]) <= self.max_payload:
                size += 2 + 2 * len(inputs[t + k])
                k += 1
            if k == 0:
                raise DeviceError(f"step {t}: {len(inputs[t])} input spikes do not fit one "
                                  f"frame of {self.max_payload} bytes")
            done, abort = p.parse_stream(self.call(Op.RUN, p.encode_events(inputs[t:t + k])))
            if abort is not None:
                raise DeviceError(f"RUN: the board aborted step {t + len(done)} "
                                  f"({p.error_name(abort)}); its state is now unknown")
            if not done or len(done) > k:
                raise DeviceError(f"RUN: board reports {len(done)} of {k} steps done")
            self._steps_per_frame = 2 * k if len(done) == k else len(done)
            out += done
            t += len(done)
        return out
