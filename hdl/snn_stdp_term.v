// One STDP term (combinational), rounded: round(x * f * a >> SHS) with SHS = STDP_FRAC +
// T_FRAC + FRAC, from x * f (snn_stdp_factor: x the decayed trace, f the bound factor) and the
// amplitude a; with hard bounds (f = 2^FRAC) the term equals round(x * a >> (STDP_FRAC +
// T_FRAC)) exactly. snn_stdp.v adds the terms to w.
`default_nettype none

module snn_stdp_term #(
    parameter integer W_BITS    = 8,  // weight width
    parameter integer T_BITS    = 8,  // trace width (unsigned)
    parameter integer A_BITS    = 24, // amplitude width (unsigned)
    parameter integer FRAC      = 6,  // fraction bits of weights
    parameter integer T_FRAC    = 6,  // fraction bits of traces
    parameter integer STDP_FRAC = 8,  // extra fraction bits of the amplitudes
    parameter integer FW        = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2,
    parameter integer PW        = T_BITS + FW + A_BITS + 2
) (
    input  wire signed [T_BITS+FW:0] tf,        // trace * factor (snn_stdp_factor)
    input  wire [A_BITS-1:0]         amplitude, // a_plus (up) or a_minus (down)
    output wire signed [PW-1:0]      term       // the rounded term, >= 0 when w is in bounds
);

    localparam integer SHS = STDP_FRAC + T_FRAC + FRAC;

    wire signed [PW-1:0]  prod = tf * $signed({1'b0, amplitude});
    localparam signed [PW-1:0] RND = (SHS == 0) ? {PW{1'b0}}
                                   : ({{(PW-1){1'b0}}, 1'b1} <<< (SHS - 1));
    wire signed [PW-1:0]  sum  = prod + RND;

    assign term = sum >>> SHS;

endmodule

`default_nettype wire
