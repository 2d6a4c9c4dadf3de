// host_decoder: the UART command decoder: framed commands -> host bus transactions
// (docs/uart-protocol.md). Its blocks:
//
//   host_frame_rx  the frame receiver: SYNC, header, payload bytes, CRC check, resync
//   host_cmd       the command FSM: runs a good frame on the bus, builds its response
//   host_frame_tx  the sender: streams the response frame out, CRC on the fly
//   host_crc       the link's CRC register, shared by the receiver and the sender
//   host_link      the link counters (region LINK) and IDENTIFY's table, in block RAM
//
// One command at a time (stop and wait): bytes arriving while a command runs are dropped.
// A good frame with the same SEQ and opcode as the last executed one is not run again: its
// stored response is sent again (a lost ACK does not run a command twice). IDENTIFY clears
// that memory. A silence of IDLE_CLKS inside a frame drops the partial frame (resync).
`default_nettype none

module host_decoder #(
    parameter integer        ADDR_W       = 24,        // host bus word-address width
    parameter integer        MAX_PAYLOAD  = 1024,      // payload buffer bytes (power of 2)
    parameter integer        MAX_EVENTS   = 256,       // most output events one step can make
    parameter [16*32-1:0]    REGION_BASE  = {16{32'd0}},  // bus word address of region r
    parameter [16*32-1:0]    REGION_SIZE  = {16{32'd0}},  // words in region r (0: absent)
    parameter [15:0]         REGION_WR    = 16'h0,     // bit r: region r accepts writes
    parameter integer        IDLE_CLKS    = 2000,      // silence that drops a partial frame
    parameter integer        BUS_TIMEOUT  = 65535,     // cycles to wait for host_ready/rvalid
    parameter integer        RUN_TIMEOUT  = 16777215   // STATUS polls before a step is hung
) (
    input  wire              clk,          // system clock
    input  wire              rst,          // synchronous reset, active high
    input  wire [7:0]        rx_data,      // byte from uart_rx
    input  wire              rx_valid,     // rx_data is new this cycle
    output wire [7:0]        tx_data,      // byte to uart_tx
    output wire              tx_valid,     // tx_data is valid
    input  wire              tx_ready,     // uart_tx takes tx_data this cycle
    output wire              host_req,     // bus request
    output wire              host_we,      // 1 write, 0 read
    output wire [ADDR_W-1:0] host_addr,    // word address
    output wire [31:0]       host_wdata,   // write data
    input  wire              host_ready,   // request accepted this cycle
    input  wire              host_rvalid,  // read data valid
    input  wire [31:0]       host_rdata,   // read data
    output wire              active        // inside a frame or a command (not hunting SYNC)
);

    // buffer pointers count 0 .. MAX_PAYLOAD (<= 32768: IDENTIFY reports it in 2 bytes)
    localparam integer PTR_W = $clog2(MAX_PAYLOAD) + 1;
    // LEN: a longer one is refused as soon as it is in, so a command sees LEN <= MAX_PAYLOAD
    // (PTR_W bits; 8 at least, the low byte is held until the high one arrives)
    localparam integer LEN_W = (PTR_W > 8) ? PTR_W : 8;
    // one timer: the inter-byte silence while receiving, the bus wait while a command runs;
    // it counts to its limit (compared for equality), so it is as wide as the larger one
    localparam integer IC_W = $clog2(IDLE_CLKS + 1);
    localparam integer WC_W = $clog2(BUS_TIMEOUT + 1);
    localparam integer TM_W = (IC_W > WC_W) ? IC_W : WC_W;

    // the frame receiver
    wire             frame_hunt, frame_good, frame_bad_crc, frame_bad_len;
    wire             frame_ev_good, frame_ev_crc;
    wire [7:0]       frame_op, frame_seq;
    wire [LEN_W-1:0] frame_len;
    wire             frame_crc_preset, frame_crc_update, frame_tmr_clear;
    wire             frame_pay_clear, frame_pay_we;
    // the command FSM
    wire             cmd_idle;
    wire [TM_W-1:0]  cmd_tmr;
    wire [PTR_W-1:0] cmd_pay_ptr, cmd_tx_ptr;
    wire             cmd_snd_start, cmd_resp_nack, cmd_resp_stream, cmd_run_fin;
    wire [3:0]       cmd_nack_code;
    wire [7:0]       cmd_last_op, cmd_tx_wdata;
    wire             cmd_tx_we, cmd_ev_replay, cmd_ev_nack;
    wire             cmd_lnk_rd_link, cmd_lnk_rd_ident, cmd_lnk_hold;
    wire [1:0]       cmd_lnk_link_idx;
    wire [4:0]       cmd_lnk_ident_idx;
    // the sender, the CRC, the link counters
    wire             snd_busy, snd_crc_preset, snd_crc_update;
    wire [7:0]       snd_crc_byte;
    wire [15:0]      crc;
    wire             lnk_idle;
    wire [31:0]      lnk_rdata;

    assign active = !frame_hunt || snd_busy || tx_valid;

    host_frame_rx #(
        .MAX_PAYLOAD(MAX_PAYLOAD), .PTR_W(PTR_W), .LEN_W(LEN_W), .IDLE_CLKS(IDLE_CLKS),
        .TM_W(TM_W)
    ) u_frame_rx (
        .clk(clk), .rst(rst), .rx_data(rx_data), .rx_valid(rx_valid), .cmd_idle(cmd_idle),
        .tmr(cmd_tmr), .pay_ptr(cmd_pay_ptr), .crc(crc), .crc_preset(frame_crc_preset),
        .crc_update(frame_crc_update), .tmr_clear(frame_tmr_clear),
        .pay_clear(frame_pay_clear), .pay_we(frame_pay_we), .frame_hunt(frame_hunt),
        .frame_op(frame_op), .frame_seq(frame_seq), .frame_len(frame_len),
        .frame_good(frame_good), .frame_bad_crc(frame_bad_crc),
        .frame_bad_len(frame_bad_len), .event_frame(frame_ev_good), .event_crc(frame_ev_crc)
    );

    host_cmd #(
        .ADDR_W(ADDR_W), .MAX_PAYLOAD(MAX_PAYLOAD), .MAX_EVENTS(MAX_EVENTS),
        .REGION_BASE(REGION_BASE), .REGION_SIZE(REGION_SIZE), .REGION_WR(REGION_WR),
        .BUS_TIMEOUT(BUS_TIMEOUT), .RUN_TIMEOUT(RUN_TIMEOUT), .PTR_W(PTR_W), .LEN_W(LEN_W),
        .TM_W(TM_W)
    ) u_cmd (
        .clk(clk), .rst(rst), .rx_data(rx_data), .pay_clear(frame_pay_clear),
        .pay_we(frame_pay_we), .tmr_clear(frame_tmr_clear), .frame_op(frame_op),
        .frame_seq(frame_seq), .frame_len(frame_len), .frame_good(frame_good),
        .frame_bad_crc(frame_bad_crc), .frame_bad_len(frame_bad_len), .cmd_idle(cmd_idle),
        .tmr(cmd_tmr), .pay_ptr(cmd_pay_ptr),
        .host_req(host_req), .host_we(host_we), .host_addr(host_addr),
        .host_wdata(host_wdata), .host_ready(host_ready), .host_rvalid(host_rvalid),
        .host_rdata(host_rdata),
        .snd_busy(snd_busy), .snd_start(cmd_snd_start), .resp_nack(cmd_resp_nack),
        .nack_code(cmd_nack_code), .resp_stream(cmd_resp_stream), .run_fin(cmd_run_fin),
        .last_op(cmd_last_op), .tx_ptr(cmd_tx_ptr), .tx_we(cmd_tx_we),
        .tx_wdata(cmd_tx_wdata),
        .lnk_idle(lnk_idle), .lnk_rdata(lnk_rdata), .lnk_rd_link(cmd_lnk_rd_link),
        .lnk_link_idx(cmd_lnk_link_idx), .lnk_rd_ident(cmd_lnk_rd_ident),
        .lnk_ident_idx(cmd_lnk_ident_idx), .lnk_hold(cmd_lnk_hold),
        .ev_replay(cmd_ev_replay), .nack_pulse(cmd_ev_nack)
    );

    host_frame_tx #(.MAX_PAYLOAD(MAX_PAYLOAD), .PTR_W(PTR_W)) u_frame_tx (
        .clk(clk), .rst(rst), .tx_we(cmd_tx_we), .tx_wdata(cmd_tx_wdata),
        .tx_ptr(cmd_tx_ptr), .snd_start(cmd_snd_start), .resp_nack(cmd_resp_nack),
        .nack_code(cmd_nack_code), .resp_stream(cmd_resp_stream), .run_fin(cmd_run_fin),
        .last_op(cmd_last_op), .frame_op(frame_op), .frame_seq(frame_seq), .crc(crc),
        .snd_busy(snd_busy), .crc_preset(snd_crc_preset), .crc_update(snd_crc_update),
        .crc_byte(snd_crc_byte), .tx_data(tx_data), .tx_valid(tx_valid), .tx_ready(tx_ready)
    );

    host_crc u_crc (
        .clk(clk), .rx_preset(frame_crc_preset), .rx_update(frame_crc_update),
        .rx_data(rx_data), .tx_active(snd_busy), .tx_preset(snd_crc_preset),
        .tx_update(snd_crc_update), .tx_byte(snd_crc_byte), .crc(crc)
    );

    host_link #(
        .MAX_PAYLOAD(MAX_PAYLOAD), .MAX_EVENTS(MAX_EVENTS), .REGION_SIZE(REGION_SIZE),
        .REGION_WR(REGION_WR)
    ) u_link (
        .clk(clk), .rst(rst), .ev_frame(frame_ev_good), .ev_crc(frame_ev_crc),
        .ev_nack(cmd_ev_nack), .ev_replay(cmd_ev_replay), .rd_link(cmd_lnk_rd_link),
        .link_idx(cmd_lnk_link_idx), .rd_ident(cmd_lnk_rd_ident),
        .ident_idx(cmd_lnk_ident_idx), .hold(cmd_lnk_hold), .lnk_idle(lnk_idle),
        .lnk_rdata(lnk_rdata)
    );

endmodule

`default_nettype wire
