// One synapse's STDP weight update (combinational), snnkit.plasticity.stdp_step in integers:
//   hard: dw = post*round(xpre*a_plus >> SH) - pre*round(xpost*a_minus >> SH)
//   soft: dw = post*round(xpre*(w_max-w)*a_plus >> SHS) - pre*round(xpost*(w-w_min)*a_minus >> SHS)
//   w' = plastic ? clamp(w + dw, w_min, w_max) : w
// (hard is computed as soft with (w_max - w) replaced by 2^FRAC: the same integer.)
// with the traces already decayed for this step; SH = STDP_FRAC + T_FRAC, SHS = SH + FRAC,
// round(y >> s) = (y + 2^(s-1)) >>> s.
`default_nettype none

module snn_stdp #(
    parameter integer W_BITS    = 8,  // weight width
    parameter integer T_BITS    = 8,  // trace width (unsigned)
    parameter integer A_BITS    = 24, // amplitude width (unsigned)
    parameter integer FRAC      = 6,  // fraction bits of weights
    parameter integer T_FRAC    = 6,  // fraction bits of traces
    parameter integer STDP_FRAC = 8   // extra fraction bits of the amplitudes
) (
    input  wire [W_BITS-1:0] state_w,       // weight now
    input  wire              param_plastic, // this synapse learns
    input  wire [T_BITS-1:0] trace_pre,     // decayed presynaptic trace
    input  wire [T_BITS-1:0] trace_post,    // decayed postsynaptic trace
    input  wire              event_pre,     // a presynaptic spike arrives this step
    input  wire              event_post,    // the postsynaptic neuron fired this step
    input  wire [A_BITS-1:0] param_a_plus,  // potentiation amplitude
    input  wire [A_BITS-1:0] param_a_minus, // depression amplitude
    input  wire [W_BITS-1:0] param_w_min,   // lower bound
    input  wire [W_BITS-1:0] param_w_max,   // upper bound
    input  wire              param_soft,    // 1: soft (multiplicative) bounds
    output wire [W_BITS-1:0] state_next_w   // weight after the update
);

    localparam integer SH  = STDP_FRAC + T_FRAC;
    localparam integer SHS = SH + FRAC;
    localparam integer M_W = T_BITS + W_BITS + A_BITS + 4;

    function automatic signed [M_W-1:0] round_shift;  // (y + 2^(s-1)) >>> s, s >= 0
        input signed [M_W-1:0] y;
        input integer s;
        reg signed [M_W-1:0] r;
        begin
            r = (s == 0) ? {M_W{1'b0}} : ({{(M_W-1){1'b0}}, 1'b1} <<< (s - 1));
            round_shift = (y + r) >>> s;
        end
    endfunction

    function automatic signed [M_W-1:0] sw;  // sign-extend a weight
        input [W_BITS-1:0] x;
        begin
            sw = {{(M_W-W_BITS){x[W_BITS-1]}}, x};
        end
    endfunction

    wire signed [M_W-1:0] pre_ext   = {{(M_W-T_BITS){1'b0}}, trace_pre};
    wire signed [M_W-1:0] post_ext  = {{(M_W-T_BITS){1'b0}}, trace_post};
    wire signed [M_W-1:0] ap_ext    = {{(M_W-A_BITS){1'b0}}, param_a_plus};
    wire signed [M_W-1:0] am_ext    = {{(M_W-A_BITS){1'b0}}, param_a_minus};
    wire signed [M_W-1:0] w_ext     = sw(state_w);
    wire signed [M_W-1:0] lo        = sw(param_w_min);
    wire signed [M_W-1:0] hi        = sw(param_w_max);

    // hard bounds use the soft-bound product with (w_max - w) = 2^FRAC: round(y*2^FRAC >> SHS)
    // equals round(y >> SH) exactly, so one 3-way product per direction serves both
    localparam signed [M_W-1:0] ONE_W = {{(M_W-1){1'b0}}, 1'b1} <<< FRAC;
    wire signed [M_W-1:0] f_up      = param_soft ? (hi - w_ext) : ONE_W;
    wire signed [M_W-1:0] f_down    = param_soft ? (w_ext - lo) : ONE_W;
    wire signed [M_W-1:0] up        = round_shift(pre_ext * f_up * ap_ext, SHS);
    wire signed [M_W-1:0] down      = round_shift(post_ext * f_down * am_ext, SHS);
    wire signed [M_W-1:0] dw        = (event_post ? up : {M_W{1'b0}})
                                    - (event_pre ? down : {M_W{1'b0}});
    wire signed [M_W-1:0] w_sum     = w_ext + dw;
    wire signed [M_W-1:0] w_clamp   = (w_sum > hi) ? hi : ((w_sum < lo) ? lo : w_sum);

    assign state_next_w = param_plastic ? w_clamp[W_BITS-1:0] : state_w;

    // verilator lint_off UNUSEDSIGNAL
    wire unused_high = ^w_clamp[M_W-1:W_BITS];
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
