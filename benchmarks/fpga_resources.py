"""FPGA resources and Fmax of the core per configuration (issue 7).

iCE40UP5K: yosys ``synth_ice40 -spram -dsp`` per configuration, then nextpnr-ice40 place and
route of the iCEBreaker board top for the target configuration (256 neurons, 64k synapses) when
the board top can be built. xc7a35t: yosys ``synth_xilinx`` estimate. All tools from PyPI
(YoWASP). Prints a markdown table for benchmarks/RESULTS.md and writes the raw figures to
benchmarks/fpga_resources_<boards>.json.

    .venv/bin/python benchmarks/fpga_resources.py [--quick] [--no-pnr]
    .venv/bin/python benchmarks/fpga_resources.py --baseline   # rewrite the test baseline
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

from snnkit.build import BOARDS, FIRMWARE_DIR, HDL_DIR, build, synth_estimate
from snnkit.compiler import HardwareConfig
from snnkit.fpga_report import nextpnr_log_utilisation
from snnkit.fpga_tools import BuildError

HERE = Path(__file__).resolve().parent
SMALL = HardwareConfig(n_max=64, syn_max=4096, p_max=4, pr_max=4, d_max=3, tr_max=256,
                       in_depth=64, out_depth=64)
TARGET = HardwareConfig(n_max=256, syn_max=65536, p_max=4, pr_max=4, d_max=3, tr_max=512)
CONFIGS = {  # name -> (configuration, boards)
    "64 x 4k (test)": (SMALL, ("ice40",)),
    "256 x 16k": (HardwareConfig(n_max=256, syn_max=16384, p_max=4, pr_max=4, d_max=3,
                                 tr_max=512), ("ice40",)),
    "256 x 64k (target)": (TARGET, ("ice40", "cmod_a7")),
    "192 x 18k (NeuroCoreX size)": (HardwareConfig(n_max=192, syn_max=18432, p_max=4, pr_max=4,
                                                   d_max=3, tr_max=512), ("cmod_a7",)),
}
PEERS = [  # published figures, not measured here
    ("NeuroCoreX (xc7a35t, 100 MHz)", "96 x 2*96^2 int8", "6,981 LUT, 11,175 FF, 30.5 BRAM"),
    ("ODIN (28 nm ASIC)", "256 x 64k (4-bit)", "0.086 mm^2, no FPGA figures"),
]


def top_kind() -> str:
    """'board' once hdl/host_top.v exists (the board tops wrap it), else 'core'."""
    return "board" if (HDL_DIR / "host_top.v").exists() else "core"


def write_baseline(work: Path) -> dict:
    """Synthesise SMALL and write firmware/ice40/baseline_small.json (the test's reference)."""
    top = top_kind()
    t0 = time.monotonic()
    res = synth_estimate(SMALL, "ice40", work / "baseline", top=top)
    base = {
        "about": "yosys synth_ice40 -spram -dsp resource groups of a small configuration; "
                 "tests/test_firmware.py fails when a synthesis moves a group by more than "
                 "the tolerance. Regenerate with benchmarks/fpga_resources.py --baseline "
                 "when a change is intended.",
        "generated": f"{date.today()} on {platform.machine()}, "
                     f"{time.monotonic() - t0:.0f} s",
        "top": top, "tolerance": 0.25, "config": dataclasses.asdict(SMALL), "resources": res}
    path = FIRMWARE_DIR / "ice40" / "baseline_small.json"
    path.write_text(json.dumps(base, indent=2) + "\n")
    print(f"wrote {path}: {res}")
    return base


def run(work: Path, quick: bool, pnr: bool, only: tuple[str, ...]) -> dict:
    top = top_kind()
    rows = {}
    for name, (cfg, boards) in CONFIGS.items():
        if quick and cfg is not TARGET:
            continue
        for board in boards:
            if board not in only:
                continue
            t0 = time.monotonic()
            res = synth_estimate(cfg, board, work / f"{board}-{cfg.key()}", top=top,
                                 progress=True)
            rows[f"{board} {name}"] = {"board": board, "config": name, "top": top,
                                       "resources": res, "seconds": time.monotonic() - t0}
            print(f"{board} {name}: {res}", flush=True)
    if pnr:
        rows["pnr"] = place_and_route(work, top)
    return rows


def place_and_route(work: Path, top: str) -> dict:
    """nextpnr of the iCEBreaker top for TARGET: used / available, Fmax, or why it failed."""
    if top != "board":
        return {"error": "hdl/host_top.v does not exist yet: no board top to place"}
    try:
        rep = build(None, "ice40", work / "pnr", clock_mhz=24.0, config=TARGET)
    except BuildError as e:
        log = work / "pnr" / "nextpnr.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        errors = [ln for ln in text.splitlines() if "ERROR" in ln]
        return {"error": str(e).splitlines()[0], "nextpnr_errors": errors,
                "device_utilisation": nextpnr_log_utilisation(text)}
    return {"resources": rep.resources, "available": rep.available, "fmax_mhz": rep.fmax_mhz,
            "notes": rep.notes, "seconds": rep.seconds}  # notes: how Fmax counts the DSPs


def markdown(rows: dict) -> str:
    lines = [("| configuration (neurons x synapses, 1 lane) | device | LUT | FF | BRAM | "
             "SPRAM | DSP |"), "|---|---|---|---|---|---|---|"]
    for key, r in rows.items():
        if key == "pnr":
            continue
        g = r["resources"]
        if r["board"] == "ice40":
            cells = (g["LUT4"], g["FF"], f"{g['EBR (SB_RAM40_4K)']} EBR", g["SPRAM"],
                     g["DSP (SB_MAC16)"])
            dev = "iCE40UP5K (5,280 LC, 30 EBR, 4 SPRAM, 8 DSP)"
        else:
            bram = g["BRAM36 (RAMB36E1)"] + g["BRAM18 (RAMB18E1)"] / 2
            cells = (g["LUT"], g["FF"], f"{bram:g} x 36k", "-", g["DSP48E1"])
            dev = "xc7a35t (20,800 LUT, 41,600 FF, 50 BRAM36, 90 DSP)"
        lines.append(f"| {r['config']} ({r['top']}) | {dev} | "
                     + " | ".join(f"{c:,}" if isinstance(c, int) else str(c) for c in cells)
                     + " |")
    for name, size, figs in PEERS:
        lines.append(f"| {name}: {size} | published | {figs} | | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the target configuration")
    ap.add_argument("--no-pnr", action="store_true", help="skip nextpnr")
    ap.add_argument("--baseline", action="store_true", help="rewrite the test baseline only")
    ap.add_argument("--boards", default="ice40,cmod_a7", help="comma-separated boards to run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            write_baseline(Path(tmp))
            return
        rows = run(Path(tmp), args.quick, not args.no_pnr, tuple(args.boards.split(",")))
    out = HERE / f"fpga_resources_{args.boards.replace(',', '_')}.json"
    out.write_text(json.dumps({"date": str(date.today()), "machine": platform.platform(),
                               "boards": {k: b.title for k, b in BOARDS.items()},
                               "rows": rows}, indent=2) + "\n")
    print(markdown(rows))
    print(json.dumps(rows.get("pnr", {}), indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
