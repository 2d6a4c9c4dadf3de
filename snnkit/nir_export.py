"""Export of a Network as a NIR graph (the Neuromorphic Intermediate Representation).

Time constants are the forward-Euler reading of the per-step decays, and snnkit's exact
values ride along in ``snnkit_*`` metadata so that :func:`snnkit.from_nir` restores the
network exactly (docs/nir.md), with a digest of the whole graph (:mod:`snnkit.nir_digest`)
that shows a damaged file; what NIR cannot express is listed in one
:class:`~snnkit.nir_report.NIRApproximationWarning`.
"""

from __future__ import annotations

import numpy as np

from . import nir_digest
from .errors import NetworkError
from .network import Network
from .nir_linear import ConvOp
from .nir_report import NIRApproximationWarning, Note, warn

__all__ = ["to_nir", "NIRApproximationWarning"]


def to_nir(net: Network):
    """Describe ``net`` as a NIR graph (forward-Euler reading of the time constants).

    Each projection becomes an Affine/Linear node (plus a Delay node when its delay is not the
    implicit one step of a self-loop); LIF becomes ``LIF`` with ``r = 1`` (the weights carry
    ``1/(1-beta)``), CubaLIF becomes ``CubaLIF`` with ``r = tau_mem/dt``, ``w_in = tau_syn/dt``
    (unit gain), IF becomes ``IF``. snnkit's exact values ride along in ``snnkit_*`` metadata
    so that :func:`from_nir` restores the network exactly. What NIR cannot express (reset by
    subtraction, refractory period, threshold adaptation, initial potential, plasticity,
    quantisation) is listed in one :class:`NIRApproximationWarning`.

    Returns
    -------
    nir.NIRGraph

    Raises
    ------
    NetworkError : a leak or decay that has no finite time constant (CubaLIF with beta = 1),
        or no neuron population
    """
    import nir

    if not net.neuron_populations:  # a graph of inputs alone: NIR has nothing to run
        raise NetworkError("to_nir: the network has no neuron population to export")
    notes: list[Note] = []
    nodes, edges, gains = {}, [], {}
    for i, pop in enumerate(net.populations):
        if pop.is_input:
            nodes[pop.name] = nir.Input(input_type={"input": np.array(pop.shape or [pop.size])},
                                        metadata={"snnkit_index": i,
                                                  "snnkit_encoding": pop.encoding})
        else:
            nodes[pop.name], gains[pop.name] = _export_neuron(net, pop, i, notes,
                                                              _nir_shape(net, pop))
    for i, pr in enumerate(net.projections):
        _export_projection(net, i, pr, gains[pr.target], nodes, edges)
        if pr.stdp is not None:
            notes.append(Note(pr.name, "stdp", "plasticity is not part of NIR; dropped", False))
    sources = {pr.source for pr in net.projections}
    sinks = [p for p in net.neuron_populations if p.name not in sources] or \
        net.neuron_populations[-1:]
    for p in sinks:
        key = "output" if len(sinks) == 1 else f"output_{p.name}"
        while key in nodes:  # a population may have the name (snnkit.convert's "output")
            key = f"_{key}"
        nodes[key] = nir.Output(output_type={"output": np.array(p.shape or [p.size])})
        edges.append((p.name, key))
    if net.quantization is not None:
        notes.append(Note("network", "quantization", "not part of NIR; dropped", False))
    warn(notes, "NIR export: not representable in NIR", 2)
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"snnkit_dt": net.dt})
    graph.metadata[nir_digest.KEY] = nir_digest.digest(graph)  # a file's damage shows
    return graph


def _nir_shape(net, pop) -> tuple | None:
    """The [C, H, W] a population has in NIR: its own, unless a dense projection targets it
    (NIR checks shapes along edges and has no node that unflattens)."""
    dense_in = any(pr.conv is None for pr in net.incoming(pop.name))
    return None if pop.shape is None or dense_in and not pop.is_input else pop.shape


def _export_neuron(net, pop, index, notes, nir_shape):
    """The NIR neuron node and the gain its incoming weights must be divided by."""
    import nir

    n, dt, nrn = pop.size, net.dt, pop.neuron
    shape = nir_shape or (n,)  # NIR checks that a node's shape is its input's
    d = {k: np.asarray(v, np.float64).reshape(shape) for k, v in nrn.dynamics(n).items()}
    meta = {"snnkit_index": index, "snnkit_model": nrn.model, "snnkit_reset": nrn.reset,
            "snnkit_refractory": np.array(nrn.refractory, np.int64) if np.ndim(nrn.refractory)
            else int(nrn.refractory)}
    meta.update({f"snnkit_{f}": np.array(getattr(nrn, f), np.float64) if np.ndim(getattr(
        nrn, f)) else float(getattr(nrn, f)) for f in nrn.param_names()})
    v_reset = d["v_reset"] if nrn.reset == "value" else np.zeros(shape)
    _export_notes(pop, nrn, d, notes, bool(net.incoming(pop.name)))
    thr = _inclusive_to_strict(d["threshold"])
    if nrn.model == "cuba_lif":
        if np.any(d["beta"] >= 1) or np.any(d["alpha"] >= 1):
            raise NetworkError(f"population {pop.name!r}: CubaLIF with alpha or beta = 1 has no "
                               f"finite time constant; NIR cannot describe it")
        tm, ts = dt / (1 - d["beta"]), dt / (1 - d["alpha"])
        node = nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / dt, v_leak=d["bias"] / (1 - d["beta"]),
                           v_threshold=thr, v_reset=v_reset, w_in=ts / dt, metadata=meta)
        return node, np.ones(n)
    if nrn.model == "lif" and np.all(d["beta"] < 1):
        tau = dt / (1 - d["beta"])
        node = nir.LIF(tau=tau, r=np.ones(shape), v_leak=d["bias"] / (1 - d["beta"]),
                       v_threshold=thr, v_reset=v_reset, metadata=meta)
        return node, (1 - d["beta"]).reshape(-1)
    if nrn.model == "lif" and np.any(d["beta"] < 1):
        raise NetworkError(f"population {pop.name!r}: mixes beta = 1 and beta < 1; NIR needs one "
                           f"node type per population")
    if np.any(d["bias"] != 0):
        meta["snnkit_if_bias"] = d["bias"].reshape(-1)
    return nir.IF(r=np.ones(shape), v_threshold=thr, v_reset=v_reset, metadata=meta), np.ones(n)


def _export_notes(pop, nrn, d, notes, fed: bool) -> None:
    def add(param, msg):
        notes.append(Note(pop.name, param, msg, False))

    if nrn.reset == "subtract":
        add("reset", "reset by subtraction is not in NIR; written as reset to 0")
    if nrn.reset == "delayed":
        add("reset", "the delayed reset (snntorch's) is not in NIR; written as reset to 0 "
            "(from_nir(..., convention='snntorch') reads it back)")
    if np.any(nrn.refractory):
        add("refractory", f"{_steps(nrn.refractory)} refractory steps are not in NIR; dropped")
    if np.any(d["adapt_plus"] != 0):
        add("adapt_plus", "threshold adaptation is not in NIR; dropped")
    if np.any(d["v_init"] != 0):
        add("v_init", "initial membrane potential is not in NIR; dropped")
    if nrn.model != "cuba_lif" and np.all(d["beta"] >= 1) and np.any(d["bias"] != 0) \
            and not fed:
        add("bias", "IF bias without an incoming projection has no NIR node to sit on; "
            "kept in snnkit metadata only")


def _export_projection(net, i, pr, gain, nodes, edges) -> None:
    import nir

    meta = {"snnkit_weight": pr.weight.copy()}
    if pr.mask is not None:
        meta["snnkit_mask"] = pr.mask.copy()
    key = f"proj{i}_{pr.source}_{pr.target}"
    first = next(j for j, p in enumerate(net.projections) if p.target == pr.target)
    if_bias = nodes[pr.target].metadata.get("snnkit_if_bias")
    bias = if_bias / gain if if_bias is not None and first == i else None
    src, tgt = net.population(pr.source), net.population(pr.target)
    src_shape, tgt_shape = _nir_shape(net, src), _nir_shape(net, tgt)
    conv = _export_conv(pr, gain, bias, meta) if src_shape else None
    if conv is not None:
        nodes[key] = conv
    elif bias is not None:
        nodes[key] = nir.Affine(weight=pr.dense_weight() / gain[:, None], bias=bias,
                                metadata=meta)
    else:
        nodes[key] = nir.Linear(weight=pr.dense_weight() / gain[:, None], metadata=meta)
    if conv is None and src_shape:  # NIR checks shapes along edges: flatten first
        nodes[f"flat{i}_{pr.source}"] = nir.Flatten(input_type={"input": np.array(src_shape)},
                                                        start_dim=0)
        edges += [(pr.source, f"flat{i}_{pr.source}"), (f"flat{i}_{pr.source}", key)]
    else:
        edges.append((pr.source, key))
    if conv is not None and not tgt_shape:
        nodes[f"flat{i}_{key}"] = nir.Flatten(
            input_type={"input": np.array(pr.conv.out_shape)}, start_dim=0)
        edges.append((key, f"flat{i}_{key}"))
        key = f"flat{i}_{key}"
    implicit = pr.source == pr.target and pr.delay == 1
    if pr.delay and not implicit:
        dkey = f"delay{i}_{pr.source}_{pr.target}"
        nodes[dkey] = nir.Delay(delay=np.full(tgt_shape or (tgt.size,), pr.delay * net.dt))
        edges += [(key, dkey), (dkey, pr.target)]
    else:
        edges.append((key, pr.target))


def _export_conv(pr, gain, bias, meta):
    """A convolution projection as a NIR Conv2d; None (a dense Linear instead, with the
    kernel in metadata) when the input gain or the bias differ inside an output channel."""
    import nir

    if pr.conv is None:
        return None
    c = pr.conv
    per = [np.asarray(v).reshape(c.out_shape[0], -1) for v in (gain, 0 * gain if bias is None
                                                              else bias)]
    if any(np.any(v != v[:, :1]) for v in per):
        return None
    g, b = per[0][:, 0], per[1][:, 0]
    # nir 1.0 types a grouped Conv2d's input by C_in/groups channels and then refuses its own
    # file: a grouped convolution is written with its full kernel (zeros between groups)
    w = ConvOp(c, pr.weight).full_kernel()
    return nir.Conv2d(input_shape=c.in_shape[1:], weight=w / g[:, None, None, None],
                      stride=c.stride, padding=c.padding, dilation=c.dilation, groups=1,
                      bias=b, metadata=meta)


def _inclusive_to_strict(thr: np.ndarray) -> np.ndarray:
    """The float32 threshold t' with ``v > t'`` exactly when ``v >= thr`` (v in float32)."""
    return np.nextafter(thr.astype(np.float32), np.float32(-np.inf)).astype(np.float64)


def _steps(r) -> str:
    r = np.asarray(r)
    return f"{r.min()}..{r.max()}" if r.size > 1 and r.min() != r.max() else str(r.flat[0])
