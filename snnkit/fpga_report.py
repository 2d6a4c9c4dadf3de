"""Reading the FPGA tools' reports: yosys cell counts and resource groups, nextpnr's
utilisation, Fmax and critical paths, with the paths through the iCE40's DSPs that nextpnr
does not time added back (docs/hardware.md, "Timing on the iCE40")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path


def cell_counts(stat_json: Path, top: str) -> dict[str, int]:
    """``{cell type: count}`` of the flattened ``top`` from yosys ``stat -json``."""
    d = json.loads(stat_json.read_text())
    mods = d.get("modules", {})
    mod = mods.get("\\" + top) or mods.get(top) or d.get("design", {})
    cells = mod.get("num_cells_by_type", {})
    return {k: int(v) for k, v in sorted(cells.items())}


ICE40_GROUPS = {"LUT4": ("SB_LUT4",), "FF": ("SB_DFF",), "CARRY": ("SB_CARRY",),
                "EBR (SB_RAM40_4K)": ("SB_RAM40_4K",), "SPRAM": ("SB_SPRAM256KA",),
                "DSP (SB_MAC16)": ("SB_MAC16",)}
XILINX_GROUPS = {"LUT": ("LUT",), "FF": ("FD",), "CARRY4": ("CARRY4",),
                 "LUTRAM": ("RAM32", "RAM64", "RAM128", "RAM256", "RAM16", "SRL"),
                 "BRAM36 (RAMB36E1)": ("RAMB36E1",), "BRAM18 (RAMB18E1)": ("RAMB18E1",),
                 "DSP48E1": ("DSP48E1",)}


def summarize(cells: dict[str, int], groups: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Sum cell counts into resource groups by cell-name prefix (SB_DFFER counts as FF)."""
    out = {}
    for name, prefixes in groups.items():
        out[name] = sum(n for c, n in cells.items() if c.startswith(prefixes))
    return out


# nextpnr-ice40 times every SB_MAC16 port as a register port (its cell timing has no paths
# through the multiplier): a DSP used without its registers, as yosys maps a combinational
# product, gets a pseudo-clock on the ground net, and a path register -> DSP -> register is cut
# into two paths that each look short. The report adds them back with the multiplier's own
# delay: at most 8.6 ns from A/B to O in icestorm's timings_up5k.txt (IOPATH, SB_MAC16).
DSP_COMB_NS = 9.0
DSP_CLOCK = "$PACKER_GND_NET"  # the pseudo-clock's name in nextpnr's report


@dataclass(frozen=True)
class Ice40Timing:
    """Worst path delays (ns) from nextpnr's report, split where nextpnr cuts at the DSPs."""

    fabric_ns: float  # register to register, as nextpnr times it
    into_dsp_ns: float = 0.0  # register -> a DSP's inputs
    out_of_dsp_ns: float = 0.0  # a DSP's outputs -> register
    dsp_to_dsp_ns: float = 0.0  # a DSP's outputs -> another DSP's inputs
    clocked_dsps: int = 0  # DSPs using some of their own registers (timed with the fabric)
    dsp_depth: int = 1  # most combinational DSPs on one path (a wide product chains them)

    @property
    def clocked_ns(self) -> float:
        """What nextpnr leaves out at the ends of a path when DSPs use their own registers:
        they are on the real clock, and a path may start at one's input register (then its
        multiplier follows) and end at another's output register (its multiplier before)."""
        return 2 * DSP_COMB_NS if self.clocked_dsps else 0.0

    @property
    def through_dsp_ns(self) -> float:
        """Bound on any path through the DSPs without registers: the worst way in, then per
        DSP of the longest chain its multiplier and the worst hop to the next, the worst way
        out (and :attr:`clocked_ns`)."""
        if not (self.into_dsp_ns or self.out_of_dsp_ns):
            return 0.0
        n = max(self.dsp_depth, 2 if self.dsp_to_dsp_ns else 1)
        return (self.into_dsp_ns + n * DSP_COMB_NS + (n - 1) * self.dsp_to_dsp_ns
                + self.out_of_dsp_ns + self.clocked_ns)

    @property
    def worst_ns(self) -> float:
        """The bound on every path: the fabric's (and :attr:`clocked_ns`) or through the
        DSPs."""
        return max(self.fabric_ns + self.clocked_ns, self.through_dsp_ns)


def nextpnr_timing(report: dict) -> Ice40Timing | None:
    """The worst fabric path and the DSP-crossing pieces of nextpnr's ``--report`` JSON."""
    worst: dict[str, float] = {}
    for cp in report.get("critical_paths", []):
        src, dst = cp.get("from", ""), cp.get("to", "")
        if "<async>" in (src, dst):
            continue  # button / UART pins: not clocked paths
        kind = {(False, False): "fabric", (False, True): "into", (True, False): "out",
                (True, True): "dsp"}[DSP_CLOCK in src, DSP_CLOCK in dst]
        delay = sum(float(p["delay"]) for p in cp.get("path", []))
        worst[kind] = max(worst.get(kind, 0.0), delay)
    if "fabric" not in worst:
        return None
    return Ice40Timing(worst["fabric"], worst.get("into", 0.0), worst.get("out", 0.0),
                       worst.get("dsp", 0.0))


def dsp_structure(netlist: Path) -> tuple[int, int]:
    """(DSPs with a clock, most combinational DSPs on one path) of the top module of a
    flattened yosys JSON netlist: LUTs, carries and unclocked SB_MAC16 pass a path on,
    everything else (flip-flops, RAMs, IO) ends it."""
    top = next(m for m in json.loads(netlist.read_text())["modules"].values()
               if m.get("attributes", {}).get("top"))
    cells = top.get("cells", {})
    clocked = {n for n, c in cells.items() if c["type"] == "SB_MAC16"
               and any(isinstance(b, int) for b in c["connections"].get("CLK", []))}
    driver = {b: n for n, c in cells.items() for p, bits in c["connections"].items()
              if c["port_directions"].get(p) == "output" for b in bits if isinstance(b, int)}
    def passes(n: str) -> bool:  # a combinational cell: a path goes on through it
        return cells[n]["type"] in ("SB_LUT4", "SB_CARRY") or (
            cells[n]["type"] == "SB_MAC16" and n not in clocked)

    def sources(n: str) -> list[str]:
        c = cells[n]
        return [driver[b] for p, bits in c["connections"].items()
                if c["port_directions"].get(p) == "input"
                for b in bits if isinstance(b, int) and b in driver]

    depth: dict[str, int] = {}  # DSPs on the longest combinational path ending at a cell

    def dsps_up_to(name: str) -> int:  # iterative: combinational cones are deep
        stack = [(name, False)]
        while stack:
            n, ready = stack.pop()
            if not passes(n):
                depth[n] = 0
            elif ready:
                depth[n] = (max((depth[s] for s in sources(n)), default=0)
                            + (cells[n]["type"] == "SB_MAC16"))
            elif n not in depth:
                depth[n] = 0  # a combinational loop (none in a synthesised design) stops here
                stack.append((n, True))
                stack.extend((s, False) for s in sources(n) if s not in depth)
        return depth[name]

    dsps = [n for n, c in cells.items() if c["type"] == "SB_MAC16"]
    return len(clocked), max((dsps_up_to(n) for n in dsps), default=0)


def nextpnr_summary(report: Path, clocked: int = 0, depth: int = 1
                    ) -> tuple[dict[str, int], dict[str, int], float | None, Ice40Timing | None]:
    """(used, available, Fmax in MHz, path delays) from nextpnr's ``--report`` JSON, for a
    design with ``clocked`` DSPs using their own registers and chains of up to ``depth``
    combinational DSPs (:func:`dsp_structure`). The Fmax is nextpnr's for the real clocks,
    lowered to the bound of :attr:`Ice40Timing.worst_ns` where that is longer."""
    d = json.loads(report.read_text())
    used = {k: int(v["used"]) for k, v in d.get("utilization", {}).items() if v["used"]}
    avail = {k: int(d["utilization"][k]["available"]) for k in used}
    fmax = [float(v["achieved"]) for k, v in d.get("fmax", {}).items() if DSP_CLOCK not in k]
    timing = nextpnr_timing(d)
    if timing:
        timing = replace(timing, clocked_dsps=clocked, dsp_depth=depth)
    if fmax and timing and timing.worst_ns > timing.fabric_ns:
        fmax.append(1000.0 / timing.worst_ns)
    return used, avail, (min(fmax) if fmax else None), timing


def nextpnr_log_utilisation(text: str) -> dict[str, tuple[int, int]]:
    """``{BEL type: (used, available)}`` from nextpnr's "Device utilisation" log lines
    (also printed when placement fails, unlike the --report file)."""
    return {m[0]: (int(m[1]), int(m[2])) for m in
            re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text, re.MULTILINE)}
