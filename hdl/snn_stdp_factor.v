// The first half of one STDP term (combinational): x * f, x the decayed trace and f the bound
// factor: soft bounds (w_max - w) for potentiation, (w - w_min) for depression; hard bounds
// 2^FRAC. snn_stdp_term multiplies it by the amplitude and rounds; the sequencer registers it
// in between, so that no cycle holds two multipliers in a row (they are untimed DSPs on the
// iCE40, see docs/hardware.md).
`default_nettype none

module snn_stdp_factor #(
    parameter integer W_BITS = 8,  // weight width
    parameter integer T_BITS = 8,  // trace width (unsigned)
    parameter integer FRAC   = 6,  // fraction bits of weights
    parameter integer FW     = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2
) (
    input  wire [T_BITS-1:0]         trace,      // decayed trace (pre for up, post for down)
    input  wire [W_BITS-1:0]         state_w,    // weight now
    input  wire [W_BITS-1:0]         bound,      // w_max (up) or w_min (down)
    input  wire                      dir_up,     // 1: potentiation term, 0: depression term
    input  wire                      param_soft, // 1: soft (multiplicative) bounds
    output wire signed [T_BITS+FW:0] tf          // trace * factor, exact
);

    // hard bounds use the soft-bound product with the factor 2^FRAC: round(y*2^FRAC >> SHS)
    // equals round(y >> SH) exactly, so one 3-way product serves both
    wire signed [FW-1:0] w_x = {{(FW-W_BITS){state_w[W_BITS-1]}}, state_w};
    wire signed [FW-1:0] b_x = {{(FW-W_BITS){bound[W_BITS-1]}}, bound};
    wire signed [FW-1:0] one = {{(FW-1){1'b0}}, 1'b1} <<< FRAC;
    wire signed [FW-1:0] f   = !param_soft ? one : (dir_up ? b_x - w_x : w_x - b_x);

    assign tf = $signed({1'b0, trace}) * f;

endmodule

`default_nettype wire
