// host_crc: the link's CRC-16/IBM-3740 register (polynomial 0x1021, initial value 0xFFFF, no
// reflection, no final XOR; docs/uart-protocol.md), one for both directions: the frame
// receiver (host_frame_rx) checks a received frame's residue with it, the sender
// (host_frame_tx) appends a response's CRC from it. A frame is received only while the sender
// is idle and sent only while no frame is received, so they never need it at once. The
// initial value is the flip-flops' own synchronous set (no multiplexer before the update).
`default_nettype none

module host_crc (
    input  wire        clk,        // clock
    input  wire        rx_preset,  // receiver: load 0xFFFF (hunting SYNC)
    input  wire        rx_update,  // receiver: add rx_data (a frame byte after SYNC)
    input  wire [7:0]  rx_data,    // receiver: the byte
    input  wire        tx_active,  // the sender owns the register: its byte is the one added
    input  wire        tx_preset,  // sender: load 0xFFFF (while it puts out SYNC)
    input  wire        tx_update,  // sender: add tx_byte (a header or payload byte)
    input  wire [7:0]  tx_byte,    // sender: the byte
    output reg  [15:0] crc         // CRC of the bytes added since the last preset
);

    function [15:0] crc16_byte(input [15:0] c, input [7:0] d);
        integer i;
        reg [15:0] x;
        begin
            x = c ^ {d, 8'h00};
            for (i = 0; i < 8; i = i + 1) begin
                x = x[15] ? ((x << 1) ^ 16'h1021) : (x << 1);
            end
            crc16_byte = x;
        end
    endfunction

    wire [15:0] crc_next = crc16_byte(crc, tx_active ? tx_byte : rx_data);

    always @(posedge clk) begin
        if (rx_preset || tx_preset) crc <= 16'hFFFF;  // (never with an update)
        else if (rx_update || tx_update) crc <= crc_next;
    end

endmodule

`default_nettype wire
