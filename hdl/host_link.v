// host_link: the UART command decoder's link counters (region LINK: 0 frames, 1 CRC errors,
// 2 NACKs, 3 replays) and IDENTIFY's constant part, in one block RAM (no 128 flip-flops, one
// incrementer). An event sets its pending bit; a read-modify-write (3 cycles) counts it.
// Events of one counter are frames apart, so a pending bit never has to count twice. After a
// reset the four words are cleared (4 cycles), before any byte can arrive. Words 32 ..
// 32 + ID_WORDS - 1 hold IDENTIFY's table (initial contents, never written): VERSION,
// n_regions, max payload, max events, writable, then the regions' sizes, 32-bit words sent
// low byte first. The command FSM (host_cmd) reads a word when lnk_idle: it names it one
// cycle (rd_link / rd_ident), holds while the RAM samples the address (hold), and takes
// rdata the cycle after.
`default_nettype none
`include "snn_map.vh"

module host_link #(
    parameter integer     MAX_PAYLOAD = 1024,         // payload buffer bytes (IDENTIFY)
    parameter integer     MAX_EVENTS  = 256,          // most output events of one step
    parameter [16*32-1:0] REGION_SIZE = {16{32'd0}},  // words in region r (IDENTIFY)
    parameter [15:0]      REGION_WR   = 16'h0         // bit r: region r accepts writes
) (
    input  wire        clk,          // clock
    input  wire        rst,          // synchronous reset, active high
    input  wire        ev_frame,     // a good frame was received (pulse)
    input  wire        ev_crc,       // a frame with a bad CRC was received (pulse)
    input  wire        ev_nack,      // a NACK was decided (pulse)
    input  wire        ev_replay,    // a frame was answered from the replay memory (pulse)
    input  wire        rd_link,      // read counter link_idx (when lnk_idle)
    input  wire [1:0]  link_idx,     // ...
    input  wire        rd_ident,     // read IDENTIFY's table word ident_idx (when lnk_idle)
    input  wire [4:0]  ident_idx,    // ...
    input  wire        hold,         // the RAM samples the read address: start no count
    output wire        lnk_idle,     // every event counted, no clear pending
    output reg  [31:0] lnk_rdata     // the word at the last cycle's read address
);

    // (256 words: the RAM's whole depth, so every word has defined initial contents)
    (* ram_style = "block", no_rw_check *) reg [31:0] lnk_mem [0:255];
    reg [7:0]  lnk_raddr;
    reg [1:0]  lnk_i;
    reg [3:0]  lnk_pend;      // events not yet counted
    reg [1:0]  lnk_ph;        // 0 idle, 1 read issued, 2 data here: write it + 1
    reg [2:0]  lnk_clr;       // clear pass: words left to zero (4 after a reset)
    assign     lnk_idle = lnk_pend == 4'd0 && lnk_ph == 2'd0 && lnk_clr == 3'd0;
    wire [1:0] lnk_cw = lnk_clr[1:0] - 2'd1;  // word the clear pass zeroes (3, 2, 1, 0)
    wire [1:0] lnk_next = lnk_pend[0] ? 2'd0 : (lnk_pend[1] ? 2'd1 : (lnk_pend[2] ? 2'd2 : 2'd3));

    localparam [7:0] VERSION = `SNN_PROTOCOL_VERSION, N_REGIONS = `SNN_N_REGIONS;
    localparam integer ID_WORDS = 2 + `SNN_N_REGIONS;
    function [32*ID_WORDS-1:0] id_table(input integer unused);
        integer r;
        begin
            id_table[63:0] = {REGION_WR, MAX_EVENTS[15:0], MAX_PAYLOAD[15:0], N_REGIONS,
                              VERSION};
            for (r = 0; r < `SNN_N_REGIONS; r = r + 1)
                id_table[64 + 32 * r +: 32] = REGION_SIZE[32 * r +: 32];
        end
    endfunction
    localparam [32*ID_WORDS-1:0] ID_TABLE = id_table(0);
    integer id_w;
    initial begin
        for (id_w = 0; id_w < 256; id_w = id_w + 1)
            lnk_mem[id_w] = (id_w >= 32 && id_w < 32 + ID_WORDS) ? ID_TABLE[32 * (id_w - 32) +: 32] : 32'd0;
    end

    always @(posedge clk) begin
        lnk_rdata <= lnk_mem[lnk_raddr];
        if (rst) begin
            lnk_pend <= 4'd0;
            lnk_ph   <= 2'd0;
            lnk_clr  <= 3'd4;
        end else begin
            lnk_pend <= lnk_pend | {ev_replay, ev_nack, ev_crc, ev_frame};
            if (lnk_clr != 3'd0) begin
                lnk_mem[{6'd0, lnk_cw}] <= 32'd0;
                lnk_clr <= lnk_clr - 3'd1;
            end else if (lnk_ph == 2'd2) begin
                lnk_mem[{6'd0, lnk_i}] <= lnk_rdata + 1'b1;
                lnk_pend[lnk_i] <= 1'b0;
                lnk_ph <= 2'd0;
            end else if (lnk_ph == 2'd1) begin
                lnk_ph <= 2'd2;
            end else if (lnk_pend != 4'd0 && !hold) begin  // (lnk_idle is 0)
                lnk_i     <= lnk_next;
                lnk_raddr <= {6'd0, lnk_next};
                lnk_ph    <= 2'd1;
            end
            if (rd_link && lnk_idle) lnk_raddr <= {6'd0, link_idx};
            if (rd_ident && lnk_idle) lnk_raddr <= {3'd1, ident_idx};
        end
    end

endmodule

`default_nettype wire
