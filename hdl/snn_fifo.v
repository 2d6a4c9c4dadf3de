// Synchronous first-word-fall-through FIFO: dout shows the oldest word whenever !empty.
`default_nettype none

module snn_fifo #(
    parameter integer DATA_W = 32,  // word width
    parameter integer DEPTH  = 256, // words, a power of two
    parameter integer ADDR_W = 8    // log2(DEPTH)
) (
    input  wire              clk,    // clock
    input  wire              rst,    // synchronous reset: empties the FIFO
    input  wire              push,   // write din (ignored when full)
    input  wire [DATA_W-1:0] din,    // data in
    input  wire              pop,    // drop the oldest word (ignored when empty)
    output wire [DATA_W-1:0] dout,   // oldest word
    output wire              empty,  // no word stored
    output wire              full,   // DEPTH words stored
    output wire [ADDR_W:0]   level   // words stored
);

    reg [DATA_W-1:0] mem [0:DEPTH-1];
    reg [ADDR_W:0]   wptr;
    reg [ADDR_W:0]   rptr;

    assign level = wptr - rptr;
    assign empty = (wptr == rptr);
    assign full  = (level == DEPTH[ADDR_W:0]);
    assign dout  = mem[rptr[ADDR_W-1:0]];

    always @(posedge clk) begin
        if (rst) begin
            wptr <= {(ADDR_W+1){1'b0}};
            rptr <= {(ADDR_W+1){1'b0}};
        end else begin
            if (push && !full) begin
                mem[wptr[ADDR_W-1:0]] <= din;
                wptr <= wptr + 1'b1;
            end
            if (pop && !empty) rptr <= rptr + 1'b1;
        end
    end

endmodule

`default_nettype wire
