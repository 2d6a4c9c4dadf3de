// One STDP term (combinational), rounded: round(x * f * a >> SHS) with SHS = STDP_FRAC +
// T_FRAC + FRAC, x the decayed trace, a the amplitude and f the bound factor: soft bounds
// (w_max - w) for potentiation, (w - w_min) for depression; hard bounds 2^FRAC (then the term
// equals round(x * a >> (STDP_FRAC + T_FRAC)) exactly). snn_stdp.v adds the terms to w.
`default_nettype none

module snn_stdp_term #(
    parameter integer W_BITS    = 8,  // weight width
    parameter integer T_BITS    = 8,  // trace width (unsigned)
    parameter integer A_BITS    = 24, // amplitude width (unsigned)
    parameter integer FRAC      = 6,  // fraction bits of weights
    parameter integer T_FRAC    = 6,  // fraction bits of traces
    parameter integer STDP_FRAC = 8,  // extra fraction bits of the amplitudes
    // derived: factor and product widths (set by default)
    parameter integer FW        = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2,
    parameter integer PW        = T_BITS + FW + A_BITS + 2
) (
    input  wire [T_BITS-1:0]    trace,      // decayed trace (pre for up, post for down)
    input  wire [W_BITS-1:0]    state_w,    // weight now
    input  wire [W_BITS-1:0]    bound,      // w_max (up) or w_min (down)
    input  wire                 dir_up,     // 1: potentiation term, 0: depression term
    input  wire                 param_soft, // 1: soft (multiplicative) bounds
    input  wire [A_BITS-1:0]    amplitude,  // a_plus (up) or a_minus (down)
    output wire signed [PW-1:0] term        // the rounded term, >= 0 when w is in bounds
);

    localparam integer SHS = STDP_FRAC + T_FRAC + FRAC;

    // hard bounds use the soft-bound product with the factor 2^FRAC: round(y*2^FRAC >> SHS)
    // equals round(y >> SH) exactly, so one 3-way product serves both
    wire signed [FW-1:0] w_x   = {{(FW-W_BITS){state_w[W_BITS-1]}}, state_w};
    wire signed [FW-1:0] b_x   = {{(FW-W_BITS){bound[W_BITS-1]}}, bound};
    wire signed [FW-1:0] one   = {{(FW-1){1'b0}}, 1'b1} <<< FRAC;
    wire signed [FW-1:0] f     = !param_soft ? one : (dir_up ? b_x - w_x : w_x - b_x);
    wire signed [T_BITS+FW:0] tf = $signed({1'b0, trace}) * f;
    wire signed [PW-1:0]  prod = tf * $signed({1'b0, amplitude});
    localparam signed [PW-1:0] RND = (SHS == 0) ? {PW{1'b0}}
                                   : ({{(PW-1){1'b0}}, 1'b1} <<< (SHS - 1));
    wire signed [PW-1:0]  sum  = prod + RND;

    assign term = sum >>> SHS;

endmodule

`default_nettype wire
