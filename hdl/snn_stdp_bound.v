// The bound factor of one STDP term (combinational): soft bounds (w_max - w) for
// potentiation, (w - w_min) for depression; hard bounds 2^FRAC. The sequencer registers it
// before snn_stdp_factor, so no subtraction sits in front of that multiplier (an untimed DSP
// on the iCE40, see docs/hardware.md).
`default_nettype none

module snn_stdp_bound #(
    parameter integer W_BITS = 8,  // weight width
    parameter integer FRAC   = 6,  // fraction bits of weights
    parameter integer FW     = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2
) (
    input  wire [W_BITS-1:0]     state_w,    // weight now
    input  wire [W_BITS-1:0]     bound,      // w_max (up) or w_min (down)
    input  wire                  dir_up,     // 1: potentiation term, 0: depression term
    input  wire                  param_soft, // 1: soft (multiplicative) bounds
    output wire signed [FW-1:0]  f           // the factor, exact
);

    // hard bounds use the soft-bound product with the factor 2^FRAC: round(y*2^FRAC >> SHS)
    // equals round(y >> SH) exactly, so one 3-way product serves both
    wire signed [FW-1:0] w_x = {{(FW-W_BITS){state_w[W_BITS-1]}}, state_w};
    wire signed [FW-1:0] b_x = {{(FW-W_BITS){bound[W_BITS-1]}}, bound};
    wire signed [FW-1:0] one = {{(FW-1){1'b0}}, 1'b1} <<< FRAC;

    assign f = !param_soft ? one : (dir_up ? b_x - w_x : w_x - b_x);

endmodule

`default_nettype wire
