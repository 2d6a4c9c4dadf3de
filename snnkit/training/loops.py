"""The ways :class:`~snnkit.training.SNN` runs a network, as the simulator has them:

* :func:`run_layerwise`: a feed-forward network without active plasticity, one population
  after the other over all steps (on the CPU the whole network as one fused kernel node,
  :mod:`snnkit.training.fused`; elsewhere one matrix product per projection, then the step
  loop of :func:`snnkit.neurons.neuron_step`);
* :func:`run_self_recurrent`: the same with self projections (snntorch's ``RLeaky``): the
  fused kernel node on the CPU, else the step loop;
* :func:`run_stepwise`: every network, step by step, as ``simulate``'s stepwise path.

Both under autograd; ``memory="lean"`` recomputes chunks of steps in the backward pass.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from ..neurons import NeuronParams, NeuronState, neuron_step
from ..plasticity import STDPState, stdp_step
from . import fused
from . import kernel as K


def _use_kernel(model) -> object | None:
    """The fused kernel, where it runs the model (on the CPU, the reset detached), else
    None."""
    if model.device.type != "cpu" or not model.detach_reset:
        return None
    return K.load()


def run_layerwise(model, xs, steps, batch, record):
    """Feed-forward networks: on the CPU the whole network as one fused kernel node
    (:mod:`snnkit.training.fused`); elsewhere one population after the other over all steps,
    one matrix product per projection and the step loop."""
    lib = _use_kernel(model)
    if lib is not None:
        return _run_fused(model, lib, xs, steps, batch, record)
    net, dt = model._source, model.dtype
    spikes, states = dict(xs), {}
    proj_index = {id(pr): k for k, pr in enumerate(net.projections)}
    for k, pop in enumerate(net.neuron_populations):
        p, v0 = model.neuron_params(k)
        ws, srcs, acc = [], [], None
        for pr in net.incoming(pop.name):
            w = model.weight(proj_index[id(pr)])
            src = _delayed(spikes[pr.source], pr.delay, steps)
            if net.population(pr.source).encoding == "current":
                c = model._current(src, w)
                acc = c if acc is None else acc + c
            else:
                ws.append(w)
                srcs.append(src)
        for w, src in zip(ws, srcs):  # as simulate's torch path: one product each
            c = (src.reshape(steps * batch, -1).to(dt) @ w.T.contiguous())
            c = c.reshape(steps, batch, -1)
            acc = c if acc is None else acc + c
        if acc is None:
            acc = torch.zeros(steps, batch, pop.size, dtype=dt, device=model.device)
        out, rec = _scan(model, acc, p, v0, batch, record, steps)
        spikes[pop.name] = out
        if rec:
            states[pop.name] = rec
    return spikes, states


def run_self_recurrent(model, xs, steps, batch, record):
    """Feed-forward networks with self projections: on the CPU the fused kernel node (a
    population with self projections runs step after step there), else
    :func:`run_stepwise`."""
    lib = _use_kernel(model)
    if lib is None:
        return run_stepwise(model, xs, steps, batch, record)
    return _run_fused(model, lib, xs, steps, batch, record)


def _run_fused(model, lib, xs, steps, batch, record):
    """The network as one node of the C kernel: spiking sources as event lists, current
    sources summed into a dense input by torch (as the simulator's kernel path)."""
    net = model._source
    pops, params, dense, weights = {}, {}, {}, []
    inputs = [p.name for p in net.inputs if p.encoding != "current"]
    for k, pop in enumerate(net.neuron_populations):
        p, v0 = model.neuron_params(k)
        params[pop.name] = {n: t.contiguous() for n, t in dict(p._asdict(), v_init=v0).items()
                            if n in fused.TENSORS and t is not None}
        per = p.refractory if isinstance(p.refractory, torch.Tensor) else None
        pops[pop.name] = fused.Pop(pop.size, _flags(model, p), refractory=per)
    for i, pr in enumerate(net.projections):
        w = model.weight(i)
        if net.population(pr.source).encoding == "current":
            c = model._current(_delayed(xs[pr.source], pr.delay, steps), w)
            dense[pr.target] = c if pr.target not in dense else dense[pr.target] + c
        else:
            pops[pr.target].projs.append((pr.source, len(weights), pr.delay))
            weights.append(w)
            if pr.source in pops:
                pops[pr.source].lag = max(pops[pr.source].lag, pr.delay)
    spec = fused.Spec(lib, steps, batch, model.q is not None, inputs, pops,
                      tuple(r for r in fused.RECORD if r in record),
                      _chunk(model, steps), _kernel_weight_dtype(model))
    for name, d in dense.items():
        pops[name].dense = True
        dense[name] = d.contiguous()
    spikes, states = fused.run(spec, [xs[n] for n in inputs], params, dense, weights)
    spikes.update(xs)
    return spikes, states


def _flags(model, p: NeuronParams) -> dict:
    q = model.q
    lim = 1 << (q.state_bits - 1) if q is not None else 0
    return dict(has_alpha=int(p.has_alpha), has_bias=int(p.has_bias),
                subtract=int(p.subtract),
                refractory=int(bool((p.refractory != 0).any())) if isinstance(
                    p.refractory, torch.Tensor) else int(p.refractory),  # per neuron: any
                adaptive=int(p.adaptive), delayed=int(p.c1 is not None),
                decay_bits=q.decay_bits if q else 0,
                lo=float(-lim), hi=float(lim - 1), lsb=model.ar.lsb,
                surrogate=model.surrogate.kind, slope=model.surrogate.slope)


def _kernel_weight_dtype(model):
    """float32 weights, or the narrowest integers of the format (weight_bits <= 16)."""
    if model.q is None:
        return torch.float32
    return torch.int8 if model.q.weight_bits <= 8 else torch.int16


def _chunk(model, steps: int) -> int | None:
    if model.memory != "lean":
        return None
    return model.chunk or max(1, round(math.sqrt(steps)))


def _scan(model, acc, p, v0, batch, record, steps):
    """The neuron update of one population over all steps, under autograd."""
    def run(t0, t1, st):
        outs, recs = [], {k: [] for k in record}
        for t in range(t0, t1):
            s, st = neuron_step(acc[t], st, p, model.ar)
            outs.append(s)
            for k in recs:
                recs[k].append(getattr(st, k))
        return torch.stack(outs), {k: torch.stack(r) for k, r in recs.items()}, st

    st = _initial_state(v0, batch)
    chunk = _chunk(model, steps) if torch.is_grad_enabled() else None
    if chunk is None:
        out, rec, _ = run(0, steps, st)
        return out, rec
    parts = []
    for t0 in range(0, steps, chunk):
        parts.append(checkpoint(run, t0, min(steps, t0 + chunk), st, use_reentrant=False))
        st = parts[-1][2]
    return (torch.cat([o for o, _, _ in parts]),
            {k: torch.cat([r[k] for _, r, _ in parts]) for k in record})


def run_stepwise(model, xs, steps, batch, record):
    """The general loop of simulate's stepwise path, under autograd."""
    net, dt, dev = model._source, model.dtype, model.device
    params = [model.neuron_params(k) for k in range(len(model.pops))]
    ws = [model.weight(k) for k in range(len(net.projections))]
    wts = [w.T.contiguous() for w in ws]
    pops = net.neuron_populations
    carry = {"state": {p.name: _initial_state(params[k][1], batch)
                       for k, p in enumerate(pops)},
             "hist": {p.name: [] for p in net.populations if p.encoding != "current"},
             "stdp": {i: (ws[i].expand(batch, -1, -1),
                          torch.zeros(batch, ws[i].shape[1], dtype=dt, device=dev),
                          torch.zeros(batch, ws[i].shape[0], dtype=dt, device=dev))
                      for i in model._stdp}}
    depth = net.max_delay + 1
    rules = {i: r._replace(plastic=r.plastic.to(dev)) for i, r in model._stdp.items()}

    def arriving(i, pr, t, now, hist):
        if pr.delay == 0:
            return now[pr.source]
        if net.population(pr.source).encoding == "current":
            src = xs[pr.source]
            return src[t - pr.delay] if t >= pr.delay else torch.zeros_like(src[0])
        h = hist[pr.source]
        back = len(h) - pr.delay  # h holds the last steps, newest last
        if back < 0:
            return torch.zeros(batch, net.population(pr.source).size, dtype=torch.bool,
                               device=dev)
        return h[back]

    def run(t0, t1, carry):
        state, hist = dict(carry["state"]), {k: list(v) for k, v in carry["hist"].items()}
        plastic = dict(carry["stdp"])
        outs = {name: [] for name in hist}
        recs = {p.name: {k: [] for k in record} for p in pops}
        for t in range(t0, t1):
            now = {p.name: xs[p.name][t] for p in net.inputs}
            for k, pop in enumerate(pops):
                acc = torch.zeros(batch, pop.size, dtype=dt, device=dev)
                for i, pr in enumerate(net.projections):
                    if pr.target != pop.name:
                        continue
                    src = arriving(i, pr, t, now, hist)
                    if net.population(pr.source).encoding == "current":
                        acc = acc + model._current(src, ws[i])
                    elif i in plastic:
                        acc = acc + torch.einsum("bs,bts->bt", src.to(dt), plastic[i][0])
                    else:
                        acc = acc + src.to(dt) @ wts[i]
                now[pop.name], state[pop.name] = neuron_step(acc, state[pop.name],
                                                             params[k][0], model.ar)
                for key, buf in recs[pop.name].items():
                    buf.append(getattr(state[pop.name], key))
            for i, (w, xpre, xpost) in plastic.items():
                pr = net.projections[i]
                pre = arriving(i, pr, t, now, hist)
                s = stdp_step(model.ar.fired(pre) if pre.dtype != torch.bool else pre,
                              model.ar.fired(now[pr.target]), STDPState(w, xpre, xpost),
                              rules[i], model.ar)
                plastic[i] = (s.w, s.x_pre, s.x_post)
            for name, h in hist.items():
                h.append(now[name])
                if len(h) > depth:
                    h.pop(0)
                outs[name].append(now[name])
        out = {k: torch.stack(v) for k, v in outs.items() if v}
        rec = {p: {k: torch.stack(v) for k, v in d.items()} for p, d in recs.items()}
        return out, rec, {"state": state, "hist": hist, "stdp": plastic}

    chunk = _chunk(model, steps) if torch.is_grad_enabled() else None
    parts = []
    for t0 in range(0, steps, chunk or steps):
        t1 = min(steps, t0 + (chunk or steps))
        parts.append(checkpoint(run, t0, t1, carry, use_reentrant=False) if chunk
                     else run(t0, t1, carry))
        carry = parts[-1][2]
    spikes = {name: torch.cat([o[name] for o, _, _ in parts]) for name in parts[0][0]}
    states = {p.name: {k: torch.cat([r[p.name][k] for _, r, _ in parts]) for k in record}
              for p in pops} if record else {}
    return spikes, states


def _initial_state(v0: torch.Tensor, batch: int) -> NeuronState:
    v = v0.expand(batch, -1)
    zero = torch.zeros(v.shape, dtype=v.dtype, device=v.device)
    none = torch.zeros(v.shape, dtype=torch.bool, device=v.device)
    return NeuronState(v=v, i=zero, refrac=torch.zeros(v.shape, dtype=torch.int32,
                                                       device=v.device), theta=zero,
                       s1=none, s2=none)


def _delayed(src: torch.Tensor, delay: int, steps: int) -> torch.Tensor:
    if not delay:
        return src
    pad = torch.zeros((delay,) + src.shape[1:], dtype=src.dtype, device=src.device)
    return torch.cat([pad, src[:steps - delay]])[:steps]
