// Test top for the STDP blocks: one synapse's complete plasticity step, as
// snnkit.plasticity.stdp_step does it for a 1x1 projection: both traces decay, the weight
// changes with the decayed traces (per term snn_stdp_bound, snn_stdp_factor, snn_stdp_product,
// snn_stdp_term; then snn_stdp_dw and snn_stdp: the sequencer registers between them), then
// the traces take this step's spikes.
`default_nettype none

module stdp_synapse #(
    parameter integer W_BITS    = 8,  // weight width
    parameter integer T_BITS    = 8,  // trace width
    parameter integer A_BITS    = 24, // amplitude width
    parameter integer D_BITS    = 12, // decay fraction bits
    parameter integer FRAC      = 6,  // weight fraction bits
    parameter integer T_FRAC    = 6,  // trace fraction bits
    parameter integer STDP_FRAC = 8   // amplitude extra fraction bits
) (
    input  wire [W_BITS-1:0] state_w,          // weight
    input  wire [T_BITS-1:0] state_x_pre,      // presynaptic trace
    input  wire [T_BITS-1:0] state_x_post,     // postsynaptic trace
    input  wire              event_pre,        // presynaptic arrival
    input  wire              event_post,       // postsynaptic spike
    input  wire              param_plastic,    // synapse learns
    input  wire              param_nearest,    // nearest-spike traces
    input  wire              param_soft,       // soft bounds
    input  wire [D_BITS:0]   param_pre_decay,  // presynaptic trace decay
    input  wire [D_BITS:0]   param_post_decay, // postsynaptic trace decay
    input  wire [A_BITS-1:0] param_a_plus,     // potentiation
    input  wire [A_BITS-1:0] param_a_minus,    // depression
    input  wire [W_BITS-1:0] param_w_min,      // lower bound
    input  wire [W_BITS-1:0] param_w_max,      // upper bound
    output wire [W_BITS-1:0] state_next_w,     // new weight
    output wire [T_BITS-1:0] state_next_x_pre, // new presynaptic trace
    output wire [T_BITS-1:0] state_next_x_post // new postsynaptic trace
);

    wire [T_BITS-1:0] pre_decayed, post_decayed;

    snn_trace #(.T_BITS(T_BITS), .T_FRAC(T_FRAC), .D_BITS(D_BITS)) u_pre (
        .state_x(state_x_pre), .param_decay(param_pre_decay), .param_nearest(param_nearest),
        .event_spike(event_pre), .trace_decayed(pre_decayed), .state_next_x(state_next_x_pre));
    snn_trace #(.T_BITS(T_BITS), .T_FRAC(T_FRAC), .D_BITS(D_BITS)) u_post (
        .state_x(state_x_post), .param_decay(param_post_decay), .param_nearest(param_nearest),
        .event_spike(event_post), .trace_decayed(post_decayed),
        .state_next_x(state_next_x_post));
    localparam integer FW = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2;
    localparam integer PW = T_BITS + FW + A_BITS + 2;
    wire signed [PW-1:0] term_up, term_down;

    wire signed [FW-1:0]      f_up, f_down;
    wire signed [T_BITS+FW:0] tf_up, tf_down;

    snn_stdp_bound #(.W_BITS(W_BITS), .FRAC(FRAC)) u_up_b (
        .state_w(state_w), .bound(param_w_max), .dir_up(1'b1), .param_soft(param_soft),
        .f(f_up));
    snn_stdp_factor #(.W_BITS(W_BITS), .T_BITS(T_BITS), .FRAC(FRAC)) u_up_f (
        .trace(pre_decayed), .f(f_up), .tf(tf_up));
    localparam integer TX = (T_BITS + FW + 1 > 17) ? T_BITS + FW + 1 : 17;
    localparam integer AX = (A_BITS > 17) ? A_BITS : 17;
    wire [31:0] ll_up, ll_down;
    wire [AX-1:0] lh_up, lh_down;
    wire signed [TX+AX-16:0] h_up, h_down;

    snn_stdp_product #(.T_BITS(T_BITS), .A_BITS(A_BITS), .FW(FW)) u_up_p (
        .tf(tf_up), .amplitude(param_a_plus), .p_ll(ll_up), .p_lh(lh_up), .p_h(h_up));
    snn_stdp_term #(.W_BITS(W_BITS), .T_BITS(T_BITS), .A_BITS(A_BITS), .FRAC(FRAC),
                    .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC)) u_up (
        .p_ll(ll_up), .p_lh(lh_up), .p_h(h_up), .term(term_up));
    snn_stdp_bound #(.W_BITS(W_BITS), .FRAC(FRAC)) u_down_b (
        .state_w(state_w), .bound(param_w_min), .dir_up(1'b0), .param_soft(param_soft),
        .f(f_down));
    snn_stdp_factor #(.W_BITS(W_BITS), .T_BITS(T_BITS), .FRAC(FRAC)) u_down_f (
        .trace(post_decayed), .f(f_down), .tf(tf_down));
    snn_stdp_product #(.T_BITS(T_BITS), .A_BITS(A_BITS), .FW(FW)) u_down_p (
        .tf(tf_down), .amplitude(param_a_minus), .p_ll(ll_down), .p_lh(lh_down),
        .p_h(h_down));
    snn_stdp_term #(.W_BITS(W_BITS), .T_BITS(T_BITS), .A_BITS(A_BITS), .FRAC(FRAC),
                    .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC)) u_down (
        .p_ll(ll_down), .p_lh(lh_down), .p_h(h_down), .term(term_down));
    wire signed [W_BITS+2:0] dw;

    snn_stdp_dw #(.W_BITS(W_BITS), .PW(PW)) u_dw (
        .event_pre(event_pre), .event_post(event_post), .term_up(term_up),
        .term_down(term_down), .dw(dw));
    snn_stdp #(.W_BITS(W_BITS)) u_stdp (
        .state_w(state_w), .param_plastic(param_plastic), .dw(dw),
        .param_w_min(param_w_min), .param_w_max(param_w_max), .state_next_w(state_next_w));

endmodule

`default_nettype wire
