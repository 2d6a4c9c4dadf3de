// ulx3s_top: the multi-core board on a Radiona ULX3S (ECP5 LFE5U-85F): CORES snn_cores and
// their spike router behind the UART decoder (hdl/host_multi_top.v), the 25 MHz oscillator
// multiplied by the EHXPLLL to the core clock. UART through the on-board FTDI (US1).
`default_nettype none

module ulx3s_top #(
    parameter integer CORES        = 4,        // cores (a power of two)
    parameter integer CLK_HZ       = 50000000, // core clock the PLL makes
    parameter integer BAUD         = 1000000,  // UART bit rate (the protocol default)
    parameter integer MAX_PAYLOAD  = 4096,
    parameter integer PLL_CLKI_DIV = 1,        // EHXPLLL: 25 MHz / CLKI_DIV * CLKFB_DIV = out
    parameter integer PLL_CLKFB_DIV = 2,
    parameter integer PLL_CLKOP_DIV = 12,      //   VCO = out * CLKOP_DIV (400 .. 800 MHz)
    parameter integer N_MAX        = 256,      // snn_core parameters (docs/hardware.md) ...
    parameter integer SYN_MAX      = 65536,
    parameter integer P_MAX        = 8,
    parameter integer PR_MAX       = 16,
    parameter integer D_MAX        = 7,
    parameter integer TR_MAX       = 1024,
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
    parameter integer OUT_DEPTH    = 256
) (
    input  wire       clk_25mhz,  // 25 MHz oscillator (G2)
    input  wire       ftdi_txd,   // from the FTDI: the host's bytes (M1)
    output wire       ftdi_rxd,   // to the FTDI (L4)
    input  wire [0:0] btn,        // PWR button, high = pressed: resets the cores (D6)
    output wire [7:0] led         // 0: running steps, 1: output spikes wait, 2: UART frame
);

    localparam integer CLKS_PER_BIT = (CLK_HZ + BAUD / 2) / BAUD;

    wire clk, pll_lock;
    (* ICP_CURRENT="12" *) (* LPF_RESISTOR="8" *) (* MFG_ENABLE_FILTEROPAMP="1" *)
    (* MFG_GMCREF_SEL="2" *)
    EHXPLLL #(
        .PLLRST_ENA("DISABLED"), .INTFB_WAKE("DISABLED"), .STDBY_ENABLE("DISABLED"),
        .DPHASE_SOURCE("DISABLED"), .OUTDIVIDER_MUXA("DIVA"), .OUTDIVIDER_MUXB("DIVB"),
        .OUTDIVIDER_MUXC("DIVC"), .OUTDIVIDER_MUXD("DIVD"),
        .CLKI_DIV(PLL_CLKI_DIV), .CLKOP_ENABLE("ENABLED"), .CLKOP_DIV(PLL_CLKOP_DIV),
        .CLKOP_CPHASE(PLL_CLKOP_DIV - 1), .CLKOP_FPHASE(0), .FEEDBK_PATH("CLKOP"),
        .CLKFB_DIV(PLL_CLKFB_DIV)
    ) u_pll (
        .RST(1'b0), .STDBY(1'b0), .CLKI(clk_25mhz), .CLKOP(clk), .CLKFB(clk),
        .CLKINTFB(), .PHASESEL0(1'b0), .PHASESEL1(1'b0), .PHASEDIR(1'b1),
        .PHASESTEP(1'b1), .PHASELOADREG(1'b1), .PLLWAKESYNC(1'b0), .ENCLKOP(1'b0),
        .LOCK(pll_lock)
    );

    reg [1:0] state_btn;  // button synchroniser
    reg [8:0] state_por;  // counts to 256, then releases the reset
    reg       state_rst;
    initial begin
        state_btn = 2'b00; state_por = 9'd0; state_rst = 1'b1;
    end
    always @(posedge clk) begin
        state_btn <= {state_btn[0], btn[0]};
        if (!pll_lock || state_btn[1]) begin
            state_por <= 9'd0;
            state_rst <= 1'b1;
        end else if (!state_por[8]) begin
            state_por <= state_por + 9'd1;
            state_rst <= 1'b1;
        end else begin
            state_rst <= 1'b0;
        end
    end

    wire host_busy, host_out_valid, host_link;
    host_multi_top #(
        .CORES(CORES), .CLKS_PER_BIT(CLKS_PER_BIT), .MAX_PAYLOAD(MAX_PAYLOAD), .N_MAX(N_MAX),
        .SYN_MAX(SYN_MAX), .P_MAX(P_MAX), .PR_MAX(PR_MAX), .D_MAX(D_MAX), .TR_MAX(TR_MAX),
        .W_BITS(W_BITS), .S_BITS(S_BITS), .D_BITS(D_BITS), .T_BITS(T_BITS), .FRAC(FRAC),
        .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC), .A_BITS(A_BITS), .R_BITS(R_BITS),
        .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH)
    ) u_board (
        .clk(clk), .rst(state_rst), .uart_rx(ftdi_txd), .uart_tx(ftdi_rxd), .busy(host_busy),
        .out_valid(host_out_valid), .link_active(host_link)
    );

    assign led = {5'd0, host_link, host_out_valid, host_busy};

endmodule

`default_nettype wire
