"""ECP5 (ULX3S, LFE5U-85F): K cores of 256 neurons / 64k weight words with on-chip STDP and
the spike router, synthesised, placed and routed with the open flow (issue 20's target:
>= 4 cores at >= 50 MHz; report the largest K that fits and its Fmax).

For each K: yosys ``synth_ecp5``, nextpnr-ecp5 (85k, CABGA381, speed 6, ``--freq`` the
clock), ecppack; LUT4 / FF / EBR / DSP used of available and Fmax from nextpnr's report (it
times the MULT18X18D paths itself). The build folders go to benchmarks/builds/ (ignored).

Run: ``python benchmarks/ecp5_cores.py [--cores 4] [--clock 50]`` (a synthesis of 4 cores
takes ~4 min, place and route ~10-30 min on this machine).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snnkit.compiler import HardwareConfig
from snnkit.ecp5 import build_ulx3s

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", default="4", help="comma-separated core counts")
    ap.add_argument("--clock", type=float, default=50.0, help="core clock (MHz)")
    ap.add_argument("--seeds", type=int, default=3, help="placement seeds to try")
    args = ap.parse_args(argv)
    for k in (int(c) for c in args.cores.split(",")):
        rep = build_ulx3s(HardwareConfig(syn_max=65536), k, HERE / "builds" / f"ulx3s_k{k}",
                          args.clock, seeds=args.seeds)
        print(f"K={k} ({k * 256} neurons, {k * 65536:,} weight words, STDP):")
        print(rep)
        print(f"  seconds: {rep.seconds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
