"""The text summary that ``snnkit info`` prints."""

from __future__ import annotations

import numpy as np


def _fmt(v) -> str:
    if isinstance(v, np.ndarray):
        return f"[{v.min():.4g}..{v.max():.4g}]" if v.size else "[]"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def summarize(net) -> str:
    """The table of ``net`` (a :class:`~snnkit.Network`): populations, projections, memory."""
    q = net.quantization
    wbits = q.weight_bits if q is not None else 8
    lines = [f"Network {net.name or '(unnamed)'}  dt={net.dt:g} s",
             f"  {len(net.populations)} populations, {net.n_inputs} inputs, "
             f"{net.n_neurons} neurons, {len(net.projections)} projections, "
             f"{net.n_synapses} synapses",
             "", "Populations (update order; global index = offset + i):",
             f"  {'#':>2} {'name':<12} {'size':>6} {'offset':>7}  model / parameters"]
    for i, p in enumerate(net.populations):
        if p.is_input:
            desc = f"input ({p.encoding})"
        else:
            n = p.neuron
            params = " ".join(f"{k}={_fmt(getattr(n, k))}" for k in n.param_names()
                              if k not in ("v_init",) and not (k.startswith("adapt") and
                                                               not np.any(getattr(n, k))))
            desc = f"{n.model}  reset={n.reset} refractory={n.refractory} {params}"
        if p.shape is not None:
            desc += f"  shape {'x'.join(map(str, p.shape))}"
        lines.append(f"  {i:>2} {p.name:<12} {p.size:>6} {net.offset(p.name):>7}  {desc}")
    lines += ["", "Projections:",
              f"  {'#':>2} {'source->target':<22} {'synapses':>9} {'delay':>5}  "
              "weights / plasticity"]
    for i, pr in enumerate(net.projections):
        w = pr.weight if pr.conv is not None else pr.weight[pr.connections()]
        # (+ 0.0: a -0.0 prints as 0)
        rng = f"w in [{w.min() + 0.0:.4g}, {w.max() + 0.0:.4g}]" if w.size else "no synapses"
        if pr.conv is not None:
            c = pr.conv
            rng = (f"conv {'x'.join(map(str, pr.weight.shape))} kernel ({pr.weight.size} "
                   f"shared weights) stride {c.stride} padding {c.padding}"
                   + (f" dilation {c.dilation}" if c.dilation != (1, 1) else "")
                   + (f" groups {c.groups}" if c.groups != 1 else "") + f", {rng}")
        stdp = ""
        if pr.stdp is not None:
            s = pr.stdp
            stdp = (f"  STDP {s.rule}/{s.bounds} a+={s.a_plus:g} a-={s.a_minus:g}"
                    f"{'' if s.enabled else ' (disabled)'}")
        lines.append(f"  {i:>2} {pr.name:<22} {pr.n_synapses:>9} {pr.delay:>5}  {rng}{stdp}")
    # what the network stores: a convolution its kernel once, other projections a weight per
    # synapse (the core stores more: a word per source-target pair, which compile reports)
    convs = [pr for pr in net.projections if pr.conv is not None]
    kernels = sum(pr.weight.size for pr in convs)
    stored = net.n_synapses - sum(pr.n_synapses for pr in convs) + kernels
    mem = stored * wbits
    lines += ["", f"Weight memory: {stored} weights x {wbits} bits = {mem} bits "
                  f"({mem / 8 / 1024:.1f} KiB)" + ("" if q else " (default 8-bit weights)")]
    if convs:
        lines.append(f"  of which {kernels} in convolution kernels, shared by "
                     f"{sum(pr.n_synapses for pr in convs)} synapses (the core stores a word "
                     f"per source-target pair: snnkit compile reports its words)")
    if q is not None:
        lines.append("Quantization: " + ", ".join(f"{k}={getattr(q, k)}" for k in q.LIMITS))
    return "\n".join(lines)
