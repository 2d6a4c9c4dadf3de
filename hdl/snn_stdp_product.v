// trace x factor times the amplitude, as partial products (combinational): the product does
// not fit one 16 x 16 multiplier (SB_MAC16), so it is cut at bit 16 of both operands,
//   tf * a = tf_l * a_l + (tf_l * a_h + tf_h * a) * 2^16
// with tf_l, a_l their low 16 bits (unsigned), a_h the amplitude's high bits and tf_h the
// factor's (signed, 2 bits by default: a shifted add in the fabric). The sequencer registers
// the partial products, and snn_stdp_term adds and rounds them the cycle after, so no cycle
// holds two DSPs in a row or a DSP and a wide addition.
`default_nettype none

module snn_stdp_product #(
    parameter integer T_BITS = 8,  // trace width
    parameter integer A_BITS = 24, // amplitude width (unsigned)
    parameter integer FW     = 9,  // bound factor width (snn_stdp_bound)
    parameter integer TF_W   = T_BITS + FW + 1,               // trace x factor width
    parameter integer TX     = (TF_W > 17) ? TF_W : 17,       // ... sign-extended
    parameter integer AX     = (A_BITS > 17) ? A_BITS : 17    // amplitude, zero-extended
) (
    input  wire signed [TF_W-1:0]    tf,        // trace x factor (snn_stdp_factor)
    input  wire [A_BITS-1:0]         amplitude, // a_plus or a_minus
    output wire [31:0]               p_ll,      // tf_l * a_l
    output wire [AX-1:0]             p_lh,      // tf_l * a_h
    output wire signed [TX+AX-16:0]  p_h        // tf_h * a
);

    wire signed [TX-1:0] tf_x = {{(TX-TF_W){tf[TF_W-1]}}, tf};
    wire [AX-1:0]        a_x  = {{(AX-A_BITS){1'b0}}, amplitude};
    wire [15:0]          tf_l = tf_x[15:0];
    wire signed [TX-17:0] tf_h = tf_x[TX-1:16];

    assign p_ll = tf_l * a_x[15:0];
    assign p_lh = tf_l * a_x[AX-1:16];

    // tf_h * a by shifted adds (tf_h is narrow), the top bit of tf_h weighs negative
    function automatic signed [TX+AX-16:0] narrow_product;
        input signed [TX-17:0] h;
        input [AX-1:0] a;
        integer i;
        reg signed [TX+AX-16:0] acc, a_e;
        begin
            acc = 0;
            a_e = {{(TX-15){1'b0}}, a};
            for (i = 0; i < TX - 16; i = i + 1)
                if (h[i])
                    acc = (i == TX - 17) ? acc - (a_e <<< i) : acc + (a_e <<< i);
            narrow_product = acc;
        end
    endfunction

    assign p_h = narrow_product(tf_h, a_x);

endmodule

`default_nettype wire
