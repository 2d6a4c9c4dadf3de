"""FPGA build flow: a small configuration still synthesises for the iCE40 with yosys (YoWASP)
and its resources stay near the recorded baseline (firmware/ice40/baseline_small.json).

The full place and route is a benchmark (benchmarks/fpga_resources.py), not a test.
"""

from __future__ import annotations

import json

import pytest

from snnkit.build import (
    BOARDS,
    FIRMWARE_DIR,
    ICE40_GROUPS,
    BuildError,
    build,
    cell_counts,
    ice40_pll,
    sources,
    summarize,
    synth_estimate,
    xilinx_mmcm,
    yosys_script,
)
from snnkit.compiler import HardwareConfig
from snnkit.errors import NetworkError

BASELINE = FIRMWARE_DIR / "ice40" / "baseline_small.json"


def _baseline() -> dict:
    return json.loads(BASELINE.read_text())


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory):
    """Resource groups of the baseline's configuration, synthesised once per session."""
    base = _baseline()
    config = HardwareConfig(**base["config"])
    return synth_estimate(config, "ice40", tmp_path_factory.mktemp("synth_small"),
                          top=base["top"])


def test_small_config_resources_match_baseline(small_synth):
    base = _baseline()
    tol = base["tolerance"]
    off = {k: (small_synth.get(k, 0), v) for k, v in base["resources"].items()
           if abs(small_synth.get(k, 0) - v) > max(tol * v, 2)}
    assert not off, (f"resources moved more than {tol:.0%} from {BASELINE.name} "
                     f"(got, baseline): {off}; if intended, regenerate it with "
                     f"benchmarks/fpga_resources.py --baseline")


def test_memories_map_to_block_ram(small_synth):
    # the memories must become EBR, not flip-flops: 4096 weight words x 9 bits alone would
    # be ~37k FFs; the whole core has about 5k
    c = HardwareConfig(**_baseline()["config"])
    assert small_synth["EBR (SB_RAM40_4K)"] + 16 * small_synth["SPRAM"] >= 9
    assert small_synth["FF"] < c.syn_max * (c.weight_bits + 1) // 4


def test_weight_memory_is_written_single_port_for_spram(tmp_path):
    # the iCE40 replacement of snn_ram is what lets yosys infer SB_SPRAM256KA
    files = sources(BOARDS["ice40"])
    assert FIRMWARE_DIR / "ice40" / "snn_ram.v" in files
    assert not any(f.name == "snn_ram.v" and f.parent.name == "hdl" for f in files)
    text = yosys_script(files, "snn_core", {"SYN_MAX": 65536, "W_INIT": "w.hex"},
                        "synth_ice40 -spram", "out.json")
    assert 'chparam -set SYN_MAX 65536 -set W_INIT "w.hex" snn_core' in text
    assert "synth_ice40 -spram -top snn_core -json out.json" in text


def test_cell_counts_and_groups(tmp_path):
    stat = {"modules": {"\\top": {"num_cells_by_type": {
        "SB_LUT4": 10, "SB_DFFE": 3, "SB_DFFESR": 2, "SB_RAM40_4K": 1, "SB_SPRAM256KA": 4}}}}
    (tmp_path / "stat.json").write_text(json.dumps(stat))
    groups = summarize(cell_counts(tmp_path / "stat.json", "top"), ICE40_GROUPS)
    assert groups["LUT4"] == 10 and groups["FF"] == 5
    assert groups["EBR (SB_RAM40_4K)"] == 1 and groups["SPRAM"] == 4
    assert groups["DSP (SB_MAC16)"] == 0


def test_ice40_pll_settings_make_the_clock():
    pll = ice40_pll(24.0)
    # F_out = 12 MHz * (DIVF + 1) / ((DIVR + 1) * 2^DIVQ) in SIMPLE feedback
    f = 12e3 * (pll["DIVF"] + 1) / ((pll["DIVR"] + 1) * 2 ** pll["DIVQ"])
    assert f == pytest.approx(pll["achieved_khz"], abs=1)
    assert pll["achieved_khz"] == 24000


def test_xilinx_mmcm_settings():
    mult, div = xilinx_mmcm(50.0)
    assert 600 <= 12 * mult <= 1200 and 12 * mult / div == 50.0
    with pytest.raises(BuildError, match="no MMCM setting"):
        xilinx_mmcm(49.999)


def test_unknown_board_is_named(tmp_path):
    with pytest.raises(NetworkError, match="unknown board 'de10'"):
        build(None, "de10", tmp_path)
