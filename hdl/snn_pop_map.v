// The input map: for every global neuron index, {valid, population}, so that an input word
// finds its population with one read (no comparators per table entry). A block RAM read
// every cycle, the entry one cycle after its address; the sequencer (snn_seq) writes it: the
// clear pass zeroes it, its map pass (S_MAP) writes the entries of every population's
// neurons.
`default_nettype none

module snn_pop_map #(
    parameter integer N_MAX = 256,  // neurons incl. inputs
    parameter integer N_AW  = 8,    // neuron address width
    parameter integer PP_W  = 3     // population index width
) (
    input  wire            clk,    // clock
    input  wire            we,     // write the entry of waddr
    input  wire [N_AW-1:0] waddr,  // global neuron index
    input  wire [PP_W:0]   wdata,  // {valid, population}
    input  wire [N_AW-1:0] raddr,  // global neuron index, read every cycle
    output reg  [PP_W:0]   rdata   // the entry at the last cycle's raddr
);

`ifdef SNN_SMALL_RAM_DISTRIBUTED  // the ECP5 build: LUT RAM (as snn_history's counts)
    (* ram_style = "distributed", no_rw_check *) reg [PP_W:0] pmap [0:N_MAX-1];
`else
    (* ram_style = "block", no_rw_check *) reg [PP_W:0] pmap [0:N_MAX-1];
`endif
    integer mi;
    initial begin
        for (mi = 0; mi < N_MAX; mi = mi + 1) pmap[mi] = {(PP_W+1){1'b0}};
        rdata = {(PP_W+1){1'b0}};
    end
    always @(posedge clk) begin
        if (we) pmap[waddr] <= wdata;
        rdata <= pmap[raddr];
    end

endmodule

`default_nettype wire
