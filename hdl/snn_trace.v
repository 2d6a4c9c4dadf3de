// One STDP trace update (combinational): decay, then this step's spike.
//   all pairs: x' = min(decay(x) + spike*ONE, 2^T_BITS - 1) ; nearest: x' = spike ? ONE : decay(x)
// The decayed value is also returned: the weight update of this step uses it.
`default_nettype none

module snn_trace #(
    parameter integer T_BITS = 8,  // trace width (unsigned)
    parameter integer T_FRAC = 6,  // fraction bits: ONE = 2^T_FRAC
    parameter integer D_BITS = 12  // decay fraction bits
) (
    input  wire [T_BITS-1:0] state_x,       // trace after the previous step
    input  wire [D_BITS:0]   param_decay,   // decay factor
    input  wire              param_nearest, // 1: nearest-spike rule, 0: all pairs
    input  wire              event_spike,   // spike (or arrival) this step
    output wire [T_BITS-1:0] trace_decayed, // decay(x), used by this step's weight update
    output wire [T_BITS-1:0] state_next_x   // trace for the next step
);

    localparam [T_BITS:0] ONE  = {{T_BITS{1'b0}}, 1'b1} << T_FRAC;
    localparam [T_BITS:0] TMAX = {1'b0, {T_BITS{1'b1}}};

    snn_decay #(.X_W(T_BITS), .D_BITS(D_BITS), .SIGNED(0)) u_decay (
        .x(state_x), .d(param_decay), .y(trace_decayed));

    wire [T_BITS:0] sum = {1'b0, trace_decayed} + (event_spike ? ONE : {(T_BITS+1){1'b0}});
    wire [T_BITS:0] all = (sum > TMAX) ? TMAX : sum;

    assign state_next_x = param_nearest ? (event_spike ? ONE[T_BITS-1:0] : trace_decayed)
                                        : all[T_BITS-1:0];

    // verilator lint_off UNUSEDSIGNAL
    wire unused_high = all[T_BITS];
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
