// The second half of one neuron update (combinational), items 5-8 of
// snnkit.neurons.neuron_step, from snn_integrate's results (registered in the sequencer):
//   spike = active && v1 >= thr                             (exact, no saturation)
//   v' = spike ? (subtract ? sat(v1 - thr) : v_reset) : v1
//   refractory' = spike ? refractory : (active ? 0 : refractory - 1)
//   theta' = spike ? sat(decay(theta, adapt_decay) + adapt_plus) : decay(theta, adapt_decay)
// Each result is computed for both outcomes and the spike only selects, so the compare is the
// one carry chain in front of the multiplexers.
`default_nettype none

module snn_fire #(
    parameter integer S_BITS = 16, // state width (v, theta and their parameters)
    parameter integer R_BITS = 8   // refractory counter width
) (
    input  wire              active,            // not refractory (snn_integrate)
    input  wire [S_BITS-1:0] v_int,             // membrane potential before the check
    input  wire [S_BITS:0]   thr,               // threshold + theta, exact
    input  wire [R_BITS-1:0] state_refrac,      // refractory steps left
    input  wire [S_BITS-1:0] decay_theta,       // decay(state_theta, adapt_decay)
    input  wire [S_BITS-1:0] param_v_reset,     // value after a spike (reset to value)
    input  wire [S_BITS-1:0] param_adapt_plus,  // theta increase per spike
    input  wire [R_BITS-1:0] param_refractory,  // refractory steps after a spike
    input  wire              param_subtract,    // 1: reset by subtraction, 0: to v_reset
    output wire              spike,             // the neuron fires this step
    output wire [S_BITS-1:0] state_next_v,      // new membrane potential
    output wire [R_BITS-1:0] state_next_refrac, // new refractory counter
    output wire [S_BITS-1:0] state_next_theta   // new adaptive threshold
);

    localparam integer E_W = S_BITS + 3;

    wire signed [E_W-1:0] v_e   = {{(E_W-S_BITS){v_int[S_BITS-1]}}, v_int};
    wire signed [E_W-1:0] thr_e = {{(E_W-S_BITS-1){thr[S_BITS]}}, thr};
    wire signed [E_W-1:0] th_e  = {{(E_W-S_BITS){decay_theta[S_BITS-1]}}, decay_theta};
    wire signed [E_W-1:0] ap_e  = {{(E_W-S_BITS){param_adapt_plus[S_BITS-1]}}, param_adapt_plus};
    // v1 - thr is exact in E_W bits: its sign is the compare, and it is the subtractive reset
    wire signed [E_W-1:0] diff  = v_e - thr_e;
    wire signed [E_W-1:0] th_up = th_e + ap_e;
    wire [S_BITS-1:0]     v_sub, th_sat;

    snn_sat #(.X_W(E_W), .S_BITS(S_BITS)) u_sat_v (.x(diff), .y(v_sub));
    snn_sat #(.X_W(E_W), .S_BITS(S_BITS)) u_sat_th (.x(th_up), .y(th_sat));

    assign spike             = active && !diff[E_W-1];
    assign state_next_v      = !spike ? v_int : (param_subtract ? v_sub : param_v_reset);
    assign state_next_refrac = spike ? param_refractory
                             : (active ? {R_BITS{1'b0}} : state_refrac - 1'b1);
    assign state_next_theta  = spike ? th_sat : decay_theta;

endmodule

`default_nettype wire
