// host_decoder: framed UART commands -> host bus transactions (docs/uart-protocol.md).
//
// Receives a frame byte by byte (payload into rx_buf, CRC-16/IBM-3740 checked on the fly),
// executes it only when the CRC is good, builds the response payload in tx_buf, and a sender
// beside the command FSM sends it. The ACK of RUN is a stream (LEN 0xFFFF): its header goes
// out before the first step and each step's events follow as soon as they are drained.
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
    parameter [31:0]         ADDR_CTRL    = 32'h010,   // CTRL register (bit0 RUN, bit1 RESET)
    parameter [31:0]         ADDR_STEPS   = 32'h011,   // STEPS register
    parameter [31:0]         ADDR_STATUS  = 32'h013,   // STATUS (bit0 busy, bit1 done)
    parameter [31:0]         ADDR_IN_FIFO = 32'h020,   // input spike FIFO (push)
    parameter [31:0]         ADDR_OUT_FIFO = 32'h022,  // output event FIFO (pop)
    parameter [31:0]         ADDR_OUT_LEVEL = 32'h023, // output FIFO fill level
    parameter integer        IDLE_CLKS    = 2000,      // silence that drops a partial frame
    parameter integer        BUS_TIMEOUT  = 65535,     // cycles to wait for host_ready/rvalid
    parameter integer        RUN_TIMEOUT  = 16777215   // STATUS polls before a step is hung
) (
    input  wire              clk,          // system clock
    input  wire              rst,          // synchronous reset, active high
    input  wire [7:0]        rx_data,      // byte from uart_rx
    input  wire              rx_valid,     // rx_data is new this cycle
    output reg  [7:0]        tx_data,      // byte to uart_tx
    output reg               tx_valid,     // tx_data is valid
    input  wire              tx_ready,     // uart_tx takes tx_data this cycle
    output reg               host_req,     // bus request
    output reg               host_we,      // 1 write, 0 read
    output reg  [ADDR_W-1:0] host_addr,    // word address
    output reg  [31:0]       host_wdata,   // write data
    input  wire              host_ready,   // request accepted this cycle
    input  wire              host_rvalid,  // read data valid
    input  wire [31:0]       host_rdata,   // read data
    output wire              active        // inside a frame or a command (not hunting SYNC)
);

    localparam integer BW = $clog2(MAX_PAYLOAD);  // buffer address width
    // buffer pointers count 0 .. MAX_PAYLOAD (<= 32768: IDENTIFY reports it in 2 bytes)
    localparam integer PTR_W = BW + 1;
    localparam [PTR_W-1:0] P0 = 0, P2 = 2;
    localparam [7:0] SYNC = 8'hA5, OP_IDENTIFY = 8'h01, OP_RESET = 8'h02, OP_RUN = 8'h03;
    localparam [7:0] OP_NACK = 8'hFF, VERSION = 8'd1;
    localparam [3:0] E_CRC = 4'd1, E_OPCODE = 4'd2, E_LENGTH = 4'd3, E_ADDRESS = 4'd4;
    localparam [3:0] E_WIDTH = 4'd5, E_READ_ONLY = 4'd6, E_BUS = 4'd7, E_RUN = 4'd8;
    localparam [3:0] E_OVERFLOW = 4'd9;  // (every code fits 4 bits)
    localparam [3:0] LINK = 4'd8;  // region served by this block: its own counters
    localparam integer STEP_ROOM_I = 2 + 2 * MAX_EVENTS;
    // a step starts only while tx_ptr + STEP_ROOM_I + 4 <= MAX_PAYLOAD: one comparison
    // with a constant (no adder)
    localparam integer ROOM_I = MAX_PAYLOAD - STEP_ROOM_I - 4;
    localparam [16:0] ROOM = (ROOM_I < 0) ? 17'd0 : ROOM_I[16:0];
    function integer off_bits;  // bits of an offset below the largest region size
        input integer unused;
        integer r;
        reg [31:0] m;
        begin
            m = 32'd0;
            for (r = 0; r < 16; r = r + 1)
                if (REGION_SIZE[32*r +: 32] > m) m = REGION_SIZE[32*r +: 32];
            off_bits = 2;
            for (r = 2; r < 31; r = r + 1)
                if ((m >> r) != 32'd0) off_bits = r + 1;
        end
    endfunction
    localparam integer OFF_W = off_bits(0);  // 2 .. 31: every offset >= 2^OFF_W is > sizes
    localparam integer E_W = ((OFF_W > 16) ? OFF_W : 16) + 1;  // offset + count

    // ---- states
    localparam [5:0]
        R_HUNT = 6'd0, R_OP = 6'd1, R_SEQ = 6'd2, R_LENL = 6'd3, R_LENH = 6'd4, R_PAY = 6'd5,
        R_CRCH = 6'd6, R_CRCL = 6'd7, D_DISPATCH = 6'd8,
        F_ADDR = 6'd9, F_WAIT = 6'd10, F_TAKE = 6'd11,       // fetch from rx_buf
        B_REQ = 6'd12, B_WAIT = 6'd13,                       // bus transaction
        W_SEND = 6'd14,                                      // wait for the sender
        Q_LW = 6'd15, Q_LX = 6'd16,                          // READ of region LINK
        N_NACK = 6'd17, I_ROM = 6'd18, I_RW = 6'd29, I_RX = 6'd40,  // IDENTIFY's table
        W_OFF = 6'd19, W_MODE = 6'd20, W_LOOP = 6'd21, W_DATA = 6'd22,
        Q_OFF = 6'd23, Q_CNT = 6'd24, Q_WIDTH = 6'd25, Q_LOOP = 6'd26, Q_DATA = 6'd27,
        I_CORE = 6'd30,
        X_POLL = 6'd31, X_CHECK = 6'd32,
        U_STEPS = 6'd33, U_V_CNT = 6'd34, U_STEP = 6'd35, U_NIN = 6'd36, U_RUN = 6'd37,
        U_IN = 6'd38, U_IDX = 6'd39,  U_POLL = 6'd41, U_CHECK = 6'd42,
        U_LEVEL = 6'd43, U_EVENTS = 6'd44, U_EVENT = 6'd45, U_DONE = 6'd46, U_FINISH = 6'd47,
        S_STORE = 6'd48, ACK = 6'd49, I_DATA = 6'd50, U_V_NEXT = 6'd51, D_CRC = 6'd52;

    reg [5:0]  state, state_ret;
    wire       rx_st = state[5:3] == 3'd0;  // R_HUNT .. R_CRCL (a test of the bits)


    // ---- buffers (byte RAMs with registered read)
    // no_rw_check: a read of the byte being written in the same cycle may return either
    // value (no collision bypass in the FPGA build); such a read is never used: a byte is
    // sent only once stored, and rx_buf is read only after the frame is in
    (* no_rw_check *) reg [7:0] rx_buf [0:MAX_PAYLOAD-1];
    (* no_rw_check *) reg [7:0] tx_buf [0:MAX_PAYLOAD-1];
    // read at the pointers themselves (no address registers): rx_buf at rx_ptr in F_ADDR,
    // tx_buf at snd_ptr in SN_RD; the byte stays until the next read
    reg [7:0]  rx_rdata, tx_rdata;
    wire       rx_re, tx_re;

    always @(posedge clk) begin
        if (rx_re) rx_rdata <= rx_buf[rx_ptr[BW-1:0]];
        if (tx_re) tx_rdata <= tx_buf[snd_ptr[BW-1:0]];
    end

    // ---- frame being received / executed
    reg [7:0]  frame_op, frame_seq;
    // LEN: a longer one is refused in R_LENH, so a command sees LEN <= MAX_PAYLOAD (PTR_W
    // bits; 8 at least, the low byte is held until the high one arrives)
    localparam integer LEN_W = (PTR_W > 8) ? PTR_W : 8;
    reg [LEN_W-1:0] frame_len;
    wire [15:0] len16 = {rx_data, frame_len[7:0]};  // LEN, in R_LENH
    // one CRC register and update for both directions: a frame is received only while the
    // sender is idle, and sent only outside the receive states
    reg [15:0] crc;
    reg [PTR_W-1:0] rx_ptr;   // next payload byte to write (receive) or read (execute)
    // counter widths: the limit itself (each count is compared for equality with its limit
    // at every step, so it never has to hold more; past it the value is not used again)
    localparam integer IC_W = $clog2(IDLE_CLKS + 1);
    localparam integer WC_W = $clog2(BUS_TIMEOUT + 1);
    localparam integer PC_W0 = $clog2(RUN_TIMEOUT + 1);
    localparam integer PC_W = (PC_W0 > 16) ? PC_W0 : 16;  // also the 16-bit item index
    localparam integer TM_W = (IC_W > WC_W) ? IC_W : WC_W;
    // one timer: the inter-byte silence while receiving, the bus wait in B_REQ / B_WAIT
    // (never both at once: every receive starts from R_HUNT, which clears it)
    reg [TM_W-1:0] tmr;

    // ---- replay memory and response
    reg        replay_valid;
    reg [7:0]  last_op, last_seq;
    // the response's header: OP is last_op | 0x80 (the executed or replayed command), SEQ is
    // frame_seq, LEN is tx_ptr (kept for a replay: only a new command clears it); a NACK's
    // payload is frame_op and nack_code. frame_* and tx_ptr hold until the response is sent.
    reg        resp_nack;
    reg [3:0]  nack_code;
    reg [PTR_W-1:0] tx_ptr;   // next response byte to write (execute) or send
    reg        resp_stream;   // the response is a RUN stream (LEN 0xFFFF, self-delimiting)
    reg        run_fin;       // the RUN stream is complete: tx_ptr is its length
    reg        run_active;    // inside a RUN: errors end the stream instead of a NACK

    // ---- link counters (region LINK)
    // in block RAM (no 128 flip-flops, one incrementer): 0 frames, 1 CRC errors, 2 NACKs,
    // 3 replays. An event sets its pending bit; a read-modify-write (3 cycles) counts it.
    // Events of one counter are frames apart, so a pending bit never has to count twice.
    // After a reset the four words are cleared (4 cycles), before any byte can arrive.
    // Words 32 .. 32 + ID_WORDS - 1 of the same block RAM hold the IDENTIFY payload's
    // constant part (initial contents, never written): read like a LINK word.
    // (256 words: the RAM's whole depth, so every word has defined initial contents)
    (* ram_style = "block", no_rw_check *) reg [31:0] lnk_mem [0:255];
    reg [7:0]  lnk_raddr;
    reg [1:0]  lnk_i;
    reg [31:0] lnk_rdata;
    reg [3:0]  lnk_pend;      // events not yet counted
    reg [1:0]  lnk_ph;        // 0 idle, 1 read issued, 2 data here: write it + 1
    reg [2:0]  lnk_clr;       // clear pass: words left to zero (4 after a reset)
    reg        ev_frame, ev_crc, ev_replay;  // one-cycle events from the command FSM
    reg        nack_pulse;    // a NACK was decided
    wire       lnk_idle = lnk_pend == 4'd0 && lnk_ph == 2'd0 && lnk_clr == 3'd0;
    wire [1:0] lnk_cw = lnk_clr[1:0] - 2'd1;  // word the clear pass zeroes (3, 2, 1, 0)
    wire [1:0] lnk_next = lnk_pend[0] ? 2'd0 : (lnk_pend[1] ? 2'd1 : (lnk_pend[2] ? 2'd2 : 2'd3));

    // ---- sub-routine arguments and results
    reg [2:0]  xfer_n;        // bytes a fetch or a store has still to move (1, 2 or 4)
    // fetch_val: the bytes fetched from rx_buf, shifted in from the top (a field of n bytes
    // ends in the top n: fv1, fv2, the whole word), or the word a bus read returned. It is
    // also the value a store sends to tx_buf: shifted out from the bottom (one shift for
    // both; nothing reads a fetched or read word once it has been stored)
    reg [31:0] fetch_val;
    wire [7:0]  fv1 = fetch_val[31:24];
    wire [15:0] fv2 = fetch_val[31:16];
    wire [31:0] fv_shift = {rx_rdata, fetch_val[31:8]};

    // ---- command fields
    // the offset of READ / WRITE: OFF_W bits and a flag for any higher bit (such an offset
    // lies beyond every region: refused before any bus access). It steps with the items
    // (the offset of item k is cmd_off itself: no offset + k adder, and its register is
    // an incrementer's, not a copy of fetch_val); the range is checked before it moves.
    reg [OFF_W-1:0] cmd_off;
    reg        cmd_off_big;
    reg [15:0] cmd_count;     // items (RUN: input / output events)
    reg [2:0]  cmd_width;
    reg        cmd_flag;
    reg [15:0] run_steps;     // RUN: steps (the check), then steps still to run
    // RUN payload check: bytes from the next step's count field to the end of the payload
    // (negative: the last step ran past it); a step of n events takes 2 + 2n bytes, and
    // -(2 + 2n) = ~{n, 1} in two's complement: one adder, no constant term. It starts at
    // LEN <= MAX_PAYLOAD < 2^LEN_W, and a count n >= 2^(LEN_W-1) takes more than any LEN:
    // it only sets the sign (the result is negative whatever the other bits), so the adder
    // is LEN_W + 1 bits wide
    localparam integer RR_W = LEN_W + 1;
    reg [RR_W-1:0] run_rem;
    // one counter: the STATUS polls while waiting for a reset or a step, and (its low 16
    // bits) the item index cmd_k of the loops; never both at once, each clears it first and
    // an index stops at a 16-bit count (the bits above stay 0)
    reg [PC_W-1:0] poll_cnt;
    wire [15:0] cmd_k = poll_cnt[15:0];
    wire [15:0] run_n = (state == U_STEPS) ? 16'd0 : fv2;  // the STEPS field: 2
    wire        run_big = run_n[15:LEN_W-1] != 0;
    wire [RR_W-1:0] run_rem_next = {run_big, {(RR_W-1){1'b0}}}
                                 | (run_rem + ~{1'b0, run_n[LEN_W-2:0], 1'b1});

    wire [3:0]  region = frame_op[3:0];
    // the region's base and size: constants looked up into plain registers a cycle after the
    // op byte (used from the dispatch on); yosys would otherwise fold frame_op's register into
    // the lookup, and its enable and reset logic with it
    reg  [31:0] region_base, region_size;
    always @(posedge clk) begin
        region_base <= REGION_BASE[32*region +: 32];
        region_size <= REGION_SIZE[32*region +: 32];
    end
    // the bus address of item k: base + (offset + k) (cmd_off); when every region's base is
    // aligned to a power of two not below its size, base | (offset + k) (in range: checked
    // first)
    function integer bases_aligned;
        input integer unused;
        integer r, l;
        reg [31:0] b, z;
        begin
            bases_aligned = 1;
            for (r = 0; r < 16; r = r + 1) begin
                b = REGION_BASE[32*r +: 32];
                z = REGION_SIZE[32*r +: 32];
                l = 0;
                while (l < 31 && (32'd1 << l) < z) l = l + 1;
                if (z != 32'd0 && (b & ((32'd1 << l) - 32'd1)) != 32'd0) bases_aligned = 0;
            end
        end
    endfunction
    localparam integer BASE_OR = bases_aligned(0);
    wire [31:0] item_off  = {{(32-OFF_W){1'b0}}, cmd_off};
    wire [31:0] item_addr = (BASE_OR != 0) ? (region_base | item_off) : (region_base + item_off);
    wire [LEN_W-1:0] data_bytes_w = frame_len - 5;  // WRITE: bytes after offset, mode (LEN >= 5)
    wire [16:0] data_bytes = {{(17-LEN_W){1'b0}}, data_bytes_w};
    wire [E_W-1:0] cmd_end = {{(E_W-OFF_W){1'b0}}, cmd_off} + {{(E_W-16){1'b0}}, cmd_count};
    wire        cmd_out = cmd_off_big || {{(33-E_W){1'b0}}, cmd_end} > {1'b0, region_size};
    wire [1:0]  link_idx = cmd_off[1:0];

    // the link counters' read-modify-write and clear pass (see lnk_mem)
    always @(posedge clk) begin
        lnk_rdata <= lnk_mem[lnk_raddr];
        if (rst) begin
            lnk_pend <= 4'd0;
            lnk_ph   <= 2'd0;
            lnk_clr  <= 3'd4;
        end else begin
            lnk_pend <= lnk_pend | {ev_replay, nack_pulse, ev_crc, ev_frame};
            if (lnk_clr != 3'd0) begin
                lnk_mem[{6'd0, lnk_cw}] <= 32'd0;
                lnk_clr <= lnk_clr - 3'd1;
            end else if (lnk_ph == 2'd2) begin
                lnk_mem[{6'd0, lnk_i}] <= lnk_rdata + 1'b1;
                lnk_pend[lnk_i] <= 1'b0;
                lnk_ph <= 2'd0;
            end else if (lnk_ph == 2'd1) begin
                lnk_ph <= 2'd2;
            end else if (lnk_pend != 4'd0 && state != Q_LW && state != I_RW) begin  // (lnk_idle is 0)
                lnk_i     <= lnk_next;
                lnk_raddr <= {6'd0, lnk_next};
                lnk_ph    <= 2'd1;
            end
            // a READ of LINK: reads when every event is counted (Q_LOOP -> Q_LW)
            if (state == Q_LOOP && lnk_idle) lnk_raddr <= {6'd0, link_idx};
            // IDENTIFY: its table word cmd_k (I_ROM -> I_RW, the same way)
            if (state == I_ROM && lnk_idle) lnk_raddr <= {3'd1, cmd_k[4:0]};
        end
    end

    // x > c for a constant c: a test of x's bits when c is a power of two (no comparator
    // carry chain), else the comparison
    function automatic gt_pow2(input [31:0] x, input integer c);
        integer l;
        begin
            l = $clog2(c);
            if (c == (1 << l) && l < 31)
                gt_pow2 = ((x >> (l + 1)) != 32'd0) || (x[l] && (x & ((32'd1 << l) - 32'd1)) != 32'd0);
            else
                gt_pow2 = x > c;
        end
    endfunction

    // The timers (tmr, poll_cnt) count up by one from 0 each cycle / poll and are checked
    // every count: equality with the limit is the first time they reach it (no comparator).

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

    function [18:0] read_bytes(input [15:0] count, input [2:0] width);  // count * width
        begin
            case (width)
                3'd1: read_bytes = {3'b0, count};
                3'd2: read_bytes = {2'b0, count, 1'b0};
                default: read_bytes = {1'b0, count, 2'b0};  // 4 (other widths are refused)
            endcase
        end
    endfunction

    function [15:0] count_of(input [16:0] bytes, input [2:0] width);
        begin
            case (width)
                3'd1: count_of = bytes[15:0];
                3'd2: count_of = bytes[16:1];
                default: count_of = {1'b0, bytes[16:2]};
            endcase
        end
    endfunction


    // a fetched element of 1, 2 or 4 bytes (in the top bytes of v) as the word to write
    function [31:0] widen(input [31:0] v, input [2:0] width, input flag);
        begin
            case (width)
                3'd1: widen = {flag, {23{v[31]}}, v[31:24]};
                3'd2: widen = {flag, {15{v[31]}}, v[31:16]};
                default: widen = v;
            endcase
        end
    endfunction

    // the IDENTIFY payload's constant part, 32-bit words sent low byte first: VERSION,
    // n_regions, max payload, max events, writable, the regions' sizes (lnk_mem 32 ..)
    localparam integer ID_WORDS = 2 + 16;
    function [32*ID_WORDS-1:0] id_table(input integer unused);
        integer r;
        begin
            id_table[63:0] = {REGION_WR, MAX_EVENTS[15:0], MAX_PAYLOAD[15:0], 8'd16, VERSION};
            for (r = 0; r < 16; r = r + 1)
                id_table[64 + 32 * r +: 32] = REGION_SIZE[32 * r +: 32];
        end
    endfunction
    localparam [32*ID_WORDS-1:0] ID_TABLE = id_table(0);
    integer id_w;
    initial begin
        for (id_w = 0; id_w < 256; id_w = id_w + 1)
            lnk_mem[id_w] = (id_w >= 32 && id_w < 32 + ID_WORDS) ? ID_TABLE[32 * (id_w - 32) +: 32] : 32'd0;
    end

    // ---- calls: set the arguments and the return state
    task fetch(input [2:0] n, input [5:0] ret);
        begin
            xfer_n    <= n;
            state_ret <= ret;
            state     <= F_ADDR;
        end
    endtask

    // the value is fetch_val's low n bytes
    task store(input [2:0] n, input [5:0] ret);
        begin
            xfer_n    <= n;
            state_ret <= ret;
            state     <= S_STORE;
        end
    endtask

    // A bus transaction: each state that starts one starts always the same (below), so the
    // request's direction, address and data are a function of the state (a table, not a
    // multiplexer per call site in front of the registers)
    task bus(input [5:0] ret);
        begin
            host_req   <= 1'b1;
            host_we    <= bus_we;
            host_addr  <= bus_addr[ADDR_W-1:0];
            host_wdata <= bus_wdata;
            tmr        <= {TM_W{1'b0}};
            state_ret  <= ret;
            state      <= B_REQ;
        end
    endtask

    reg        bus_we;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [31:0] bus_addr;
    /* verilator lint_on UNUSEDSIGNAL */
    reg [31:0] bus_wdata;
    always @(*) begin
        bus_we    = 1'b0;
        bus_addr  = item_addr;  // Q_LOOP: a READ's item
        bus_wdata = 32'd0;      // reads send 0
        case (state)
            D_DISPATCH: begin  // RESET: CTRL = RESET
                bus_we = 1'b1; bus_addr = ADDR_CTRL; bus_wdata = 32'd2;
            end
            W_DATA: begin  // a WRITE's item
                bus_we = 1'b1; bus_wdata = widen(fetch_val, cmd_width, cmd_flag);
            end
            I_CORE: bus_addr = REGION_BASE[31:0] + {16'd0, cmd_k};  // the core's identify words
            X_POLL, U_POLL: bus_addr = ADDR_STATUS;
            U_NIN: begin  // STEPS = 1
                bus_we = 1'b1; bus_addr = ADDR_STEPS; bus_wdata = 32'd1;
            end
            U_RUN: begin  // CTRL = RUN
                bus_we = 1'b1; bus_addr = ADDR_CTRL; bus_wdata = 32'd1;
            end
            U_IN: begin  // the end-of-step marker
                bus_we = 1'b1; bus_addr = ADDR_IN_FIFO; bus_wdata = 32'h8000_0000;
            end
            U_IDX: begin  // an input spike
                bus_we = 1'b1; bus_addr = ADDR_IN_FIFO; bus_wdata = {16'd0, fv2};
            end
            U_CHECK: bus_addr = ADDR_OUT_LEVEL;
            U_EVENTS: bus_addr = ADDR_OUT_FIFO;
            default: ;
        endcase
    end

    // A refused command answers NACK. Inside a RUN the ACK stream has begun: it ends with
    // the abort marker 0xFFFE and the code instead, and is kept for replay (never run twice).
    // (the code, then one state that answers: little logic at each of the many call sites)
    task nack(input [3:0] code);
        begin
            nack_code <= code;
            state     <= N_NACK;
        end
    endtask

    // ---- the sender: streams the response out of tx_buf, CRC on the fly. A RUN stream
    // starts before the first step and follows tx_ptr, so steps compute while bytes go out.
    localparam [2:0] SN_IDLE = 3'd0, SN_HDR = 3'd1, SN_RD = 3'd2, SN_WAIT = 3'd3, SN_PAY = 3'd4,
                     SN_CRC = 3'd5;
    reg  [2:0]  snd_state;
    reg  [2:0]  snd_idx;
    reg  [PTR_W-1:0] snd_ptr;
    reg         snd_start;  // one-cycle request from the command FSM
    wire        snd_busy = snd_state != SN_IDLE;
    wire        snd_stream = resp_stream && !resp_nack;
    wire [7:0]  out_op = resp_nack ? OP_NACK : (last_op | 8'h80);
    wire [16:0] tx_len17 = {{(17-PTR_W){1'b0}}, tx_ptr};
    wire [15:0] out_len = resp_nack ? 16'd2 : tx_len17[15:0];
    wire [15:0] hdr_len = snd_stream ? 16'hFFFF : out_len;
    // the payload bytes to send: all of tx_ptr (a stream follows it while it grows)
    wire [PTR_W-1:0] snd_limit = resp_nack ? P2 : tx_ptr;
    wire [7:0]  snd_byte = resp_nack ? (snd_ptr[0] ? {4'd0, nack_code} : frame_op) : tx_rdata;
    reg  [7:0]  hdr_byte;
    // the CRC update: a received byte, a header byte or a payload byte. The initial value
    // is set while the register is not in use: hunting SYNC (the OP byte starts
    // from it) and while the sender puts out SYNC (its OP byte starts from it); the set is
    // the flip-flops' own synchronous set, not a multiplexer in front of the update
    wire        crc_preset = (state == R_HUNT) || (snd_state == SN_HDR && snd_idx == 3'd0);
    wire [7:0]  crc_byte = (snd_state == SN_IDLE) ? rx_data
                         : ((snd_state == SN_HDR) ? hdr_byte : snd_byte);
    wire [15:0] crc_next = crc16_byte(crc, crc_byte);
    wire        crc_rx   = rx_st && state != R_HUNT && rx_valid;
    wire        crc_tx   = !tx_valid && ((snd_state == SN_HDR && snd_idx != 3'd0)
                                         || snd_state == SN_PAY);

    always @(posedge clk) begin
        if (crc_preset) crc <= 16'hFFFF;  // (never with crc_rx or crc_tx)
        else if (crc_rx || crc_tx) crc <= crc_next;
    end

    assign active = state != R_HUNT || snd_busy || tx_valid;
    assign rx_re  = state == F_ADDR;
    assign tx_re  = snd_state == SN_RD;

    always @(*) begin
        case (snd_idx)
            3'd0: hdr_byte = SYNC;
            3'd1: hdr_byte = out_op;
            3'd2: hdr_byte = frame_seq;
            3'd3: hdr_byte = hdr_len[7:0];
            default: hdr_byte = hdr_len[15:8];
        endcase
    end

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

    always @(posedge clk) begin
        if (rst) begin
            state        <= R_HUNT;
            state_ret    <= R_HUNT;
            snd_start    <= 1'b0;
            resp_stream  <= 1'b0;
            run_fin      <= 1'b0;
            run_active   <= 1'b0;
            host_req     <= 1'b0;
            host_we      <= 1'b0;
            host_addr    <= {ADDR_W{1'b0}};
            host_wdata   <= 32'd0;
            replay_valid <= 1'b0;
            resp_nack    <= 1'b0;
            nack_pulse   <= 1'b0;
            ev_frame     <= 1'b0;
            ev_crc       <= 1'b0;
            ev_replay    <= 1'b0;
            tmr          <= {TM_W{1'b0}};
        end else begin
            snd_start <= 1'b0;
            nack_pulse <= 1'b0;
            ev_frame   <= 1'b0;
            ev_crc     <= 1'b0;
            ev_replay  <= 1'b0;
            // inter-byte timeout while a frame is partly received; outside the receive
            // states the timer counts bus wait cycles (cleared by each bus call)
            if (rx_st && (rx_valid || state == R_HUNT)) begin
                tmr <= {TM_W{1'b0}};
            end else begin
                tmr <= tmr + 1'b1;
            end
            case (state)
                // ------------------------------------------------------------ receive
                R_HUNT: if (rx_valid && rx_data == SYNC) state <= R_OP;
                R_OP, R_SEQ, R_LENL, R_LENH, R_PAY, R_CRCH, R_CRCL: begin
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
                                rx_ptr          <= P0;
                                if (gt_pow2({16'd0, len16}, MAX_PAYLOAD)) begin
                                    nack(E_LENGTH);
                                end else if (len16 == 16'd0) begin
                                    state <= R_CRCH;
                                end else begin
                                    state <= R_PAY;
                                end
                            end
                            R_PAY: begin
                                rx_buf[rx_ptr[BW-1:0]] <= rx_data;
                                rx_ptr <= rx_ptr + 1'b1;
                                if (rx_ptr + 1'b1 == frame_len[PTR_W-1:0]) begin  // len <= MAX_PAYLOAD
                                    state <= R_CRCH;
                                end
                            end
                            R_CRCH: state <= R_CRCL;
                            default: state <= D_CRC;  // R_CRCL
                        endcase
                    end else if ({{(32-TM_W){1'b0}}, tmr} == IDLE_CLKS) begin
                        state <= R_HUNT;
                    end
                end

                // ------------------------------------------------------------ dispatch
                // the residue is tested in the register a cycle after the last byte, not on
                // the update's output (its LUTs then pack with the register's flip-flops)
                D_CRC: begin  // residue 0 means a good frame
                    if (crc == 16'd0) begin
                        ev_frame <= 1'b1;
                        state    <= D_DISPATCH;
                    end else begin
                        ev_crc <= 1'b1;
                        nack(E_CRC);  // keeps the replay memory: nothing ran
                    end
                end
                D_DISPATCH: begin
                    resp_nack <= 1'b0;
                    rx_ptr    <= P0;
                    if (frame_op != OP_IDENTIFY && replay_valid && frame_seq == last_seq
                            && frame_op == last_op) begin
                        ev_replay  <= 1'b1;  // the stored response (tx_buf, tx_ptr) again
                        snd_start  <= 1'b1;
                        state      <= W_SEND;
                    end else begin
                        replay_valid <= 1'b0;
                        resp_stream  <= 1'b0;
                        tx_ptr       <= P0;
                        last_op      <= frame_op;
                        last_seq     <= frame_seq;
                        if (frame_op == OP_IDENTIFY) begin
                            if (frame_len != 0) nack(E_LENGTH);
                            else begin
                                poll_cnt <= {PC_W{1'b0}};
                                state    <= I_ROM;
                            end
                        end else if (frame_op == OP_RESET) begin
                            if (frame_len != 0) nack(E_LENGTH);
                            else begin
                                poll_cnt <= {PC_W{1'b0}};
                                bus(X_POLL);
                            end
                        end else if (frame_op == OP_RUN) begin
                            if (frame_len[LEN_W-1:1] == 0) nack(E_LENGTH);  // < 2
                            else begin
                                run_rem <= {1'b0, frame_len};
                                fetch(3'd2, U_STEPS);
                            end
                        end else if (frame_op[7:4] == 4'h2) begin
                            if (frame_len[LEN_W-1:3] == 0 && frame_len[2:0] < 3'd5) nack(E_LENGTH);
                            else fetch(3'd4, W_OFF);
                        end else if (frame_op[7:4] == 4'h3) begin
                            if (frame_len != 7) nack(E_LENGTH);
                            else fetch(3'd4, Q_OFF);
                        end else begin
                            nack(E_OPCODE);
                        end
                    end
                end

                // ------------------------------------------------------------ sub-routines
                F_ADDR: begin
                    rx_ptr   <= rx_ptr + 1'b1;
                    state    <= F_WAIT;
                end
                F_WAIT: state <= F_TAKE;
                F_TAKE: begin
                    fetch_val <= fv_shift;
                    xfer_n    <= xfer_n - 1'b1;
                    state     <= (xfer_n == 3'd1) ? state_ret : F_ADDR;
                end
                S_STORE: begin
                    tx_buf[tx_ptr[BW-1:0]] <= fetch_val[7:0];
                    tx_ptr    <= tx_ptr + 1'b1;
                    fetch_val <= fv_shift;
                    xfer_n    <= xfer_n - 1'b1;
                    if (xfer_n == 3'd1) state <= state_ret;
                end
                B_REQ: begin
                    if (host_ready) begin
                        host_req <= 1'b0;
                        tmr      <= {TM_W{1'b0}};
                        state    <= host_we ? state_ret : B_WAIT;
                    end else if ({{(32-TM_W){1'b0}}, tmr} == BUS_TIMEOUT) begin
                        host_req <= 1'b0;
                        nack(E_BUS);
                    end
                end
                B_WAIT: begin
                    if (host_rvalid) begin
                        fetch_val <= host_rdata;
                        state     <= state_ret;
                    end else if ({{(32-TM_W){1'b0}}, tmr} == BUS_TIMEOUT) begin
                        nack(E_BUS);
                    end
                end

                // ------------------------------------------------------------ WRITE
                W_OFF: begin
                    cmd_off <= fetch_val[OFF_W-1:0];
                    cmd_off_big <= fetch_val[31:OFF_W] != 0;
                    fetch(3'd1, W_MODE);
                end
                W_MODE: begin
                    cmd_width <= fv1[2:0];
                    cmd_flag  <= fv1[7];
                    cmd_count <= count_of(data_bytes, fv1[2:0]);  // words to write
                    poll_cnt  <= {PC_W{1'b0}};
                    if (fv1[6:3] != 0 || !(fv1[2:0] == 3'd1 || fv1[2:0] == 3'd2
                            || fv1[2:0] == 3'd4)) begin
                        nack(E_WIDTH);
                    end else begin
                        state <= W_LOOP;
                    end
                end
                W_LOOP: begin
                    if (cmd_k == 16'd0 && ((cmd_width == 3'd2 && data_bytes[0])
                            || (cmd_width == 3'd4 && data_bytes[1:0] != 2'd0))) begin
                        nack(E_LENGTH);
                    end else if (cmd_k == 16'd0 && (region_size == 0 || region == LINK)) begin
                        nack(region == LINK ? E_READ_ONLY : E_ADDRESS);
                    end else if (cmd_k == 16'd0 && !REGION_WR[region]) begin
                        nack(E_READ_ONLY);
                    end else if (cmd_k == 16'd0 && cmd_out) begin
                        nack(E_ADDRESS);
                    end else if (cmd_k == cmd_count) begin
                        state <= ACK;
                    end else begin
                        fetch(cmd_width, W_DATA);
                    end
                end
                W_DATA: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    cmd_off <= cmd_off + 1'b1;
                    bus(W_LOOP);
                end

                // ------------------------------------------------------------ READ
                Q_OFF: begin
                    cmd_off <= fetch_val[OFF_W-1:0];
                    cmd_off_big <= fetch_val[31:OFF_W] != 0;
                    fetch(3'd2, Q_CNT);
                end
                Q_CNT: begin
                    cmd_count <= fv2;
                    fetch(3'd1, Q_WIDTH);
                end
                Q_WIDTH: begin
                    cmd_width <= fv1[2:0];
                    poll_cnt  <= {PC_W{1'b0}};
                    if (!(fv1 == 8'd1 || fv1 == 8'd2 || fv1 == 8'd4)) begin
                        nack(E_WIDTH);
                    end else if (cmd_count == 0
                            || gt_pow2({13'd0, read_bytes(cmd_count, fv1[2:0])}, MAX_PAYLOAD)) begin
                        nack(E_LENGTH);
                    end else if (region_size == 0 || cmd_out) begin
                        nack(E_ADDRESS);
                    end else begin
                        state <= Q_LOOP;
                    end
                end
                Q_LOOP: begin
                    if (cmd_k == cmd_count) begin
                        state <= ACK;
                    end else if (region == LINK) begin
                        // lnk_raddr <= link_idx (above); wait while a count is in flight
                        if (lnk_idle) state <= Q_LW;
                    end else begin
                        bus(Q_DATA);
                    end
                end
                Q_LW: state <= Q_LX;  // the counter RAM samples lnk_raddr
                Q_LX: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    cmd_off <= cmd_off + 1'b1;
                    fetch_val <= lnk_rdata;
                    store(cmd_width, Q_LOOP);
                end
                Q_DATA: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    cmd_off <= cmd_off + 1'b1;
                    store(cmd_width, Q_LOOP);
                end

                // ------------------------------------------------------------ IDENTIFY
                I_ROM: begin  // the table words, then the core's identify words
                    if ({16'd0, cmd_k} == ID_WORDS) begin
                        poll_cnt <= {PC_W{1'b0}};
                        state    <= I_CORE;
                    end else if (lnk_idle) begin
                        state <= I_RW;  // lnk_raddr <= 32 + cmd_k (above)
                    end
                end
                I_RW: state <= I_RX;  // the RAM samples lnk_raddr
                I_RX: begin
                    fetch_val <= lnk_rdata;
                    poll_cnt  <= poll_cnt + 1'b1;
                    store(3'd4, I_ROM);
                end
                I_CORE: begin
                    if ({16'd0, cmd_k} == REGION_SIZE[31:0]) begin
                        state <= ACK;
                    end else begin
                        poll_cnt <= poll_cnt + 1'b1;
                        bus(I_DATA);
                    end
                end
                I_DATA: store(3'd4, I_CORE);

                // ------------------------------------------------------------ RESET
                X_POLL: bus(X_CHECK);
                X_CHECK: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    if (!fetch_val[0]) begin
                        state <= ACK;
                    end else if ({{(32-PC_W){1'b0}}, poll_cnt} == RUN_TIMEOUT) begin
                        nack(E_RUN);
                    end else begin
                        state <= X_POLL;
                    end
                end

                // ------------------------------------------------------------ RUN
                U_STEPS: begin  // check the payload's structure before running anything
                    run_steps <= fv2;
                    poll_cnt  <= {PC_W{1'b0}};
                    run_rem   <= run_rem_next;  // LEN - 2
                    state     <= U_V_CNT;
                end
                U_V_CNT: begin
                    if (cmd_k == run_steps) begin
                        if (run_rem != 0) nack(E_LENGTH);
                        else begin  // the ACK stream starts now, steps follow
                            rx_ptr      <= P2;
                            tx_ptr      <= P0;
                            resp_stream <= 1'b1;
                            run_fin     <= 1'b0;
                            run_active  <= 1'b1;
                            snd_start   <= 1'b1;
                            state       <= U_STEP;
                        end
                    end else if (run_rem[RR_W-1] || run_rem[RR_W-2:1] == 0) begin  // < 2 bytes
                        nack(E_LENGTH);
                    end else begin
                        fetch(3'd2, U_V_NEXT);  // rx_ptr: at this step's count field
                    end
                end
                U_V_NEXT: begin  // past this step's events (rx_ptr used only while <= LEN)
                    run_rem  <= run_rem_next;
                    rx_ptr   <= rx_ptr + {fv2[PTR_W-2:0], 1'b0};
                    poll_cnt <= poll_cnt + 1'b1;
                    state    <= U_V_CNT;
                end
                U_STEP: begin
                    if (run_steps == 16'd0
                            || ROOM_I < 0 || tx_len17 > ROOM) begin
                        state <= U_FINISH;
                    end else begin
                        fetch(3'd2, U_NIN);
                    end
                end
                U_NIN: begin
                    cmd_count <= fv2;
                    poll_cnt  <= {PC_W{1'b0}};
                    bus(U_RUN);
                end
                U_RUN: bus(U_IN);
                U_IN: begin
                    if (cmd_k == cmd_count) begin
                        bus(U_POLL);
                        poll_cnt <= {PC_W{1'b0}};
                    end else begin
                        fetch(3'd2, U_IDX);
                    end
                end
                U_IDX: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    bus(U_IN);
                end
                U_POLL: bus(U_CHECK);
                U_CHECK: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    if (fetch_val[1] && !fetch_val[0]) begin
                        bus(U_LEVEL);
                    end else if ({{(32-PC_W){1'b0}}, poll_cnt} == RUN_TIMEOUT) begin
                        nack(E_RUN);
                    end else begin
                        state <= U_POLL;
                    end
                end
                U_LEVEL: begin
                    cmd_count <= fetch_val[15:0];
                    poll_cnt  <= {PC_W{1'b0}};
                    if (gt_pow2(fetch_val, MAX_EVENTS)) nack(E_OVERFLOW);
                    else store(3'd2, U_EVENTS);
                end
                U_EVENTS: begin
                    if (cmd_k == cmd_count) begin
                        run_steps <= run_steps - 1'b1;
                        state    <= U_STEP;
                    end else begin
                        bus(U_EVENT);
                    end
                end
                U_EVENT: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    store(3'd2, U_EVENTS);
                end
                U_FINISH: begin  // end-of-stream marker
                    fetch_val <= 32'h0000_FFFF;
                    store(3'd2, U_DONE);
                end
                N_NACK: begin
                    nack_pulse <= 1'b1;
                    if (run_active) begin  // the stream ends with the abort marker and the code
                        fetch_val <= {12'd0, nack_code, 16'hFFFE};
                        store(3'd4, U_DONE);
                    end else begin
                        resp_nack <= 1'b1;
                        snd_start <= 1'b1;
                        state     <= W_SEND;
                    end
                end
                U_DONE: begin
                    run_fin      <= 1'b1;
                    run_active   <= 1'b0;
                    replay_valid <= 1'b1;
                    state        <= W_SEND;
                end

                // ------------------------------------------------------------ respond
                ACK: begin
                    replay_valid <= 1'b1;
                    snd_start    <= 1'b1;
                    state        <= W_SEND;
                end
                W_SEND: if (!snd_start && !snd_busy) state <= R_HUNT;
                default: state <= R_HUNT;
            endcase
        end
    end

endmodule

`default_nettype wire
