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
    parameter integer PW        = 42  // width of the terms (snn_stdp_term's PW)
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

    localparam integer M_W = PW + 2;

    function automatic signed [M_W-1:0] sw;  // sign-extend a weight
        input [W_BITS-1:0] x;
        begin
            sw = {{(M_W-W_BITS){x[W_BITS-1]}}, x};
        end
    endfunction

    wire signed [M_W-1:0] lo      = sw(param_w_min);
    wire signed [M_W-1:0] hi      = sw(param_w_max);
    wire signed [M_W-1:0] up_x    = {{2{term_up[PW-1]}}, term_up};
    wire signed [M_W-1:0] down_x  = {{2{term_down[PW-1]}}, term_down};
    wire signed [M_W-1:0] w_sum   = sw(state_w) + (event_post ? up_x : {M_W{1'b0}})
                                                - (event_pre ? down_x : {M_W{1'b0}});
    wire signed [M_W-1:0] w_clamp = (w_sum > hi) ? hi : ((w_sum < lo) ? lo : w_sum);

    assign state_next_w = param_plastic ? w_clamp[W_BITS-1:0] : state_w;

    // verilator lint_off UNUSEDSIGNAL
    wire unused_high = ^w_clamp[M_W-1:W_BITS];
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
