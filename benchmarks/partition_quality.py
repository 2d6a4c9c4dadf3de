"""Partition quality: synapses crossing cores, METIS vs in-order fill, on a 1,000-neuron
small-world network (issue 20's target: report both).

The network: a Watts-Strogatz ring (each neuron connects to its 10 nearest neighbours on each
side, each synapse rewired to a random neuron with probability 0.1: locally dense, globally
sparse), one recurrent projection with delay 1, 32 inputs (2 per neuron). The neurons' index
order is shuffled ("as built": nothing in the order says who is near whom); the ring order
("lattice") is reported too, where in-order fill is close to the best cut by construction.
For each placement: crossing synapses, the proxies the cores need, and whether every core fits
the standard core (256 neurons incl. inputs and proxies, 16k weight words). One placement is
checked exactly: each core run by the fixed-point simulator on its routed inputs equals the
whole network, spike for spike.

Run: ``python benchmarks/partition_quality.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import snnkit
from snnkit.allocators import InOrder, Metis, NeuronGraph
from snnkit.compiler import HardwareConfig

N, K_NEAR, P_REWIRE, N_IN = 1000, 10, 0.1, 32


def small_world(shuffle: bool, seed: int = 0) -> snnkit.Network:
    rng = np.random.default_rng(seed)
    idx = np.arange(N)
    mask = np.zeros((N, N), bool)  # [target, source]
    for d in range(1, K_NEAR + 1):
        for src, tgt in ((idx, (idx + d) % N), (idx, (idx - d) % N)):
            tgt = np.where(rng.random(N) < P_REWIRE, rng.integers(0, N, N), tgt)
            mask[tgt, src] = True
    np.fill_diagonal(mask, False)
    if shuffle:
        perm = rng.permutation(N)
        mask = mask[np.ix_(perm, perm)]
    net = snnkit.Network(name="small_world" + ("" if shuffle else "_lattice"))
    net.add_input("in", N_IN)
    net.add_population("p", N, snnkit.LIF(beta=0.9, threshold=1.0))
    in_mask = np.zeros((N, N_IN), bool)
    in_mask[idx, rng.integers(0, N_IN, N)] = True
    in_mask[idx, rng.integers(0, N_IN, N)] = True
    net.connect("in", "p", 0.6, mask=in_mask)
    net.connect("p", "p", rng.normal(0.0, 0.1, (N, N)), mask=mask, delay=1)
    return snnkit.quantize(net)[0]


def placement_row(net, alloc, cores):
    g = NeuronGraph.of(net)
    t0 = time.perf_counter()
    core = alloc.place(g, cores)
    secs = time.perf_counter() - t0
    cross = g.crossings(core)
    try:
        part = snnkit.partition(net, cores, HardwareConfig(), allocator=alloc)
        proxies = sum(s.indices.size for c in part.cores for s in c.sources.values() if s.proxy)
        fits = "yes"
    except snnkit.NetworkError as e:
        big = snnkit.partition(net, cores, HardwareConfig(n_max=4096, syn_max=1 << 22),
                               allocator=alloc)
        proxies = sum(s.indices.size for c in big.cores for s in c.sources.values() if s.proxy)
        fits = "no: " + str(e).split(":", 1)[1].split(";")[0].strip()
    return cross, g.src.size, proxies, fits, secs


def smallest_fit(net, alloc, limit: int = 64):
    """The fewest standard cores (256 neurons incl. inputs and proxies) that hold ``net``."""
    for k in range(4, limit + 1):
        try:
            snnkit.partition(net, k, HardwareConfig(), allocator=alloc)
            return k
        except snnkit.NetworkError:
            continue
    return None


def check_exact(net, cores):
    x = torch.as_tensor(np.random.default_rng(1).random((50, 1, N_IN)) < 0.2)
    ref = snnkit.simulate(net, x, backend="fixed")
    part = snnkit.partition(net, cores, HardwareConfig())
    res = [snnkit.simulate(c.net, part.local_inputs(c.index, ref.spikes), backend="fixed")
           for c in part.cores]
    got = part.merge({"in": x}, res, "fixed")
    same = torch.equal(got.spikes["p"], ref.spikes["p"])
    return same, int(ref.spikes["p"].sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", default="4,8,16", help="comma-separated core counts")
    args = ap.parse_args(argv)
    print(f"{'network':<20} {'K':>2} {'allocator':<9} {'crossing synapses':>22} "
          f"{'proxies':>8}  fits 256-neuron cores   place s")
    for shuffle in (True, False):
        net = small_world(shuffle)
        for k in (int(c) for c in args.cores.split(",")):
            rows = {}
            for alloc in (InOrder(), Metis()):
                cross, total, prox, fits, secs = placement_row(net, alloc, k)
                rows[alloc.name] = cross
                print(f"{net.name:<20} {k:>2} {alloc.name:<9} {cross:>8,} of {total:,} "
                      f"({100 * cross / total:4.1f}%) {prox:>8}  {fits:<22} {secs:7.3f}")
            print(f"{'':<20} {'':>2} METIS / in-order: {rows['metis'] / rows['in_order']:.3f}")
    net = small_world(True)
    fits = {a.name: smallest_fit(net, a) for a in (InOrder(), Metis())}
    print(f"fewest standard cores holding the shuffled network: {fits}")
    same, n = check_exact(net, fits["metis"])
    print(f"exactness ({fits['metis']} cores, METIS, 50 steps, {n} spikes): "
          f"partitioned == whole: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
