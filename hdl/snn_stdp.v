// STDP weight update of one synapse (combinational), snnkit.plasticity.stdp_step in integers:
//   hard: dw = post*round(xpre*a_plus >> SH) - pre*round(xpost*a_minus >> SH)
//   soft: dw = post*round(xpre*(w_max-w)*a_plus >> SHS) - pre*round(xpost*(w-w_min)*a_minus >> SHS)
//   w' = plastic ? clamp(w + dw, w_min, w_max) : w
// with the traces already decayed for this step; SH = STDP_FRAC + T_FRAC, SHS = SH + FRAC,
// round(y >> s) = (y + 2^(s-1)) >>> s.
// This block adds dw (snn_stdp_dw.v, from the two terms of snn_stdp_term.v) to the weight
// and clamps.
`default_nettype none

module snn_stdp #(
    parameter integer W_BITS = 8   // weight width
) (
    input  wire [W_BITS-1:0]        state_w,       // weight now
    input  wire                     param_plastic, // this synapse learns
    input  wire signed [W_BITS+2:0] dw,            // weight change (snn_stdp_dw, saturated)
    input  wire [W_BITS-1:0]        param_w_min,   // lower bound
    input  wire [W_BITS-1:0]        param_w_max,   // upper bound
    output wire [W_BITS-1:0]        state_next_w   // weight after the update
);

    localparam integer N_W = W_BITS + 3;  // w + dw with dw in the (W_BITS+2)-bit range
    wire signed [N_W-1:0] lo      = {{3{param_w_min[W_BITS-1]}}, param_w_min};
    wire signed [N_W-1:0] hi      = {{3{param_w_max[W_BITS-1]}}, param_w_max};
    wire signed [N_W-1:0] w_sum   = {{3{state_w[W_BITS-1]}}, state_w} + dw;
    wire signed [N_W-1:0] w_clamp = (w_sum > hi) ? hi : ((w_sum < lo) ? lo : w_sum);

    assign state_next_w = param_plastic ? w_clamp[W_BITS-1:0] : state_w;

    // verilator lint_off UNUSEDSIGNAL
    wire unused_high = ^w_clamp[N_W-1:W_BITS];
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
