// uart_rx: 8N1 UART receiver with a two-flop synchroniser and mid-bit sampling.
// A byte is accepted when its stop bit is high; a low stop bit raises event_frame_err instead.
`default_nettype none

module uart_rx #(
    parameter integer CLKS_PER_BIT = 12  // clock cycles per bit (>= 4)
) (
    input  wire       clk,              // system clock
    input  wire       rst,              // synchronous reset, active high
    input  wire       rx,               // serial input (idle high), asynchronous
    output wire [7:0] rx_data,          // received byte, valid while rx_valid is high
    output reg        rx_valid,         // one-cycle pulse: rx_data holds a new byte
    output reg        event_frame_err   // one-cycle pulse: stop bit was low, byte dropped
);

    localparam integer CW = $clog2(CLKS_PER_BIT + 1);
    localparam [1:0] S_IDLE = 2'd0, S_START = 2'd1, S_DATA = 2'd2, S_STOP = 2'd3;
    localparam [CW-1:0] FULL = CLKS_PER_BIT[CW-1:0] - 1'b1;
    localparam [CW-1:0] HALF = CLKS_PER_BIT[CW:1] - 1'b1;

    reg [1:0]    sync_rx;    // synchroniser, sync_rx[1] is safe to use
    reg [1:0]    state;
    reg [CW-1:0] state_cnt;  // clocks left in the current bit
    reg [2:0]    state_bit;  // data bit being received
    reg [7:0]    state_shift;
    // the byte is the shift register itself (no copy): it holds from the last data bit
    // until the next byte's first data bit, well past rx_valid
    assign rx_data = state_shift;

    always @(posedge clk) begin
        if (rst) begin
            sync_rx <= 2'b11;
        end else begin
            sync_rx <= {sync_rx[0], rx};
        end
    end

    always @(posedge clk) begin
        rx_valid        <= 1'b0;
        event_frame_err <= 1'b0;
        if (rst) begin
            state       <= S_IDLE;
            state_cnt   <= {CW{1'b0}};
            state_bit   <= 3'd0;
            state_shift <= 8'd0;
        end else begin
            case (state)
                S_IDLE: if (!sync_rx[1]) begin
                    state     <= S_START;
                    state_cnt <= HALF;
                end
                S_START: if (state_cnt != 0) begin
                    state_cnt <= state_cnt - 1'b1;
                end else if (sync_rx[1]) begin
                    state <= S_IDLE;  // glitch, not a start bit
                end else begin
                    state     <= S_DATA;
                    state_cnt <= FULL;
                    state_bit <= 3'd0;
                end
                S_DATA: if (state_cnt != 0) begin
                    state_cnt <= state_cnt - 1'b1;
                end else begin
                    state_shift <= {sync_rx[1], state_shift[7:1]};
                    state_cnt   <= FULL;
                    state_bit   <= state_bit + 1'b1;
                    if (state_bit == 3'd7) begin
                        state <= S_STOP;
                    end
                end
                default: if (state_cnt != 0) begin  // S_STOP
                    state_cnt <= state_cnt - 1'b1;
                end else begin
                    state <= S_IDLE;
                    if (sync_rx[1]) begin
                        rx_valid <= 1'b1;
                    end else begin
                        event_frame_err <= 1'b1;
                    end
                end
            endcase
        end
    end

endmodule

`default_nettype wire
