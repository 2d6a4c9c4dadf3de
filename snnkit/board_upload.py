"""Uploading a network to a board: the part of :class:`snnkit.Device` that quantises a
network to the board's format, writes its tables, biases and weights (a multi-core board's
parts through CORE_SEL, then the router's tables), reads everything back and repairs what the
line garbled.

An interrupted upload resumes: each region's progress is journalled per network (a hash of
its images), and ``write_region(resume=True)`` skips what the board already acknowledged.
``load(progress=True)`` shows a bar over the upload's payload bytes.
"""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np

from .board_format import ADVICE, board_quantization, to_board
from .board_session import BoardReset
from .compiler import check_kinds
from .errors import DeviceError, NetworkError
from .memory_map import PLASTIC, MultiReg, Reg, link_offset
from .network import Network
from .protocol import Region
from .quantize import QuantizationReport, quantize

CTRL_N_POP = link_offset(Region.CTRL, Reg.N_POP)  # word offsets in Region.CTRL (N_PROJ next)
CTRL_CORE_SEL = link_offset(Region.CTRL, MultiReg.CORE_SEL)  # multi-core boards


def _hex_words(text: str) -> list[int]:
    return [int(x, 16) for x in text.split()]


def _sign(x: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(x, np.int64) & ((1 << bits) - 1)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x)



class BoardUpload:
    """Mixin of :class:`snnkit.Device`: :meth:`load` and what it needs (it uses the device's
    regions, link, session check and learning switch)."""

    def _tick(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    @contextlib.contextmanager
    def _upload_bar(self, show: bool, total: int):
        """load(progress=True): a bar over the upload's payload bytes, written and read back
        (repairs of a garbled line add to it)."""
        if not show:
            yield
            return
        from tqdm.auto import tqdm

        with tqdm(total=total, desc="upload", unit="B", unit_scale=True) as self._bar:
            try:
                yield
            finally:
                self._bar = None

    def load(self, net: Network, progress: bool = False) -> QuantizationReport:
        """Quantise ``net`` to the board's format (:func:`snnkit.board_format.to_board`),
        upload it, verify it by reading it back (repairing what the line garbled), reset.

        An upload the link interrupted resumes where it stopped when ``load`` is called
        again with the same network (or at once, with ``reconnect``).

        Returns
        -------
        the quantisation report (each parameter's error in the board's format); the
        quantised network is ``device.net``, what :meth:`run` results equal
        ``simulate(device.net, ..., backend="fixed")`` for

        Raises
        ------
        DeviceError : the network does not fit the board's format or sizes (what, by how
            much, what to do; nothing is written then), or the read-back still differs
            after repairs
        """
        if not isinstance(net, Network):
            raise DeviceError(f"load: expected a snnkit.Network, got {type(net).__name__} "
                              f"(a file: device.load(snnkit.load(path)))")
        if "neuron_bias" not in self.info.features:
            raise DeviceError("the board's core predates per-neuron biases (its IDENTIFY "
                              "lacks the 'neuron_bias' feature, core version 2); rebuild its "
                              "bitstream with this snnkit (snnkit build)")
        try:
            check_kinds(net)  # what no board takes: no advice to size one
        except NetworkError as e:
            raise DeviceError(f"the board cannot run this network, nothing written: {e}") from e
        if self.info.cores > 1:
            return self._load_multi(net, progress)
        try:
            fit = to_board(net, self.info.config)
        except NetworkError as e:
            raise DeviceError(f"the board cannot hold this network, nothing written: {e}") from e
        with self._upload_bar(progress, self._upload_bytes(fit.images, fit.compiled.weight_words,
                                                           fit.net.quantization)):
            self._guarded(lambda: self._upload(fit.net, fit.compiled, fit.images))
        self.quantization = fit.quantization
        return fit.quantization

    def _load_multi(self, net: Network, progress: bool = False) -> QuantizationReport:
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
        total = sum(4 + self._upload_bytes(mi.images, rep.weight_words, net.quantization,
                                           f"c{core.index}_")  # (4: its CORE_SEL)
                    for core, rep in zip(part.cores, mi.reports) if core.net is not None)
        total += sum(4 * len(_hex_words(mi.images[f"{n}.hex"])) for n in ("route", "inmap"))
        total += 8 * len(_hex_words(mi.images["waves.hex"]))
        with self._upload_bar(progress, total):
            self._guarded(lambda: self._upload_multi(net, part, mi))
        self.quantization = qreport
        return qreport

    def _reload(self) -> None:
        """Upload the loaded network again (:meth:`_recover`: the board lost it)."""
        if self._part is None:
            self._upload(self.net, self._report, self._images)
        else:
            self._upload_multi(self.net, self._part, self._multi)

    def _begin_upload(self, images: dict[str, str]) -> None:
        """Keep the journal of an interrupted upload of these images to this board (what
        ``write_region(resume=True)`` skips); forget it otherwise."""
        key = hashlib.sha256(repr(sorted(images.items())).encode()).hexdigest()
        try:
            self._check_session()  # a board reset since: nothing of an earlier upload is left
        except BoardReset:
            self._journal = {}
        if key != self._journal_key:
            self._journal, self._journal_key = {}, key
        if self._floor is None:
            self._floor = (self._board_frames(), self.link.acks)

    def _end_upload(self, net: Network, report, images, weights, part=None,
                    multi=None) -> None:
        self._journal_key = None
        self._set_learning(True)
        self.reset()
        self.net, self._report, self._images, self._weights = net, report, images, weights
        self._part, self._multi = part, multi
        self._learning, self._evolved, self._stateful = True, False, False

    def _upload(self, net: Network, report, images) -> None:
        self._begin_upload(images)
        weights = np.asarray(_hex_words(images["weights.hex"])[:report.weight_words], np.int64)
        self._sel = 0
        self._write_core(_hex_words(images["regs.hex"])[:2], _hex_words(images["pop.hex"]),
                         _hex_words(images["proj.hex"]), images["bias.hex"], weights,
                         net.quantization)
        self._end_upload(net, report, images, weights)

    def _upload_multi(self, net: Network, part, mi) -> None:
        """Each core's part through CORE_SEL (written and verified as a single core's), then
        the router's tables (ROUTE and INMAP are write only: the link's CRC and replay are
        their check; WAVES is read back)."""
        self._begin_upload(mi.images)
        weights = []
        for core, rep in zip(part.cores, mi.reports):
            if core.net is None:
                weights.append(None)
                continue
            self._select(core.index)
            img = {n: _hex_words(mi.images[f"c{core.index}_{n}.hex"])
                   for n in ("pop", "proj", "weights", "regs")}
            w = np.asarray(img["weights"][:rep.weight_words], np.int64)
            self._write_core(img["regs"][:2], img["pop"], img["proj"],
                             mi.images[f"c{core.index}_bias.hex"], w, net.quantization)
            weights.append(w)
        for region, name in ((Region.ROUTE, "route"), (Region.INMAP, "inmap"),
                             (Region.WAVES, "waves")):
            words = _hex_words(mi.images[f"{name}.hex"])
            if name == "waves":  # N_WAVES first, then the cores
                words = words[-1:] + words[:-1]
            self.write_region(region, 0, words, resume=True)
            if region == Region.WAVES:
                self._verify(region, words)
        self._end_upload(net, None, mi.images, weights, part, mi)

    def _select(self, core: int) -> None:
        """Address core ``core`` of a multi-core board (CORE_SEL) with what follows."""
        self.write_region(Region.CTRL, CTRL_CORE_SEL, [core])
        if self.link.lossy:
            self._verify(Region.CTRL, [core], CTRL_CORE_SEL)
        self._sel = core

    @staticmethod
    def _upload_bytes(images: dict[str, str], weight_words: int, q, prefix: str = "") -> int:
        """Payload bytes of one core's upload (:meth:`_write_core`): written, then read back
        as 4-byte words."""
        tables = 2 + sum(len(_hex_words(images[f"{prefix}{n}.hex"])) for n in ("pop", "proj"))
        biases = len(_hex_words(images[f"{prefix}bias.hex"]))
        bias_w = 2 if q.state_bits <= 16 else 4
        weight_w = 1 if q.weight_bits <= 8 else 2 if q.weight_bits <= 16 else 4
        return 4 * tables + bias_w * biases + weight_w * weight_words \
            + 4 * (tables + biases + weight_words)

    def _write_core(self, counts: list[int], pop: list[int], proj: list[int], bias: str,
                    weights: np.ndarray, q) -> None:
        """One core's tables, biases and weights (resuming an interrupted upload), then
        each read back and repaired."""
        self.write_region(Region.CTRL, CTRL_N_POP, counts, resume=True)
        self.write_region(Region.POP, 0, pop, resume=True)
        self.write_region(Region.PROJ, 0, proj, resume=True)
        self._write_biases(bias, q.state_bits, resume=True)
        self._write_weights(weights, q.weight_bits, resume=True)
        self._verify(Region.CTRL, counts, CTRL_N_POP)
        self._verify(Region.POP, pop)
        self._verify(Region.PROJ, proj)
        self._verify_biases(bias, q.state_bits)
        self._verify_weights(weights, q.weight_bits)

    def _write_biases(self, image: str, bits: int, resume: bool = False) -> None:
        """Every neuron's bias (bias.hex, ``bits`` wide) into region BIAS."""
        values = _sign(_hex_words(image), bits)
        self.write_region(Region.BIAS, 0, values, 2 if bits <= 16 else 4, resume=resume)

    def _verify_biases(self, image: str, bits: int) -> None:
        """(Read back sign-extended; a repair's 32-bit words keep their low ``bits``.)"""
        self._verify(Region.BIAS, [int(b) & 0xFFFF_FFFF for b in _sign(_hex_words(image), bits)])

    def _write_weights(self, image: np.ndarray, bits: int, offset: int = 0,
                       resume: bool = False) -> None:
        """Weights in runs of equal plastic bit, as narrow signed elements when they fit."""
        width = 1 if bits <= 8 else 2 if bits <= 16 else 4
        plastic = (image >> bits) & 1
        values = _sign(image, bits)
        cuts = np.flatnonzero(np.diff(plastic)) + 1
        for run in np.split(np.arange(len(image)), cuts):
            if run.size:
                self.write_region(Region.WEIGHT, offset + int(run[0]), values[run], width,
                                  flag=bool(plastic[run[0]]), resume=resume)

    def _verify(self, region: Region, words: list[int], offset: int = 0) -> None:
        """Read ``words`` back; rewrite what differs (a write the line garbled) and check
        again; raise when it still differs."""
        for attempt in range(4):
            got = self._read_once(region, offset, len(words), 4, False)
            bad = [k for k, (a, b) in enumerate(zip(got, words)) if a != b]
            if not bad:
                return
            if attempt == 3:
                break
            self.stats["repairs"] += 1
            self.write_region(region, offset + bad[0], words[bad[0]:bad[-1] + 1])
        raise DeviceError(f"load: {region.name} word {offset + bad[0]} reads back "
                          f"0x{got[bad[0]]:08x}, wrote 0x{words[bad[0]]:08x}")

    def _verify_weights(self, image: np.ndarray, bits: int) -> None:
        want = ((image >> bits) & 1) * PLASTIC | (_sign(image, bits) & (PLASTIC - 1))
        for attempt in range(4):
            got = np.asarray(self._read_once(Region.WEIGHT, 0, len(image), 4, False), np.int64)
            bad = np.flatnonzero(got != want)
            if not bad.size:
                return
            if attempt == 3:
                break
            self.stats["repairs"] += 1
            self._write_weights(image[bad[0]:bad[-1] + 1], bits, int(bad[0]))
        raise DeviceError(f"load: weight word {bad[0]} reads back 0x{got[bad[0]]:08x}, "
                          f"wrote 0x{want[bad[0]]:08x}")
