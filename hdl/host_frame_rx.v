// host_frame_rx: the frame receiver of the UART command decoder (docs/uart-protocol.md).
//
// Hunts SYNC, takes OP, SEQ and LEN, hands the payload bytes to the command FSM's buffer
// (host_cmd), takes the CRC and checks the frame's residue in the link's CRC register
// (host_crc): zero means a good frame, which the command FSM runs; a bad CRC, or a LEN longer
// than the buffer (refused as soon as LEN is in), is refused by the command FSM with a NACK.
// Bytes arriving while a command runs are dropped (stop and wait: it hunts SYNC again only
// once the command FSM is idle). A silence of IDLE_CLKS inside a frame drops the partial
// frame (resync); the silence is counted by the command FSM's timer (one counter for this and
// its bus waits, which never overlap), cleared here at every byte.
`default_nettype none
`include "snn_map.vh"

module host_frame_rx #(
    parameter integer MAX_PAYLOAD = 1024,  // payload buffer bytes (a power of two)
    parameter integer PTR_W       = 11,    // payload pointer width (counts 0 .. MAX_PAYLOAD)
    parameter integer LEN_W       = 11,    // frame_len width (LEN <= MAX_PAYLOAD; 8 at least)
    parameter integer IDLE_CLKS   = 2000,  // silence that drops a partial frame
    parameter integer TM_W        = 16     // timer width
) (
    input  wire             clk,            // clock
    input  wire             rst,            // synchronous reset, active high
    input  wire [7:0]       rx_data,        // byte from uart_rx
    input  wire             rx_valid,       // rx_data is new this cycle
    input  wire             cmd_idle,       // the command FSM waits for a frame
    input  wire [TM_W-1:0]  tmr,            // cycles since tmr_clear (the command FSM's timer)
    input  wire [PTR_W-1:0] pay_ptr,        // the payload byte pay_we stores
    input  wire [15:0]      crc,            // the CRC register (host_crc)
    output wire             crc_preset,     // load the CRC's initial value (hunting SYNC)
    output wire             crc_update,     // add rx_data to the CRC (a byte after SYNC)
    output wire             tmr_clear,      // restart the timer (a byte, or hunting)
    output wire             pay_clear,      // LEN is in: the payload starts at byte 0
    output wire             pay_we,         // store rx_data at pay_ptr, step pay_ptr
    output wire             frame_hunt,     // hunting SYNC, the command FSM idle (no frame)
    output reg  [7:0]       frame_op,       // OP of the last frame
    output reg  [7:0]       frame_seq,      // SEQ of the last frame
    output reg  [LEN_W-1:0] frame_len,      // LEN of the last frame
    output wire             frame_good,     // the frame is in and its CRC good: run it
    output wire             frame_bad_crc,  // the frame is in and its CRC bad: refuse it
    output wire             frame_bad_len,  // LEN is over MAX_PAYLOAD: refuse the frame
    output reg              event_frame,    // a good frame was received (pulse)
    output reg              event_crc       // a frame with a bad CRC was received (pulse)
);

    localparam integer BW = $clog2(MAX_PAYLOAD);
    localparam [7:0]   SYNC = `SNN_SYNC;

    // R_HUNT .. R_CRCL take bytes (codes 0 .. 7: a test of bit 3); R_CHECK tests the residue
    // the cycle after the last byte, in the register (not on the update's output: its LUTs
    // then pack with the register's flip-flops)
    localparam [3:0] R_HUNT = 4'd0, R_OP = 4'd1, R_SEQ = 4'd2, R_LENL = 4'd3, R_LENH = 4'd4,
                     R_PAY = 4'd5, R_CRCH = 4'd6, R_CRCL = 4'd7, R_CHECK = 4'd8;
    reg  [3:0]  state;
    wire        receiving = !state[3] && state != R_HUNT;  // inside a frame, after SYNC
    // LEN, in R_LENH (the low byte is held in frame_len until the high one arrives); over
    // MAX_PAYLOAD (a power of two): a test of the bits, no comparator
    wire [15:0] len16   = {rx_data, frame_len[7:0]};
    wire        len_big = (len16 >> (BW + 1)) != 16'd0 || (len16[BW] && len16[BW-1:0] != 0);

    assign frame_hunt    = state == R_HUNT && cmd_idle;
    assign crc_preset    = frame_hunt;
    assign crc_update    = receiving && rx_valid;
    assign tmr_clear     = (receiving && rx_valid) || frame_hunt;
    assign pay_clear     = state == R_LENH && rx_valid;
    assign pay_we        = state == R_PAY && rx_valid;
    assign frame_good    = state == R_CHECK && crc == 16'd0;
    assign frame_bad_crc = state == R_CHECK && crc != 16'd0;
    assign frame_bad_len = state == R_LENH && rx_valid && len_big;

    always @(posedge clk) begin
        if (rst) begin
            state       <= R_HUNT;
            event_frame <= 1'b0;
            event_crc   <= 1'b0;
        end else begin
            event_frame <= frame_good;
            event_crc   <= frame_bad_crc;
            case (state)
                R_HUNT: if (cmd_idle && rx_valid && rx_data == SYNC) state <= R_OP;
                R_CHECK: state <= R_HUNT;  // the command FSM has the frame (or refuses it)
                default: begin
                    if (rx_valid) begin
                        case (state)
                            R_OP: begin
                                frame_op <= rx_data;
                                state    <= R_SEQ;
                            end
                            R_SEQ: begin
                                frame_seq <= rx_data;
                                state     <= R_LENL;
                            end
                            R_LENL: begin
                                frame_len[7:0] <= rx_data;
                                state          <= R_LENH;
                            end
                            R_LENH: begin
                                frame_len <= len16[LEN_W-1:0];
                                if (len_big) state <= R_HUNT;  // refused (frame_bad_len)
                                else if (len16 == 16'd0) state <= R_CRCH;
                                else state <= R_PAY;
                            end
                            R_PAY: begin  // len <= MAX_PAYLOAD
                                if (pay_ptr + 1'b1 == frame_len[PTR_W-1:0]) state <= R_CRCH;
                            end
                            R_CRCH: state <= R_CRCL;
                            default: state <= R_CHECK;  // R_CRCL
                        endcase
                    end else if ({{(32-TM_W){1'b0}}, tmr} == IDLE_CLKS) begin
                        state <= R_HUNT;
                    end
                end
            endcase
        end
    end

endmodule

`default_nettype wire
