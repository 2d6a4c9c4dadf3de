// STDP weight update of one synapse (combinational), snnkit.plasticity.stdp_step in integers:
//   hard: dw = post*round(xpre*a_plus >> SH) - pre*round(xpost*a_minus >> SH)
//   soft: dw = post*round(xpre*(w_max-w)*a_plus >> SHS) - pre*round(xpost*(w-w_min)*a_minus >> SHS)
//   w' = plastic ? clamp(w + dw, w_min, w_max) : w
// with the traces already decayed for this step; SH = STDP_FRAC + T_FRAC, SHS = SH + FRAC,
// round(y >> s) = (y + 2^(s-1)) >>> s.
// This block adds the two terms to the weight and clamps; snn_stdp_term.v computes a term
// (the sequencer runs both through one instance: the products are the costly part).
`default_nettype none

module snn_stdp #(
    parameter integer W_BITS    = 8,  // weight width
    parameter integer PW        = 42  // width of the terms (at least W_BITS + 3)
) (
    input  wire [W_BITS-1:0]    state_w,       // weight now
    input  wire                 param_plastic, // this synapse learns
    input  wire                 event_pre,     // a presynaptic spike arrives this step
    input  wire                 event_post,    // the postsynaptic neuron fired this step
    input  wire signed [PW-1:0] term_up,       // potentiation term (snn_stdp_term, up = 1)
    input  wire signed [PW-1:0] term_down,     // depression term (snn_stdp_term, up = 0)
    input  wire [W_BITS-1:0]    param_w_min,   // lower bound
    input  wire [W_BITS-1:0]    param_w_max,   // upper bound
    output wire [W_BITS-1:0]    state_next_w   // weight after the update
);

    // dw = post*up - pre*down is exact in PW + 1 bits; a dw outside the (W_BITS+2)-bit range
    // clamps to a bound whatever w is (|dw| >= 2^(W_BITS+1) - 1 > w_max - w_min), so dw is
    // saturated there and the rest is narrow
    localparam integer D_W = PW + 1;
    localparam integer N_W = W_BITS + 3;  // w + dw with dw in the (W_BITS+2)-bit range
    wire signed [D_W-1:0] up_x   = event_post ? {term_up[PW-1], term_up} : {D_W{1'b0}};
    wire signed [D_W-1:0] down_x = event_pre ? {term_down[PW-1], term_down} : {D_W{1'b0}};
    wire signed [D_W-1:0] dw     = up_x - down_x;
    wire [D_W-W_BITS-2:0] dw_top = dw[D_W-1:W_BITS+1];  // all equal: dw fits W_BITS+2 bits
    wire                  dw_fit = (&dw_top) || !(|dw_top);
    wire signed [N_W-1:0] dw_n   = dw_fit ? {dw[W_BITS+1], dw[W_BITS+1:0]}
                                 : {{2{dw[D_W-1]}}, !dw[D_W-1], {W_BITS{!dw[D_W-1]}}};
    wire signed [N_W-1:0] lo     = {{3{param_w_min[W_BITS-1]}}, param_w_min};
    wire signed [N_W-1:0] hi     = {{3{param_w_max[W_BITS-1]}}, param_w_max};
    wire signed [N_W-1:0] w_sum  = {{3{state_w[W_BITS-1]}}, state_w} + dw_n;
    wire signed [N_W-1:0] w_clamp = (w_sum > hi) ? hi : ((w_sum < lo) ? lo : w_sum);

    assign state_next_w = param_plastic ? w_clamp[W_BITS-1:0] : state_w;

    // verilator lint_off UNUSEDSIGNAL
    wire unused_high = ^w_clamp[N_W-1:W_BITS];
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
