// Simple dual-port RAM: one synchronous write port, one synchronous read port (read-first).
// Written so that synthesis tools infer block RAM; INIT_FILE preloads it with $readmemh.
`default_nettype none

module snn_ram #(
    parameter integer DATA_W    = 16,  // word width
    parameter integer DEPTH     = 256, // words
    parameter integer ADDR_W    = 8,   // address width, at least clog2(DEPTH)
    parameter         INIT_FILE = ""   // optional $readmemh image
) (
    input  wire              clk,    // clock
    input  wire              we,     // write enable
    input  wire [ADDR_W-1:0] waddr,  // write address
    input  wire [DATA_W-1:0] wdata,  // write data
    input  wire              re,     // read enable (rdata holds when low)
    input  wire [ADDR_W-1:0] raddr,  // read address
    output reg  [DATA_W-1:0] rdata   // read data, one cycle after re
);

    reg [DATA_W-1:0] mem [0:DEPTH-1];

    integer k;
    initial begin
        for (k = 0; k < DEPTH; k = k + 1) mem[k] = {DATA_W{1'b0}};
        rdata = {DATA_W{1'b0}};
        if (INIT_FILE != "") $readmemh(INIT_FILE, mem);
    end

    always @(posedge clk) begin
        if (we) mem[waddr] <= wdata;
        if (re) rdata <= mem[raddr];
    end

endmodule

`default_nettype wire
