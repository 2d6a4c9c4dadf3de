// Synchronous first-word-fall-through FIFO: dout shows the oldest word whenever !empty.
// The memory is read every cycle at the next read pointer (a block RAM's read register is
// dout); a word shows one cycle after the cycle it was written in (empty compares the
// write pointer of the cycle before), so a read never meets the write of the same word and
// the RAM needs no read/write collision bypass.
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

    (* no_rw_check *) reg [DATA_W-1:0] mem [0:DEPTH-1];
    reg [ADDR_W:0]   wptr;
    reg              empty_r;  // the last cycle's wptr == rptr: no word dout may show
    reg [ADDR_W:0]   level_r;  // words stored (full: its top bit, DEPTH a power of two)
    reg [ADDR_W:0]   rptr;
    reg [DATA_W-1:0] rdata;

    // the next values are chosen by push / pop among sums and comparisons of the registers
    // (push and pop come late in the cycle: no adder or comparator behind them)
    wire             do_pop  = pop && !empty_r;
    wire             do_push = push && !level_r[ADDR_W];
    wire [ADDR_W:0]  rinc  = rptr + 1'b1;
    wire [ADDR_W:0]  rnext = do_pop ? rinc : rptr;
    assign level = level_r;
    assign empty = empty_r;
    assign full  = level_r[ADDR_W];
    assign dout  = rdata;

    always @(posedge clk) begin
        rdata <= mem[rnext[ADDR_W-1:0]];
        if (rst) begin
            wptr <= {(ADDR_W+1){1'b0}};
            empty_r <= 1'b1;
            level_r <= {(ADDR_W+1){1'b0}};
            rptr <= {(ADDR_W+1){1'b0}};
        end else begin
            empty_r <= do_pop ? (wptr == rinc) : (wptr == rptr);
            if (do_push && !do_pop) level_r <= level_r + 1'b1;
            else if (do_pop && !do_push) level_r <= level_r - 1'b1;
            if (do_push) begin
                mem[wptr[ADDR_W-1:0]] <= din;
                wptr <= wptr + 1'b1;
            end
            rptr <= rnext;
        end
    end

endmodule

`default_nettype wire
