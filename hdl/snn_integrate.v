// The first half of one neuron update (combinational), items 3-4 of snnkit.neurons.neuron_step:
//   i' = sat(decay(i, alpha) + x)
//   v1 = refractory ? v : sat(decay(v, beta) + i' + bias)
//   threshold of this step = threshold + theta (exact)
// snn_fire does the rest (items 5-8); the sequencer registers everything between the two, so
// that no cycle holds both the sums and the threshold compare (the iCE40UP5K's longest path).
// The decays decay(i, alpha), decay(v, beta) (snn_decay) come in computed: the sequencer runs
// a neuron's three decays one after another through one shared multiplier (the iCE40UP5K has
// 8 DSPs), while the neuron's synaptic events are being summed.
// LIF is alpha = 0, IF is alpha = 0 and beta = 1.0.
`default_nettype none

module snn_integrate #(
    parameter integer S_BITS = 16, // state width (v, i, theta and their parameters)
    parameter integer ACC_W  = 24, // width of the synaptic input sum
    parameter integer R_BITS = 8   // refractory counter width
) (
    input  wire [S_BITS-1:0] state_v,         // membrane potential
    input  wire [R_BITS-1:0] state_refrac,    // refractory steps left
    input  wire [S_BITS-1:0] state_theta,     // adaptive threshold
    input  wire [ACC_W-1:0]  event_x,         // exact sum of arriving weights
    input  wire [S_BITS-1:0] decay_i,         // decay(state_i, alpha)
    input  wire [S_BITS-1:0] decay_v,         // decay(state_v, beta)
    input  wire [S_BITS-1:0] param_threshold, // firing threshold
    input  wire [S_BITS-1:0] param_bias,      // constant input
    output wire              active,          // not refractory: integrates and may fire
    output wire [S_BITS-1:0] state_next_i,    // new synaptic current
    output wire [S_BITS-1:0] v_int,           // membrane potential before the spike check
    output wire [S_BITS:0]   thr              // threshold + theta, exact (two's complement)
);

    localparam integer E_W = ((ACC_W > S_BITS + 2) ? ACC_W : S_BITS + 2) + 2;

    function automatic signed [E_W-1:0] sx;  // sign-extend a state-width value
        input [S_BITS-1:0] x;
        begin
            sx = {{(E_W-S_BITS){x[S_BITS-1]}}, x};
        end
    endfunction

    wire signed [E_W-1:0] x_ext = {{(E_W-ACC_W){event_x[ACC_W-1]}}, event_x};
    wire signed [E_W-1:0] thr_e = sx(param_threshold) + sx(state_theta);
    wire signed [E_W-1:0] i_sum = sx(decay_i) + x_ext;
    wire signed [E_W-1:0] v_sum = sx(decay_v) + sx(state_next_i) + sx(param_bias);
    wire [S_BITS-1:0]     v_sat;

    snn_sat #(.X_W(E_W), .S_BITS(S_BITS)) u_sat_i (.x(i_sum), .y(state_next_i));
    snn_sat #(.X_W(E_W), .S_BITS(S_BITS)) u_sat_v (.x(v_sum), .y(v_sat));

    assign active       = (state_refrac == {R_BITS{1'b0}});
    assign v_int        = active ? v_sat : state_v;
    assign thr          = thr_e[S_BITS:0];

    // verilator lint_off UNUSEDSIGNAL
    wire unused_thr = ^thr_e[E_W-1:S_BITS+1];  // sign copies: the sum of two S_BITS values
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
