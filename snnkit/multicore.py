"""A partitioned network on the multi-core RTL (hdl/snn_multi.v: K cores and the spike
router): its images, and runs under Verilator or Icarus (``simulate(..., backend="verilator",
cores=K)``).

:func:`build_multi_images` compiles each core's network (:func:`snnkit.compiler.build_images`)
and the router's tables from a :class:`~snnkit.partition.Partition`: the route table (per
source core and neuron: the whole network's index, and per other core the proxy neuron it
drives, for lag 0 and lag 1), the input map (per network input and core: the core's index of
it) and the waves. ``sim/tb_multi.v`` loads them over the host bus and runs the steps; the
dump becomes the same :class:`~snnkit.result.Result` as the fixed-point simulator's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import hardware_files as hw
from .compiler import HardwareConfig, build_images
from .compiler import _hex as _hex_lines
from .errors import NetworkError, SimulationError
from .network import Network
from .partition import Partition, partition
from .result import Result
from .rtl_backend import BACKENDS, HDL_DIR, cache_dir, headers, input_words, sim_command
from .tools import verilator_bin


def _width(n: int) -> int:
    return max(1, (int(n) - 1).bit_length())


@dataclass
class MultiImages:
    """What :func:`build_multi_images` produced."""

    images: dict[str, str]  # file name -> text
    reports: list  # per core: its CompileReport (None: empty core)
    index_bits: int  # G_W: bits of a whole-network index in the design


def build_multi_images(part: Partition, config: HardwareConfig,
                       learning: bool | None = None) -> MultiImages:
    """The images of every core and the router's tables (docs/hardware.md, "Many cores in
    one design").

    Raises
    ------
    NetworkError : a core does not fit ``config``, or the whole network has more indices than
        the design's whole-network index holds (cores x N_MAX)
    """
    net, cores = part.net, len(part.cores)
    # the multi-core design has no delayed_reset feature: delayed resets as self-projections
    config = dataclasses.replace(config, delayed_reset=False)
    if cores & (cores - 1):
        raise NetworkError(f"cores: the multi-core design needs a power of two, got {cores}")
    n_aw, k_w = _width(config.n_max), _width(cores)
    g_w = n_aw + k_w
    total = net.n_inputs + net.n_neurons
    if total > 1 << g_w or g_w > 16:
        raise NetworkError(f"network: {total} neurons and inputs exceed the multi-core "
                           f"design's whole-network index ({cores} x N_MAX = {1 << g_w})")
    e_w = n_aw + 1
    route = np.zeros((cores, 1 << g_w), np.int64)  # [target core, {source core, index}]
    inmap = np.zeros((cores, 1 << g_w), np.int64)  # [core, whole-network index]
    images, reports = {}, []
    for core in part.cores:
        k = core.index
        if core.net is None:
            reports.append(None)
            continue
        rep, img = build_images(core.net, config, learning)
        reports.append(rep)
        for name in ("pop.hex", "proj.hex", "weights.hex", "regs.hex", "bias.hex"):
            images[f"c{k}_{name}"] = img[name]
        for name, idx in core.parts.items():  # own neurons: their whole-network index
            local = core.net.offset(name) + np.arange(idx.size)
            route[k, (k << n_aw) + local] = (1 << g_w) | (net.offset(name) + idx)
    for core in part.cores:
        j = core.index
        if core.net is None:
            continue
        for name, src in core.sources.items():
            local = core.net.offset(name) + np.arange(src.indices.size)
            if not src.proxy:
                inmap[j, net.offset(src.population) + src.indices] = (1 << n_aw) | local
                continue
            owner = part.placement[src.population][src.indices]
            for m, (gi, k) in enumerate(zip(src.indices, owner)):
                c = part.cores[k]
                i = c.net.offset(src.population) + int(np.searchsorted(
                    c.parts[src.population], gi))
                route[j, (k << n_aw) + i] |= ((1 << n_aw) | int(local[m])) << (src.lag * e_w)
    waves = [0] * (cores + 1)
    for w, members in enumerate(part.waves):
        for k in members:
            waves[k] = 0x10 | w
    waves[cores] = len(part.waves)
    dumps = []
    for core, rep in zip(part.cores, reports):
        n = 0 if core.net is None else core.net.n_inputs + core.net.n_neurons
        dumps += [n, 0 if rep is None else rep.weight_words]
    images.update({"route.hex": _hex_lines(route.reshape(-1)),
                   "inmap.hex": _hex_lines(inmap.reshape(-1)),
                   "waves.hex": _hex_lines(waves), "dumps.hex": _hex_lines(dumps)})
    return MultiImages(images, reports, g_w)


def compile_multi(net: Network, out_dir, cores: int, config: HardwareConfig | None = None,
                  allocator="metis", learning: bool | None = None) -> Partition:
    """``snnkit compile --cores K``: partition ``net`` over ``cores`` cores of ``config``
    (default the standard core) and write every core's images (``c<k>_*.hex``), the
    router's tables (``route.hex``, ``inmap.hex``, ``waves.hex``) and ``report.txt`` (the
    partition and each core's compile report) into ``out_dir``; returns the partition.

    Raises
    ------
    NetworkError : the network does not fit the cores
    """
    from .quantize import quantize

    if net.quantization is None:
        net, _ = quantize(net)
    config = config or HardwareConfig(**{
        k: getattr(net.quantization, k) for k in ("weight_bits", "state_bits", "decay_bits",
                                                  "trace_bits", "frac_bits",
                                                  "trace_frac_bits", "stdp_frac_bits")})
    part = partition(net, cores, config, allocator)
    mi = build_multi_images(part, config, learning)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in mi.images.items():
        (out / name).write_text(text)
    lines = [str(part), f"router: whole-network index {mi.index_bits} bits"]
    for core, rep in zip(part.cores, mi.reports):
        if rep is not None:
            lines += [f"core {core.index}:", str(rep)]
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    return part


# --------------------------------------------------------------------------- builds


def sources() -> list[Path]:
    tb = hw.SIM / "tb_multi.v"
    hw.require(HDL_DIR / "snn_core.v", tb)
    return sorted(HDL_DIR.glob("snn_*.v")) + [tb]


def build(config: HardwareConfig, cores: int, backend: str, cache=None) -> Path:
    """Build (or find in the cache) the multi-core simulation; return the executable."""
    if backend not in BACKENDS:
        raise SimulationError(f"backend: {backend!r} is not an RTL backend {BACKENDS}")
    h = hashlib.sha256(f"multi:{backend}:{cores}:{config.key()}".encode())
    for f in sources() + headers():
        h.update(f.name.encode() + f.read_bytes())
    final = cache_dir(cache) / f"multi-{backend}-{h.hexdigest()[:16]}"
    exe = final / ("Vtb_multi" if backend == "verilator" else "tb_multi.vvp")
    if exe.exists():
        return exe
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
    params = dict(dataclasses.replace(config, delayed_reset=False).verilog_params(),
                  CORES=cores)  # (no delayed_reset in the multi-core design)
    files = [str(f) for f in sources()]
    if backend == "verilator":
        cmd = [verilator_bin(), "--binary", "--timing", "-Wno-fatal", "-Wno-lint",
               "-Wno-style", "--top-module", "tb_multi", "--Mdir", str(work), "-o",
               "Vtb_multi", "--build-jobs", "2", "-CFLAGS", "-std=c++20 -fcoroutines -O1",
               "--output-split", "0"]
        cmd += [f"-I{HDL_DIR}"] + [f"-G{k}={v}" for k, v in params.items()] + files
    else:
        if shutil.which("iverilog") is None:
            raise SimulationError("backend 'icarus': iverilog not found (apt-get install "
                                  "iverilog)")
        cmd = ["iverilog", "-g2012", "-I", str(HDL_DIR), "-s", "tb_multi", "-o",
               str(work / "tb_multi.vvp")]
        cmd += [f"-Ptb_multi.{k}={v}" for k, v in params.items()] + files
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise SimulationError(f"multi-core build ({backend}) failed:\n"
                              f"{(proc.stdout + proc.stderr)[-3000:]}")
    try:
        work.rename(final)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return exe


# --------------------------------------------------------------------------- runs


@dataclass
class MultiRun:
    """A :func:`run_multi` outcome: the result, the partition and the router's cycles."""

    result: Result
    partition: Partition
    cycles_per_step: list[list[int]]  # [sample][step]: the design's cycles of each step
    sim_seconds: float
    config: HardwareConfig


def run_multi(net: Network, inputs, steps: int | None, backend: str, cores: int, *,
              record=(), learning: bool | None = None, config: HardwareConfig | None = None,
              allocator="metis", cache_dir=None, part: Partition | None = None) -> MultiRun:
    """Run ``net`` partitioned over ``cores`` cores of the multi-core RTL.

    ``config`` is one core's size (default: the standard core); the result equals
    ``simulate(net, inputs, backend="fixed")`` bit for bit.

    Raises
    ------
    NetworkError : the network does not fit the cores
    SimulationError : bad inputs, missing simulator, failed build or run
    """
    from .inputs import check_inputs
    from .quantize import quantize

    if net.quantization is None:
        net, _ = quantize(net)
    config = config or HardwareConfig(**{
        k: getattr(net.quantization, k) for k in ("weight_bits", "state_bits", "decay_bits",
                                                  "trace_bits", "frac_bits",
                                                  "trace_frac_bits", "stdp_frac_bits")})
    part = part or partition(net, cores, config, allocator)
    net = part.net
    arrays, steps, batch = check_inputs(net, inputs, steps)
    mi = build_multi_images(part, config, learning)
    exe = build(config, len(part.cores), backend, cache_dir)
    states = bool(set(record) & {"v", "i", "theta"})
    plastic = any(pr.stdp is not None for pr in net.projections)
    learns = any(pr.learns(learning) for pr in net.projections)
    dumps, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="snnkit-multi-") as tmp:
        d = Path(tmp)
        for name, text in mi.images.items():
            (d / name).write_text(text)
        for b in range(batch):
            words = input_words(net, arrays, b, steps)
            (d / "inputs.hex").write_text("".join(f"{w:08x}\n" for w in words))
            out = d / "dump.txt"
            args = [f"+dir={d}", f"+inputs={d / 'inputs.hex'}", f"+nin={len(words)}",
                    f"+steps={steps}", f"+out={out}", f"+states={int(states)}",
                    f"+wdump={int('weights' in record and learns)}",
                    f"+wfinal={int(plastic)}", "+learn=1"]
            proc = subprocess.run(sim_command(backend, exe, args), capture_output=True,
                                  text=True, cwd=d, check=False)
            if proc.returncode != 0 or not out.exists():
                raise SimulationError(f"multi-core run ({backend}) failed:\n"
                                      f"{(proc.stdout + proc.stderr)[-3000:]}")
            dumps.append(_parse(out.read_text(), steps, len(part.cores)))
    wall = time.perf_counter() - t0
    result = _result(part, mi, arrays, steps, batch, record, dumps, backend)
    return MultiRun(result, part, [dd["cycles"] for dd in dumps], wall, config)


def _parse(text: str, steps: int, cores: int) -> dict:
    spikes, cycles = [], []
    states = [[[] for _ in range(cores)] for _ in range(steps)]
    weights = [[[] for _ in range(cores)] for _ in range(steps)]
    final = [[] for _ in range(cores)]
    t, last = 0, 0
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "S":
            spikes.append((int(f[1]), int(f[2])))
        elif f[0] == "V":
            states[t][int(f[1])].append(tuple(int(x) for x in f[2:6]))
        elif f[0] == "W":
            weights[t][int(f[1])].append(int(f[3]))
        elif f[0] == "F":
            final[int(f[1])].append(int(f[3]))
        elif f[0] == "E":
            c = int(f[2])
            cycles.append(c - last)
            last, t = c, int(f[1]) + 1
    if t != steps:
        raise SimulationError(f"multi-core RTL dump incomplete: {t} of {steps} steps")
    return {"spikes": spikes, "states": states, "weights": weights, "final": final,
            "cycles": cycles}


def _matrix(words, rep, li: int) -> np.ndarray:
    """Projection ``li`` of a core's network from its weight memory ``words``."""
    return rep.matrix(np.asarray(words, np.int64), li)


def _result(part: Partition, mi: MultiImages, arrays, steps, batch, record, dumps,
            backend) -> Result:
    net = part.net
    n = net.n_inputs + net.n_neurons
    spk = np.zeros((steps, batch, n), bool)
    for b, d in enumerate(dumps):
        for t, g in d["spikes"]:
            spk[t, b, g] = True
    want = [v for v in ("v", "i", "theta") if v in record]
    results = []
    for core, rep in zip(part.cores, mi.reports):
        if core.net is None:
            results.append(None)
            continue
        k, cn = core.index, core.net
        sp = {name: torch.from_numpy(spk[:, :, net.offset(name) + idx].copy())
              for name, idx in core.parts.items()}
        states = {}
        if want:
            col = {"v": 1, "i": 2, "theta": 3}
            for name in core.parts:
                off, size = cn.offset(name), cn.population(name).size
                st = {v: np.zeros((steps, batch, size), np.int64) for v in want}
                for b, d in enumerate(dumps):
                    for t in range(steps):
                        rows = np.asarray(d["states"][t][k], np.int64).reshape(-1, 4)
                        sel = (rows[:, 0] >= off) & (rows[:, 0] < off + size)
                        for v in want:
                            st[v][t, b, rows[sel, 0] - off] = rows[sel, col[v]]
                states[name] = {v: torch.from_numpy(a) for v, a in st.items()}
        weights, trace = {}, {}
        for li, pr in enumerate(cn.projections):
            if pr.stdp is None:
                continue
            weights[pr.name] = torch.from_numpy(np.stack(
                [_matrix(d["final"][k], rep, li) for d in dumps]))
            if "weights" in record and dumps[0]["weights"][0][k]:
                trace[pr.name] = torch.from_numpy(np.stack([np.stack(
                    [_matrix(d["weights"][t][k], rep, li) for d in dumps])
                    for t in range(steps)]))
        results.append(Result(backend, steps, batch, sp, states, weights, trace,
                              lsb=2.0 ** -net.quantization.frac_bits))
    return part.merge(arrays, results, backend)
