// host_frame_tx: the sender of the UART command decoder: streams a response frame (SYNC, OP,
// SEQ, LEN, payload, CRC; docs/uart-protocol.md) out of its buffer, which the command FSM
// (host_cmd) fills, computing the CRC on the fly in the link's CRC register (host_crc). A
// NACK's payload (the refused opcode and the error code) is made here. A RUN stream (LEN
// 0xFFFF) starts before the first step and follows the buffer's fill level (tx_ptr) until the
// command FSM says it is complete (run_fin), so steps compute while bytes go out.
`default_nettype none
`include "snn_map.vh"

module host_frame_tx #(
    parameter integer MAX_PAYLOAD = 1024,  // response buffer bytes (a power of two)
    parameter integer PTR_W       = 11     // buffer pointer width (counts 0 .. MAX_PAYLOAD)
) (
    input  wire             clk,          // clock
    input  wire             rst,          // synchronous reset, active high
    input  wire             tx_we,        // store tx_wdata at tx_ptr (the command FSM)
    input  wire [7:0]       tx_wdata,     // ... the response byte
    input  wire [PTR_W-1:0] tx_ptr,       // response bytes stored so far
    input  wire             snd_start,    // send the response (pulse)
    input  wire             resp_nack,    // the response is a NACK: frame_op and nack_code
    input  wire [3:0]       nack_code,    // ... its error code
    input  wire             resp_stream,  // the response is a RUN stream (LEN 0xFFFF)
    input  wire             run_fin,      // the stream is complete at tx_ptr bytes
    input  wire [7:0]       last_op,      // the command answered (OP: last_op | 0x80)
    input  wire [7:0]       frame_op,     // the refused command (a NACK's payload)
    input  wire [7:0]       frame_seq,    // SEQ of the response
    input  wire [15:0]      crc,          // the CRC register (host_crc)
    output wire             snd_busy,     // sending (not idle)
    output wire             crc_preset,   // load the CRC's initial value (SYNC goes out)
    output wire             crc_update,   // add crc_byte to the CRC
    output wire [7:0]       crc_byte,     // the header or payload byte going out
    output reg  [7:0]       tx_data,      // byte to uart_tx
    output reg              tx_valid,     // tx_data is valid
    input  wire             tx_ready      // uart_tx takes tx_data this cycle
);

    localparam integer BW = $clog2(MAX_PAYLOAD);  // buffer address width
    localparam [PTR_W-1:0] P0 = 0, P2 = 2;
    localparam [7:0] SYNC = `SNN_SYNC, OP_NACK = `SNN_OP_NACK;

    // the response buffer (a byte RAM with registered read); no_rw_check: a read of the byte
    // being written in the same cycle may return either value (no collision bypass in the
    // FPGA build); such a read is never used: a byte is sent only once stored. It is read at
    // the pointer itself (no address register) in SN_RD; the byte stays until the next read.
    (* no_rw_check *) reg [7:0] tx_buf [0:MAX_PAYLOAD-1];
    reg  [7:0]  tx_rdata;

    localparam [2:0] SN_IDLE = 3'd0, SN_HDR = 3'd1, SN_RD = 3'd2, SN_WAIT = 3'd3, SN_PAY = 3'd4,
                     SN_CRC = 3'd5;
    reg  [2:0]  snd_state;
    reg  [2:0]  snd_idx;
    reg  [PTR_W-1:0] snd_ptr;
    assign snd_busy = snd_state != SN_IDLE;

    always @(posedge clk) begin
        if (tx_we && !rst) tx_buf[tx_ptr[BW-1:0]] <= tx_wdata;
        if (snd_state == SN_RD) tx_rdata <= tx_buf[snd_ptr[BW-1:0]];
    end

    wire        snd_stream = resp_stream && !resp_nack;
    wire [7:0]  out_op = resp_nack ? OP_NACK : (last_op | 8'h80);
    /* verilator lint_off UNUSEDSIGNAL */
    wire [16:0] tx_len17 = {{(17-PTR_W){1'b0}}, tx_ptr};  // (PTR_W <= 16)
    /* verilator lint_on UNUSEDSIGNAL */
    wire [15:0] out_len = resp_nack ? 16'd2 : tx_len17[15:0];
    wire [15:0] hdr_len = snd_stream ? 16'hFFFF : out_len;
    // the payload bytes to send: all of tx_ptr (a stream follows it while it grows)
    wire [PTR_W-1:0] snd_limit = resp_nack ? P2 : tx_ptr;
    wire [7:0]  snd_byte = resp_nack ? (snd_ptr[0] ? {4'd0, nack_code} : frame_op) : tx_rdata;
    reg  [7:0]  hdr_byte;

    always @(*) begin
        case (snd_idx)
            3'd0: hdr_byte = SYNC;
            3'd1: hdr_byte = out_op;
            3'd2: hdr_byte = frame_seq;
            3'd3: hdr_byte = hdr_len[7:0];
            default: hdr_byte = hdr_len[15:8];
        endcase
    end

    // the CRC: its initial value is set while SYNC goes out (the OP byte starts from it)
    assign crc_preset = snd_state == SN_HDR && snd_idx == 3'd0;
    assign crc_update = !tx_valid && ((snd_state == SN_HDR && snd_idx != 3'd0)
                                      || snd_state == SN_PAY);
    assign crc_byte   = (snd_state == SN_HDR) ? hdr_byte : snd_byte;

    always @(posedge clk) begin
        if (rst) begin
            snd_state <= SN_IDLE;
            tx_valid  <= 1'b0;
            tx_data   <= 8'd0;
        end else begin
            case (snd_state)
                SN_IDLE: if (snd_start) begin
                    snd_idx   <= 3'd0;
                    snd_state <= SN_HDR;
                end
                SN_HDR: if (!tx_valid) begin
                    tx_data  <= hdr_byte;
                    tx_valid <= 1'b1;
                    snd_idx <= snd_idx + 1'b1;
                    if (snd_idx == 3'd4) begin
                        snd_ptr   <= P0;
                        snd_state <= SN_RD;
                    end
                end
                SN_RD: begin
                    if (snd_ptr != snd_limit) begin
                        snd_state <= SN_WAIT;
                    end else if (!snd_stream || run_fin) begin
                        snd_idx   <= 3'd0;
                        snd_state <= SN_CRC;
                    end
                end
                SN_WAIT: snd_state <= SN_PAY;
                SN_PAY: if (!tx_valid) begin
                    tx_data   <= snd_byte;
                    tx_valid  <= 1'b1;
                    snd_ptr   <= snd_ptr + 1'b1;
                    snd_state <= SN_RD;
                end
                default: if (!tx_valid) begin  // SN_CRC
                    tx_data  <= snd_idx[0] ? crc[7:0] : crc[15:8];
                    tx_valid <= 1'b1;
                    snd_idx  <= snd_idx + 1'b1;
                    if (snd_idx[0]) snd_state <= SN_IDLE;
                end
            endcase
            if (tx_valid && tx_ready) begin
                tx_valid <= 1'b0;
            end
        end
    end

endmodule

`default_nettype wire
