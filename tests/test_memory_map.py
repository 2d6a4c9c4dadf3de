"""The memory map is written once (snnkit/memory_map.py): the committed Verilog header is what
the table generates, and the header's defines evaluate in a simulator to the table's numbers."""

import subprocess

from snnkit import map_header
from snnkit import memory_map as mm
from snnkit import protocol as p
from snnkit.compiler import POP_FIELDS, PROJ_FIELDS, HardwareConfig


def test_committed_header_is_current():
    assert mm.HEADER_PATH.read_text() == mm.verilog_header(), (
        "hdl/snn_map.vh is stale: regenerate it with python -m snnkit.map_header")


def test_check_command_finds_a_stale_header(tmp_path, capsys):
    out = tmp_path / "snn_map.vh"
    assert map_header.main(["--out", str(out), "--check"]) == 1  # missing
    assert map_header.main(["--out", str(out)]) == 0 and out.read_text() == mm.verilog_header()
    assert map_header.main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace("'h013", "'h014"))
    assert map_header.main(["--out", str(out), "--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_compiler_rows_follow_the_field_order():
    assert POP_FIELDS == tuple(f.name.lower() for f in sorted(mm.PopField))
    assert PROJ_FIELDS == tuple(f.name.lower() for f in sorted(mm.ProjField))
    assert max(*mm.PopField, *mm.ProjField) < mm.TABLE_STRIDE == 16  # 4-bit field index


def test_the_sequencers_parameter_loads_read_consecutive_fields():
    # snn_seq.v loads REFRACTORY, then THRESHOLD .. V_RESET, then ADAPT_PLUS .. PROJ_COUNT of
    # a population and W_BASE, then W_MIN .. TR_BASE of a projection, stepping by one inside a
    # run (the bias is per neuron, region BIAS, read with the neuron's state)
    f, g = mm.PopField, mm.ProjField
    assert [f.THRESHOLD + k for k in range(2)] == [f.THRESHOLD, f.V_RESET]
    assert [f.ADAPT_PLUS + k for k in range(3)] == [f.ADAPT_PLUS, f.PROJ_FIRST, f.PROJ_COUNT]
    assert [g.W_MIN + k for k in range(3)] == [g.W_MIN, g.W_MAX, g.TR_BASE]
    # the core keeps OFFSET, SIZE and FLAGS (and SRC, TGT, DELAY, FLAGS) in flip-flops, and
    # its register block RAM holds the counters as four words from a multiple of 4
    assert mm.Reg.STEP_COUNT % 4 == 0 and mm.COUNTER_WORDS == 4
    assert mm.POP_TABLE == 0x100 and mm.PROJ_TABLE >= mm.POP_TABLE  # "offset >= 0x100" test


def test_link_regions_cover_the_protocol():
    sizes = mm.link_region_sizes(HardwareConfig())
    one_core = set(p.Region) - set(mm.MULTI_LINK_BASE)  # ROUTE, INMAP, WAVES: multi-core only
    assert set(sizes) == one_core and set(mm.LINK_BASE) == one_core - {p.Region.LINK}
    assert sizes[p.Region.POP] == 16 * 8 and sizes[p.Region.STATE] == 4 * 256
    assert mm.link_offset(p.Region.CTRL, mm.Reg.LEARN) == 2


def test_header_defines_evaluate_to_the_table(tmp_path):
    c = HardwareConfig(n_max=64, syn_max=512, p_max=8, pr_max=4, tr_max=64)
    checks = {  # Verilog expression -> the number the table says
        "`SNN_REG_STATUS": mm.Reg.STATUS, "`SNN_REG_OUT_LEVEL": mm.Reg.OUT_LEVEL,
        "`SNN_POP_TABLE": mm.POP_TABLE, "`SNN_PROJ_TABLE": mm.PROJ_TABLE,
        "`SNN_POP_V_INIT": mm.PopField.V_INIT, "`SNN_PROJ_TR_BASE": mm.ProjField.TR_BASE,
        "`SNN_POP_SIGNED": sum(1 << f for f in mm.SIGNED_POP_FIELDS),
        "`SNN_STATUS_INPUT_ERROR_BIT": mm.Status.INPUT_ERROR.bit_length() - 1,
        "`SNN_FIFO_MARK_BIT": 31, "`SNN_MAGIC": mm.MAGIC,
        "`SNN_OP_READ": p.Op.READ, "`SNN_ERR_EVENT_OVERFLOW": p.ErrorCode.EVENT_OVERFLOW,
        "`SNN_LINK_WRITABLE": sum(1 << r for r in mm.LINK_WRITABLE),
    }
    sizes = mm.link_region_sizes(c)
    for r in range(p.N_REGIONS):
        checks[f"BASES[32*{r} +: 32]"] = mm.LINK_BASE.get(r, 0)
        checks[f"SIZES[32*{r} +: 32]"] = sizes.get(r, 0)
    lines = "\n".join(f'        $display("%0d", {e});' for e in checks)
    (tmp_path / "t.v").write_text(f"""`include "snn_map.vh"
module t;
    localparam [31:0] N = {c.n_max}, SYN = {c.syn_max}, P = {c.p_max}, PR = {c.pr_max};
    localparam [31:0] TR = {c.tr_max};
    localparam [16*32-1:0] BASES = `SNN_LINK_BASES;
    localparam [16*32-1:0] SIZES = `SNN_LINK_SIZES(N, SYN, P, PR, TR);
    initial begin
{lines}
    end
endmodule
""")
    subprocess.run(["iverilog", "-g2012", f"-I{mm.HEADER_PATH.parent}", "-o", "t.vvp", "t.v"],
                   cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "t.vvp"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout.split()
    assert dict(zip(checks, map(int, out))) == {k: int(v) for k, v in checks.items()}


def test_verilog_parameter_defaults_are_the_python_configurations():
    """A module's parameter defaults (what a build outside snnkit, or a Vivado project opened
    by hand, gets) are the configuration snnkit describes it with: the standard one
    (``HardwareConfig()``) for the core, its parts and benches, ``BOARD_CONFIGS`` for the
    iCE40 and Artix-7 tops."""
    import re
    from pathlib import Path

    from snnkit.compiler import BOARD_CONFIGS

    root = Path(__file__).resolve().parents[1]
    want = {str(f.relative_to(root)): HardwareConfig().verilog_params()
            for f in [*root.glob("hdl/*.v"), root / "sim/tb_snn.v", root / "sim/tb_multi.v",
                      root / "sim/gate/snn_core_gate.v"]}
    want["firmware/ice40/icebreaker_top.v"] = BOARD_CONFIGS["ice40"].verilog_params()
    want["firmware/cmod_a7/cmod_a7_top.v"] = BOARD_CONFIGS["cmod_a7"].verilog_params()
    checked = 0
    for path, params in want.items():
        text = (root / path).read_text()
        header = re.search(r"module\s+\w+\s*#\((.*?)\)\s*\(", text, re.S)
        if header is None:
            continue
        got = {k: int(v) for k, v in
               re.findall(r"parameter\s+integer\s+(\w+)\s*=\s*(\d+)\b", header.group(1))}
        wrong = {k: (got[k], params[k]) for k in got.keys() & params.keys()
                 if got[k] != params[k]}
        assert not wrong, f"{path}: parameter defaults (Verilog, Python) differ: {wrong}"
        checked += bool(got.keys() & params.keys())
    assert checked >= 10
