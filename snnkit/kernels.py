"""The simulator's CPU fast path: a small C kernel (``_kernels*.c``), called from Python.

:func:`run_layer` runs one population over all steps: the torch version of that is a dense
matrix product (binary spikes times weights) and ~6 torch operations per step; the kernel
instead sums the weight rows of the sources that spike (inputs are sparse) and runs the neuron
update over all steps in the same pass, with the accumulators in registers. :func:`run_group`
runs populations that feed each other, and plastic projections, step by step (recurrent sums
event-driven too, STDP on the touched rows and columns only); :func:`run_rec` runs a float
population fed back by itself only, a group of samples at a time, and :func:`run_rec_amx`
the same in fixed point on the AMX tiles. :mod:`snnkit.cpu_path`
decides which runs what. Integer sums are exact, so the fixed-point backend stays bit-exact; float
sums differ from the torch product only in summation order. Where the CPU has Intel AMX,
8-bit fixed-point layers whose inputs are dense enough (>= 4% of sources spiking per step, 32
or more samples) sum on the tile unit instead: an exact int8 matrix product, the same
integers, ~2.5x faster than summing rows at 10% activity; float layers with dense inputs (from
~10-16% of the sources spiking, by the weights' bf16 parts: :func:`pack_bf16`) on its bf16
tiles: float32 sums of the exact weights, ~1.5x faster than the rows at 20%, ~2x at 30%.

The source is compiled with the system C compiler (``$CC``, else ``cc``/``gcc``) on first use
(about a second; torch's cpp_extension would take tens of seconds, numba would be a new
dependency compiling in every process) and cached under ``$SNNKIT_CACHE`` (default
``~/.cache/snnkit``), keyed by the source, the flags and the CPU. Without a compiler the
simulator warns once and uses the torch path; ``SNNKIT_KERNELS=0`` selects the torch path.

Threads: as many as ``torch.get_num_threads()``, and torch's own where it can
(:func:`share_threads`): its OpenMP team, which between torch's parallel ops spins on the very
cores threads of our own would need. ``SNNKIT_OPENMP=0`` starts threads of our own instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
import weakref
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("_kernels.c")
SOURCES = (SOURCE, *(SOURCE.with_name(f"_kernels_{k}.c") for k in ("amx", "step")))
# (the first includes the others)
# -ffp-contract=off: the neuron update rounds every product and sum as torch does (no FMA)
FLAGS = ("-O3", "-ffp-contract=off", "-fPIC", "-shared", "-pthread", "-std=c11")
NATIVE = ("-march=native", "-mprefer-vector-width=512")

# weight dtype -> the kernel's "kind"
KINDS = {torch.float32: 0, torch.int8: 1, torch.int16: 2}

_lib = None
_tried = False


PARAM_PTRS = ("alpha", "beta", "threshold", "v_reset", "bias", "adapt_plus", "adapt_decay",
              "v_init", "refractory", "c1", "c2")


class NeuronC(ctypes.Structure):
    """``neuron_t`` of _kernels.c: per-neuron parameter pointers and the flags."""

    _fields_ = ([(k, ctypes.c_void_p) for k in PARAM_PTRS]
                + [(k, ctypes.c_int) for k in ("has_alpha", "has_bias", "subtract",
                                               "has_refractory", "adaptive", "decay_bits")]
                + [("lo", ctypes.c_int64), ("hi", ctypes.c_int64), ("narrow", ctypes.c_int)])


class GroupPopC(ctypes.Structure):
    """``gpop_t`` of _kernels_step.c: one population of a group."""

    _fields_ = [("N", ctypes.c_int64), ("p", NeuronC), ("spikes", ctypes.c_void_p),
                ("ext", ctypes.c_void_p), ("rec_v", ctypes.c_void_p),
                ("rec_i", ctypes.c_void_p), ("rec_theta", ctypes.c_void_p)]


STDP_INTS = ("plastic", "nearest", "soft", "shift_hard", "shift_soft")
STDP_VALUES = ("a_plus", "a_minus", "pre_decay", "post_decay", "w_min", "w_max")


class GroupProjC(ctypes.Structure):
    """``gproj_t`` of _kernels_step.c: one projection summed (and maybe learning) in a group."""

    _fields_ = ([("target", ctypes.c_int64), ("src", ctypes.c_void_p), ("S", ctypes.c_int64),
                 ("Np", ctypes.c_int64), ("delay", ctypes.c_int64), ("kind", ctypes.c_int),
                 ("w", ctypes.c_void_p)]
                + [(k, ctypes.c_int) for k in STDP_INTS]
                + [("f" + k, ctypes.c_double) for k in STDP_VALUES]
                + [("i" + k, ctypes.c_int64) for k in STDP_VALUES]
                + [("mask", ctypes.c_void_p), ("rec_w", ctypes.c_void_p)])


def enabled() -> bool:
    """False when ``SNNKIT_KERNELS=0`` asks for the torch path."""
    return os.environ.get("SNNKIT_KERNELS", "1") != "0"


def load():
    """The loaded kernel library, building it on first use; None (after one warning) when it
    cannot be built, or when disabled by ``SNNKIT_KERNELS=0``."""
    global _lib, _tried
    if not enabled():
        return None
    if not _tried:
        _tried = True
        try:
            path = build()
            try:
                _lib = open_library(path)
            except OSError:  # a damaged cache entry: build it again, once
                path.unlink(missing_ok=True)
                _lib = open_library(build())
        except (OSError, RuntimeError) as e:
            warnings.warn(f"snnkit: CPU kernel unavailable ({e}); using the slower torch path",
                          RuntimeWarning, stacklevel=3)
    return _lib


def _cache_dir() -> Path:
    d = os.environ.get("SNNKIT_CACHE")
    return Path(d) if d else Path.home() / ".cache" / "snnkit"


def _cpu_id() -> str:
    """What -march=native depends on: the machine and its CPU flags."""
    flags = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        flags = next((ln for ln in f if ln.startswith(("flags", "Features"))), "")
    return platform.machine() + flags


def build(compiler: str | None = None, native: bool = True, source: Path = SOURCE,
          includes: tuple[Path, ...] = SOURCES[1:]) -> Path:
    """Compile ``source`` (default _kernels.c) into the cache (once per source, the files it
    ``includes``, flags and CPU); return the .so path.

    ``native=False`` builds for the baseline instruction set only (no AVX), as is also tried
    when the compiler refuses ``-march=native``. Raises RuntimeError when no compiler is found
    or every attempt fails.
    """
    cc = compiler or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc or not shutil.which(cc):
        raise RuntimeError(f"no C compiler found ({cc or 'cc, gcc'}; set CC)")
    src = source.read_bytes() + b"".join(Path(f).read_bytes() for f in includes)
    errors = []
    for flags in ((FLAGS + NATIVE, FLAGS) if native else (FLAGS,)):
        key = hashlib.sha256(src + repr((cc, flags, _cpu_id())).encode()).hexdigest()[:16]
        out = _cache_dir() / f"{source.stem.lstrip('_')}-{key}.so"
        if not out.exists() and not _compile(cc, flags, source, out, errors):
            continue
        if errors:  # said aloud: a source that fails natively only hides as slowness
            warnings.warn(f"snnkit: {source.name} did not build for this CPU ({errors[-1]}); "
                          "using the baseline build (no AVX, slower)", RuntimeWarning,
                          stacklevel=2)
        return out
    raise RuntimeError(f"{cc} failed: {errors[-1]}")


def _compile(cc: str, flags: tuple, source: Path, out: Path, errors: list) -> bool:
    """Compile ``source`` into ``out``; False, with the first error line (else the last
    line) added to ``errors``, when it fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        r = subprocess.run([cc, *flags, "-o", tmp, str(source)], capture_output=True,
                           text=True, timeout=120)
        if r.returncode == 0:
            os.replace(tmp, out)  # atomic: concurrent builds all end with a whole file
            return True
        lines = r.stderr.strip().splitlines() or [f"exit {r.returncode}"]
        errors.append(next((ln for ln in lines if "error" in ln), lines[-1]).strip())
    except (OSError, subprocess.TimeoutExpired) as e:
        errors.append(str(e))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return False


def open_library(path) -> ctypes.CDLL:
    """Load a built kernel library and declare its functions."""
    return _bind(ctypes.CDLL(str(path)))


def _openmp_parallel() -> tuple[int, int, int] | None:
    """The addresses of ``GOMP_parallel``, ``omp_get_thread_num`` and ``omp_get_num_threads``
    in the OpenMP runtime loaded in this process (torch's libgomp, or libiomp's entries of
    those names), or None: none loaded, not Linux, or ``SNNKIT_OPENMP=0``."""
    if os.environ.get("SNNKIT_OPENMP", "1") == "0":
        return None
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f
                            if Path(ln.split()[-1]).name.startswith(("libgomp", "libiomp"))})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            return tuple(ctypes.cast(f, ctypes.c_void_p).value
                         for f in (lib.GOMP_parallel, lib.omp_get_thread_num,
                                   lib.omp_get_num_threads))
        except (OSError, AttributeError):
            continue
    return None


def share_threads(lib) -> None:
    """Run ``lib``'s parallel loops on torch's OpenMP team where there is one (``lib.openmp``
    says whether): a library built from _kernels.c has its own copy of the switch."""
    lib.snn_use_openmp.argtypes = [ctypes.c_void_p] * 3
    lib.snn_use_openmp.restype = None
    addr = _openmp_parallel()
    lib.snn_use_openmp(*(addr or (None,) * 3))
    lib.openmp = addr is not None


def _bind(lib):
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.snn_layer.argtypes = [c_int, i64, i64, i64, i64, i64, p, p, p, p,
                              ctypes.POINTER(NeuronC), p, p, p, p, p, c_int]
    lib.snn_layer.restype = c_int
    lib.snn_group.argtypes = [i64, i64, c_int, i64, ctypes.POINTER(GroupPopC), i64,
                              ctypes.POINTER(GroupProjC), c_int, i64, i64, c_int]
    lib.snn_group.restype = c_int
    lib.snn_rec_f32.argtypes = [i64, i64, i64, ctypes.POINTER(NeuronC), p, p, p, p, i64, p, p,
                                p, i64, p, p, c_int]
    lib.snn_rec_f32.restype = c_int
    lib.snn_rec_amx.argtypes = [i64, i64, i64, ctypes.POINTER(NeuronC), p, p, p, p, i64, p, p,
                                i64, p, p, c_int]
    lib.snn_rec_amx.restype = c_int
    share_threads(lib)
    lib.snn_vector_lanes.restype = c_int
    lib.lanes = lib.snn_vector_lanes()
    lib.snn_slab_width.restype = c_int
    lib.slab_width = lib.snn_slab_width()
    lib.snn_rec_width.restype = c_int
    lib.rec_width = lib.snn_rec_width()
    lib.snn_amx_available.restype = c_int
    lib.amx = bool(lib.snn_amx_available())
    lib.snn_amx_runs.restype = ctypes.c_int64
    lib.snn_layer_bf16.argtypes = lib.snn_layer.argtypes + [p, i64, ctypes.c_double]
    lib.snn_layer_bf16.restype = c_int
    lib.snn_amx_bf16.restype = c_int
    lib.amx_bf16 = bool(lib.snn_amx_bf16())
    return lib


def pad_weights(wt: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``[source, target]`` weights as the kernel reads them, in ``dtype``: rows padded with
    zeros to ``Np``, a multiple of 16 with ``Np / 16`` odd (a row stride of a power of two
    cache lines maps the rows of a block onto a few cache sets), and 16 spare elements after
    the last row (the 8-bit kernel may read one vector past a row's end)."""
    s, n = wt.shape
    n_pad = -(-n // 16) * 16
    if (n_pad // 16) % 2 == 0:
        n_pad += 16
    flat = torch.empty(s * n_pad + 16, dtype=dtype or wt.dtype)
    flat[s * n_pad:] = 0
    out = flat[:s * n_pad].view(s, n_pad)
    out[:, :n] = wt
    out[:, n:] = 0
    return out


def pack_amx(wt: torch.Tensor, n: int) -> torch.Tensor:
    """int8 weights ``[source, >= n]`` (as :func:`pad_weights` lays them out) packed for the
    kernel's AMX path: sources padded to a multiple of 64, columns to a multiple of 32, then
    ``[columns / 16, sources / 4, 16, 4]``, so that each 16-column x 64-source weight tile is
    1 KB in a row (the tile unit's "VNNI" layout: 4 consecutive sources per column)."""
    s = wt.shape[0]
    kp, np_ = -(-s // 64) * 64, -(-n // 32) * 32
    w = torch.zeros(kp, np_, dtype=torch.int8)
    w[:s, :n] = wt[:, :n]
    return w.view(kp // 4, 4, np_ // 16, 16).permute(2, 0, 3, 1).contiguous()


# the smallest nonzero weight the bf16 tiles take exactly: its parts and every partial sum are
# then multiples of 2^-126, never subnormal (the tiles flush subnormals to zero)
BF16_MIN = 2.0 ** -103


def bf16_parts(w: torch.Tensor) -> list[torch.Tensor] | None:
    """float32 weights as the fewest bf16 parts (1 to 3, each as float32 values) whose sum is
    every weight exactly: hi = the top 8 significant bits, mid = the top 8 of the rest, lo =
    the rest (3 x 8 bits hold float32's 24); None where the tiles cannot take the weights
    exactly (not finite, or a nonzero one below :data:`BF16_MIN`)."""
    w = w.to(torch.float32).contiguous()
    a = w.abs()
    if not bool(torch.isfinite(w).all()) or bool(((a > 0) & (a < BF16_MIN)).any()):
        return None
    parts, rest = [], w
    for _ in range(3):
        hi = (rest.view(torch.int32) & -65536).view(torch.float32)  # truncated to bf16
        parts.append(hi)
        rest = rest - hi  # exact: the bits below hi's
        if not bool(rest.any()):
            return parts
    return None  # (not reached for finite float32)


_bf16: dict[int, tuple] = {}  # id(weights) -> (weak reference, n, packed or None)


def pack_bf16(wt: torch.Tensor, n: int) -> tuple[torch.Tensor, int] | None:
    """Padded float32 weights ``[S, >= n]`` (:func:`pad_weights`) as ``snn_layer_bf16``'s
    tiles read them: their exact bf16 parts (:func:`bf16_parts`), sources padded to a multiple
    of 32, columns to a multiple of 32, laid out ``[columns / 16, parts, sources / 2, 16, 2]``
    (bf16 bits as int16: each 16-column x 32-source tile 1 KB in a row, the tile unit's pairs
    of sources per column). Returns (packed, parts), or None where the parts are not exact.
    Kept with ``wt`` (a projection's kernel weights are built once, so are these)."""
    ref, m, got = _bf16.get(id(wt), (None, None, None))
    if ref is None or ref() is not wt or m != n:
        s = wt.shape[0]
        kp, np_ = -(-s // 32) * 32, -(-n // 32) * 32
        split = bf16_parts(wt[:, :n])
        got = None
        if split is not None:
            w = torch.zeros(len(split), kp, np_, dtype=torch.int16)
            for q, part in enumerate(split):
                w[q, :s, :n] = (part.view(torch.int32) >> 16).to(torch.int16)
            got = (w.view(len(split), kp // 2, 2, np_ // 16, 16).permute(3, 0, 1, 4, 2)
                   .contiguous(), len(split))
        key = id(wt)
        _bf16[key] = (weakref.ref(wt, lambda _, k=key: _bf16.pop(k, None)), n, got)
    return got


def concat_rows(ws: list[torch.Tensor]) -> torch.Tensor:
    """Padded weights of several projections stacked along the source axis (one padded
    matrix again, with its spare tail)."""
    if len(ws) == 1:
        return ws[0]
    s, n_pad = sum(w.shape[0] for w in ws), ws[0].shape[1]
    flat = torch.zeros(s * n_pad + 16, dtype=ws[0].dtype)
    out = flat[:s * n_pad].view(s, n_pad)
    torch.cat(ws, out=out)
    return out


class _Pointers:
    """Contiguous copies of the tensors whose addresses the kernel reads, kept alive."""

    def __init__(self):
        self.keep = []

    def __call__(self, t):
        if t is None:
            return None
        t = t.contiguous()
        self.keep.append(t)
        return t.data_ptr()


def neuron_struct(params, v_init: torch.Tensor, fixed, ptr: _Pointers) -> NeuronC:
    """The kernel's ``neuron_t`` for :class:`~snnkit.neurons.NeuronParams` in the state dtype
    of ``v_init``; ``fixed``: ``(decay_bits, lo, hi)`` or None (float)."""
    n, st = v_init.shape[0], v_init.dtype
    r = params.refractory
    refr = (r if isinstance(r, torch.Tensor) else torch.tensor(int(r))).to(torch.int32).expand(n)
    vals = {k: getattr(params, k).to(st).expand(n) for k in PARAM_PTRS[:7]}
    vals.update(v_init=v_init, refractory=refr,
                c1=None if params.c1 is None else params.c1.to(st).expand(n),
                c2=None if params.c2 is None else params.c2.to(st).expand(n))
    has_refr = isinstance(r, torch.Tensor) or r != 0
    return NeuronC(*(ptr(vals[k]) for k in PARAM_PTRS), params.has_alpha, params.has_bias,
                   params.subtract, has_refr, params.adaptive, *(fixed or (0, 0, 0)),
                   not (params.has_alpha or has_refr or params.adaptive) and _narrow(vals, fixed))


def _narrow(vals: dict, fixed) -> bool:
    """``neuron_t.narrow``: fixed point with every state within int16 from the start (and so
    after every saturated update) and beta within [0, 2^15)."""
    if fixed is None or vals["v_init"].dtype != torch.int32 or vals["beta"].numel() == 0:
        return False
    _, lo, hi = fixed
    if not -(1 << 15) <= lo <= 0 <= hi < (1 << 15):
        return False
    ranges = {k: [int(m) for m in torch.aminmax(vals[k])]
              for k in ("beta", "v_init", "v_reset", "threshold")}
    return 0 <= ranges["beta"][0] and ranges["beta"][1] < (1 << 15) and all(
        lo <= ranges[k][0] and ranges[k][1] <= hi for k in ("v_init", "v_reset", "threshold"))


def _check(rc: int) -> None:
    if rc == -1:
        raise MemoryError("snnkit kernel: out of memory")
    if rc:
        raise RuntimeError(f"snnkit kernel: failed with code {rc}")


def run_layer(lib, spikes_in: torch.Tensor | None, wt: torch.Tensor | None,
              dense: torch.Tensor | None, params, v_init: torch.Tensor, steps: int, batch: int,
              record=(), fixed=None, wv: torch.Tensor | None = None, sums: bool = False,
              wb: tuple[torch.Tensor, int, float] | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run one population over all steps.

    spikes_in : bool ``[steps * batch, S]`` (all spiking sources side by side) or None
    wt : ``[S, Np]`` weights from :func:`pad_weights` (float32, or int8/int16 in fixed point)
    wv : int8 weights: the same packed by :func:`pack_amx`, which lets the kernel sum
        dense-enough inputs on AMX where the CPU has it (same integers); float32 weights: the
        same as :func:`slabs` ``(wt, n, slab_lanes(lib, n))``, which the batch-blocked sums
        then read instead of copying them each run (the same sums); None: event sums from
        ``wt``
    dense : extra synaptic input ``[steps, batch, n]`` in the state dtype, or None
    params : :class:`~snnkit.neurons.NeuronParams` (float32 or int32 tensors)
    fixed : ``(decay_bits, lo, hi)`` for the fixed-point arithmetic, None for float
    sums : return the synaptic input (event sums + ``dense``) ``[steps, batch, n]`` in the
        state dtype instead of running the neurons (for :func:`run_group`)
    wb : float32 weights: ``(*pack_bf16(wt, n), density)``: the sums on the AMX bf16 tiles
        where the CPU has them and at least ``density`` of the sources spike per sample and
        step (float32 sums of the exact weights, in another order); else the event sums

    Returns spikes ``[steps, batch, n]`` (or the sums) and the recorded states named in
    ``record``.
    """
    n = v_init.shape[0]
    st = v_init.dtype
    ptr = _Pointers()
    c = neuron_struct(params, v_init, fixed, ptr)
    out = torch.empty(steps, batch, n, dtype=torch.bool)
    total = torch.empty(steps, batch, n, dtype=st) if sums else None
    rec = {k: torch.empty(steps, batch, n, dtype=st) for k in ("v", "i", "theta")
           if k in record and not sums}
    s = 0 if spikes_in is None else spikes_in.shape[1]
    kind = KINDS[wt.dtype] if s else (0 if st == torch.float32 else 2)
    if (kind == 0) != (st == torch.float32) or st not in (torch.float32, torch.int32):
        raise ValueError(f"kernel: {wt.dtype if s else None} weights with {st} states")
    if s and (spikes_in.dtype != torch.bool or spikes_in.shape[0] != steps * batch
              or wt.shape[0] != s or wt.shape[1] < n):
        raise ValueError(f"kernel: spikes {tuple(spikes_in.shape)} {spikes_in.dtype} do not "
                         f"match weights {tuple(wt.shape)} and [{steps} x {batch}, {n}]")
    lanes = slab_lanes(lib, n)
    if wv is not None and kind == 0 and (wv.dtype != torch.float32 or tuple(wv.shape) != (
            -(-n // lanes), s, lanes)):
        raise ValueError(f"kernel: weight slabs {tuple(wv.shape)} {wv.dtype} do not match "
                         f"{s} sources and {n} targets (see slabs)")
    if wv is not None and kind != 0 and (wv.dtype != torch.int8 or tuple(wv.shape) != (
            -(-n // 32) * 2, -(-s // 64) * 16, 16, 4)):
        raise ValueError(f"kernel: packed weights {tuple(wv.shape)} {wv.dtype} do not match "
                         f"{s} sources and {n} targets (see pack_amx)")
    if dense is not None:
        dense = dense.to(st)
    if wb is not None and s and kind == 0:
        packed, parts, _ = wb
        if packed.dtype != torch.int16 or tuple(packed.shape) != (
                -(-n // 32) * 2, parts, -(-s // 32) * 16, 16, 2):
            raise ValueError(f"kernel: bf16 parts {tuple(packed.shape)} {packed.dtype} do not "
                             f"match {s} sources and {n} targets (see pack_bf16)")
    else:
        wb = None
    _check(lib.snn_layer_bf16(kind, steps, batch, n, s, wt.shape[1] if s else n,
                              ptr(spikes_in) if s else None, ptr(wt) if s else None,
                              ptr(wv) if s and kind in (0, 1) else None, ptr(dense),
                              ctypes.byref(c), out.data_ptr(),
                              *(rec[k].data_ptr() if k in rec else None
                                for k in ("v", "i", "theta")),
                              None if total is None else total.data_ptr(),
                              torch.get_num_threads(), *((ptr(wb[0]), wb[1], float(wb[2]))
                                                         if wb else (None, 0, 0.0))))
    return (total if sums else out), rec


def run_group(lib, pops: list[dict], projs: list[dict], steps: int, batch: int, fixed=None,
              traces=(0, 0), record=()) -> tuple[list[torch.Tensor], list[dict]]:
    """Run a group of populations step by step over all steps (``snn_group``).

    pops : per population, in network order: ``params`` (NeuronParams), ``v_init`` (its dtype,
        float32, int32 or int64, is the group's state dtype), ``ext`` (input from outside the
        group ``[steps, batch, n]`` in that dtype, or None)
    projs : per projection summed in the group: ``target`` (index into ``pops``), ``src``
        (bool spikes ``[steps, batch, S]``; a group member's is its entry of the returned
        list, so pass the population's index as ``src_pop`` instead), ``delay``, ``w`` (padded
        weights ``[S, Np]``; plastic: ``[batch, S, Np]`` float32, int8 or int16, as
        Proj.plastic_weights, updated in place), ``stdp``
        (:class:`~snnkit.plasticity.STDPParams` or None), ``mask`` (uint8 ``[S, Np]``
        plasticity bits), ``record_weights``
    fixed : ``(decay_bits, lo, hi)`` or None (float)
    traces : fixed point: ``(trace_one, trace_hi)`` of the STDP traces

    Returns each population's spikes ``[steps, batch, n]`` and recorded states, and fills
    each plastic projection's ``rec_w`` (``[steps, batch, N, S]``) when asked.
    """
    st = pops[0]["v_init"].dtype
    state = {torch.float32: 0, torch.int32: 1, torch.int64: 2}[st]
    ptr = _Pointers()
    out = [torch.zeros(steps, batch, p["v_init"].shape[0], dtype=torch.bool) for p in pops]
    rec = [{k: torch.empty(steps, batch, p["v_init"].shape[0], dtype=st)
            for k in ("v", "i", "theta") if k in record} for p in pops]
    cp = (GroupPopC * len(pops))()
    for k, p in enumerate(pops):
        if p["v_init"].dtype != st:
            raise ValueError("kernel: one state dtype per group")
        cp[k] = GroupPopC(p["v_init"].shape[0], neuron_struct(p["params"], p["v_init"], fixed,
                                                               ptr),
                          out[k].data_ptr(), ptr(None if p["ext"] is None else p["ext"].to(st)),
                          *(rec[k][v].data_ptr() if v in rec[k] else None
                            for v in ("v", "i", "theta")))
    cj = (GroupProjC * max(len(projs), 1))()
    for j, q in enumerate(projs):
        src = out[q["src_pop"]] if q.get("src_pop") is not None else q["src"]
        n = pops[q["target"]]["v_init"].shape[0]
        w, sp = q["w"], q.get("stdp")
        if src.dtype != torch.bool or tuple(src.shape[:2]) != (steps, batch) or \
                w.shape[-2] != src.shape[2] or w.shape[-1] < n:
            raise ValueError(f"kernel: projection {j}: spikes {tuple(src.shape)} do not match "
                             f"weights {tuple(w.shape)}")
        kind = KINDS[w.dtype]
        if (kind == 0) != (state == 0) or (sp is not None and w.shape[0] != batch):
            raise ValueError(f"kernel: projection {j}: {w.dtype} weights {tuple(w.shape)} "
                             f"with {st} states")
        vals = dict.fromkeys(STDP_VALUES, 0)
        ints = dict.fromkeys(STDP_INTS, 0)
        if sp is not None:
            vals = {k: getattr(sp, k) for k in STDP_VALUES}
            ints = {"plastic": 1, "nearest": sp.nearest, "soft": sp.soft,
                    "shift_hard": sp.shift_hard, "shift_soft": sp.shift_soft}
        rw = None
        if sp is not None and q.get("record_weights"):
            rw = q["rec_w"] = torch.empty(steps, batch, n, src.shape[2], dtype=w.dtype)
        if sp is not None and not w.is_contiguous():
            raise ValueError(f"kernel: projection {j}: plastic weights must be contiguous")
        cj[j] = GroupProjC(q["target"], ptr(src), src.shape[2], w.shape[-1], q["delay"],
                           kind, ptr(w), *ints.values(),
                           *(float(vals[k]) if state == 0 else 0.0 for k in STDP_VALUES),
                           *(0 if state == 0 else int(vals[k]) for k in STDP_VALUES),
                           ptr(q.get("mask")), None if rw is None else rw.data_ptr())
    _check(lib.snn_group(steps, batch, state, len(pops), cp, len(projs), cj,
                         fixed[0] if fixed else 0, *traces, torch.get_num_threads()))
    return out, rec


_slabs: dict[tuple, tuple] = {}  # (id(weights), lanes) -> (weak reference, slabs)


def slab_lanes(lib, n: int) -> int:
    """Columns a row of the float layer's slabs for ``n`` targets (``wv`` of
    :func:`run_layer`): ``snn_slab_width()`` vectors, fewer where ``n`` has fewer."""
    return lib.lanes * min(lib.slab_width, -(-n // lib.lanes))


def slabs(wt: torch.Tensor, n: int, lanes: int) -> torch.Tensor:
    """Padded float weights ``[S, Np]`` (:func:`pad_weights`) as ``snn_rec_f32`` and the
    batch-blocked layer read them: ``[ceil(n / lanes), S, lanes]``, ``lanes`` columns (one or
    a few vectors, zeros past ``n``) for every source contiguous. Kept with ``wt`` (a
    projection's kernel weights are built once, so are these), one layout per ``lanes``."""
    key = (id(wt), lanes)
    ref, got = _slabs.get(key, (None, None))
    if ref is None or ref() is not wt or got.shape[1:] != (wt.shape[0], lanes) \
            or got.shape[0] * lanes < n:
        nv = -(-n // lanes)
        cols = min(nv * lanes, wt.shape[1])
        flat = torch.zeros(wt.shape[0], nv * lanes)
        flat[:, :cols] = wt[:, :cols]
        got = flat.reshape(wt.shape[0], nv, lanes).transpose(0, 1).contiguous()
        _slabs[key] = (weakref.ref(wt, lambda _, k=key: _slabs.pop(k, None)), got)
    return got



def _check_rec(name, state, weight, v_init, rec, spikes_in, wt, steps, batch) -> int:
    """The recurrent kernels' arguments checked (their C code trusts them); returns the
    number of outside spike inputs (0: none)."""
    n = v_init.shape[0]
    if v_init.dtype != state or any(w.dtype != weight or w.shape[0] != n or w.shape[1] < n
                                    for w, _ in rec):
        raise ValueError(f"kernel: {name} takes {str(state)[6:]} states and [n, >= n] "
                         f"{str(weight)[6:]} weights")
    s = 0 if spikes_in is None else spikes_in.shape[1]
    if s and (spikes_in.dtype != torch.bool or spikes_in.shape[0] != steps * batch
              or wt.dtype != weight or wt.shape[0] != s or wt.shape[1] < n):
        raise ValueError(f"kernel: spikes {tuple(spikes_in.shape)} {spikes_in.dtype} do not "
                         f"match weights {tuple(wt.shape)} and [{steps} x {batch}, {n}]")
    return s

def run_rec(lib, params, v_init: torch.Tensor, rec: list[tuple[torch.Tensor, int]],
            spikes_in: torch.Tensor | None, wt: torch.Tensor | None,
            dense: torch.Tensor | None, steps: int, batch: int, record=()
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
    """Run one float population whose step-by-step inputs are its own spikes only
    (``snn_rec_f32``: a group of samples at a time, the same spikes as :func:`run_group`).

    rec : per self projection, its padded float32 weights ``[n, Np]`` and its delay (>= 1)
    spikes_in, wt : spike inputs from outside, as :func:`run_layer` takes them, or None
    dense : other input from outside ``[steps, batch, n]`` (float32) or None

    Returns spikes ``[steps, batch, n]`` and the recorded states, or None where the kernel
    does not run this case (too many projections or neurons: use :func:`run_group`).
    """
    n = v_init.shape[0]
    s = _check_rec("run_rec", torch.float32, torch.float32, v_init, rec, spikes_in, wt,
                   steps, batch)
    ptr = _Pointers()
    c = neuron_struct(params, v_init, None, ptr)
    out = torch.empty(steps, batch, n, dtype=torch.bool)  # the update writes every spike
    states = {k: torch.empty(steps, batch, n, dtype=torch.float32) for k in ("v", "i", "theta")
              if k in record}
    # the recurrent sums two vectors of columns an event, the input's one (in L1 longer)
    lanes = lib.rec_width * lib.lanes  # vectors of columns a row, as the kernel sums them
    ws = (ctypes.c_void_p * len(rec))(*(ptr(slabs(w, n, lanes)) for w, _ in rec))
    delays = (ctypes.c_int64 * len(rec))(*(int(d) for _, d in rec))
    rc = lib.snn_rec_f32(steps, batch, n, ctypes.byref(c), out.data_ptr(),
                         *(states[k].data_ptr() if k in states else None
                           for k in ("v", "i", "theta")),
                         len(rec), ws, delays, ptr(spikes_in) if s else None, s,
                         ptr(slabs(wt, n, lib.lanes)) if s else None,
                         ptr(None if dense is None else dense.to(torch.float32)),
                         torch.get_num_threads())
    if rc == -2:
        return None
    _check(rc)
    return out, states


_rec_packed: dict[tuple, tuple] = {}  # ids of the weights -> (weak references, packed)


def pack_rec_amx(w_in: torch.Tensor | None, rec: list[torch.Tensor], n: int) -> torch.Tensor:
    """int8 padded weights (:func:`pad_weights`) of a population's spike inputs ``w_in``
    ``[S_in, >= n]`` (or None) and of its self projections ``rec`` (each ``[n, >= n]``),
    stacked along the sources, each part padded to a multiple of 64 rows, and packed as
    :func:`pack_amx` does: what ``snn_rec_amx`` multiplies a step's spikes by. Kept with the
    weights (a projection's kernel weights are built once, so is this)."""
    parts = ([] if w_in is None else [w_in]) + list(rec)
    key = tuple(id(w) for w in parts) + (n,)
    refs, got = _rec_packed.get(key, (None, None))
    if refs is None or any(r() is not w for r, w in zip(refs, parts)):
        rows = [-(-w.shape[0] // 64) * 64 for w in parts]
        stacked = torch.zeros(sum(rows), n, dtype=torch.int8)
        at = 0
        for w, r in zip(parts, rows):
            stacked[at:at + w.shape[0]] = w[:, :n]
            at += r
        got = pack_amx(stacked, n)
        _rec_packed[key] = (tuple(weakref.ref(w, lambda _, k=key: _rec_packed.pop(k, None))
                                  for w in parts), got)
    return got


def run_rec_amx(lib, params, v_init: torch.Tensor, rec: list[tuple[torch.Tensor, int]],
                spikes_in: torch.Tensor | None, wt: torch.Tensor | None,
                dense: torch.Tensor | None, steps: int, batch: int, fixed, record=()
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
    """Run one fixed-point population (int32 states, 8-bit weights) whose step-by-step inputs
    are its own spikes only on the AMX tiles (``snn_rec_amx``: each step one exact integer
    matrix product for a group of samples, the same spikes as :func:`run_group`).

    rec : per self projection, its padded int8 weights ``[n, Np]`` and its delay (>= 1)
    spikes_in, wt : spike inputs from outside, as :func:`run_layer` takes them (int8), or None
    dense : other input from outside ``[steps, batch, n]`` (int32) or None
    fixed : ``(decay_bits, lo, hi)``

    Returns spikes ``[steps, batch, n]`` and the recorded states, or None where the kernel
    does not run this case (no AMX, too many projections: use :func:`run_group`).
    """
    n = v_init.shape[0]
    s = _check_rec("run_rec_amx", torch.int32, torch.int8, v_init, rec, spikes_in, wt,
                   steps, batch)
    ptr = _Pointers()
    c = neuron_struct(params, v_init, fixed, ptr)
    out = torch.empty(steps, batch, n, dtype=torch.bool)
    states = {k: torch.empty(steps, batch, n, dtype=torch.int32) for k in ("v", "i", "theta")
              if k in record}
    wv = pack_rec_amx(wt if s else None, [w for w, _ in rec], n)
    delays = (ctypes.c_int64 * len(rec))(*(int(d) for _, d in rec))
    rc = lib.snn_rec_amx(steps, batch, n, ctypes.byref(c), out.data_ptr(),
                         *(states[k].data_ptr() if k in states else None
                           for k in ("v", "i", "theta")),
                         len(rec), delays, ptr(spikes_in) if s else None, s, ptr(wv),
                         ptr(None if dense is None else dense.to(torch.int32)),
                         torch.get_num_threads())
    if rc == -2:
        return None
    _check(rc)
    return out, states
