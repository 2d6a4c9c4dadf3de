// Fixed-point decay: y = (x*d + 2^(D_BITS-1)) >>> D_BITS, d unsigned with 2^D_BITS == 1.0.
// Combinational. |y| <= |x|, so y always fits X_W bits.
`default_nettype none

module snn_decay #(
    parameter integer X_W    = 16, // width of x and y
    parameter integer D_BITS = 12, // fraction bits of d
    parameter integer SIGNED = 1   // 1: x is two's complement, 0: unsigned
) (
    input  wire [X_W-1:0]  x,  // value to decay
    input  wire [D_BITS:0] d,  // decay factor, 0 .. 2^D_BITS
    output wire [X_W-1:0]  y   // decayed value, rounded half up
);

    localparam integer P_W = X_W + D_BITS + 2;
    localparam [P_W-1:0] RND = {{(P_W-1){1'b0}}, 1'b1} << (D_BITS - 1);

    wire              x_msb = (SIGNED != 0) ? x[X_W-1] : 1'b0;
    wire signed [P_W-1:0] x_ext = {{(D_BITS+2){x_msb}}, x};
    wire signed [P_W-1:0] d_ext = {{(X_W+1){1'b0}}, d};
    wire signed [P_W-1:0] prod  = x_ext * d_ext + $signed(RND);
    wire signed [P_W-1:0] shr   = prod >>> D_BITS;

    assign y = shr[X_W-1:0];

    // verilator lint_off UNUSEDSIGNAL
    wire unused_high = ^shr[P_W-1:X_W];
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
