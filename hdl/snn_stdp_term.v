// One STDP term (combinational), rounded: round(x * f * a >> SHS) with SHS = STDP_FRAC +
// T_FRAC + FRAC, from the partial products of (x * f) * a (snn_stdp_product: x the decayed
// trace, f the bound factor, a the amplitude); with hard bounds (f = 2^FRAC) the term equals
// round(x * a >> (STDP_FRAC + T_FRAC)) exactly. snn_stdp.v adds the terms to w.
`default_nettype none

module snn_stdp_term #(
    parameter integer W_BITS    = 8,  // weight width
    parameter integer T_BITS    = 8,  // trace width (unsigned)
    parameter integer A_BITS    = 24, // amplitude width (unsigned)
    parameter integer FRAC      = 6,  // fraction bits of weights
    parameter integer T_FRAC    = 6,  // fraction bits of traces
    parameter integer STDP_FRAC = 8,  // extra fraction bits of the amplitudes
    parameter integer FW        = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2,
    parameter integer PW        = T_BITS + FW + A_BITS + 2,
    parameter integer TF_W      = T_BITS + FW + 1,
    parameter integer TX        = (TF_W > 17) ? TF_W : 17,
    parameter integer AX        = (A_BITS > 17) ? A_BITS : 17
) (
    input  wire [31:0]              p_ll,  // partial products (snn_stdp_product)
    input  wire [AX-1:0]            p_lh,
    input  wire signed [TX+AX-16:0] p_h,
    output wire signed [PW-1:0]     term   // the rounded term, >= 0 when w is in bounds
);

    localparam integer SHS = STDP_FRAC + T_FRAC + FRAC;
    localparam integer SW  = (PW > TX + AX + 2) ? PW : TX + AX + 2;  // sum width, exact

    wire signed [SW-1:0] ll_x = {{(SW-32){1'b0}}, p_ll};
    wire signed [SW-1:0] lh_x = {{(SW-AX){1'b0}}, p_lh};
    wire signed [SW-1:0] h_x  = {{(SW-(TX+AX-15)){p_h[TX+AX-16]}}, p_h};
    wire signed [SW-1:0] hi   = lh_x + h_x;
    wire signed [SW-1:0] prod = ll_x + (hi <<< 16);
    localparam signed [SW-1:0] RND = (SHS == 0) ? {SW{1'b0}}
                                   : ({{(SW-1){1'b0}}, 1'b1} <<< (SHS - 1));
    wire signed [SW-1:0] sum  = prod + RND;
    wire signed [SW-1:0] shr  = sum >>> SHS;

    assign term = shr[PW-1:0];

    // verilator lint_off UNUSEDSIGNAL
    wire unused_top = ^shr;  // the bits above PW are sign
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
