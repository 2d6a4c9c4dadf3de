"""Run a network through the Verilog core under Verilator or Icarus (backend="verilator" /
"icarus" of :func:`snnkit.simulate`).

The network is compiled (:mod:`snnkit.compiler`), the simulation top ``sim/tb_snn.v`` loads
the images over the host bus, streams the input spikes, runs the steps and dumps spikes,
states and weights as text, which is parsed into the same :class:`~snnkit.result.Result` as
the Python backends (states and weights in integer LSBs). One build per hardware
configuration is cached under ``$SNNKIT_CACHE`` (default ``~/.cache/snnkit``); networks are
loaded at run time, so every network that fits a configuration reuses its build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import hardware_files as hw
from .compiler import HardwareConfig, build_images
from .errors import SimulationError
from .inputs import check_inputs
from .network import Network
from .quantize import quantize
from .result import Result
from .tools import run_child, verilator_bin

HDL_DIR = hw.HDL
BACKENDS = ("verilator", "icarus")
OPTIONS = ("config", "cache_dir")


# --------------------------------------------------------------------------- builds


def cache_dir(override=None) -> Path:
    """Where builds are kept: ``override``, ``$SNNKIT_CACHE`` or ``~/.cache/snnkit``."""
    base = override or os.environ.get("SNNKIT_CACHE") or Path.home() / ".cache" / "snnkit"
    return Path(base).resolve() / "rtl"  # absolute: the simulations run in other folders


def sources() -> list[Path]:
    """The Verilog files of a simulation build: the core's blocks and the simulation top."""
    hw.require(HDL_DIR / "snn_core.v", hw.TB_SNN)
    return sorted(HDL_DIR.glob("snn_*.v")) + [hw.TB_SNN]


def headers() -> list[Path]:
    """The Verilog headers the sources include (hdl/snn_map.vh), found with ``-I hdl``."""
    return sorted(HDL_DIR.glob("*.vh"))


def _build_key(config: HardwareConfig, backend: str) -> str:
    h = hashlib.sha256(f"{backend}:{config.key()}".encode())
    for f in sources() + headers():
        h.update(f.name.encode() + f.read_bytes())
    return f"{backend}-{h.hexdigest()[:16]}"


def build(config: HardwareConfig, backend: str, cache=None, progress: bool = False) -> Path:
    """Build (or find in the cache) the simulation of ``config``; return the executable.
    ``progress``: show a timer while building. An interrupted build leaves no process and no
    half-built folder behind.

    Raises
    ------
    SimulationError : the simulator is missing or the build failed (its log is quoted)
    """
    if backend not in BACKENDS:
        raise SimulationError(f"backend: {backend!r} is not an RTL backend {BACKENDS}")
    final = cache_dir(cache) / _build_key(config, backend)
    exe = final / ("Vtb_snn" if backend == "verilator" else "tb_snn.vvp")
    if exe.exists():
        return exe
    params = config.verilog_params()
    files = [f"-I{HDL_DIR}"] + [str(f) for f in sources()]
    tool = verilator_bin() if backend == "verilator" else shutil.which("iverilog")
    if tool is None:
        raise SimulationError("backend 'icarus': iverilog not found (apt-get install iverilog)")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
    if backend == "verilator":
        cmd = [tool, "--binary", "--timing", "-Wno-fatal", "-Wno-lint",
               "-Wno-style", "--top-module", "tb_snn", "--Mdir", str(work), "-o", "Vtb_snn",
               "--build-jobs", "2", "-CFLAGS", "-std=c++20 -fcoroutines -O1",
               "--output-split", "0"]  # one C++ file: split builds trip over Verilator's PCH
        cmd += [f"-G{k}={v}" for k, v in params.items()] + files
    else:
        cmd = [tool, "-g2012", "-s", "tb_snn", "-o", str(work / "tb_snn.vvp")]
        cmd += [f"-Ptb_snn.{k}={v}" for k, v in params.items()] + files
    try:
        proc = run_child(cmd, desc=f"building the {backend} model (cached afterwards)"
                         if progress else None)
    except BaseException:  # interrupted: nothing half-built stays in the cache
        shutil.rmtree(work, ignore_errors=True)
        raise
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise SimulationError(f"backend {backend!r}: build failed:\n"
                              f"{(proc.stdout + proc.stderr)[-3000:]}")
    try:
        work.rename(final)
    except OSError:  # another process finished the same build first
        shutil.rmtree(work, ignore_errors=True)
    return exe


# --------------------------------------------------------------------------- one sample


def input_words(net: Network, arrays: dict[str, torch.Tensor], b: int, steps: int) -> list[int]:
    """Input FIFO words of sample ``b``: global indices of spiking inputs, a marker per step."""
    words = []
    spikes = {p.name: arrays[p.name][:, b].cpu().numpy() for p in net.inputs}
    offsets = {p.name: net.offset(p.name) for p in net.inputs}
    for t in range(steps):
        for name, x in spikes.items():
            words += (np.flatnonzero(x[t]) + offsets[name]).tolist()
        words.append(0x8000_0000)
    return words


def run_sample(exe: Path, backend: str, img_dir: Path, words: list[int], steps: int,
               nstate: int, wdump: int, wfinal: int) -> dict:
    """Run one sample; return the parsed dump (see sim/tb_snn.v)."""
    (img_dir / "inputs.hex").write_text("".join(f"{w:08x}\n" for w in words))
    out = img_dir / "dump.txt"
    bias = img_dir / "bias.hex"
    nbias = len(bias.read_text().split()) if bias.exists() else 0
    args = [f"+pop={img_dir / 'pop.hex'}", f"+proj={img_dir / 'proj.hex'}",
            f"+weights={img_dir / 'weights.hex'}", f"+regs={img_dir / 'regs.hex'}",
            f"+inputs={img_dir / 'inputs.hex'}", f"+nin={len(words)}", f"+steps={steps}",
            f"+bias={img_dir / 'bias.hex'}", f"+nbias={nbias}",
            f"+out={out}", f"+nstate={nstate}", f"+wdump={wdump}", f"+wfinal={wfinal}"]
    proc = run_child(sim_command(backend, exe, args), cwd=img_dir)
    if proc.returncode != 0 or not out.exists():
        raise SimulationError(f"backend {backend!r}: simulation failed:\n"
                              f"{(proc.stdout + proc.stderr)[-3000:]}")
    return parse_dump(out.read_text(), steps)


def parse_dump(text: str, steps: int) -> dict:
    """Dump lines -> ``{"spikes": [(step, index)], "states": [step][(g, v, i, theta)],
    "weights": [step][word], "final": [word], "counters": (cycles, events, steps)}``."""
    spikes, states, weights, final = [], [[] for _ in range(steps)], [[] for _ in range(steps)], []
    counters, step, error = None, 0, False
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "S":
            spikes.append((int(f[1]), int(f[2])))
        elif f[0] == "V":
            states[step].append(tuple(int(x) for x in f[1:5]))
        elif f[0] == "W":
            weights[step].append(int(f[2]))
        elif f[0] == "F":
            final.append(int(f[2]))
        elif f[0] == "E":
            step = int(f[1]) + 1
        elif f[0] == "C":
            counters = tuple(int(x) for x in f[1:4])
        elif f[0] == "X":
            error = True
    if counters is None or counters[2] != steps:
        raise SimulationError(f"RTL dump incomplete: expected {steps} steps, got counters "
                              f"{counters}")
    if error:
        raise SimulationError("RTL: the core flagged an input spike that is not an input neuron")
    return {"spikes": spikes, "states": states, "weights": weights, "final": final,
            "counters": counters}


# --------------------------------------------------------------------------- the backend


@dataclass
class RtlRun:
    """A :func:`run_rtl` outcome: the result plus what the core's counters say."""

    result: Result
    cycles: int  # core clock cycles spent running steps, all samples
    syn_events: int  # weights read while routing spikes, all samples
    sim_seconds: float  # wall time of running the samples (simulator + file I/O, no build)
    config: HardwareConfig


def simulate_rtl(net: Network, inputs, steps: int | None, backend: str, *, record=(),
                 learning: bool | None = None, progress: bool = False, **options) -> Result:
    """Run ``net`` on the RTL; the same arguments and Result as :func:`snnkit.simulate`.

    Options: ``config`` (a :class:`~snnkit.compiler.HardwareConfig`; default the smallest
    that fits), ``cache_dir`` (build cache root). Batch samples run one after another, each
    from the reset state and the initial weights. (``simulate(..., cores=K)`` runs the
    multi-core design instead: :mod:`snnkit.multicore`.)

    Raises
    ------
    SimulationError : bad inputs or options, missing simulator, failed build or run
    NetworkError : the network does not fit the hardware
    """
    return run_rtl(net, inputs, steps, backend, record=record, learning=learning,
                   progress=progress, **options).result


def run_rtl(net: Network, inputs, steps: int | None, backend: str, *, record=(),
            learning: bool | None = None, progress: bool = False, **options) -> RtlRun:
    """:func:`simulate_rtl` that also returns the core's cycle and event counters."""
    if backend not in BACKENDS:
        raise SimulationError(f"backend: {backend!r} is not one of {BACKENDS}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SimulationError(f"unexpected options for backend {backend!r}: {unknown} "
                              f"(known: {list(OPTIONS)})")
    record = (record,) if isinstance(record, str) else tuple(record)
    if net.quantization is None:
        net, _ = quantize(net)
    arrays, steps, batch = check_inputs(net, inputs, steps)
    report, images = build_images(net, options.get("config"), learning)
    exe = build(report.config, backend, options.get("cache_dir"), progress)
    # final weights of every projection with STDP (learning or not, as the fixed simulator),
    # per-step weights of the learning ones
    plastic = [i for i, p in enumerate(net.projections) if p.stdp is not None]
    learns = [i for i in plastic if net.projections[i].learns(learning)]
    nstate = net.n_inputs + net.n_neurons if set(record) & {"v", "i", "theta"} else 0
    words = report.weight_words
    samples = range(batch)
    if progress:
        from tqdm.auto import tqdm

        samples = tqdm(samples, desc=f"RTL ({backend})", unit="sample", leave=False)
    dumps, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="snnkit-rtl-") as tmp:
        img = Path(tmp)
        for name, text in images.items():
            (img / name).write_text(text)
        for b in samples:
            dumps.append(run_sample(exe, backend, img, input_words(net, arrays, b, steps),
                                    steps, nstate, words if "weights" in record and learns
                                    else 0, words if plastic else 0))
    wall = time.perf_counter() - t0
    result = _result(net, arrays, steps, batch, record, dumps, plastic, learns, report, backend)
    return RtlRun(result, sum(d["counters"][0] for d in dumps),
                  sum(d["counters"][1] for d in dumps), wall, report.config)


def _result(net, arrays, steps, batch, record, dumps, plastic, learns, report,
            backend) -> Result:
    n = net.n_inputs + net.n_neurons
    spk = np.zeros((steps, batch, n), bool)
    for b, d in enumerate(dumps):
        for t, g in d["spikes"]:
            spk[t, b, g] = True
    spikes, states = {}, {}
    for p in net.populations:
        off = net.offset(p.name)
        spikes[p.name] = (arrays[p.name].to(torch.bool).cpu() if p.is_input
                          else torch.from_numpy(spk[:, :, off:off + p.size].copy()))
    want = [k for k in ("v", "i", "theta") if k in record]
    if want:
        col = {"v": 1, "i": 2, "theta": 3}
        st = np.zeros((3, steps, batch, n), np.int64)
        for b, d in enumerate(dumps):
            for t in range(steps):
                rows = np.asarray(d["states"][t], np.int64).reshape(-1, 4)
                for k in want:
                    st[col[k] - 1, t, b, rows[:, 0]] = rows[:, col[k]]
        for p in net.neuron_populations:
            off = net.offset(p.name)
            states[p.name] = {k: torch.from_numpy(st[col[k] - 1, :, :, off:off + p.size].copy())
                              for k in want}
    weights, trace = {}, {}
    for i in plastic:
        pr = net.projections[i]

        def mat(words, i=i):  # the weight memory -> projection i's [target, source]
            return report.matrix(np.asarray(words, np.int64), i)

        weights[pr.name] = torch.from_numpy(np.stack([mat(d["final"]) for d in dumps]))
        if "weights" in record and i in learns:
            trace[pr.name] = torch.from_numpy(np.stack(
                [np.stack([mat(d["weights"][k]) for d in dumps]) for k in range(steps)]))
    lsb = 2.0 ** -net.quantization.frac_bits
    return Result(backend, steps, batch, spikes, states, weights, trace, lsb=lsb)


def sim_command(backend: str, exe: Path, args: list[str]) -> list[str]:
    """The command that runs a built test bench: Verilator's binary, or Icarus' ``vvp``
    (looked up here: missing, the run would fail with a bare "No such file 'vvp'")."""
    if backend == "verilator":
        return [str(exe)] + args
    vvp = shutil.which("vvp")
    if vvp is None:
        raise SimulationError("backend 'icarus': vvp not found (apt-get install iverilog)")
    return [vvp, "-n", str(exe)] + args
