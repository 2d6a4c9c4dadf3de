// host_multi_top: a board of CORES cores behind the UART: uart_rx -> host_decoder ->
// snn_multi (the cores and their spike router), answers through uart_tx. The same protocol
// as host_top's one-core board; three more regions hold the router's tables, IDENT has one
// more word (CORES) and CTRL one more register (CORE_SEL: the core whose POP, PROJ, STATE,
// WEIGHT and TRACE regions the host reads and writes). docs/hardware.md, docs/uart-protocol.md.
`default_nettype none
`include "snn_map.vh"

module host_multi_top #(
    parameter integer CORES        = 2,      // cores (a power of two)
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
    parameter integer OUT_DEPTH    = 256
) (
    input  wire clk,          // system clock
    input  wire rst,          // synchronous reset, active high
    input  wire uart_rx,      // serial input from the host (idle high)
    output wire uart_tx,      // serial output to the host (idle high)
    output wire busy,         // the core is running steps
    output wire out_valid,    // output spikes wait in the core's FIFO
    output wire link_active   // the decoder is inside a frame or a command (emulator clock)
);

    localparam integer ADDR_W = `SNN_ADDR_W;
    localparam integer K_W = (CORES > 1) ? $clog2(CORES) : 1;
    localparam integer G_W = ((N_MAX > 2) ? $clog2(N_MAX) : 1) + K_W;
    localparam [31:0] N32 = N_MAX, SYN32 = SYN_MAX, P32 = P_MAX, PR32 = PR_MAX, TR32 = TR_MAX;
    localparam [31:0] TAB32 = CORES << G_W, WV32 = CORES + 1;
    // the one-core board's region table (snn_map.vh) with IDENT and CTRL one word longer
    // (CORES, CORE_SEL) and the router's regions ROUTE, INMAP, WAVES added
    localparam [31:0]  RT_BASE = {8'h0, `SNN_REGION_ROUTE, 20'h0};
    localparam [31:0]  IM_BASE = {8'h0, `SNN_REGION_INMAP, 20'h0};
    localparam [31:0]  WV_BASE = `SNN_MREG_N_WAVES;
    localparam [511:0] BASE = `SNN_LINK_BASES
        | ({480'd0, RT_BASE} << (32 * `SNN_LINK_ROUTE))
        | ({480'd0, IM_BASE} << (32 * `SNN_LINK_INMAP))
        | ({480'd0, WV_BASE} << (32 * `SNN_LINK_WAVES));
    localparam [511:0] SIZE = `SNN_LINK_SIZES(N32, SYN32, P32, PR32, TR32)
        + ({480'd0, 32'd1} << (32 * `SNN_LINK_IDENT)) + ({480'd0, 32'd1} << (32 * `SNN_LINK_CTRL))
        + ({480'd0, TAB32} << (32 * `SNN_LINK_ROUTE)) + ({480'd0, TAB32} << (32 * `SNN_LINK_INMAP))
        + ({480'd0, WV32} << (32 * `SNN_LINK_WAVES));
    localparam [15:0]  WRITABLE = `SNN_LINK_WRITABLE | (16'd1 << `SNN_LINK_ROUTE)
        | (16'd1 << `SNN_LINK_INMAP) | (16'd1 << `SNN_LINK_WAVES);

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
        .ADDR_W(ADDR_W), .MAX_PAYLOAD(MAX_PAYLOAD), .MAX_EVENTS(CORES * N_MAX), .REGION_BASE(BASE),
        .REGION_SIZE(SIZE), .REGION_WR(WRITABLE), .IDLE_CLKS(20000 * CLKS_PER_BIT)
    ) u_dec (
        .clk(clk), .rst(rst), .rx_data(rx_data), .rx_valid(rx_valid), .tx_data(tx_data),
        .tx_valid(tx_valid), .tx_ready(tx_ready), .host_req(host_req), .host_we(host_we),
        .host_addr(host_addr), .host_wdata(host_wdata), .host_ready(host_ready),
        .host_rvalid(host_rvalid), .host_rdata(host_rdata), .active(link_active)
    );

    snn_multi #(
        .CORES(CORES), .N_MAX(N_MAX), .SYN_MAX(SYN_MAX), .P_MAX(P_MAX), .PR_MAX(PR_MAX), .D_MAX(D_MAX),
        .TR_MAX(TR_MAX), .W_BITS(W_BITS), .S_BITS(S_BITS), .D_BITS(D_BITS), .T_BITS(T_BITS),
        .FRAC(FRAC), .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC), .A_BITS(A_BITS),
        .R_BITS(R_BITS), .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH), .ADDR_W(ADDR_W)
    ) u_multi (
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
