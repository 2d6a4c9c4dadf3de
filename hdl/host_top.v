// host_top: the board behind the UART: uart_rx -> host_decoder -> snn_core (the core),
// answers through uart_tx. The decoder's region table comes from snn_map.vh, its sizes from
// the core's parameters (docs/hardware.md for the map, docs/uart-protocol.md for the regions).
`default_nettype none
`include "snn_map.vh"

module host_top #(
    parameter integer CLKS_PER_BIT = 12,     // clock cycles per UART bit (CLK_HZ / BAUD)
    parameter integer MAX_PAYLOAD  = 4096,   // frame payload buffer bytes (power of two)
    parameter integer N_MAX        = 256,    // snn_core parameters (docs/hardware.md) ...
    parameter integer SYN_MAX      = 16384,
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
    parameter integer OUT_DEPTH    = 256,
    parameter integer DELAYED_RESET = 0,     // the delayed reset's fields (snn_core)
    parameter         W_INIT       = "",     // baked-in network images ("" = none)
    parameter         POP_INIT     = "",
    parameter         PROJ_INIT    = "",
    parameter         REGS_INIT    = "",
    parameter         B_INIT       = ""
) (
    input  wire clk,          // system clock
    input  wire rst,          // synchronous reset, active high
    input  wire uart_rx,      // serial input from the host (idle high)
    output wire uart_tx,      // serial output to the host (idle high)
    output wire busy,         // the core is running steps
    output wire out_valid,    // output spikes wait in the core's FIFO
    output wire link_active   // the decoder is inside a frame or a command (the emulated
                              // board's harness runs the clock while it is high)
);

    localparam integer ADDR_W = `SNN_ADDR_W;
    localparam [31:0] N32 = N_MAX, SYN32 = SYN_MAX, P32 = P_MAX, PR32 = PR_MAX, TR32 = TR_MAX;
    // the protocol's regions: their first words on the core's bus and their sizes
    localparam [16*32-1:0] BASE = `SNN_LINK_BASES;
    localparam [16*32-1:0] SIZE = `SNN_LINK_SIZES(N32, SYN32, P32, PR32, TR32);

    wire [7:0]        rx_data, tx_data;
    wire              rx_valid, tx_valid, tx_ready, rx_frame_err;
    wire              host_req, host_we, host_ready, host_rvalid;
    wire [ADDR_W-1:0] host_addr;
    wire [31:0]       host_wdata, host_rdata;

    uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_rx (
        .clk(clk), .rst(rst), .rx(uart_rx), .rx_data(rx_data), .rx_valid(rx_valid),
        .event_frame_err(rx_frame_err)
    );

    uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_tx (
        .clk(clk), .rst(rst), .tx_data(tx_data), .tx_valid(tx_valid), .tx_ready(tx_ready),
        .tx(uart_tx)
    );

    host_decoder #(
        .ADDR_W(ADDR_W), .MAX_PAYLOAD(MAX_PAYLOAD), .MAX_EVENTS(N_MAX), .REGION_BASE(BASE),
        .REGION_SIZE(SIZE), .REGION_WR(`SNN_LINK_WRITABLE), .IDLE_CLKS(`SNN_IDLE_BITS * CLKS_PER_BIT)
    ) u_dec (
        .clk(clk), .rst(rst), .rx_data(rx_data), .rx_valid(rx_valid), .tx_data(tx_data),
        .tx_valid(tx_valid), .tx_ready(tx_ready), .host_req(host_req), .host_we(host_we),
        .host_addr(host_addr), .host_wdata(host_wdata), .host_ready(host_ready),
        .host_rvalid(host_rvalid), .host_rdata(host_rdata), .active(link_active)
    );

    snn_core #(
        .N_MAX(N_MAX), .SYN_MAX(SYN_MAX), .P_MAX(P_MAX), .PR_MAX(PR_MAX), .D_MAX(D_MAX),
        .TR_MAX(TR_MAX), .W_BITS(W_BITS), .S_BITS(S_BITS), .D_BITS(D_BITS), .T_BITS(T_BITS),
        .FRAC(FRAC), .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC), .A_BITS(A_BITS),
        .R_BITS(R_BITS), .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH), .ADDR_W(ADDR_W),
        .W_INIT(W_INIT), .POP_INIT(POP_INIT), .PROJ_INIT(PROJ_INIT), .REGS_INIT(REGS_INIT),
        .B_INIT(B_INIT), .DELAYED_RESET(DELAYED_RESET)
    ) u_core (
        .clk(clk), .rst(rst), .host_req(host_req), .host_we(host_we), .host_addr(host_addr),
        .host_wdata(host_wdata), .host_ready(host_ready), .host_rvalid(host_rvalid),
        .host_rdata(host_rdata), .busy(busy), .out_valid(out_valid)
    );

    // a byte with a bad stop bit is dropped; the frame's CRC or the idle timeout notices
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = rx_frame_err;
    /* verilator lint_on UNUSEDSIGNAL */

endmodule

`default_nettype wire
