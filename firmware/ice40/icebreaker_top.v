// iCEBreaker board top: 12 MHz oscillator -> SB_PLL40_PAD -> core clock (or, with
// PLL_BYPASS, the oscillator itself: the PLL makes 16 MHz and more), power-on and button
// reset, host_top (core + UART + command decoder) on the FTDI UART pins, two LEDs.
// The PLL dividers come from icepll (snnkit.build computes them for CLK_HZ).
`default_nettype none

module icebreaker_top #(
    parameter integer CLK_HZ       = 24000000, // core clock the PLL makes (DIVR/DIVF/DIVQ)
    parameter integer BAUD         = 1000000,  // UART bit rate (the protocol default)
    // UART frame payload buffer bytes (host_top): 1024 keeps the decoder's two buffers in
    // 4 EBR (4096 took 16 of the UP5K's 30) and still holds one step's worst-case response
    // (2 + 2 * N_MAX bytes). The driver reads the size from IDENTIFY and sizes frames to it.
    parameter integer MAX_PAYLOAD  = 1024,
    parameter integer PLL_BYPASS   = 0,        // 1: core clock = the 12 MHz oscillator
    parameter integer PLL_DIVR     = 0,        // SB_PLL40 reference divider
    parameter integer PLL_DIVF     = 63,       // feedback divider
    parameter integer PLL_DIVQ     = 5,        // VCO divider
    parameter integer PLL_FILTER   = 1,        // loop filter range
    parameter integer N_MAX        = 256,      // snn_core parameters (docs/hardware.md) ...
    parameter integer SYN_MAX      = 65536,
    parameter integer P_MAX        = 4,
    parameter integer PR_MAX       = 4,
    parameter integer D_MAX        = 3,
    parameter integer TR_MAX       = 512,
    parameter integer W_BITS       = 8,
    parameter integer S_BITS       = 16,
    parameter integer D_BITS       = 12,
    parameter integer T_BITS       = 8,
    parameter integer FRAC         = 6,
    parameter integer T_FRAC       = 6,
    parameter integer STDP_FRAC    = 8,
    parameter integer A_BITS       = 24,
    parameter integer R_BITS       = 8,
    parameter integer IN_DEPTH     = 256,
    parameter integer OUT_DEPTH    = 256,
    parameter         W_INIT       = "",       // baked-in network images ("" = none)
    parameter         POP_INIT     = "",
    parameter         PROJ_INIT    = "",
    parameter         REGS_INIT    = "",
    parameter         B_INIT       = ""
) (
    input  wire clk_12m,  // 12 MHz oscillator (pin 35)
    input  wire uart_rx,  // from the FTDI (pin 6)
    output wire uart_tx,  // to the FTDI (pin 9)
    input  wire btn_n,    // user button, low = reset the core (pin 10)
    output wire led_r_n,  // red LED, on while the core runs steps (pin 11)
    output wire led_g_n   // green LED: output spikes wait or a UART frame is handled (pin 37)
);

    localparam integer CLKS_PER_BIT = (CLK_HZ + BAUD / 2) / BAUD;

    // ------------------------------------------------------------------ clock
    wire clk;
    wire pll_lock;

    generate
        if (PLL_BYPASS != 0) begin : g_osc
            assign clk = clk_12m;
            assign pll_lock = 1'b1;
        end else begin : g_pll
            SB_PLL40_PAD #(
                .FEEDBACK_PATH("SIMPLE"),
                .DIVR(PLL_DIVR),
                .DIVF(PLL_DIVF),
                .DIVQ(PLL_DIVQ),
                .FILTER_RANGE(PLL_FILTER)
            ) u_pll (
                .PACKAGEPIN(clk_12m),
                .PLLOUTGLOBAL(clk),
                .LOCK(pll_lock),
                .RESETB(1'b1),
                .BYPASS(1'b0)
            );
        end
    endgenerate

    // ------------------------------------------------------------------ reset
    // held for 2^8 cycles after the PLL locks and while the button is pressed
    reg [1:0] state_btn;  // button synchroniser
    reg [8:0] state_por;  // counts to 256, then releases the reset
    reg       state_rst;

    initial begin
        state_btn = 2'b00; state_por = 9'd0; state_rst = 1'b1;
    end

    always @(posedge clk) begin
        state_btn <= {state_btn[0], btn_n};
        if (!pll_lock || !state_btn[1]) begin
            state_por <= 9'd0;
            state_rst <= 1'b1;
        end else if (!state_por[8]) begin
            state_por <= state_por + 9'd1;
            state_rst <= 1'b1;
        end else begin
            state_rst <= 1'b0;
        end
    end

    // ------------------------------------------------------------------ the board: core, UART, decoder
    wire host_busy, host_out_valid, host_link;

    host_top #(
        .CLKS_PER_BIT(CLKS_PER_BIT), .MAX_PAYLOAD(MAX_PAYLOAD),
        .N_MAX(N_MAX), .SYN_MAX(SYN_MAX), .P_MAX(P_MAX), .PR_MAX(PR_MAX), .D_MAX(D_MAX),
        .TR_MAX(TR_MAX), .W_BITS(W_BITS), .S_BITS(S_BITS), .D_BITS(D_BITS), .T_BITS(T_BITS),
        .FRAC(FRAC), .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC), .A_BITS(A_BITS),
        .R_BITS(R_BITS), .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH),
        .W_INIT(W_INIT), .POP_INIT(POP_INIT), .PROJ_INIT(PROJ_INIT), .REGS_INIT(REGS_INIT),
        .B_INIT(B_INIT)
    ) u_host (
        .clk(clk), .rst(state_rst), .uart_rx(uart_rx), .uart_tx(uart_tx),
        .busy(host_busy), .out_valid(host_out_valid), .link_active(host_link)
    );

    assign led_r_n = !host_busy;
    assign led_g_n = !(host_out_valid || host_link);

endmodule

`default_nettype wire
