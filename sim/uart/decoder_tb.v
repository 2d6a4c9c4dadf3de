// decoder_tb: UART receiver + transmitter + host_decoder with a small region map, for the
// cocotb bench (sim/uart/bench_decoder.py plays the core behind the host bus).
`default_nettype none

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

    // regions:        15..10 FIFO    LINK     COUNTER  TRACE        WEIGHT       STATE
    //                 PROJ     POP      CTRL     IDENT
    localparam [16*32-1:0] BASE = {192'd0, 32'h020, 32'h0, 32'h014, 32'h300000, 32'h200000,
                                   32'h100000, 32'h400, 32'h100, 32'h010, 32'h000};
    localparam [16*32-1:0] SIZE = {192'd0, 32'd4, 32'd4, 32'd4, 32'd64, 32'd512, 32'd256,
                                   32'd64, 32'd128, 32'd11, 32'd11};

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
        .REGION_SIZE(SIZE), .REGION_WR(16'h023E), .IDLE_CLKS(40 * CLKS_PER_BIT),
        .BUS_TIMEOUT(1000), .RUN_TIMEOUT(1000)
    ) u_dec (
        .clk(clk), .rst(rst), .rx_data(rx_data), .rx_valid(rx_valid), .tx_data(tx_data),
        .tx_valid(tx_valid), .tx_ready(tx_ready), .host_req(host_req), .host_we(host_we),
        .host_addr(host_addr), .host_wdata(host_wdata), .host_ready(host_ready),
        .host_rvalid(host_rvalid), .host_rdata(host_rdata), .active(dec_active)
    );

endmodule

`default_nettype wire
