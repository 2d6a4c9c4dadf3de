// Trace times bound factor (combinational), the first product of one STDP term: x * f, x the
// decayed trace, f from snn_stdp_bound. snn_stdp_term multiplies it by the amplitude and
// rounds; the sequencer registers f before and x * f after this multiplier, so that no cycle
// holds a subtraction and a multiplier or two multipliers in a row (they are untimed DSPs on
// the iCE40, see docs/hardware.md).
`default_nettype none

module snn_stdp_factor #(
    parameter integer W_BITS = 8,  // weight width
    parameter integer T_BITS = 8,  // trace width (unsigned)
    parameter integer FRAC   = 6,  // fraction bits of weights
    parameter integer FW     = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2
) (
    input  wire [T_BITS-1:0]         trace, // decayed trace (pre for up, post for down)
    input  wire signed [FW-1:0]      f,     // bound factor (snn_stdp_bound)
    output wire signed [T_BITS+FW:0] tf     // trace * factor, exact
);

    assign tf = $signed({1'b0, trace}) * f;

endmodule

`default_nettype wire
