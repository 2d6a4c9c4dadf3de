"""Network features the core lacks, rewritten into ones it has, with the same integers.

The compiler runs every network through :func:`lower_for_core` first. Today one feature needs
it: snntorch's delayed reset (``reset="delayed"``). Its fixed-point definition
(docs/fixed-point.md, :func:`snnkit.neurons.delayed_reset_inputs`) is a reset by subtraction
plus an input ``c1`` one step after each spike (and ``c2`` two steps after, for CubaLIF);
the core has the reset by subtraction and delivers such inputs as synapses, so the lowered
network has ``reset="subtract"`` and a diagonal self-projection per nonzero input (delay 1 and
2, weights ``c1`` and ``c2`` in LSB). The core runs it bit for bit as the fixed-point
simulator runs the original. The cost: the core stores every projection as a dense
``source x target`` block, so each self-projection takes ``n * n`` weight words (n the
population's size; n for its ``n`` synapses on a core with sparse projections), one
projection-table entry, and a delay of up to 2 steps.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

from .errors import NetworkError
from .network import Network
from .quantize import delayed_reset_weights, integer_neuron


def lower_for_core(net: Network) -> Network:
    """``net`` (quantised) in the core's features; ``net`` itself when nothing needs lowering.

    The lowered copy has the same populations and the same projections at the same indices
    (the self-projections are appended), so weights read back and spike addresses mean the
    same in both.

    Raises
    ------
    NetworkError : a delayed reset's self-synapse weight does not fit the weights' width
    """
    delayed = [p for p in net.neuron_populations if p.neuron.reset == "delayed"]
    if not delayed:
        return net
    q = net.quantization
    if q is None:
        raise NetworkError("lowering: the network must be quantised first (snnkit.quantize)")
    out = copy.copy(net)
    out.populations = [copy.copy(p) for p in net.populations]
    out.projections = list(net.projections)
    lo, hi = -(1 << (q.weight_bits - 1)), (1 << (q.weight_bits - 1)) - 1
    for pop in out.populations:
        if pop.is_input or pop.neuron.reset != "delayed":
            continue
        where = f"populations[{net.index_of(pop.name)}] ({pop.name}).neuron.reset"
        cs = delayed_reset_weights(integer_neuron(net, pop, q), q)
        pop.neuron = copy.copy(pop.neuron)
        pop.neuron.reset = "subtract"
        for delay, c in enumerate(cs, start=1):
            if not np.any(c):
                continue
            if c.min() < lo or c.max() > hi:
                raise NetworkError(
                    f"{where}: 'delayed' runs on the core as a self-projection of weight "
                    f"{int(c.min() if c.min() < lo else c.max())} LSB (delay {delay}), which "
                    f"does not fit {q.weight_bits}-bit weights; quantise with fewer frac_bits "
                    f"(snnkit.quantize picks a format that fits)")
            out.connect(pop.name, pop.name, np.diag(c * 2.0 ** -q.frac_bits),
                        mask=np.eye(pop.size, dtype=bool), delay=delay)
    return out


class CoreCost(NamedTuple):
    """What lowering adds at most, for sizing a core before quantising."""

    words: int  # weight words
    projections: int
    delay: int  # the largest delay


def core_cost(net: Network) -> CoreCost:
    """An upper bound of what :func:`lower_for_core` adds to ``net`` (quantised or not):
    a self-projection where ``beta < 1`` (``c1``), another where there is also a synaptic
    current (``c2``)."""
    words = projs = delay = 0
    for pop in net.neuron_populations:
        if pop.neuron.reset != "delayed":
            continue
        d = pop.neuron.dynamics(pop.size)
        k = int(np.any(d["beta"] < 1)) * (1 + int(np.any(d["alpha"] > 0)))
        words, projs, delay = words + k * pop.size ** 2, projs + k, max(delay, k)
    return CoreCost(words, projs, delay)
