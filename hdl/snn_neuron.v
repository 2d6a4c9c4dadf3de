// One neuron update (combinational), the general current-based LIF of snnkit.neurons:
//   i' = sat(decay(i, alpha) + x)
//   v1 = refractory ? v : sat(decay(v, beta) + i' + bias)
//   spike = !refractory && v1 >= threshold + theta        (exact, no saturation)
//   v' = spike ? (subtract ? sat(v1 - threshold - theta) : v_reset) : v1
//   refractory counter, theta' = sat(decay(theta, adapt_decay) + spike*adapt_plus)
// LIF is alpha = 0, IF is alpha = 0 and beta = 1.0.
// The three decays decay(i, alpha), decay(v, beta), decay(theta, adapt_decay) (snn_decay)
// come in computed: the sequencer runs them one after another through one shared multiplier
// (the iCE40UP5K has 8 DSPs), while the neuron's synaptic events are being summed.
`default_nettype none

module snn_neuron #(
    parameter integer S_BITS = 16, // state width (v, i, theta and their parameters)
    parameter integer ACC_W  = 24, // width of the synaptic input sum
    parameter integer R_BITS = 8   // refractory counter width
) (
    input  wire [S_BITS-1:0] state_v,           // membrane potential
    input  wire [R_BITS-1:0] state_refrac,      // refractory steps left
    input  wire [S_BITS-1:0] state_theta,       // adaptive threshold
    input  wire [ACC_W-1:0]  event_x,           // exact sum of arriving weights
    input  wire [S_BITS-1:0] decay_i,           // decay(state_i, alpha)
    input  wire [S_BITS-1:0] decay_v,           // decay(state_v, beta)
    input  wire [S_BITS-1:0] decay_theta,       // decay(state_theta, adapt_decay)
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

    localparam integer E_W = ((ACC_W > S_BITS + 2) ? ACC_W : S_BITS + 2) + 2;
    localparam signed [E_W-1:0] HI = (1 <<< (S_BITS - 1)) - 1;
    localparam signed [E_W-1:0] LO = -(1 <<< (S_BITS - 1));

    // x > HI or x < LO exactly when x's bits from S_BITS-1 up are not all equal (the sign
    // says which): a test of the bits, no comparator
    function automatic [S_BITS-1:0] sat;
        input signed [E_W-1:0] x;
        begin
            if (x[E_W-1:S_BITS-1] == {(E_W-S_BITS+1){1'b0}}
                    || x[E_W-1:S_BITS-1] == {(E_W-S_BITS+1){1'b1}})
                sat = x[S_BITS-1:0];
            else
                sat = x[E_W-1] ? LO[S_BITS-1:0] : HI[S_BITS-1:0];
        end
    endfunction

    function automatic signed [E_W-1:0] sx;  // sign-extend a state-width value
        input [S_BITS-1:0] x;
        begin
            sx = {{(E_W-S_BITS){x[S_BITS-1]}}, x};
        end
    endfunction

    wire signed [E_W-1:0] x_ext  = {{(E_W-ACC_W){event_x[ACC_W-1]}}, event_x};
    wire [S_BITS-1:0]     i_new  = sat(sx(decay_i) + x_ext);
    wire                  active = (state_refrac == {R_BITS{1'b0}});
    wire [S_BITS-1:0]     v_int  = active ? sat(sx(decay_v) + sx(i_new) + sx(param_bias))
                                          : state_v;
    wire signed [E_W-1:0] thr    = sx(param_threshold) + sx(state_theta);

    assign spike             = active && (sx(v_int) >= thr);
    assign state_next_i      = i_new;
    assign state_next_v      = !spike ? v_int
                             : (param_subtract ? sat(sx(v_int) - thr) : param_v_reset);
    assign state_next_refrac = spike ? param_refractory
                             : (active ? {R_BITS{1'b0}} : state_refrac - 1'b1);
    assign state_next_theta  = sat(sx(decay_theta) + (spike ? sx(param_adapt_plus)
                                                            : {E_W{1'b0}}));

endmodule

`default_nettype wire
