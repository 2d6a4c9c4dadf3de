"""ANN -> SNN conversion cost of a 32x32 CNN: time and peak memory of ``snnkit.convert``.

The model (random weights, seed 0; the cost does not depend on training): 3x32x32 input,
Conv(3->16, 3x3, pad 1) + BatchNorm + ReLU, AvgPool 2, Conv(16->32, 3x3, pad 1) + ReLU,
AvgPool 2, Flatten, Linear(2048 -> 10). Converted in rate mode (per layer and per channel)
and in lossless mode (the same model with QCFS activations, L = 8). Each conversion runs in a
fresh process; "peak MB" is that process's peak resident memory above what it held before
converting (torch and snnkit imported, model built). Also printed: the projections the
network got (conv / dense), its synapse count and, with ``--check``, whether the fixed-point
simulator's spikes equal those of the same network with every convolution expanded to a
dense matrix (bit for bit; the expanded network needs ~1 GB).

    .venv/bin/python benchmarks/convert_scale.py [--size 32] [--check]

Prints a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CASES = ("rate", "rate-per-channel", "lossless")


def model(size: int, qcfs_levels: int = 0):
    import torch
    from torch import nn

    from snnkit.qcfs import QCFS

    def act(lam):
        return QCFS(qcfs_levels, lam) if qcfs_levels else nn.ReLU()

    torch.manual_seed(0)
    bn = nn.BatchNorm2d(16)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
    layers = [nn.Conv2d(3, 16, 3, padding=1), bn, act(2.0), nn.AvgPool2d(2),
              nn.Conv2d(16, 32, 3, padding=1), act(2.0), nn.AvgPool2d(2),
              nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 10)]
    if qcfs_levels:
        layers.append(act(4.0))
    return nn.Sequential(*layers).eval()


def one(case: str, size: int, check: bool) -> dict:
    """Convert once in this process: seconds, peak memory added, what the network holds."""
    import numpy as np

    from snnkit.convert import convert

    rng = np.random.default_rng(0)
    calib = np.floor(rng.random((64, 3, size, size)) * 17) / 16
    m = model(size, 8 if case == "lossless" else 0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    conv = convert(m, calib, mode="lossless" if case == "lossless" else "rate",
                   per_channel=case == "rate-per-channel")
    sec = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    net = conv.network
    out = {"case": case, "seconds": sec, "peak_mb": (peak - base) / 1024,
           "conv": sum(p.conv is not None for p in net.projections),
           "dense": sum(p.conv is None for p in net.projections),
           "synapses": net.n_synapses, "stored": sum(p.weight.size for p in net.projections)}
    if check:
        out["equal"] = _equal_to_dense(conv, calib[:8])
    return out


def _equal_to_dense(conv, x) -> bool:
    """Fixed-point spikes of the network equal those of its dense expansion, bit for bit."""
    import copy

    import torch

    from snnkit.simulator import simulate

    dense = copy.deepcopy(conv.network)
    dense.projections = []
    for pr in conv.network.projections:
        dense.connect(pr.source, pr.target, pr.dense_weight(), delay=pr.delay)
    inp = conv.encode(x)
    a = simulate(conv.network, inp, conv.steps, "fixed")
    b = simulate(dense, inp, conv.steps, "fixed")
    return all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    p.add_argument("--check", action="store_true",
                   help="compare the fixed-point spikes with the dense expansion's")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.size, args.check)))
        return
    print("| case | seconds | peak MB | projections conv / dense | synapses | stored weights |"
          + (" fixed spikes = dense |" if args.check else ""))
    print("|---|---|---|---|---|---|" + ("---|" if args.check else ""))
    for case in args.cases:
        cmd = [sys.executable, __file__, "--one", case, "--size", str(args.size)]
        res = subprocess.run(cmd + (["--check"] if args.check else []), capture_output=True,
                             text=True, env=os.environ)
        if res.returncode:
            print(f"| {case} | failed: {res.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"| {case} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['conv']} / {r['dense']} "
              f"| {r['synapses']:,} | {r['stored']:,} |"
              + (f" {r['equal']} |" if args.check else ""), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
