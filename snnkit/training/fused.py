"""One feed-forward population over all steps as one autograd node (the CPU fast path).

Forward: the synaptic input of every step from the spiking sources' events (one pass, the
simulator's accumulation), plus an optional dense input (current sources); then the neuron
update over all steps in the C kernel. Backward: the time-reversed recurrence in the C kernel,
the weight gradients as one event-driven pass over the source spikes, the sources' gradients
as one matrix product. The same numbers as running :func:`snnkit.neurons.neuron_step` with
:mod:`snnkit.training.arith` step by step under autograd (tests/test_training.py checks both).

Memory: by default the forward keeps, per neuron and step, the surrogate derivative and a flag
byte, plus the source spikes as event lists. ``chunk=K`` (the memory-lean mode) keeps only the
state every K steps and the event lists, and recomputes each chunk's input and forward pass
during the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import kernels
from . import kernel as K

PARAMS = ("alpha", "beta", "threshold", "v_reset", "bias", "adapt_plus", "adapt_decay", "v_init")
GRADS = ("alpha", "beta", "threshold", "bias")  # the parameters the kernel differentiates


@dataclass
class Spec:
    """What one call needs besides the tensors."""

    lib: object
    fixed: bool
    flags: dict  # TNeuron flags: has_alpha ... slope
    record: tuple = ()  # of "v", "i", "theta"
    chunk: int | None = None  # memory-lean mode: steps per recomputed chunk
    weight_dtype: torch.dtype | None = torch.float32  # kernel layout; None: torch sums
    n_proj: int = 0
    need_grad: bool = True
    sizes: list = field(default_factory=list)  # sources per spike projection

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


def _padded(spec: Spec, weights) -> torch.Tensor | None:
    if spec.weight_dtype is None:
        return None
    return kernels.concat_rows([kernels.pad_weights(w.detach().T, spec.weight_dtype)
                                for w in weights])


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
        T, B = dense.shape[:2] if dense is not None else sources[0].shape[:2]
        keep = []
        neuron = K.neuron_struct(p, spec.flags, keep)
        # the spiking sources side by side, as event lists (offsets into padded weight rows)
        x8 = torch.cat([s.detach().reshape(T * B, -1).to(torch.uint8) for s in sources], 1) \
            if sources else torch.zeros(T * B, 0, dtype=torch.uint8)
        offsets, idx = K.event_lists(lib, x8.contiguous(), _row_length(N))
        wt = _padded(spec, weights) if sources else None
        need = spec.need_grad
        lean = need and spec.chunk is not None and spec.chunk < T

        def sums(t0, t1):
            """Synaptic input of steps [t0, t1)."""
            d = None if dense is None else dense[t0:t1]
            if not sources:
                return d.clone() if d is not None else torch.zeros(t1 - t0, B, N, dtype=dt)
            if wt is not None:
                x = K.event_sum(lib, offsets[t0 * B:t1 * B + 1], idx, wt, N)
                x = x.view(t1 - t0, B, N).to(dt)
            else:  # weights too wide for the kernel's layouts: exact float64 products
                w = torch.cat([w.detach() for w in weights], 1).to(dt)
                x = (x8[t0 * B:t1 * B].to(dt) @ w.T).view(t1 - t0, B, N)
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
            h = torch.empty(T, B, N, dtype=dt) if need else None
            flags = torch.empty(T, B, N, dtype=torch.uint8) if need else None
            vprev = torch.empty(T, B, N, dtype=dt) if want_beta else None
            iprev = torch.empty(T, B, N, dtype=dt) if want_alpha else None
            K.forward(lib, spec.fixed, sums(0, T), neuron, state, spikes, h, flags, vprev,
                      iprev, rec)
            ctx.save_for_backward(h, flags, vprev, iprev, offsets, idx, *weights)
        else:  # keep the state at every chunk's start; recompute the rest in backward
            ctx.checkpoints, ctx.sums = [], sums
            for t0 in range(0, T, spec.chunk):
                t1 = min(T, t0 + spec.chunk)
                ctx.checkpoints.append(tuple(s.clone() for s in state))
                K.forward(lib, spec.fixed, sums(t0, t1), neuron, state, spikes[t0:t1],
                          rec=[None if r is None else r[t0:t1] for r in rec])
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
        gx = torch.empty(T, B, N, dtype=dt)
        if ctx.checkpoints is None:
            K.backward(lib, spec.fixed, ctx.neuron, gs, gr, h, flags, vprev, iprev, carry, gx,
                       gpar)
        else:  # chunks in reverse: rerun each chunk's forward from its checkpoint, then back
            c = spec.chunk
            h = torch.empty(c, B, N, dtype=dt)
            flags = torch.empty(c, B, N, dtype=torch.uint8)
            vprev = torch.empty(c, B, N, dtype=dt) if want_beta else None
            iprev = torch.empty(c, B, N, dtype=dt) if want_alpha else None
            spikes = torch.empty(c, B, N, dtype=dt)
            for k in reversed(range(len(ctx.checkpoints))):
                t0, t1 = k * c, min(T, k * c + c)
                n = t1 - t0
                vp = None if vprev is None else vprev[:n]
                ip = None if iprev is None else iprev[:n]
                state = tuple(s.clone() for s in ctx.checkpoints[k])
                K.forward(lib, spec.fixed, ctx.sums(t0, t1), ctx.neuron, state, spikes[:n],
                          h[:n], flags[:n], vp, ip)
                K.backward(lib, spec.fixed, ctx.neuron, gs[t0:t1],
                           [None if g is None else g[t0:t1] for g in gr], h[:n], flags[:n],
                           vp, ip, carry, gx[t0:t1], gpar)
        grads = [None] * len(PARAMS)
        for k in GRADS:
            if gp[k] is not None:
                grads[PARAMS.index(k)] = gp[k].to(dt)
        if need[1 + PARAMS.index("v_init")]:
            grads[PARAMS.index("v_init")] = carry[0].sum(0)
        gflat = gx.view(T * B, N)
        g_w = [None] * spec.n_proj
        if any(need[10:10 + spec.n_proj]):  # one event-driven pass for every projection
            dw = torch.zeros(sum(spec.sizes), _row_length(N), dtype=torch.float32)
            K.event_wgrad(lib, offsets, idx, gflat.to(torch.float32).contiguous(), dw)
            off = 0
            for j, (w, s) in enumerate(zip(weights, spec.sizes)):
                if need[10 + j]:
                    g_w[j] = dw[off:off + s, :N].T.to(w.dtype)
                off += s
        g_src = [(gflat.to(w.dtype) @ w).view(T, B, -1) if need[10 + spec.n_proj + j] else None
                 for j, w in enumerate(weights)]
        return (None, *grads, gx if need[9] else None, *g_w, *g_src)
