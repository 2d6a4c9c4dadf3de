"""Cycles per step of a partitioned network on the multi-core RTL vs its busiest core run alone
(issue 20's target: <= 1.2x).

The network: 32 inputs -> N LIF neurons, a sparse small-world recurrence (each neuron to its
5 nearest neighbours on each side of a ring, 10% rewired; delay 1, so every core runs each step
at once: one wave), partitioned by METIS over K cores of 256 neurons / 64k weight words. The
multi-core design (hdl/snn_multi.v, Verilator) counts the cycles of each step from RUN to
done (routing, the step barrier and the polling of the cores included); each core's network
is then run alone on one core (sim/tb_snn.v, the same core RTL) with the inputs the router
gave it, and its CYCLES counter read. Both runs are checked against the fixed-point
simulator (spikes).

Run: ``python benchmarks/multicore_cycles.py [--cores 2,4] [--neurons 288] [--steps 40]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import snnkit
from snnkit.compiler import HardwareConfig
from snnkit.multicore import run_multi
from snnkit.rtl_backend import run_rtl

CORE = HardwareConfig(n_max=256, syn_max=65536)


def network(n: int, seed: int = 0, near: int = 5, rewire: float = 0.1) -> snnkit.Network:
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    mask = np.zeros((n, n), bool)
    for d in range(1, near + 1):
        for tgt in ((idx + d) % n, (idx - d) % n):
            mask[np.where(rng.random(n) < rewire, rng.integers(0, n, n), tgt), idx] = True
    np.fill_diagonal(mask, False)
    perm = rng.permutation(n)
    mask = mask[np.ix_(perm, perm)]
    net = snnkit.Network(name=f"small_world_{n}")
    net.add_input("in", 32)
    net.add_population("p", n, snnkit.LIF(beta=0.9, threshold=1.0))
    net.connect("in", "p", rng.normal(0.45, 0.2, (n, 32)), mask=rng.random((n, 32)) < 0.1)
    net.connect("p", "p", rng.normal(-0.05, 0.2, (n, n)), mask=mask, delay=1)
    return snnkit.quantize(net)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", default="2,4")
    ap.add_argument("--neurons", type=int, default=288)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args(argv)
    net = network(args.neurons)
    x = torch.as_tensor(np.random.default_rng(1).random((args.steps, 1, 32)) < 0.15)
    ref = snnkit.simulate(net, x, backend="fixed")
    rate = float(ref.spikes["p"].float().mean())
    print(f"{net.name}: {net.n_synapses:,} synapses, {100 * rate:.1f}% of neurons spike per "
          f"step, {args.steps} steps")
    ok = True
    for k in (int(c) for c in args.cores.split(",")):
        t0 = time.perf_counter()
        run = run_multi(net, x, None, "verilator", k, config=CORE)
        same = all(torch.equal(run.result.spikes[p], ref.spikes[p]) for p in ref.spikes)
        multi = sum(run.cycles_per_step[0])
        part = run.partition
        alone = []
        for core in part.cores:
            li = part.local_inputs(core.index, ref.spikes)
            r = run_rtl(core.net, li, None, "verilator", config=CORE)
            alone.append(r.cycles)
        busiest = max(alone)
        ok &= same
        print(f"K={k}: waves {part.waves}, {part.cross_synapses:,} crossing synapses; "
              f"multi-core {multi / args.steps:,.0f} cycles/step, busiest core alone "
              f"{busiest / args.steps:,.0f} (cores: "
              f"{', '.join(f'{c / args.steps:,.0f}' for c in alone)}): ratio "
              f"{multi / busiest:.2f}x; bit-exact: {same}; {time.perf_counter() - t0:.0f} s",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
