// Digilent CMOD A7-35T board top: 12 MHz oscillator -> MMCME2_BASE -> core clock, power-on
// and button reset, host_top (core + UART + command decoder) on the FTDI UART, two LEDs.
// Core clock = 12 MHz * MMCM_MULT / MMCM_DIV (VCO 600 .. 1200 MHz for a -1 part).
`default_nettype none

module cmod_a7_top #(
    parameter integer CLK_HZ       = 50000000, // core clock (must equal 12e6*MULT/DIV)
    parameter integer MMCM_MULT    = 50,       // VCO = 12 MHz * MMCM_MULT
    parameter integer MMCM_DIV     = 12,       // core clock = VCO / MMCM_DIV
    parameter integer BAUD         = 1000000,  // UART bit rate (the protocol default)
    parameter integer MAX_PAYLOAD  = 4096,     // UART frame payload buffer bytes (host_top)
    parameter integer N_MAX        = 256,      // snn_core parameters (docs/hardware.md): the
    // board's configuration, snnkit.compiler.BOARD_CONFIGS["cmod_a7"] (tests/test_memory_map.py)
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
    input  wire clk_12m,  // 12 MHz oscillator (L17)
    input  wire uart_rx,  // from the FTDI, Digilent's uart_txd_in (J17)
    output wire uart_tx,  // to the FTDI, Digilent's uart_rxd_out (J18)
    input  wire btn0,     // button 0, high = reset the core (A18)
    output wire led0,     // LED 0: the core runs steps (A17)
    output wire led1      // LED 1: output spikes wait or a UART frame is handled (C16)
);

    localparam integer CLKS_PER_BIT = (CLK_HZ + BAUD / 2) / BAUD;

    // ------------------------------------------------------------------ clock
    wire clk_fb, clk_mmcm, clk, mmcm_locked;

    // verilator lint_off PINMISSING
    MMCME2_BASE #(
        .CLKIN1_PERIOD(83.333),
        .CLKFBOUT_MULT_F(MMCM_MULT),
        .CLKOUT0_DIVIDE_F(MMCM_DIV),
        .DIVCLK_DIVIDE(1)
    ) u_mmcm (
        .CLKIN1(clk_12m), .CLKFBIN(clk_fb), .CLKFBOUT(clk_fb), .CLKOUT0(clk_mmcm),
        .LOCKED(mmcm_locked), .PWRDWN(1'b0), .RST(1'b0)
    );
    // verilator lint_on PINMISSING

    BUFG u_bufg (.I(clk_mmcm), .O(clk));

    // ------------------------------------------------------------------ reset
    // held for 2^8 cycles after the MMCM locks and while the button is pressed
    reg [1:0] state_btn;  // button synchroniser
    reg [8:0] state_por;  // counts to 256, then releases the reset
    reg       state_rst;

    initial begin
        state_btn = 2'b00; state_por = 9'd0; state_rst = 1'b1;
    end

    always @(posedge clk) begin
        state_btn <= {state_btn[0], btn0};
        if (!mmcm_locked || state_btn[1]) begin
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

    assign led0 = host_busy;
    assign led1 = host_out_valid || host_link;

endmodule

`default_nettype wire
