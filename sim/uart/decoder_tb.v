// decoder_tb: UART receiver + transmitter + host_decoder with the region map of a small
// core, for the cocotb bench (sim/uart/bench_decoder.py plays the core behind the host bus).
`default_nettype none
`include "snn_map.vh"

module decoder_tb #(
    parameter integer CLKS_PER_BIT = 8  // clock cycles per bit
) (
    input  wire        clk,          // bench clock
    input  wire        rst,          // synchronous reset, active high
    input  wire        rx,           // serial input from cocotbext-uart's UartSource
    output wire        tx,           // serial output to cocotbext-uart's UartSink
    output wire        host_req,     // bus request
    output wire        host_we,      // 1 write, 0 read
    output wire [23:0] host_addr,    // word address
    output wire [31:0] host_wdata,   // write data
    input  wire        host_ready,   // request accepted
    input  wire        host_rvalid,  // read data valid
    input  wire [31:0] host_rdata    // read data
);

    // the bench's core: 64 neurons, 512 weights, 8 populations, 4 projections, 64 traces
    // (bench_decoder.py's CONFIG)
    localparam [31:0] N32 = 64, SYN32 = 512, P32 = 8, PR32 = 4, TR32 = 64;
    localparam [16*32-1:0] BASE = `SNN_LINK_BASES;
    localparam [16*32-1:0] SIZE = `SNN_LINK_SIZES(N32, SYN32, P32, PR32, TR32);

    wire [7:0] rx_data, tx_data;
    wire       rx_valid, tx_valid, tx_ready;
    wire       rx_frame_err;  // not counted here
    /* verilator lint_off UNUSEDSIGNAL */
    wire       dec_active;
    wire       unused = rx_frame_err | dec_active;
    /* verilator lint_on UNUSEDSIGNAL */

    uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_rx (
        .clk(clk), .rst(rst), .rx(rx), .rx_data(rx_data), .rx_valid(rx_valid),
        .event_frame_err(rx_frame_err)
    );

    uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_tx (
        .clk(clk), .rst(rst), .tx_data(tx_data), .tx_valid(tx_valid), .tx_ready(tx_ready),
        .tx(tx)
    );

    host_decoder #(
        .ADDR_W(24), .MAX_PAYLOAD(256), .MAX_EVENTS(16), .REGION_BASE(BASE),
        .REGION_SIZE(SIZE), .REGION_WR(`SNN_LINK_WRITABLE), .IDLE_CLKS(40 * CLKS_PER_BIT),
        .BUS_TIMEOUT(1000), .RUN_TIMEOUT(1000)
    ) u_dec (
        .clk(clk), .rst(rst), .rx_data(rx_data), .rx_valid(rx_valid), .tx_data(tx_data),
        .tx_valid(tx_valid), .tx_ready(tx_ready), .host_req(host_req), .host_we(host_we),
        .host_addr(host_addr), .host_wdata(host_wdata), .host_ready(host_ready),
        .host_rvalid(host_rvalid), .host_rdata(host_rdata), .active(dec_active)
    );

endmodule

`default_nettype wire
