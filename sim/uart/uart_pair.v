// uart_pair: the receiver and the transmitter side by side, for the cocotb UART bench.
`default_nettype none

module uart_pair #(
    parameter integer CLKS_PER_BIT = 8  // clock cycles per bit
) (
    input  wire       clk,              // bench clock
    input  wire       rst,              // synchronous reset, active high
    input  wire       rx,               // serial input, driven by cocotbext-uart's UartSource
    output wire [7:0] rx_data,          // received byte
    output wire       rx_valid,         // rx_data is new this cycle
    output wire       event_frame_err,  // a byte with a low stop bit was dropped
    input  wire [7:0] tx_data,          // byte to send
    input  wire       tx_valid,         // tx_data is valid
    output wire       tx_ready,         // the transmitter takes tx_data this cycle
    output wire       tx                // serial output, read by cocotbext-uart's UartSink
);

    uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_rx (
        .clk(clk), .rst(rst), .rx(rx), .rx_data(rx_data), .rx_valid(rx_valid),
        .event_frame_err(event_frame_err)
    );

    uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) u_tx (
        .clk(clk), .rst(rst), .tx_data(tx_data), .tx_valid(tx_valid), .tx_ready(tx_ready),
        .tx(tx)
    );

endmodule

`default_nettype wire
