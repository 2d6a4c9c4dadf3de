"""The README's demo table, written from the ``summary.json`` that ``snnkit demo`` writes.

    python benchmarks/readme_figures.py                       # print the table
    python benchmarks/readme_figures.py SUMMARY --write README.md

``benchmarks/demo_summary.json`` holds the summaries of a full ``snnkit demo --parts
conversion`` run and a full ``--parts sequences`` run (their dates inside). The README holds
the tables between the ``demo-table`` markers; tests/test_docs.py checks that they are
exactly what this script makes of that file, and tests/test_demo.py that a fresh ``snnkit
demo --quick`` reproduces the file's T = 16 rows and its sequence rows off the board (quick
mode computes them on the same 450 test images).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "benchmarks" / "demo_summary.json"
BEGIN = "<!-- demo-table: begin (benchmarks/readme_figures.py writes this table) -->"
END = "<!-- demo-table: end -->"
LABELS = {  # the demo's row names -> the README's
    "ANN (torch, float)": "ANN (MLP 64-128-10, 16-level QCFS activations)",
    "SNN float simulator": "SNN, float simulator",
    "SNN fixed simulator": "SNN, fixed-point simulator",
    "emulated FPGA over UART": "SNN, emulated FPGA over UART (Verilated RTL, `snnkit.Device`)",
    "QRNN (torch, integer levels)": "QRNN ({hidden} ReLU units x {levels} levels, integer weights)",
}


def cells(row: dict) -> tuple[str, str]:
    """A row's accuracy and spikes per inference as the table prints them."""
    spikes = "-" if row["spikes"] is None else f"{row['spikes']:.0f}"
    return f"{100 * row['accuracy']:.2f}%", spikes


def render(summary: dict) -> str:
    """The README's table (with its heading line) from a demo summary."""
    c = summary["conversion"]
    lines = [f"`snnkit demo` on sklearn's digits ({c['rows'][0]['samples']} test images, fixed "
             f"split), T = 16 steps ({summary['date']}):", "",
             "| path | accuracy | spikes / inference |", "|---|---|---|"]
    for row in c["rows"]:
        label = LABELS[re.sub(r", T=\d+$", "", row["path"])]
        acc, spikes = cells(row)
        if row["path"].startswith("emulated FPGA"):
            acc += (f" ({c['fpga_equals_fixed']}/{c['fpga_samples']} predictions identical to "
                    f"fixed point)")
        lines.append(f"| {label} | {acc} | {spikes} |")
    lines.append("| NeuroCoreX on its board, for contrast (published) | 68% | |")
    if "sequences" in summary:
        lines += ["", render_sequences(summary["sequences"])]
    return "\n".join(lines)


def render_sequences(s: dict) -> str:
    """The README's table of the demo's sequence part (the row-wise recurrent model)."""
    lines = [f"Sequences (`--parts sequences`): each digit read row by row, 8 elements of 8 "
             f"pixels, by a quantised RNN converted exactly to a recurrent SNN of "
             f"{s['neurons']} neurons with its inputs, {s['steps_per_element']} step per element "
             f"({s['steps_per_sequence']} per sequence) ({s['date']}):", "",
             "| path | accuracy | spikes / sequence |", "|---|---|---|"]
    for row in s["rows"]:
        acc, spikes = cells(row)
        if row["path"].startswith("SNN"):
            equal = s[f"{row['path'].split()[1]}_equals_qrnn"]
            acc += f" ({equal}/{s['samples']} with every level equal to the QRNN's)"
        if row["path"].startswith("emulated FPGA"):
            acc += (f" ({s['fpga_equals_fixed']}/{s['fpga_samples']} with every spike equal "
                    f"to fixed point)")
        label = LABELS[row["path"]].format(hidden=s["hidden"], levels=s["levels"])
        lines.append(f"| {label} | {acc} | {spikes} |")
    return "\n".join(lines)


def replace(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?\n" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README: no {BEGIN!r} ... {END!r} section")
    return pattern.sub(lambda m: f"{BEGIN}\n{table}\n{END}", readme)


def section(readme: str) -> str:
    """The table between the markers of ``readme``."""
    m = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), readme, re.S)
    return m.group(1) if m else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("summary", nargs="?", default=str(SUMMARY), help="a demo summary.json")
    ap.add_argument("--write", metavar="README", help="replace the table in this file")
    args = ap.parse_args()
    table = render(json.loads(Path(args.summary).read_text()))
    if args.write:
        path = Path(args.write)
        path.write_text(replace(path.read_text(), table))
        print(f"wrote the demo table into {path}")
    else:
        print(table)


if __name__ == "__main__":
    main()
