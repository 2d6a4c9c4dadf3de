"""Emulator core cycles per step, and simulated cycles per second under Verilator vs Icarus.

A 256-neuron network (64 inputs -> 128 hidden with recurrence -> 64 outputs) runs at about
5% activity. The core's own counters give cycles per step and synaptic events per step; the
model ``cycles ~ events/lanes + neurons/lanes`` is checked against them (lanes = 1 in this
version). Then the same run is timed on both simulators (builds excluded).

Usage: python benchmarks/hdl_cycles.py [--steps 200]
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

import snnkit
from snnkit.compiler import estimate_cycles
from snnkit.rtl_backend import run_rtl


def network(seed: int = 0) -> snnkit.Network:
    rng = np.random.default_rng(seed)
    net = snnkit.Network(quantization=snnkit.Quantization(frac_bits=6))
    net.add_input("in", 64)
    net.add_population("hid", 128, snnkit.LIF(beta=0.9, threshold=1.0))
    net.add_population("out", 64, snnkit.LIF(beta=0.9, threshold=1.0))
    net.connect("in", "hid", rng.normal(0.2, 0.3, (128, 64)).clip(-1.9, 1.9))
    net.connect("hid", "hid", rng.normal(-0.12, 0.15, (128, 128)).clip(-1.9, 1.9), delay=1)
    net.connect("hid", "out", rng.normal(-0.03, 0.2, (64, 128)).clip(-1.9, 1.9))
    return net


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args(argv)
    net = network()
    x = torch.from_numpy(np.random.default_rng(1).random((args.steps, 1, 64)) < 0.05)
    rows = {}
    for backend in ("verilator", "icarus"):
        run = run_rtl(net, x, args.steps, backend)  # builds (cached) on the first call
        run = run_rtl(net, x, args.steps, backend)  # timed without the build
        rows[backend] = run
    ref = snnkit.simulate(net, x, backend="fixed")
    r = rows["verilator"].result
    assert all(torch.equal(ref.spikes[k], r.spikes[k]) for k in ref.spikes), "RTL != fixed"
    spikes = sum(int(r.spikes[p.name].sum()) for p in net.populations)
    n_all = net.n_inputs + net.n_neurons
    activity = spikes / (args.steps * n_all)
    run = rows["verilator"]
    cyc, ev = run.cycles / args.steps, run.syn_events / args.steps
    model = ev + net.n_neurons
    print(f"# hdl_cycles: {platform.processor() or platform.machine()}, "
          f"{args.steps} steps, {n_all} neurons incl. inputs, lanes = 1")
    print(f"activity {100 * activity:.1f}% of neurons per step, {ev:.0f} synaptic events/step")
    per_pop = {p.name: float(r.spikes[p.name].float().mean()) for p in net.populations}
    print(f"cycles/step {cyc:.0f}; events/lanes + neurons/lanes = {model:.0f}; "
          f"ratio {cyc / model:.2f}; compiler estimate at this activity "
          f"{estimate_cycles(net, per_pop):.0f}")
    for backend, run in rows.items():
        print(f"{backend:9s}: {run.cycles:,} cycles in {run.sim_seconds:.2f} s = "
              f"{run.cycles / run.sim_seconds:,.0f} simulated cycles/s")
    v, i = (rows[b].cycles / rows[b].sim_seconds for b in ("verilator", "icarus"))
    print(f"Verilator / Icarus speed: {v / i:.1f}x")
    stdp_cycles(x, args.steps)


def stdp_cycles(x: torch.Tensor, steps: int) -> None:
    """The same network with STDP on in -> hid (64 x 128 synapses): cycles per step of the
    event-driven pass against the dense pass (every synapse, every step) at the same activity
    (the compiler's exact count of the dense pass)."""
    net = network()
    net.projections[0].stdp = snnkit.STDP(a_plus=0.01, a_minus=0.012, w_min=-1.9, w_max=1.9)
    run = run_rtl(net, x, steps, "verilator", record=("weights",))
    ref = snnkit.simulate(net, x, backend="fixed", record=("weights",))
    r = run.result
    assert all(torch.equal(ref.spikes[k], r.spikes[k]) for k in ref.spikes), "RTL != fixed"
    assert all(torch.equal(ref.weights[k], r.weights[k]) for k in ref.weights), "weights differ"
    per_pop = {p.name: float(r.spikes[p.name].float().mean()) for p in net.populations}
    cyc = run.cycles / steps
    dense = estimate_cycles(net, per_pop, steady=False)
    print(f"STDP on in -> hid: cycles/step {cyc:.0f} (event driven; weights equal the fixed "
          f"point); dense pass at this activity {dense:.0f} -> {dense / cyc:.1f}x fewer")


if __name__ == "__main__":
    main()
