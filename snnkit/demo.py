"""``snnkit demo``: the first thing a new user runs.

This first version builds a small network, feeds sklearn's digits to it as Poisson spikes,
simulates it in float and in the hardware's fixed point, prints spike counts and writes a
raster PNG. (The full demo — convert, emulate, deploy, learn — grows from here.)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _digits(n: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[:n] / 16.0, d.target[:n]


def build_network(seed: int = 0):
    """64 inputs -> 100 CUBA LIF neurons (with lateral inhibition) -> 10 LIF neurons."""
    from .network import LIF, CubaLIF, Network

    rng = np.random.default_rng(seed)
    net = Network(dt=1e-3, name="demo")
    net.add_input("pixels", 64)
    net.add_population("hidden", 100, CubaLIF(alpha=0.7, beta=0.9, threshold=1.0, refractory=2))
    net.add_population("out", 10, LIF(beta=0.9, threshold=1.0))
    net.connect("pixels", "hidden", rng.normal(0.15, 0.2, (100, 64)))
    net.connect("hidden", "hidden", -0.1 * (1 - np.eye(100)), delay=1)  # lateral inhibition
    net.connect("hidden", "out", rng.normal(0.05, 0.1, (10, 100)))
    return net


def main(args) -> int:
    from . import encoders, plot
    from .simulator import simulate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n, steps = (16, 50) if args.quick else (128, 100)
    x, y = _digits(n)
    net = build_network()
    net.save(out / "demo.snn")
    print(net.summary(), "\n")
    spikes = encoders.poisson(x * 0.5, steps, seed=1)
    print(f"{n} digits as Poisson spikes, {steps} steps, batch {n}")
    rows = []
    for backend in ("float", "fixed"):
        t0 = time.perf_counter()
        res = simulate(net, spikes, steps, backend=backend, record=("v",), progress=True)
        dt = time.perf_counter() - t0
        counts = {k: int(v.sum()) for k, v in res.spikes.items()}
        rows.append((backend, counts, dt))
        if backend == "float":
            plot.raster(res, out / "raster.png", title=f"digit {y[0]}: spike raster (float)")
            plot.membrane(res, out / "membrane.png", "hidden", neurons=(0, 1, 2), threshold=1.0)
    print(f"\n{'backend':<8} " + " ".join(f"{k:>10}" for k in rows[0][1]) + f" {'time':>8}")
    for backend, counts, dt in rows:
        print(f"{backend:<8} " + " ".join(f"{v:>10}" for v in counts.values()) + f" {dt:>7.2f}s")
    print(f"\nwrote {out / 'demo.snn'}, {out / 'raster.png'}, {out / 'membrane.png'}")
    return 0
