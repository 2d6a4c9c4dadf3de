// The weight change of one synapse (combinational), from its two STDP terms:
//   dw = post*up - pre*down   (snn_stdp_term computes up and down)
// narrowed for snn_stdp.v, which adds it to the weight and clamps. The sequencer registers
// dw between the two (a cycle each: the subtraction, then the addition and the clamp).
`default_nettype none

module snn_stdp_dw #(
    parameter integer W_BITS = 8,  // weight width
    parameter integer PW     = 42  // width of the terms (at least W_BITS + 3)
) (
    input  wire                   event_pre,  // a presynaptic spike arrives this step
    input  wire                   event_post, // the postsynaptic neuron fired this step
    input  wire signed [PW-1:0]   term_up,    // potentiation term (snn_stdp_term, up = 1)
    input  wire signed [PW-1:0]   term_down,  // depression term (snn_stdp_term, up = 0)
    output wire signed [W_BITS+2:0] dw        // dw, saturated to W_BITS + 2 bits (+ sign)
);

    // dw is exact in PW + 1 bits; a dw outside the (W_BITS+2)-bit range clamps to a bound
    // whatever w is (|dw| >= 2^(W_BITS+1) - 1 > w_max - w_min), so dw is saturated there and
    // the addition is narrow
    localparam integer D_W = PW + 1;
    wire signed [D_W-1:0] up_x   = event_post ? {term_up[PW-1], term_up} : {D_W{1'b0}};
    wire signed [D_W-1:0] down_x = event_pre ? {term_down[PW-1], term_down} : {D_W{1'b0}};
    wire signed [D_W-1:0] d      = up_x - down_x;
    wire [D_W-W_BITS-2:0] d_top  = d[D_W-1:W_BITS+1];  // all equal: d fits W_BITS+2 bits
    wire                  d_fit  = (&d_top) || !(|d_top);

    assign dw = d_fit ? {d[W_BITS+1], d[W_BITS+1:0]}
                      : {{2{d[D_W-1]}}, !d[D_W-1], {W_BITS{!d[D_W-1]}}};

endmodule

`default_nettype wire
