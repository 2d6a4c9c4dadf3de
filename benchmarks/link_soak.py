"""Link soak: many load / run / read-weights cycles with default Device settings through a
fault-injecting proxy (snnkit.lossy_proxy: each byte flipped, dropped or duplicated with
probability rate / 3 each, both ways) in front of the emulated board.

Every operation's outcome is counted: completed with the right answer (spikes and on-chip
STDP weights equal to the fixed-point simulator's, bit for bit), failed loudly (a
DeviceError), or silently wrong (an answer that differs: must be 0). Throughput is
operations per second against the same cycles on a clean link (rate 0) in the same run.

Usage: python benchmarks/link_soak.py [--cycles 100 100 100 40] [--rates 0 0.001 0.01 0.03]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import snnkit
from snnkit.compiler import HardwareConfig
from snnkit.device import Device
from snnkit.emulated_board import running
from snnkit.lossy_proxy import LossyProxy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import make_net  # noqa: E402 - the fixture network of the test suite

STEPS = 20


def workload():
    """The network (STDP on its first projection, as the board runs it) and input sets with
    the fixed-point simulator's answers."""
    net = snnkit.quantize(make_net(3, stdp=True, per_neuron=False))[0]
    cases = []
    for seed in range(8):
        x = np.random.default_rng(seed).random((STEPS, 1, 12)) < 0.3
        cases.append((x, snnkit.simulate(net, x, backend="fixed")))
    return net, cases


def same(res, ref) -> bool:
    return all(torch.equal(res.spikes[k], ref.spikes[k]) for k in ref.spikes) and \
        all(torch.equal(res.weights[k], ref.weights[k]) for k in ref.weights)


def soak(url: str, net, cases, cycles: int, rate: float, seed: int) -> dict:
    out = {"completed": 0, "loud": 0, "silent": 0, "ops": 0}

    def op(fn, check):
        out["ops"] += 1
        try:
            ok = check(fn())
        except snnkit.DeviceError as e:
            out["loud"] += 1
            out.setdefault("errors", []).append(str(e)[:90])
            return None
        out["completed" if ok else "silent"] += 1
        return ok

    with LossyProxy(url, rate=rate, seed=seed) as proxy:
        t0 = time.perf_counter()
        with Device(proxy.url) as dev:
            for c in range(cycles):
                x, ref = cases[c % len(cases)]
                if op(lambda: dev.load(net), lambda r: True) is None:
                    continue
                if op(lambda x=x: dev.run(x), lambda r, ref=ref: same(r, ref)) is None:
                    continue
                last = ref.weights["in->a"][-1]
                op(dev.read_weights, lambda w, last=last: torch.equal(w["in->a"], last))
            out["stats"] = dict(dev.stats)
        out["seconds"] = time.perf_counter() - t0
        out["faults"] = proxy.faults
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.001, 0.01, 0.03])
    ap.add_argument("--cycles", type=int, nargs="+", default=[100, 100, 100, 40],
                    help="load/run/read-weights cycles per rate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    net, cases = workload()
    rows, clean = [], None
    with running(HardwareConfig.for_network(net)) as (url, _):
        for rate, cycles in zip(args.rates, args.cycles):
            r = soak(url, net, cases, cycles, rate, args.seed)
            per_s = r["completed"] / r["seconds"]
            clean = per_s if rate == 0 else clean
            rows.append((rate, r, per_s))
            print(f"rate {rate}: {r['completed']}/{r['ops']} completed, {r['loud']} loud, "
                  f"{r['silent']} silent, {r['seconds']:.0f} s, faults {r['faults']}, "
                  f"{r['stats']}", flush=True)
            for e in r.get("errors", [])[:5]:
                print("   ", e)
    print("\n| byte faults | operations | completed | failed loudly | silently wrong | "
          "operations/s | against the clean link | faults injected | resends | frame size "
          "at the end |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rate, r, per_s in rows:
        ratio = f"{per_s / clean:.2f}x" if clean else "-"
        print(f"| {100 * rate:g}% | {r['ops']} | {r['completed']} "
              f"({100 * r['completed'] / r['ops']:.1f}%) | {r['loud']} | {r['silent']} | "
              f"{per_s:.2f} | {ratio} | {r['faults']:,} | {r['stats']['resends']:,} | "
              f"{r['stats']['payload']} B |")


if __name__ == "__main__":
    main()
