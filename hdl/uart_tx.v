// uart_tx: 8N1 UART transmitter. A byte is taken when tx_valid && tx_ready.
`default_nettype none

module uart_tx #(
    parameter integer CLKS_PER_BIT = 12  // clock cycles per bit (>= 2)
) (
    input  wire       clk,       // system clock
    input  wire       rst,       // synchronous reset, active high
    input  wire [7:0] tx_data,   // byte to send
    input  wire       tx_valid,  // tx_data is valid
    output wire       tx_ready,  // transmitter idle: the byte is taken this cycle
    output reg        tx         // serial output (idle high)
);

    localparam integer CW = $clog2(CLKS_PER_BIT + 1);
    localparam [CW-1:0] FULL = CLKS_PER_BIT[CW-1:0] - 1'b1;

    reg [CW-1:0] state_cnt;    // clocks left in the current bit
    reg [3:0]    state_bits;   // bits left to send after the current one
    reg          state_busy;
    reg [8:0]    state_shift;  // {stop, data[7:1]} still to send, LSB first

    // The stop bit's last clock: a waiting byte starts now, so bytes go out back to back.
    wire state_last = state_busy && state_cnt == 0 && state_bits == 0;

    assign tx_ready = !state_busy || state_last;

    always @(posedge clk) begin
        if (rst) begin
            tx          <= 1'b1;
            state_busy  <= 1'b0;
            state_cnt   <= {CW{1'b0}};
            state_bits  <= 4'd0;
            state_shift <= 9'h1ff;
        end else if (tx_valid && tx_ready) begin
            tx          <= 1'b0;  // start bit
            state_busy  <= 1'b1;
            state_cnt   <= FULL;
            state_bits  <= 4'd9;
            state_shift <= {1'b1, tx_data};
        end else if (state_last) begin
            state_busy <= 1'b0;
        end else if (state_busy) begin
            if (state_cnt != 0) begin
                state_cnt <= state_cnt - 1'b1;
            end else begin
                tx          <= state_shift[0];
                state_shift <= {1'b1, state_shift[8:1]};
                state_bits  <= state_bits - 1'b1;
                state_cnt   <= FULL;
            end
        end
    end

endmodule

`default_nettype wire
