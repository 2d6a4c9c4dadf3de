"""The simulator on the CPU kernel (:mod:`snnkit.kernels`): every network, all steps at once.

The populations are cut into groups: each set of populations whose spikes feed back into each
other (through recurrent, self or backward projections) is one group, every other population
a group of its own, and the groups run one after another in the order their inputs need.
Each group runs over all steps in one kernel call:

- a population with neither input from its own group nor plastic input runs on the layer
  kernel: its inputs' spikes are all known, so it sums them block of columns by block of
  columns over all steps with the weights in cache, and updates the neurons in the same pass
  (fed by one convolution of sparse spikes: :func:`snnkit.conv.fused_layer`, the frame's
  sums straight into the update); dense-enough spike inputs are summed on the AMX tiles
  instead where the CPU has them (fixed point: exact int8 products; float: each weight split
  exactly into bf16 parts, float32 sums of the exact weights);
- a float population whose only step-by-step input is its own spikes (self projections,
  e.g. snntorch's RLeaky), with 8 or more samples, runs on the recurrent kernel: per step
  the group's samples' spikes summed vector of columns by vector of columns, as the layer
  kernel sums a group of samples, its input from outside summed there too, a few steps at a
  time (no [steps, batch, n] buffer); in fixed point with 8-bit weights, where the CPU has
  AMX, from 32 samples (and inputs dense enough), on the tiles: per step one exact matrix
  product of the step's input and own spikes;
- any other group runs on the step kernel: per sample and step, each member sums the weight
  rows of the group's spikes that arrive now and of its plastic inputs (in fixed point also
  of sparse spike inputs from earlier populations, when all its weights fit the L2 cache),
  adds what comes from outside the group (summed beforehand by the layer kernel, all steps
  at once), updates its neurons, then STDP runs on the plastic projections.

This is the order of docs/fixed-point.md: a group only reads spikes of earlier groups (known
for every step) and its own (step by step), and a projection's STDP only needs its source's
and target's spikes. The fixed point is bit-exact with the torch path; float differs from it
only in summation order.
"""

from __future__ import annotations

import numpy as np
import torch

from . import conv, kernels
from .network import Network
from .plan import Plan, Proj, delayed, summed_input
from .result import Result


def groups(net: Network) -> list[list[str]]:
    """The neuron populations in groups (strongly connected sets, in network order), in an
    order where every group comes after the groups it receives spikes from."""
    pops = [p.name for p in net.neuron_populations]
    succ = {p: set() for p in pops}
    for pr in net.projections:
        if pr.source in succ:
            succ[pr.source].add(pr.target)
    comp = _components(pops, succ)
    order = {p: i for i, p in enumerate(pops)}
    members: dict[int, list[str]] = {}
    for p in pops:
        members.setdefault(comp[p], []).append(p)
    deps = {c: {comp[s] for s in pops if comp[s] != c and succ[s] & set(m)}
            for c, m in members.items()}
    out, done = [], set()
    while len(done) < len(members):  # Kahn, the earliest population first among the ready
        ready = [c for c in members if c not in done and deps[c] <= done]
        c = min(ready, key=lambda c: order[members[c][0]])
        out.append(members[c])
        done.add(c)
    return out


def _components(nodes: list[str], succ: dict[str, set[str]]) -> dict[str, int]:
    """Strongly connected components (Tarjan, iterative): node -> component number."""
    index, low, comp, stack, on = {}, {}, {}, [], set()
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(succ[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp[w] = index[v]
                    if w == v:
                        break
    return comp


def run(lib, net: Network, plan: Plan, x: dict[str, torch.Tensor], steps: int, batch: int,
        record: set, backend: str, progress: bool) -> Result:
    """Simulate on the CPU kernel (the inputs ``x`` encoded for ``plan``)."""
    spikes: dict[str, torch.Tensor] = dict(x)
    states: dict[str, dict[str, torch.Tensor]] = {}
    weights, trace = {}, {}
    todo = groups(net)
    if progress:
        from tqdm.auto import tqdm

        todo = tqdm(todo, desc="simulate", unit="group", leave=False)
    for members in todo:
        if not _layer(lib, plan, members, spikes, states, steps, batch, record) and \
                not _recurrent(lib, plan, members, spikes, states, steps, batch, record):
            _group(lib, net, plan, members, spikes, states, weights, trace, steps, batch,
                   record)
    spikes = {p.name: spikes[p.name] for p in net.populations if p.encoding != "current"}
    return Result(backend, steps, batch, spikes, states, weights, trace, lsb=plan.lsb)


def _fixed(plan: Plan):
    return (plan.ar.D, plan.ar.lo, plan.ar.hi) if plan.fixed else None


def _external(lib, plan: Plan, name: str, projs: list[Proj], spikes, steps: int, batch: int,
              record=(), sums: bool = False):
    """Run ``name`` on the layer kernel with the given (non-plastic, earlier) projections, or
    with ``sums`` only return their summed input (in the state dtype)."""
    ev, rest = [], []
    bf16 = plan.precision == "bf16"
    for pr in projs:  # currents and convolutions (torch's convolution): a dense input
        (ev if spikes[pr.source].dtype == torch.bool and pr.conv is None else rest).append(pr)
    v0, params = plan.v_init[name], plan.neurons[name]
    st = v0.dtype
    dense = summed_input(plan, name, rest, spikes, steps, batch)
    if sums and not ev:
        return dense
    x = wt = wv = wb = None
    if ev:
        kw = [pr.kernel_weights(bf16) for pr in ev]  # one dtype: one weight width
        srcs = [delayed(spikes[pr.source], pr.delay, steps) for pr in ev]
        x = (torch.cat(srcs, dim=-1) if len(srcs) > 1 else srcs[0]).reshape(steps * batch, -1)
        wt = kernels.concat_rows(kw)
        if lib.amx and wt.dtype == torch.int8:  # 8-bit sums may run on AMX
            wv = ev[0].amx_weights() if len(ev) == 1 else kernels.pack_amx(wt, v0.shape[0])
        elif wt.dtype == torch.float32 and len(ev) == 1:
            if batch >= FLOAT_SLAB_BATCH and wt.shape[0] <= FLOAT_SLAB_MAX_S:
                # the batch-blocked float sums read the projection's slabs, laid out once
                wv = kernels.slabs(wt, v0.shape[0], kernels.slab_lanes(lib, v0.shape[0]))
            packed = kernels.pack_bf16(wt, v0.shape[0]) \
                if lib.amx_bf16 and batch >= BF16_MIN_BATCH else None
            if packed is not None:  # (the kernel counts the spikes, and decides)
                wb = (*packed, BF16_DENSITY[packed[1]])
    if st == torch.int64:  # wide states: the sums fit int32 (simulator._kernel_for)
        s, _ = kernels.run_layer(lib, x, wt, None, params, v0.to(torch.int32), steps, batch,
                                 fixed=_fixed(plan), sums=True)
        return s.to(torch.int64) + dense if dense is not None else s.to(torch.int64)
    out = kernels.run_layer(lib, x, wt, dense, params, v0, steps, batch, record, _fixed(plan),
                            wv, sums=sums, wb=wb)
    return out[0] if sums else out


# Float layers on the AMX bf16 tiles (kernels.pack_bf16: each weight split exactly into its
# bf16 parts, float32 sums of the exact weights), from this batch and share of sources
# spiking per sample and step on, by the number of parts the weights need: the product does
# not skip silent sources, and each part is one more product. Measured on sim_speed's ff
# layer (784 -> 1000, batch 64, 1 thread): the tiles take ~12 / ~16 / ~23 ms for 1 / 2 / 3
# parts whatever the density; the event sums ~11 ms at 6%, ~16 at 10%, ~22 at 15%, ~27 at 20%
BF16_MIN_BATCH = 32
BF16_DENSITY = {1: 0.08, 2: 0.11, 3: 0.17}

# Float layers from this batch on sum a group of samples at a time (_kernels.c item_f32_bb)
# from weights laid out in slabs: kept with the projection's weights (one more copy of them)
# rather than copied each run (~1 ms of sim_speed's ff at batch 64)
FLOAT_SLAB_BATCH = 8  # _kernels.c BB_MIN
FLOAT_SLAB_MAX_S = 4096  # BB_MAX_S


def _layer(lib, plan, members, spikes, states, steps, batch, record) -> bool:
    """One population without input from itself and without plastic input: the layer kernel
    (False: the group needs the step kernel)."""
    if len(members) > 1 or plan.v_init[members[0]].dtype == torch.int64:
        return False
    name = members[0]
    projs = [pr for pr in plan.projs if pr.target == name]
    if any(pr.stdp is not None or pr.source == name for pr in projs):
        return False
    pr = projs[0] if len(projs) == 1 and projs[0].source in spikes else None
    got = None if pr is None or pr.conv is None else conv.fused_layer(
        plan, name, pr, delayed(spikes[pr.source], pr.delay, steps), steps, batch, record)
    out, rec = got or _external(lib, plan, name, projs, spikes, steps, batch, record)
    spikes[name] = out
    if rec:
        states[name] = rec
    return True


# Float, a population fed back by itself only: from this batch on, the batch-blocked kernel
# (kernels.run_rec: the same spikes, ~2x faster on sim_speed's rleaky at batch 64)
REC_MIN_BATCH = 8
# Fixed point, 8-bit weights, where the CPU has AMX: from this batch (a tile's 32 rows) and
# input density on (as the layer kernel's AMX path), kernels.run_rec_amx: each step one
# exact integer matrix product on the tiles (rleaky: ~2x faster than the step kernel's
# event sums at 6-10% firing; the product does not skip silent sources)
REC_AMX_MIN_BATCH = 32
REC_AMX_DENSITY = 0.04


def _recurrent(lib, plan, members, spikes, states, steps, batch, record) -> bool:
    """One population whose only step-by-step inputs are its own spikes (self projections,
    delay >= 1, not plastic) on :func:`kernels.run_rec` (float) or :func:`kernels.run_rec_amx`
    (fixed point, 8-bit weights, AMX), its input from outside summed there too (False: the
    group needs the step kernel)."""
    if len(members) != 1 or batch < (REC_AMX_MIN_BATCH if plan.fixed else REC_MIN_BATCH) \
            or (plan.fixed and (not lib.amx or plan.v_init[members[0]].dtype != torch.int32)):
        return False
    name = members[0]
    projs = [pr for pr in plan.projs if pr.target == name]
    own = [pr for pr in projs if pr.source == name]
    if any(pr.stdp is not None for pr in projs) or \
            any(pr.delay < 1 or pr.conv is not None for pr in own):
        return False
    bf16 = plan.precision == "bf16"
    ev, rest = [], []
    for pr in projs:  # as _external: spike inputs event by event, the rest a dense input
        if pr.source != name:
            (ev if spikes[pr.source].dtype == torch.bool and pr.conv is None else rest).append(pr)
    x = wt = None
    if ev:
        srcs = [delayed(spikes[pr.source], pr.delay, steps) for pr in ev]
        x = (torch.cat(srcs, dim=-1) if len(srcs) > 1 else srcs[0]).reshape(steps * batch, -1)
        wt = kernels.concat_rows([pr.kernel_weights(bf16) for pr in ev])
    if plan.fixed:
        if any(w.dtype != torch.int8 for w in [pr.kernel_weights() for pr in own]
               + ([wt] if ev else [])) or (ev and int(np.count_nonzero(x.numpy()))
                                           < REC_AMX_DENSITY * x.numel()):
            return False
        out = kernels.run_rec_amx(lib, plan.neurons[name], plan.v_init[name],
                                  [(pr.kernel_weights(), pr.delay) for pr in own], x, wt,
                                  summed_input(plan, name, rest, spikes, steps, batch), steps,
                                  batch, _fixed(plan), record)
    else:
        out = kernels.run_rec(lib, plan.neurons[name], plan.v_init[name],
                              [(pr.kernel_weights(bf16), pr.delay) for pr in own], x, wt,
                              summed_input(plan, name, rest, spikes, steps, batch), steps,
                              batch, record)
    if out is None:
        return False
    spikes[name], rec = out
    if rec:
        states[name] = rec
    return True


def _group(lib, net, plan, members, spikes, states, weights, trace, steps, batch, record):
    """A group on the step kernel: members' recurrent and plastic inputs summed step by step,
    the rest beforehand."""
    pos = {name: k for k, name in enumerate(members)}
    into = [pr for pr in plan.projs if pr.target in pos]
    own = [pr for pr in into if pr.source in pos or pr.stdp is not None]
    summed = {id(pr) for pr in own}  # (identity: Proj's == compares tensors)
    summed |= {id(pr) for pr in _moved_into_group(
        plan, own, [pr for pr in into if id(pr) not in summed], spikes)}
    pops, projs, plastic = [], [], []
    for name in members:
        inner, outer = [], []
        for pr in into:
            if pr.target == name:
                (inner if id(pr) in summed else outer).append(pr)
        ext = _external(lib, plan, name, outer, spikes, steps, batch, sums=True) \
            if outer else None
        pops.append({"params": plan.neurons[name], "v_init": plan.v_init[name], "ext": ext})
        for pr in inner:
            q = {"target": pos[name], "delay": pr.delay, "stdp": pr.stdp,
                 "src_pop": pos.get(pr.source), "src": spikes.get(pr.source)}
            if pr.stdp is None:
                q["w"] = pr.kernel_weights(plan.precision == "bf16")
            else:
                q["w"] = _sample_weights(pr, plan, batch)
                q["mask"] = pr.plastic_mask()
                q["record_weights"] = "weights" in record
                plastic.append((pr, q))
            projs.append(q)
    traces = (plan.ar.trace_one, plan.ar.t_hi) if plan.fixed else (0, 0)
    out, rec = kernels.run_group(lib, pops, projs, steps, batch, _fixed(plan), traces, record)
    for name, o, r in zip(members, out, rec):
        spikes[name] = o
        if r:
            states[name] = r
    dt = torch.int64 if plan.fixed else torch.float32
    for pr, q in plastic:
        name = net.projections[pr.index].name
        n = pr.w.shape[0]
        # transpose in the narrow type, then widen: a widening strided copy is ~7x slower
        weights[name] = q["w"][:, :, :n].transpose(1, 2).contiguous().to(dt)
        if "rec_w" in q:
            trace[name] = q["rec_w"].to(dt)


# Fixed point: spike inputs from earlier populations firing below this share of sources per
# sample and step are summed in the step kernel too, event by event, rather than beforehand
# into a [steps, batch, n] buffer (measured on sim_speed's rleaky, 10% firing: 8 ms there
# against 14 ms for the layer kernel's sums and that buffer's write and read), as long as
# all the weights the step kernel then reads each step fit a core's L2 cache (the step kernel
# reads every arriving row each step; 4 MB of input weights beyond 1 MB of recurrent ones:
# 1.5x slower). Float stays with the layer kernel, which reads its weights from cache block
# by block (rleaky: 33 ms, against 70 ms summed step by step from its 3 MB of weights).
GROUP_SUM_DENSITY = 0.15


def _l2_bytes() -> int:
    try:  # Linux; else a common size
        with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as f:
            size = f.read().strip()
        return int(size[:-1]) * {"K": 1 << 10, "M": 1 << 20}[size[-1]]
    except (OSError, ValueError, KeyError, IndexError):
        return 1 << 20


GROUP_SUM_BYTES = _l2_bytes()


def _moved_into_group(plan: Plan, own: list[Proj], others: list[Proj], spikes) -> list[Proj]:
    """The spike inputs from earlier populations that the group sums itself (see
    GROUP_SUM_DENSITY): all or none. Integer sums are exact in any order: the same result."""
    if not plan.fixed or not others:
        return []
    size = sum(pr.kernel_weights().nbytes if pr.stdp is None else pr.plastic_weights().nbytes
               for pr in own)
    for pr in others:
        src = spikes.get(pr.source)
        if pr.conv is not None or src is None or src.dtype != torch.bool or src.numel() == 0:
            return []  # convolutions: torch's convolution beforehand, not a dense matrix
        # numpy counts bytes ~50x faster than torch's sum of a bool tensor
        if int(np.count_nonzero(src.numpy())) >= GROUP_SUM_DENSITY * src.numel():
            return []
        size += pr.kernel_weights().nbytes
    return others if size <= GROUP_SUM_BYTES else []


def _sample_weights(pr: Proj, plan: Plan, batch: int) -> torch.Tensor:
    """Each sample's own copy of a plastic projection's weights (:meth:`Proj.plastic_weights`)."""
    return pr.plastic_weights().unsqueeze(0).repeat(batch, 1, 1).contiguous()
