// FPGA build of hdl/snn_ram.v (same module name and ports; the board builds in firmware/
// read this file instead of hdl/snn_ram.v). Why: (1) iCE40 SB_SPRAM256KA has one address
// port and no initial contents, and yosys infers it only from a memory written that way;
// (2) hdl/snn_ram.v clears every word in an initial loop, which takes yosys' frontend many
// minutes for a 64k-word memory and is not needed on an FPGA (block RAM configures as zero).
// Memories of at least SP_MIN words and no INIT_FILE are written single-ported (the address
// is waddr on a write, raddr otherwise); the others keep the dual-port form. Equivalent to
// hdl/snn_ram.v because snn_core never reads and writes one memory in the same cycle
// (checked below in simulation, and by tests/test_firmware.py against the fixed-point
// simulator). SPRAM starts undefined, so its contents (the weights) are written by the host.
// (3) The memory is marked no_rw_check: a read of the word being written in the same cycle is
// undefined, so yosys adds no collision bypass (it cost ~230 FFs and ~150 LUTs over the
// core's memories). The core never does that; in simulation such a read returns X, which
// the bit-exact tests would see.
`default_nettype none

module snn_ram #(
    parameter integer DATA_W    = 16,    // word width
    parameter integer DEPTH     = 256,   // words
    parameter integer ADDR_W    = 8,     // address width, at least clog2(DEPTH)
    parameter         INIT_FILE = "",    // optional $readmemh image (dual-port form only)
    parameter integer SP_MIN    = 4096   // smallest depth written single-ported (SPRAM)
) (
    input  wire              clk,    // clock
    input  wire              we,     // write enable
    input  wire [ADDR_W-1:0] waddr,  // write address
    input  wire [DATA_W-1:0] wdata,  // write data
    input  wire              re,     // read enable (rdata holds when low)
    input  wire [ADDR_W-1:0] raddr,  // read address
    output reg  [DATA_W-1:0] rdata   // read data, one cycle after re
);

    (* no_rw_check *) reg [DATA_W-1:0] mem [0:DEPTH-1];

    generate
        if (DEPTH >= SP_MIN && INIT_FILE == "") begin : g_single
            wire [ADDR_W-1:0] addr = we ? waddr : raddr;
            always @(posedge clk) begin
                if (we) mem[addr] <= wdata;
                else if (re) rdata <= mem[addr];
            end
        end else begin : g_dual
            if (INIT_FILE != "") begin : g_init
                initial $readmemh(INIT_FILE, mem);
            end
            always @(posedge clk) begin
                if (we) mem[waddr] <= wdata;
                if (re) rdata <= mem[raddr];
`ifndef SYNTHESIS
                if (we && re && waddr == raddr) rdata <= {DATA_W{1'bx}};  // undefined
`endif
            end
        end
    endgenerate

`ifndef SYNTHESIS
    always @(posedge clk) begin
        if (DEPTH >= SP_MIN && INIT_FILE == "" && we && re)
            $display("ERROR: snn_ram %m: read and write in one cycle (single-port form)");
    end
`endif

endmodule

`default_nettype wire
