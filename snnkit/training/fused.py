"""A feed-forward network over all steps as one autograd node (the CPU fast path).

Forward: one population after the other, each in one pass of the C kernel over all steps (the
synaptic input summed from the spiking sources' event lists in the simulator's order, so float
spikes equal the simulator's, then the neuron update); a population that feeds others leaves
its spikes as event lists. Backward: chunks of steps, the last first; in each, the populations
in reverse order: the time-reversed recurrence, the weight gradients as one event-driven pass,
the gradient of the source population's spikes as one matrix product. The same numbers as
running :func:`snnkit.neurons.neuron_step` on :mod:`snnkit.training.arith` step by step under
autograd (tests/test_training.py checks both, spikes bit for bit).

Memory. ``memory="full"`` keeps, per neuron and step, the surrogate's derivative (the spike
in its sign; fixed point: 8 bytes and a flag byte), and every spiking population's event
lists; the backward pass works on about :data:`STRIDE` steps at a time. ``memory="lean"``
(``chunk=K``) keeps instead each population's state every K steps, and recomputes a chunk's
forward pass of one population just before that population's backward pass on it (from its
checkpoint and the kept event lists): besides the outputs and the event lists, memory holds
the checkpoints and the buffers of K steps of one population, whatever the depth of the
network and T. Large buffers come from a small pool: a fresh allocation of this size is mapped
anew and costs a page fault per 4 KB on first touch. The pool also takes back the memory of the
float32 spikes and weight gradients it handed out once nothing uses them any more, for any
request it holds: the backward pass carves its gradient buffers and the weight gradients from
the memory of hidden spikes the caller dropped after the forward pass (kept through the
backward pass, that memory then does not raise its peak). It asks for huge pages where it
must map new memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
import weakref
from dataclasses import dataclass, field

import torch

from .. import kernels
from . import kernel as K

PARAMS = ("alpha", "beta", "threshold", "v_reset", "bias", "adapt_plus", "adapt_decay", "v_init")
# per population: PARAMS, reset="delayed"'s inputs (neurons.delayed_reset_inputs; else None),
# then the dense input
TENSORS = PARAMS + ("c1", "c2")
PER = len(TENSORS) + 1
GRADS = ("alpha", "beta", "threshold", "bias", "c1", "c2")  # those the kernel differentiates
RECORD = ("v", "i", "theta")
STRIDE = 8  # steps per backward chunk without the lean mode: small gradient buffers
LENT = 32  # outputs whose memory the pool keeps to reuse once released


HUGE = 2 << 20  # transparent huge page size (x86-64 Linux)
_libc = None


def fresh(shape, dtype, zero: bool = False) -> torch.Tensor:
    """``torch.empty`` (or zeros) whose big interior asks Linux for huge pages before it is
    first written: a buffer of megabytes that malloc maps afresh (as it does after other work
    shrank the heap) then costs a page fault per 2 MB instead of per 4 KB, a millisecond per
    call on a training step's outputs and gradients."""
    t = torch.empty(shape, dtype=dtype)
    global _libc
    if t.nbytes >= HUGE and sys.platform.startswith("linux"):
        if _libc is None:
            try:
                _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                                    use_errno=True)
                _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            except OSError:
                _libc = False
        if _libc:
            a = -(-t.data_ptr() // HUGE) * HUGE
            b = (t.data_ptr() + t.nbytes) // HUGE * HUGE
            if b > a:
                _libc.madvise(a, b - a, 14)  # MADV_HUGEPAGE; a refusal changes nothing
    return t.zero_() if zero else t


class _Pool:
    """Free scratch tensors by (shape, dtype), up to ``limit`` bytes in all; and the memory of
    the gradients handed out, taken back once nothing holds it any more."""

    def __init__(self, limit: int = 256 << 20):
        self.free: dict[tuple, list[torch.Tensor]] = {}
        self.bytes, self.limit = 0, limit
        self.lent: list = []  # storages of the tensors handed out, oldest first
        self.use_count = getattr(torch._C, "_storage_Use_Count", None)

    def take(self, shape, dtype, zero: bool = False) -> torch.Tensor:
        got = self.free.get((tuple(shape), dtype))
        if got:
            t = got.pop()
            self.bytes -= t.nbytes
            return t.zero_() if zero else t
        return fresh(shape, dtype, zero)

    def give(self, *tensors) -> None:
        for t in tensors:
            if t is not None and self.bytes + t.nbytes <= self.limit:
                self.free.setdefault((tuple(t.shape), t.dtype), []).append(t)
                self.bytes += t.nbytes

    def lend(self, shape, dtype) -> torch.Tensor:
        """An uninitialised tensor to hand out: in the memory of an earlier one that nothing
        holds any more (no tensor, view or graph uses its storage: the pool's is its only
        reference; the smallest that holds it), else fresh. Training steps then reuse their
        outputs' pages instead of having megabytes mapped and zeroed by the system at every
        step."""
        shape = tuple(shape)
        n = dtype.itemsize * int(torch.Size(shape).numel())
        st = None
        if self.use_count is not None:  # the smallest free one that holds it
            free = [(old.nbytes(), k) for k, old in enumerate(self.lent)
                    if old.nbytes() >= n and self.use_count(old._cdata) == 1]
            if free:
                st = self.lent.pop(min(free)[1])
        if st is None:
            st = fresh(shape, dtype).untyped_storage()
        if self.use_count is not None:  # else nothing could tell when it is free: keep none
            self.lent.append(st)  # the most recent LENT, up to limit bytes (in use or free)
            while len(self.lent) > LENT or sum(x.nbytes() for x in self.lent) > self.limit:
                self.lent.pop(0)
        return torch.empty(0, dtype=dtype).set_(st, 0, shape)

    def carve(self, specs) -> list[torch.Tensor] | None:
        """Uninitialised tensors of ``specs = [(shape, dtype), ...]`` in one lent storage that
        nothing holds any more (the smallest that holds them all, each 64-byte aligned), or
        None where none does."""
        sizes = [-(-dt.itemsize * int(torch.Size(sh).numel()) // 64) * 64 for sh, dt in specs]
        if self.use_count is None or not specs:
            return None
        free = [(old.nbytes(), k) for k, old in enumerate(self.lent)
                if old.nbytes() >= sum(sizes) and self.use_count(old._cdata) == 1]
        if not free:
            return None
        st = self.lent.pop(min(free)[1])
        self.lent.append(st)  # the most recent
        out, off = [], 0
        for (sh, dt), n in zip(specs, sizes):
            out.append(torch.empty(0, dtype=dt).set_(st, off // dt.itemsize, tuple(sh)))
            off += n
        return out

    def clear(self) -> None:
        self.free.clear()
        self.lent.clear()
        self.bytes = 0


POOL = _Pool()


@dataclass
class Pop:
    """One neuron population as the node sees it."""

    size: int
    flags: dict  # TNeuron flags: has_alpha ... slope
    projs: list = field(default_factory=list)  # incoming spiking: (source, weight slot, delay)
    dense: bool = False  # a dense input (current sources), computed outside the node
    lag: int = -1  # the longest delay of the projections it feeds (-1: it feeds none)
    refractory: torch.Tensor | None = None  # int32 [N] periods per neuron (None: the flag's)
    grad_c: bool = False  # set by the forward pass: c1 / c2 (reset="delayed") need gradients


@dataclass
class Spec:
    """What one call needs besides the tensors."""

    lib: object
    steps: int
    batch: int
    fixed: bool
    inputs: list  # names of the spiking input populations, in the order of their tensors
    pops: dict  # name -> Pop, in the network's (topological) order
    record: tuple = ()  # of "v", "i", "theta"
    chunk: int | None = None  # memory-lean mode: steps per recomputed chunk
    weight_dtype: torch.dtype = torch.float32  # kernel layout: float32, or int8 / int16
    need_grad: bool = True  # set by run(): whether any input needs a gradient

    @property
    def dtype(self):
        return torch.float64 if self.fixed else torch.float32

    def needs_flags(self, pop: Pop) -> bool:
        """Whether backward needs a flag byte per neuron and step: fixed point saturates and
        refractoriness gates, the gradients of the delayed reset's inputs need the spikes of
        the steps before; otherwise the spike rides in the sign of the saved derivative."""
        return self.fixed or bool(pop.flags["refractory"]) or pop.grad_c


def run(spec: Spec, inputs: list, params: dict, dense: dict, weights: list):
    """Spikes ``{population: [T, B, N]}`` and recorded states ``{population: {var: ...}}``.

    inputs : spikes ``[T, B, S]`` of each of ``spec.inputs`` (data: no gradient)
    params : population -> the :data:`TENSORS`, each ``[N]`` in the arithmetic's dtype (c1 /
        c2: None without the delayed reset)
    dense : population -> extra synaptic input ``[T, B, N]`` or None
    weights : per weight slot, ``[N, S]`` (masked, quantised)
    """
    tensors = list(inputs)
    for name in spec.pops:
        tensors += [params[name].get(k) for k in TENSORS] + [dense.get(name)]
    tensors += list(weights)
    spec.need_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)
    out = _Network.apply(spec, *tensors)
    names = list(spec.pops)
    spikes = dict(zip(names, out[:len(names)]))
    rec = iter(out[len(names):])
    states = {name: {k: next(rec) for k in spec.record} for name in names} if spec.record else {}
    return spikes, states


def _kernel_weights(w: torch.Tensor, dtype) -> tuple[torch.Tensor, object]:
    """``([S, ld], pooled)``: the weights as the kernel reads them. Float32: the parameter's
    own layout, no copy when it is stored source-major as :class:`~snnkit.training.SNN`
    stores it (the kernel copies each block of columns into aligned rows itself, where that
    pays: ``stage`` of :func:`~snnkit.training.kernel.forward`); ``pooled`` None. Integers:
    converted, rows padded as :func:`snnkit.kernels.pad_weights` lays them out, in a buffer
    of the pool (``pooled``: the buffer to give back when done; the buffer itself, not the
    view: the pool files buffers by shape)."""
    wt = w.detach().T
    if dtype == torch.float32:
        return wt.contiguous(), None
    s, n = wt.shape
    ld = _row_length(n)
    flat = POOL.take((s * ld + 16,), dtype)
    flat[s * ld:] = 0
    out = flat[:s * ld].view(s, ld)
    out[:, :n] = wt
    out[:, n:] = 0
    return out, flat


@functools.lru_cache(maxsize=64)
def _row_length(n: int) -> int:
    """The padded row length of ``n`` columns (:func:`snnkit.kernels.pad_weights`)."""
    return kernels.pad_weights(torch.zeros(0, n)).shape[1]


def _state(pop: Pop, v0: torch.Tensor, batch: int, dt) -> tuple:
    n = pop.size
    return (v0.detach().expand(batch, n).clone(), torch.zeros(batch, n, dtype=dt),
            torch.zeros(batch, n, dtype=dt), torch.zeros(batch, n, dtype=torch.int32))


def _used(pop: Pop) -> tuple:
    """Which state variables a population changes (the rest stays 0; the refractory counter
    also holds the delayed reset's last spikes)."""
    f = pop.flags
    return (True, bool(f["has_alpha"]), bool(f["adaptive"]),
            bool(f["refractory"]) or bool(f["delayed"]))


class _Network(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: Spec, *tensors):
        ctx.set_materialize_grads(False)
        lib, dt, T, B = spec.lib, spec.dtype, spec.steps, spec.batch
        n_in, names = len(spec.inputs), list(spec.pops)
        per = tensors[n_in:n_in + PER * len(names)]
        weights = tensors[n_in + PER * len(names):]
        need = spec.need_grad
        lean = need and spec.chunk is not None and spec.chunk < T
        # event lists of all steps; the lean mode keeps the spikes as bits instead, and
        # lists only of the steps of one chunk at a time (built from the bits)
        lists, bits_of = {}, {}
        for name, x in zip(spec.inputs, tensors[:n_in]):
            x = x.detach().reshape(T * B, -1)
            if lean:
                bits_of[name] = K.pack_bits(x), x.shape[1]
            else:
                lists[name] = K.event_lists(lib, x if x.dtype in K.LIST_KINDS
                                            else x.to(torch.uint8))
        kw, pooled = [], []
        for w in weights:
            t, p = _kernel_weights(w, spec.weight_dtype)
            kw.append(t)
            if p is not None:
                pooled.append(p)
        keep, ctx.neurons, ctx.saved, outs, recs = [], [], [], [], []
        own_lists = []  # the lists of populations with self projections (pooled)
        for k, (name, pop) in enumerate(spec.pops.items()):
            p = dict(zip(TENSORS, per[PER * k:PER * k + PER - 1]))
            d = per[PER * k + PER - 1]
            d = None if d is None else d.detach().contiguous()
            neuron = K.neuron_struct(p, pop.flags, keep, pop.refractory)
            own = None  # self projections: its lists, written step by step, and scratch
            if any(src == name for src, _, _ in pop.projs):
                own = (POOL.take((T * B + 1,), torch.int64),  # lists kept while the
                       POOL.take((T * B * pop.size + 16,), torch.int32),  # node lives
                       POOL.take(((spec.chunk if lean else T) * B * pop.size,),
                                 _xin_dtype(spec)))
                own_lists += own[:2]
            projs = [] if lean else [
                K.Projection(kw[s], *(own[:2] if src == name else lists[src]), delay,
                             own=src == name) for src, s, delay in pop.projs]
            state = _state(pop, p["v_init"], B, dt)
            shape = (T, B, pop.size)
            # float32 spikes lent: once dropped, the weight gradient (float32, about half
            # their size) takes their memory; kept otherwise, they would raise the peak
            spikes = fresh(shape, dt) if lean or spec.fixed else POOL.lend(shape, dt)
            rec = [fresh(shape, dt) if r in spec.record else None for r in RECORD]
            base = n_in + PER * k  # index of the population's first tensor
            want_beta = need and ctx.needs_input_grad[1 + base + PARAMS.index("beta")]
            want_alpha = need and ctx.needs_input_grad[1 + base] and bool(pop.flags["has_alpha"])
            pop.grad_c = need and any(ctx.needs_input_grad[1 + base + TENSORS.index(c)]
                                      for c in ("c1", "c2"))
            saved = {"want": (want_alpha, want_beta)}
            bits = None if pop.lag < 0 else torch.empty((T * B, K.bits_bytes(pop.size)),
                                                        dtype=torch.uint8) if lean \
                else POOL.take((T * B, K.bits_bytes(pop.size)), torch.uint8)
            if not lean:
                h = POOL.take(shape, dt) if need else None
                fl = POOL.take(shape, torch.uint8) if need and spec.needs_flags(pop) else None
                vprev = POOL.take(shape, dt) if want_beta else None
                iprev = POOL.take(shape, dt) if want_alpha else None
                K.forward(lib, spec.fixed, 0, projs, d, neuron, state, spikes, h, fl, vprev,
                          iprev, rec, bits, own, stage=True)
                saved.update(h=h, flags=fl, vprev=vprev, iprev=iprev)
                if need:  # back to the pool once the graph (and so this node) is freed
                    weakref.finalize(ctx, POOL.give, h, fl, vprev, iprev)
            else:  # keep the state at every chunk's start; recompute the rest in backward
                saved.update(dense=d, checkpoints=[], own=None if own is None else own[:2])
                for t0 in range(0, T, spec.chunk):
                    t1 = min(T, t0 + spec.chunk)
                    saved["checkpoints"].append(tuple(s.clone() if u else None
                                                      for s, u in zip(state, _used(pop))))
                    projs = _lean_projections(pop, name, kw, own, {
                        (src, delay): _bits_lists(lib, B, bits_of[src], delay, t0, t1)
                        for src, _, delay in pop.projs if src != name})
                    K.forward(lib, spec.fixed, t0, projs, None if d is None else d[t0:t1],
                              neuron, state, spikes[t0:t1],
                              rec=[None if r is None else r[t0:t1] for r in rec],
                              bits=None if bits is None else bits[t0 * B:t1 * B],
                              own=_own_part(own, (t1 - t0) * B * pop.size))
            del projs
            if own:
                POOL.give(own[2])
            if bits is not None:  # it feeds other populations: its spikes as event lists
                if lean:
                    bits_of[name] = bits, pop.size
                else:
                    lists[name] = own[:2] if own else K.event_lists(lib, bits, pop.size)
                    POOL.give(bits)
            ctx.neurons.append(neuron)
            ctx.saved.append(saved)
            outs.append(spikes)
            recs += [r for r in rec if r is not None]
        if need:
            ctx.spec, ctx.keep, ctx.lists, ctx.lean = spec, keep, lists, lean
            ctx.bits, ctx.kw = bits_of, kw if lean else None  # the lean mode recomputes
            ctx.save_for_backward(*weights)
        else:
            ctx.saved = None
        if need and lean:
            weakref.finalize(ctx, POOL.give, *pooled)
        else:
            POOL.give(*pooled)
        if need:
            weakref.finalize(ctx, POOL.give, *own_lists)
        else:
            POOL.give(*own_lists)
        return (*outs, *recs)

    @staticmethod
    def backward(ctx, *grads):
        spec = ctx.spec
        lib, dt, T, B = spec.lib, spec.dtype, spec.steps, spec.batch
        pops = list(spec.pops.values())
        n_in, P = len(spec.inputs), len(pops)
        weights = ctx.saved_tensors
        need = ctx.needs_input_grad[1:]
        g_out = [None if g is None else g.contiguous().to(dt) for g in grads[:P]]
        g_rec = {}  # (population index, var) -> gradient
        it = iter(grads[P:])
        for k in range(P):
            for r in spec.record:
                g = next(it)
                g_rec[k, r] = None if g is None else g.contiguous().to(dt)
        c = spec.chunk if ctx.lean else _stride(T)  # chunks of steps, the last first
        index = {name: k for k, name in enumerate(spec.pops)}
        # the gradient of the spikes of each population that feeds others, rows padded: steps
        # [t0 - lag, t1) of the chunk (a delayed target's gradient reaches earlier steps);
        # the backward pass turns the chunk's rows into the input's gradient, in place
        w0 = n_in + PER * P
        gs_shapes = [(c + pop.lag, B, _row_length(pop.size)) if pop.lag >= 0 else None
                     for pop in pops]
        dw_shapes = [(w.shape[1], w.shape[0]) if need[w0 + s] else None
                     for s, w in enumerate(weights)]
        # in one lent buffer that nothing holds (the spikes the caller dropped) if one holds
        # them all: the pass then maps no new memory; else from the pool, each
        carved = POOL.carve([(sh, dt) for sh in gs_shapes if sh is not None]
                            + [(sh, torch.float32) for sh in dw_shapes if sh is not None])
        if carved is not None:
            it_c = iter(carved)
            gs_buf = [None if sh is None else next(it_c) for sh in gs_shapes]
            dw = [None if sh is None else next(it_c) for sh in dw_shapes]
            for buf, pop in zip(gs_buf, pops):
                if buf is not None and pop.lag > 0:
                    buf.zero_()
        else:
            gs_buf = [None if sh is None else POOL.take(sh, dt, zero=pop.lag > 0)
                      for sh, pop in zip(gs_shapes, pops)]
            dw = [None if sh is None else POOL.lend(sh, torch.float32) for sh in dw_shapes]
        carry = [tuple(torch.zeros(B, pop.size, dtype=dt) for _ in range(3)) for pop in pops]
        gp, g_dense = [], []
        for k, pop in enumerate(pops):
            base = n_in + PER * k
            g = {n: torch.zeros(pop.size, dtype=torch.float64)
                 if need[base + TENSORS.index(n)] else None for n in GRADS}
            want_alpha, want_beta = ctx.saved[k]["want"]
            g["alpha"] = g["alpha"] if want_alpha else None
            g["beta"] = g["beta"] if want_beta else None
            gp.append(g)
            g_dense.append(POOL.lend((T, B, pop.size), dt) if need[base + PER - 1] else None)
        started = [False] * len(dw)  # the first chunk writes dw, the others add to it
        own_w = {}  # weight slot -> self projection's weights, contiguous
        for kc in reversed(range(-(-T // c))):  # chunks of c steps, the last first
            t0, t1 = kc * c, min(T, kc * c + c)
            n = t1 - t0
            written = [pop.lag > 0 for pop in pops]  # has the chunk's gs_buf rows a value?
            for k in reversed(range(P)):
                pop, N = pops[k], pops[k].size
                taken = []
                if gs_buf[k] is not None:
                    gs = gs_buf[k][pop.lag:pop.lag + n]
                    if not written[k]:
                        gs.zero_()
                    if g_out[k] is not None:
                        gs[:, :, :N] += g_out[k][t0:t1]
                    gx = gs.view(n * B, -1)  # in place
                else:
                    gs = g_out[k][t0:t1] if g_out[k] is not None else POOL.take(
                        (n, B, N), dt, zero=True)
                    gx = POOL.take((n * B, _row_length(N)), dt)  # rows padded: faster sums
                    taken += [gx, None if g_out[k] is not None else gs]
                gr = [None if g_rec.get((k, r)) is None else g_rec[k, r][t0:t1] for r in RECORD]
                lists = {(src, delay): _chunk_lists(ctx, src, delay, t0, t1)
                         for src, _, delay in pop.projs}
                hk, fk, vp, ip, scratch = _chunk_state(ctx, spec, k, kc, t0, t1, lists)
                gpk = tuple(gp[k][n_] for n_ in GRADS)
                own = []  # self projections: (weights target-major, products 1.2x faster;
                for src, s, delay in pop.projs:  # once per pass) and delay
                    if index.get(src) == k:
                        if s not in own_w:
                            own_w[s] = weights[s].detach().contiguous()
                        own.append((own_w[s], delay))
                if not own:
                    K.backward(lib, spec.fixed, ctx.neurons[k], N, gs, gr, hk, fk, vp, ip,
                               carry[k], gx, gpk)
                for u in reversed(range(n) if own else ()):  # step by step: each step's
                    # input gradient reaches the population's spikes of `delay` steps before
                    K.backward(lib, spec.fixed, ctx.neurons[k], N, gs[u:u + 1],
                               [None if g is None else g[u:u + 1] for g in gr],
                               *(None if a is None else a[u:u + 1] for a in (hk, fk, vp, ip)),
                               carry[k], gx[u * B:u * B + B], gpk)
                    for w, delay in own:  # rows of steps before t0: the next chunk's
                        gs_buf[k][pop.lag + u - delay, :, :N].addmm_(gx[u * B:u * B + B, :N], w)
                POOL.give(*scratch)
                g32 = gx if dt == torch.float32 else None
                for src, s, delay in pop.projs:
                    if dw[s] is not None:
                        if g32 is None:
                            g32 = gx.to(torch.float32)
                        off, idx, q0 = lists[src, delay]
                        K.event_wgrad(lib, off, idx, dw[s].shape[0], t0 * B - q0, t1 * B - q0,
                                      delay * B, g32, dw[s], accumulate=started[s])
                        started[s] = True
                    j = index.get(src)
                    if j is not None and j != k:  # the source population's spikes' gradient
                        lag, S = pops[j].lag, pops[j].size
                        rows = gs_buf[j][lag - delay:lag - delay + n, :, :S].view(n * B, S)
                        w = weights[s].detach()
                        if written[j]:
                            rows.addmm_(gx[:, :N], w)
                        else:
                            torch.mm(gx[:, :N], w, out=rows)
                            written[j] = True
                if g_dense[k] is not None:
                    g_dense[k][t0:t1] = gx[:, :N].view(n, B, N)
                POOL.give(*taken)
            for buf, pop in zip(gs_buf, pops):  # move the earlier steps' part to the next chunk
                if buf is not None and kc and pop.lag:
                    lag = pop.lag
                    buf[c:c + lag] = buf[:lag].clone() if lag > c else buf[:lag]
                    buf[:c].zero_()
        if carved is None:
            POOL.give(*gs_buf)
        del gs_buf, carved  # (the carved buffer's storage is free again once dw is)
        out = [None] * n_in
        for k in range(P):
            g = [None] * len(TENSORS)
            for n_ in GRADS:
                if gp[k][n_] is not None:
                    g[TENSORS.index(n_)] = gp[k][n_].to(dt)
            if need[n_in + PER * k + PARAMS.index("v_init")]:
                g[PARAMS.index("v_init")] = carry[k][0].sum(0)
            out += g + [g_dense[k]]
        out += [None if d is None else d.T.to(w.dtype) for d, w in zip(dw, weights)]
        return (None, *out)


def _stride(T: int) -> int:
    """Steps per backward chunk without the lean mode: about :data:`STRIDE`, the chunks of
    even length (25 steps: 9, 9, 7, not 8, 8, 8, 1): each chunk's weight-gradient pass reads
    and writes all the weight gradients once, whatever its length."""
    return -(-T // max(1, round(T / STRIDE)))


def _xin_dtype(spec: Spec) -> torch.dtype:
    """The other inputs' sums of a population with self projections (kernel.forward)."""
    return torch.int32 if spec.fixed else torch.float32


def _own_part(own: tuple | None, n: int) -> tuple | None:
    """``own`` for kernel.forward on ``n`` neuron-steps: the scratch cut to them."""
    return None if own is None else (own[0], own[1], own[2][:n])


def _lean_projections(pop: Pop, name: str, kw: list, own, lists: dict):
    """The projections into ``pop`` for one chunk of the lean mode: its self projections on
    its own lists of all steps (``own``), the others on the chunk's ``lists[src, delay] =
    (offsets, idx, row0)``."""
    out = []
    for src, s, delay in pop.projs:
        if src == name:
            out.append(K.Projection(kw[s], own[0], own[1], delay, own=True))
        else:
            off, idx, q0 = lists[src, delay]
            out.append(K.Projection(kw[s], off, idx, delay, q0))
    return out


def _chunk_lists(ctx, src: str, delay: int, t0: int, t1: int) -> tuple:
    """``(offsets, idx, row0)``: the event lists of source ``src`` that steps [t0, t1) of a
    projection with ``delay`` read, by row from ``row0`` on: all steps' lists, or in the lean
    mode those of the rows needed, rebuilt from the kept spike bits."""
    if not ctx.lean:
        return (*ctx.lists[src], 0)
    return _bits_lists(ctx.spec.lib, ctx.spec.batch, ctx.bits[src], delay, t0, t1)


def _bits_lists(lib, B: int, kept: tuple, delay: int, t0: int, t1: int) -> tuple:
    """``(offsets, idx, row0)`` of the source rows that steps [t0, t1) read through a delay,
    from the source's kept spike bits ``kept = (bits, n)``."""
    bits, n = kept
    q0, q1 = max(0, t0 - delay) * B, max(0, t1 - delay) * B
    return (*K.event_lists(lib, bits[q0:q1], n), q0)


def _chunk_state(ctx, spec: Spec, k: int, kc: int, t0: int, t1: int, lists: dict):
    """What population ``k``'s backward pass needs for steps [t0, t1): ``(h, flags, vprev,
    iprev, scratch)``; the lean mode recomputes them from the chunk's checkpoint (and the
    chunk's event ``lists``, see :func:`_chunk_lists`) into pooled buffers (``scratch``, to
    give back)."""
    sv, pop = ctx.saved[k], list(spec.pops.values())[k]
    if not ctx.lean:
        return (*(None if sv[n] is None else sv[n][t0:t1]
                  for n in ("h", "flags", "vprev", "iprev")), ())
    dt, B, shape = spec.dtype, spec.batch, (t1 - t0, spec.batch, pop.size)
    want_alpha, want_beta = sv["want"]
    h, spikes = POOL.take(shape, dt), POOL.take(shape, dt)
    fl = POOL.take(shape, torch.uint8) if spec.needs_flags(pop) else None
    vprev = POOL.take(shape, dt) if want_beta else None
    iprev = POOL.take(shape, dt) if want_alpha else None
    state = tuple(torch.zeros(B, pop.size, dtype=torch.int32 if j == 3 else dt) if s is None
                  else s.clone() for j, s in enumerate(sv["checkpoints"][kc]))
    d = sv["dense"]
    own = None if sv["own"] is None else (  # the lists are there: none written (no bits)
        *sv["own"], POOL.take(((t1 - t0) * B * pop.size,), _xin_dtype(spec)))
    projs = _lean_projections(pop, list(spec.pops)[k], ctx.kw, own, lists)
    K.forward(spec.lib, spec.fixed, t0, projs, None if d is None else d[t0:t1],
              ctx.neurons[k], state, spikes, h, fl, vprev, iprev, own=own)
    return h, fl, vprev, iprev, (h, spikes, fl, vprev, iprev, None if own is None else own[2])
