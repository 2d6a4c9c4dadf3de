// The spike history of the last D_MAX + 1 steps (the axonal delay line), one slot per step:
// the event lists (per slot and population, the indices of the neurons that spiked, in the
// order they spiked), the history bitmap (per slot, one bit per global neuron index) and the
// event counts per (slot, population). The sequencer (snn_seq) computes every address.
//
// The counts are a block RAM (flip-flops and two 16-way multiplexers cost more logic cells on
// the iCE40; the ECP5 build defines SNN_SMALL_RAM_DISTRIBUTED: LUT RAM there) read at two
// addresses every cycle, each word one cycle after its address; a count is written through
// one port, zeroed or as the word read at port a plus one (the sequencer writes at port a's
// address of the cycle before).
`default_nettype none

module snn_history #(
    parameter integer H_N  = 2048,  // history entries: slots x N_MAX
    parameter integer H_AW = 11,    // history / event address width
    parameter integer C_W  = 9,     // event entry and count width (counts 0 .. N_MAX)
    parameter integer CI_N = 32,    // count words: slots x P_MAX
    parameter integer CI_W = 5      // count address width
) (
    input  wire            clk,          // clock
    input  wire            ev_we,        // event list write
    input  wire [H_AW-1:0] ev_waddr,     // ... its address (slot, population offset + count)
    input  wire [C_W-1:0]  ev_wdata,     // ... the neuron's index in its population
    input  wire            ev_re,        // event list read
    input  wire [H_AW-1:0] ev_raddr,     // ... its address
    output wire [C_W-1:0]  ev_rdata,     // ... the entry, one cycle after ev_re
    input  wire            hs_we,        // history bit write
    input  wire [H_AW-1:0] hs_waddr,     // ... its address (slot, global index)
    input  wire            hs_wdata,     // ... the bit: the neuron spiked in that step
    input  wire            hs_re,        // history bit read
    input  wire [H_AW-1:0] hs_raddr,     // ... its address
    output wire            hs_rdata,     // ... the bit, one cycle after hs_re
    input  wire            cnt_we,       // count write
    input  wire            cnt_zero,     // ... of 0, else of cnt_rdata_a + 1
    input  wire [CI_W-1:0] cnt_waddr,    // ... its address (slot, population)
    input  wire [CI_W-1:0] cnt_raddr_a,  // count read address a (every cycle)
    input  wire [CI_W-1:0] cnt_raddr_b,  // count read address b (every cycle)
    output reg  [C_W-1:0]  cnt_rdata_a,  // the count at the last cycle's cnt_raddr_a
    output reg  [C_W-1:0]  cnt_rdata_b   // the count at the last cycle's cnt_raddr_b
);

    snn_ram #(.DATA_W(C_W), .DEPTH(H_N), .ADDR_W(H_AW)) u_events (
        .clk(clk), .we(ev_we), .waddr(ev_waddr), .wdata(ev_wdata),
        .re(ev_re), .raddr(ev_raddr), .rdata(ev_rdata));
    snn_ram #(.DATA_W(1), .DEPTH(H_N), .ADDR_W(H_AW)) u_bitmap (
        .clk(clk), .we(hs_we), .waddr(hs_waddr), .wdata(hs_wdata),
        .re(hs_re), .raddr(hs_raddr), .rdata(hs_rdata));

`ifdef SNN_SMALL_RAM_DISTRIBUTED
    // the ECP5 build: LUT RAM read into the output flip-flops (a DP16KD's read data comes
    // 5.8 ns after the clock: it began the critical path; and 2 DP16KD per core are freed)
    (* ram_style = "distributed", no_rw_check *) reg [C_W-1:0] cnt [0:CI_N-1];
`else
    (* ram_style = "block", no_rw_check *) reg [C_W-1:0] cnt [0:CI_N-1];
`endif
    integer ci;
    initial begin
        for (ci = 0; ci < CI_N; ci = ci + 1) cnt[ci] = {C_W{1'b0}};
        cnt_rdata_a = {C_W{1'b0}}; cnt_rdata_b = {C_W{1'b0}};
    end
    always @(posedge clk) begin
        if (cnt_we) cnt[cnt_waddr] <= cnt_zero ? {C_W{1'b0}} : cnt_rdata_a + 1'b1;
        cnt_rdata_a <= cnt[cnt_raddr_a];
        cnt_rdata_b <= cnt[cnt_raddr_b];
    end

endmodule

`default_nettype wire
