// snn_core_gate: the iCE40 gate-level netlist of snn_core (module snn_core of yosys
// synth_ice40's cells, simulated with yosys' cells_sim.v) with snn_core's parameters on top,
// so that the core's cocotb bench (sim/core/bench_core.py) runs on it unchanged. The
// parameters are the ones the bench reads (and the port width); they only describe the
// netlist (it was synthesised with them), so they must be the values given to yosys.
// Used by tests/test_gate_level.py.
`default_nettype none

module snn_core_gate #(
    parameter integer N_MAX     = 256,
    parameter integer SYN_MAX   = 16384,
    parameter integer P_MAX     = 8,
    parameter integer PR_MAX    = 16,
    parameter integer D_MAX     = 7,
    parameter integer TR_MAX    = 1024,
    parameter integer W_BITS    = 8,
    parameter integer S_BITS    = 16,
    parameter integer D_BITS    = 12,
    parameter integer T_BITS    = 8,
    parameter integer FRAC      = 6,
    parameter integer T_FRAC    = 6,
    parameter integer STDP_FRAC = 8,
    parameter integer IN_DEPTH  = 256,
    parameter integer OUT_DEPTH = 256,
    parameter integer ADDR_W    = 24
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              host_req,
    input  wire              host_we,
    input  wire [ADDR_W-1:0] host_addr,
    input  wire [31:0]       host_wdata,
    output wire              host_ready,
    output wire              host_rvalid,
    output wire [31:0]       host_rdata,
    output wire              busy,
    output wire              out_valid
);

    snn_core u_core (
        .clk(clk), .rst(rst), .host_req(host_req), .host_we(host_we), .host_addr(host_addr),
        .host_wdata(host_wdata), .host_ready(host_ready), .host_rvalid(host_rvalid),
        .host_rdata(host_rdata), .busy(busy), .out_valid(out_valid)
    );

endmodule

`default_nettype wire
