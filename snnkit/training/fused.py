"""One feed-forward population over all steps as one autograd node (the CPU fast path).

Forward: the synaptic input of every step from the spiking sources' events (one pass, the
simulator's accumulation, so the float sums are added in the simulator's order), plus an
optional dense input (current sources); then the neuron update over all steps in the C kernel.
Backward: the time-reversed recurrence in the C kernel, the weight gradients as one
event-driven pass over the source spikes, the sources' gradients as one matrix product. The
same numbers as running :func:`snnkit.neurons.neuron_step` on :mod:`snnkit.training.arith`
step by step under autograd (tests/test_training.py checks both, spikes bit for bit).

Memory: by default the forward keeps, per neuron and step, the surrogate's derivative (the
spike in its sign; a flag byte more in fixed point or with refractoriness), and the source
spikes as event lists. ``chunk=K`` (the memory-lean mode) keeps
only the state every K steps and the event lists, and recomputes each chunk's input and
forward pass during the backward pass. Large scratch buffers are reused from a small pool:
a fresh allocation of this size is mapped anew and costs a page fault per 4 KB on first
touch (a third of a training step before the pool).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from .. import kernels
from . import kernel as K

PARAMS = ("alpha", "beta", "threshold", "v_reset", "bias", "adapt_plus", "adapt_decay", "v_init")
STRIDE = 8  # steps whose inputs / input gradients exist at once
GRADS = ("alpha", "beta", "threshold", "bias")  # the parameters the kernel differentiates


class _Pool:
    """Free scratch tensors by (shape, dtype), up to ``limit`` bytes in all."""

    def __init__(self, limit: int = 256 << 20):
        self.free: dict[tuple, list[torch.Tensor]] = {}
        self.bytes, self.limit = 0, limit

    def take(self, shape, dtype) -> torch.Tensor:
        got = self.free.get((tuple(shape), dtype))
        if got:
            t = got.pop()
            self.bytes -= t.nbytes
            return t
        return torch.empty(shape, dtype=dtype)

    def give(self, *tensors) -> None:
        for t in tensors:
            if t is not None and self.bytes + t.nbytes <= self.limit:
                self.free.setdefault((tuple(t.shape), t.dtype), []).append(t)
                self.bytes += t.nbytes

    def clear(self) -> None:
        self.free.clear()
        self.bytes = 0


POOL = _Pool()


@dataclass
class Spec:
    """What one call needs besides the tensors."""

    lib: object
    steps: int
    batch: int
    fixed: bool
    flags: dict  # TNeuron flags: has_alpha ... slope
    record: tuple = ()  # of "v", "i", "theta"
    chunk: int | None = None  # memory-lean mode: steps per recomputed chunk
    weight_dtype: torch.dtype = torch.float32  # kernel layout: float32, or int8 / int16
    n_proj: int = 0
    need_grad: bool = True
    sizes: list = field(default_factory=list)  # sources per spike projection

    @property
    def needs_flags(self) -> bool:
        """Whether backward needs a flag byte per neuron and step: fixed point saturates and
        refractoriness gates; otherwise the spike rides in the sign of the saved derivative."""
        return self.fixed or bool(self.flags["refractory"])

    @property
    def dtype(self):
        return torch.float64 if self.fixed else torch.float32


def run(spec: Spec, params: dict[str, torch.Tensor], dense, weights, sources):
    """Spikes ``[T, B, N]`` and the recorded states of one population.

    params : the eight :data:`PARAMS`, each ``[N]`` in the arithmetic's dtype
    dense : extra synaptic input ``[T, B, N]`` or None
    weights, sources : per spiking projection, ``[N, S]`` (masked, quantised) and the source
        spikes ``[T, B, S]`` (0/1, already delayed)
    """
    spec.n_proj = len(weights)
    spec.sizes = [s.shape[-1] for s in sources]
    tensors = [params[k] for k in PARAMS] + [dense] + list(weights) + list(sources)
    spec.need_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)
    out = _Population.apply(spec, *tensors)
    return out[0], dict(zip(spec.record, out[1:]))


def _padded(weights, dtype, n: int) -> torch.Tensor:
    """The weights of every projection (``[N, S_k]``) as the event sums read them: one
    ``[sum S_k, Np]`` matrix of rows padded as :func:`snnkit.kernels.pad_weights` lays them
    out (rows padded with zeros, 16 spare elements)."""
    s, ld = sum(w.shape[1] for w in weights), _row_length(n)
    flat = torch.empty(s * ld + 16, dtype=dtype)
    out = flat[:s * ld].view(s, ld)
    off = 0
    for w in weights:
        out[off:off + w.shape[1], :n] = w.detach().T  # w.T: the parameters' own layout
        off += w.shape[1]
    out[:, n:] = 0
    flat[s * ld:] = 0
    return out


def _row_length(n: int) -> int:
    """The padded row length of ``n`` columns (:func:`snnkit.kernels.pad_weights`)."""
    return kernels.pad_weights(torch.zeros(0, n)).shape[1]


class _Population(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: Spec, *tensors):
        p = dict(zip(PARAMS, tensors[:8]))
        dense = tensors[8]
        weights = tensors[9:9 + spec.n_proj]
        sources = tensors[9 + spec.n_proj:]
        lib, dt = spec.lib, spec.dtype
        N = p["threshold"].shape[0]
        T, B = spec.steps, spec.batch
        keep = []
        neuron = K.neuron_struct(p, spec.flags, keep)
        # the spiking sources side by side, as event lists (offsets into padded weight rows)
        if len(sources) == 1 and sources[0].is_contiguous():
            x8 = sources[0].detach().view(T * B, -1)
        else:
            x8 = torch.cat([s.detach().reshape(T * B, -1).to(torch.uint8) for s in sources], 1) \
                if sources else torch.zeros(T * B, 0, dtype=torch.uint8)
        offsets, idx = K.event_lists(lib, x8, _row_length(N))
        has_sources = bool(sources)
        del x8  # the closure below must not keep the sources alive (lean mode keeps it)
        wt = _padded(weights, spec.weight_dtype, N) if sources else None
        need = spec.need_grad
        lean = need and spec.chunk is not None and spec.chunk < T
        # without lean, the inputs and the gradients are still made STRIDE steps at a time:
        # only what backward needs is kept for every step
        stride = spec.chunk if lean else min(T, STRIDE)

        def sums(t0, t1):
            """Synaptic input of steps [t0, t1) (a pooled buffer: give it back)."""
            x = POOL.take((t1 - t0, B, N), dt)
            d = None if dense is None else dense[t0:t1]
            if not has_sources:
                x.copy_(d) if d is not None else x.zero_()
                return x
            rows = (t1 - t0) * B
            if spec.fixed:  # exact int32 sums of the 8- / 16-bit weights
                s32 = POOL.take((rows, N), torch.int32)
                K.event_sum(lib, offsets[t0 * B:t1 * B + 1], idx, wt, N, s32)
                x.view(rows, N).copy_(s32)
                POOL.give(s32)
            else:
                K.event_sum(lib, offsets[t0 * B:t1 * B + 1], idx, wt, N, x.view(rows, N))
            if d is not None:
                x += d
            return x

        state = (p["v_init"].detach().expand(B, N).clone(), torch.zeros(B, N, dtype=dt),
                 torch.zeros(B, N, dtype=dt), torch.zeros(B, N, dtype=torch.int32))
        spikes = torch.empty(T, B, N, dtype=dt)
        rec = [torch.empty(T, B, N, dtype=dt) if k in spec.record else None
               for k in ("v", "i", "theta")]
        want_beta = need and ctx.needs_input_grad[1 + PARAMS.index("beta")]
        want_alpha = need and ctx.needs_input_grad[1] and bool(spec.flags["has_alpha"])
        ctx.spec, ctx.shape, ctx.want = spec, (T, B, N), (want_alpha, want_beta)
        ctx.neuron, ctx.keep, ctx.checkpoints, ctx.sums = neuron, keep, None, None
        if not lean:
            h = POOL.take((T, B, N), dt) if need else None
            flags = POOL.take((T, B, N), torch.uint8) if need and spec.needs_flags else None
            vprev = torch.empty(T, B, N, dtype=dt) if want_beta else None
            iprev = torch.empty(T, B, N, dtype=dt) if want_alpha else None
            for t0 in range(0, T, stride):
                t1 = min(T, t0 + stride)
                x = sums(t0, t1)
                K.forward(lib, spec.fixed, x, neuron, state, spikes[t0:t1],
                          *(None if t is None else t[t0:t1] for t in (h, flags, vprev, iprev)),
                          [None if r is None else r[t0:t1] for r in rec])
                POOL.give(x)
            ctx.save_for_backward(h, flags, vprev, iprev, offsets, idx, *weights)
            if need:  # back to the pool once the graph (and so this node) is freed
                weakref.finalize(ctx, POOL.give, h, flags)
        else:  # keep the state at every chunk's start; recompute the rest in backward
            ctx.checkpoints, ctx.sums = [], sums
            used = (True, bool(spec.flags["has_alpha"]), bool(spec.flags["adaptive"]),
                    bool(spec.flags["refractory"]))  # the rest stays 0 in this population
            for t0 in range(0, T, spec.chunk):
                t1 = min(T, t0 + spec.chunk)
                ctx.checkpoints.append(tuple(s.clone() if u else None
                                             for s, u in zip(state, used)))
                x = sums(t0, t1)
                K.forward(lib, spec.fixed, x, neuron, state, spikes[t0:t1],
                          rec=[None if r is None else r[t0:t1] for r in rec])
                POOL.give(x)
            ctx.save_for_backward(None, None, None, None, offsets, idx, *weights)
        return (spikes, *(r for r in rec if r is not None))

    @staticmethod
    def backward(ctx, gs, *grec):
        spec = ctx.spec
        lib, dt = spec.lib, spec.dtype
        T, B, N = ctx.shape
        saved = ctx.saved_tensors
        h, flags, vprev, iprev, offsets, idx = saved[:6]
        weights = saved[6:]
        want_alpha, want_beta = ctx.want
        need = ctx.needs_input_grad
        gs = gs.contiguous().to(dt)
        g_rec = dict(zip(spec.record, grec))
        gr = [None if g_rec.get(k) is None else g_rec[k].contiguous().to(dt)
              for k in ("v", "i", "theta")]
        carry = tuple(torch.zeros(B, N, dtype=dt) for _ in range(3))
        gp = {k: torch.zeros(N, dtype=torch.float64) if need[1 + PARAMS.index(k)] else None
              for k in GRADS}
        gp["alpha"] = gp["alpha"] if want_alpha else None
        gp["beta"] = gp["beta"] if want_beta else None
        gpar = tuple(gp[k] for k in GRADS)
        want_w = any(need[10:10 + spec.n_proj])
        dw = torch.empty(sum(spec.sizes), N, dtype=torch.float32) if want_w else None
        g_dense = torch.empty(T, B, N, dtype=dt) if need[9] else None
        g_src = [torch.empty(T, B, w.shape[1], dtype=w.dtype) if need[10 + spec.n_proj + j]
                 else None for j, w in enumerate(weights)]
        lean = ctx.checkpoints is not None
        c = spec.chunk if lean else min(T, STRIDE)
        ld = _row_length(N)  # gx rows padded as the weights: the weight gradient pass reads it
        gx = POOL.take((c * B, ld), dt)
        g32 = POOL.take((c * B, ld), torch.float32) if want_w and dt != torch.float32 else gx
        if lean:
            h = POOL.take((c, B, N), dt)
            flags = POOL.take((c, B, N), torch.uint8) if spec.needs_flags else None
            vprev = torch.empty(c, B, N, dtype=dt) if want_beta else None
            iprev = torch.empty(c, B, N, dtype=dt) if want_alpha else None
            spikes = POOL.take((c, B, N), dt)
        for k in reversed(range(-(-T // c))):  # chunks of c steps, the last first
            t0, t1 = k * c, min(T, k * c + c)
            n = t1 - t0
            if lean:
                vp = None if vprev is None else vprev[:n]
                ip = None if iprev is None else iprev[:n]
                hk, fk = h[:n], None if flags is None else flags[:n]
            else:
                vp = None if vprev is None else vprev[t0:t1]
                ip = None if iprev is None else iprev[t0:t1]
                hk, fk = h[t0:t1], None if flags is None else flags[t0:t1]
            if lean:  # rerun the chunk's forward from its checkpoint, keeping what backward needs
                state = tuple(torch.zeros(B, N, dtype=torch.int32 if j == 3 else dt)
                              if s is None else s.clone()
                              for j, s in enumerate(ctx.checkpoints[k]))
                x = ctx.sums(t0, t1)
                K.forward(lib, spec.fixed, x, ctx.neuron, state, spikes[:n], hk, fk, vp, ip)
                POOL.give(x)
            K.backward(lib, spec.fixed, ctx.neuron, gs[t0:t1],
                       [None if g is None else g[t0:t1] for g in gr], hk, fk, vp, ip,
                       carry, gx[:n * B], gpar)
            gflat = gx[:n * B, :N]
            if g_dense is not None:
                g_dense[t0:t1] = gflat.view(n, B, N)
            if want_w:  # one event-driven pass for every projection
                if g32 is not gx:
                    g32[:n * B].copy_(gx[:n * B])
                K.event_wgrad(lib, offsets[t0 * B:t1 * B + 1], idx, dw.shape[0], ld,
                              g32[:n * B], N, dw, accumulate=t1 < T)  # the last chunk first
            for j, w in enumerate(weights):
                if g_src[j] is not None:
                    torch.matmul(gflat.to(w.dtype), w, out=g_src[j][t0:t1].view(n * B, -1))
        POOL.give(gx, None if g32 is gx else g32)
        if lean:
            POOL.give(h, flags, spikes)
        grads = [None] * len(PARAMS)
        for k in GRADS:
            if gp[k] is not None:
                grads[PARAMS.index(k)] = gp[k].to(dt)
        if need[1 + PARAMS.index("v_init")]:
            grads[PARAMS.index("v_init")] = carry[0].sum(0)
        g_w = [None] * spec.n_proj
        off = 0
        for j, (w, s) in enumerate(zip(weights, spec.sizes)):
            if need[10 + j]:
                g_w[j] = dw[off:off + s].T.to(w.dtype)
            off += s
        return (None, *grads, g_dense, *g_w, *g_src)
