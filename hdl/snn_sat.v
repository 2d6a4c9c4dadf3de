// Saturation of a wide two's-complement sum to the state width (combinational): the largest
// or smallest S_BITS value when it does not fit. x is out of range exactly when its bits
// from S_BITS-1 up are not all equal (the sign says which way): a test of the bits, no
// comparator. Used by the neuron update's sums (snn_integrate, snn_fire).
`default_nettype none

module snn_sat #(
    parameter integer X_W    = 20, // width of the sum
    parameter integer S_BITS = 16  // width of the result
) (
    input  wire [X_W-1:0]    x,  // the exact sum
    output wire [S_BITS-1:0] y   // x clamped to [-2^(S_BITS-1), 2^(S_BITS-1) - 1]
);

    wire fits = (x[X_W-1:S_BITS-1] == {(X_W-S_BITS+1){1'b0}})
             || (x[X_W-1:S_BITS-1] == {(X_W-S_BITS+1){1'b1}});

    assign y = fits ? x[S_BITS-1:0]
                    : (x[X_W-1] ? {1'b1, {(S_BITS-1){1'b0}}} : {1'b0, {(S_BITS-1){1'b1}}});

endmodule

`default_nettype wire
