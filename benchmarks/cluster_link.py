"""Link use of a Cluster: one network over two emulated boards, the host routing spikes
each step (issue 20: "bandwidth per step reported").

The network of benchmarks/multicore_cycles.py (288 LIF neurons, sparse small-world
recurrence with delay 1, 32 inputs; too big for one 256-neuron core), partitioned by METIS
over two emulated boards (Verilated hdl/host_top.v behind sockets). Per network step: the
bytes of the RUN frames both ways (all boards), the spikes routed from board to board, and
the wall time of a step (host software, two sockets, the emulators' simulated UART at 4
clocks per bit). The result is checked against the fixed-point simulator.

Run: ``python benchmarks/cluster_link.py [--steps 40]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from multicore_cycles import CORE, network

import snnkit
from snnkit.cluster import Cluster
from snnkit.emulated_board import running


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args(argv)
    net = network(288)
    x = torch.as_tensor(np.random.default_rng(1).random((args.steps, 1, 32)) < 0.15)
    ref = snnkit.simulate(net, x, backend="fixed")
    with running(CORE) as (a, _), running(CORE) as (b, _), Cluster([a, b]) as cluster:
        part = cluster.load(net)
        t0 = time.perf_counter()
        res = cluster.run(x)
        dt = time.perf_counter() - t0
        link = cluster.link
    same = all(torch.equal(res.spikes[p], ref.spikes[p]) for p in ref.spikes)
    spikes = int(ref.spikes["p"].sum()) / args.steps
    ins = int(ref.spikes["in"].sum()) / args.steps
    print(f"{net.name} on 2 boards: waves {part.waves}, {part.cross_synapses} crossing "
          f"synapses; per step {ins:.1f} input and {spikes:.1f} output spikes")
    print(f"{link}; {1e3 * dt / args.steps:.1f} ms per step; equal to the simulator: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
