// Test top for the neuron blocks: one complete neuron update as snnkit.neurons.neuron_step
// does it, the three decays (snn_decay) feeding snn_integrate, then snn_fire. In the core the
// sequencer runs the decays one after another through one snn_decay and registers the
// results of snn_integrate for snn_fire; here each decay has its own, and the halves chain.
`default_nettype none

module neuron_cell #(
    parameter integer S_BITS = 16, // state width (v, i, theta and their parameters)
    parameter integer D_BITS = 12, // decay fraction bits
    parameter integer ACC_W  = 24, // width of the synaptic input sum
    parameter integer R_BITS = 8   // refractory counter width
) (
    input  wire [S_BITS-1:0] state_v,           // membrane potential
    input  wire [S_BITS-1:0] state_i,           // synaptic current
    input  wire [R_BITS-1:0] state_refrac,      // refractory steps left
    input  wire [S_BITS-1:0] state_theta,       // adaptive threshold
    input  wire [ACC_W-1:0]  event_x,           // exact sum of arriving weights
    input  wire [D_BITS:0]   param_alpha,       // current decay
    input  wire [D_BITS:0]   param_beta,        // membrane decay
    input  wire [D_BITS:0]   param_adapt_decay, // theta decay
    input  wire [S_BITS-1:0] param_threshold,   // firing threshold
    input  wire [S_BITS-1:0] param_v_reset,     // value after a spike (reset to value)
    input  wire [S_BITS-1:0] param_bias,        // constant input
    input  wire [S_BITS-1:0] param_adapt_plus,  // theta increase per spike
    input  wire [R_BITS-1:0] param_refractory,  // refractory steps after a spike
    input  wire              param_subtract,    // 1: reset by subtraction, 0: to v_reset
    output wire              spike,             // the neuron fires this step
    output wire [S_BITS-1:0] state_next_v,      // new membrane potential
    output wire [S_BITS-1:0] state_next_i,      // new synaptic current
    output wire [R_BITS-1:0] state_next_refrac, // new refractory counter
    output wire [S_BITS-1:0] state_next_theta   // new adaptive threshold
);

    wire [S_BITS-1:0] decay_i, decay_v, decay_theta;

    snn_decay #(.X_W(S_BITS), .D_BITS(D_BITS), .SIGNED(1)) u_decay_i (
        .x(state_i), .d(param_alpha), .y(decay_i));
    snn_decay #(.X_W(S_BITS), .D_BITS(D_BITS), .SIGNED(1)) u_decay_v (
        .x(state_v), .d(param_beta), .y(decay_v));
    snn_decay #(.X_W(S_BITS), .D_BITS(D_BITS), .SIGNED(1)) u_decay_theta (
        .x(state_theta), .d(param_adapt_decay), .y(decay_theta));

    wire              active;
    wire [S_BITS-1:0] v_int;
    wire [S_BITS:0]   thr;

    snn_integrate #(.S_BITS(S_BITS), .ACC_W(ACC_W), .R_BITS(R_BITS)) u_integrate (
        .state_v(state_v), .state_refrac(state_refrac), .state_theta(state_theta),
        .event_x(event_x), .decay_i(decay_i), .decay_v(decay_v),
        .param_threshold(param_threshold), .param_bias(param_bias),
        .active(active), .state_next_i(state_next_i), .v_int(v_int), .thr(thr));

    snn_fire #(.S_BITS(S_BITS), .R_BITS(R_BITS)) u_fire (
        .active(active), .v_int(v_int), .thr(thr), .state_refrac(state_refrac),
        .decay_theta(decay_theta), .param_v_reset(param_v_reset),
        .param_adapt_plus(param_adapt_plus), .param_refractory(param_refractory),
        .param_subtract(param_subtract), .spike(spike), .state_next_v(state_next_v),
        .state_next_refrac(state_next_refrac), .state_next_theta(state_next_theta));

endmodule

`default_nettype wire
