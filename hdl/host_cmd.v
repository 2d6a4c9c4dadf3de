// host_cmd: the command FSM of the UART command decoder (docs/uart-protocol.md): runs a good
// frame from the frame receiver (host_frame_rx) as host bus transactions and builds its
// response in the sender's buffer (host_frame_tx), or refuses a frame with a NACK.
//
// It owns the payload buffer the receiver fills (and the pointer into it) and the decoder's
// one timer (the receiver's inter-byte silence, the bus wait here: never both at once). The
// ACK of RUN is a stream (LEN 0xFFFF): its header goes out before the first step and each
// step's events follow as soon as they are drained. A good frame with the same SEQ and
// opcode as the last executed one is not run again: its stored response is sent again (a
// lost ACK does not run a command twice). IDENTIFY clears that memory.
`default_nettype none
`include "snn_map.vh"

module host_cmd #(
    parameter integer        ADDR_W       = 24,            // host bus word-address width
    parameter integer        MAX_PAYLOAD  = 1024,          // payload buffer bytes (power of 2)
    parameter integer        MAX_EVENTS   = 256,           // most output events of one step
    parameter [16*32-1:0]    REGION_BASE  = {16{32'd0}},   // bus word address of region r
    parameter [16*32-1:0]    REGION_SIZE  = {16{32'd0}},   // words in region r (0: absent)
    parameter [15:0]         REGION_WR    = 16'h0,         // bit r: region r accepts writes
    parameter integer        BUS_TIMEOUT  = 65535,         // cycles to wait for the bus
    parameter integer        RUN_TIMEOUT  = 16777215,      // STATUS polls before a hung step
    parameter integer        PTR_W        = 11,            // buffer pointer width
    parameter integer        LEN_W        = 11,            // frame_len width
    parameter integer        TM_W         = 16             // timer width
) (
    input  wire              clk,            // clock
    input  wire              rst,            // synchronous reset, active high
    // the frame receiver
    input  wire [7:0]        rx_data,        // payload byte to store (pay_we)
    input  wire              pay_clear,      // the payload starts: pointer to byte 0
    input  wire              pay_we,         // store rx_data at pay_ptr, step pay_ptr
    input  wire              tmr_clear,      // restart the timer
    input  wire [7:0]        frame_op,       // OP of the frame
    input  wire [7:0]        frame_seq,      // SEQ
    input  wire [LEN_W-1:0]  frame_len,      // LEN
    input  wire              frame_good,     // a good frame is in: run it
    input  wire              frame_bad_crc,  // refuse it: BAD_CRC
    input  wire              frame_bad_len,  // refuse it: BAD_LENGTH
    output wire              cmd_idle,       // waiting for a frame
    output reg  [TM_W-1:0]   tmr,            // cycles since the last restart
    output reg  [PTR_W-1:0]  pay_ptr,        // payload pointer: next byte to store or fetch
    // the host bus
    output reg               host_req,       // bus request
    output reg               host_we,        // 1 write, 0 read
    output reg  [ADDR_W-1:0] host_addr,      // word address
    output reg  [31:0]       host_wdata,     // write data
    input  wire              host_ready,     // request accepted this cycle
    input  wire              host_rvalid,    // read data valid
    input  wire [31:0]       host_rdata,     // read data
    // the sender
    input  wire              snd_busy,       // sending a response
    output reg               snd_start,      // send the response (pulse)
    output reg               resp_nack,      // the response is a NACK (frame_op, nack_code)
    output reg  [3:0]        nack_code,      // its error code
    output reg               resp_stream,    // the response is a RUN stream (LEN 0xFFFF)
    output reg               run_fin,        // the stream is complete: tx_ptr is its length
    output reg  [7:0]        last_op,        // the executed or replayed command (ACK: | 0x80)
    output reg  [PTR_W-1:0]  tx_ptr,         // response bytes stored so far
    output wire              tx_we,          // store tx_wdata at tx_ptr
    output wire [7:0]        tx_wdata,       // the response byte
    // the link counters and IDENTIFY's table (host_link)
    input  wire              lnk_idle,       // no count in flight: a read may start
    input  wire [31:0]       lnk_rdata,      // the word read
    output wire              lnk_rd_link,    // READ of LINK: read counter lnk_link_idx
    output wire [1:0]        lnk_link_idx,   // ...
    output wire              lnk_rd_ident,   // IDENTIFY: read table word lnk_ident_idx
    output wire [4:0]        lnk_ident_idx,  // ...
    output wire              lnk_hold,       // the counter RAM samples the read address
    output reg               ev_replay,      // a frame was answered from the replay memory
    output reg               nack_pulse      // a NACK was decided (pulse)
);

    localparam integer BW = $clog2(MAX_PAYLOAD);  // buffer address width
    localparam [PTR_W-1:0] P0 = 0, P2 = 2;
    localparam [7:0] OP_IDENTIFY = `SNN_OP_IDENTIFY, OP_RESET = `SNN_OP_RESET;
    localparam [7:0] OP_RUN = `SNN_OP_RUN, OP_WRITE = `SNN_OP_WRITE, OP_READ = `SNN_OP_READ;
    localparam [3:0] LINK = `SNN_LINK_LINK;  // the region served by the decoder itself
    // IDENTIFY's constant part (host_link's table): a header of 2 words, the region sizes
    localparam integer ID_WORDS = 2 + `SNN_N_REGIONS;
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

    // ---- states (codes 1 .. 7 are unused: any change of the codes moves the iCE40
    // placement, and these measured best, benchmarks/fpga_resources.py)
    localparam [5:0]
        C_IDLE = 6'd0, D_DISPATCH = 6'd8,
        F_ADDR = 6'd9, F_WAIT = 6'd10, F_TAKE = 6'd11,       // fetch from the payload
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
        S_STORE = 6'd48, ACK = 6'd49, I_DATA = 6'd50, U_V_NEXT = 6'd51;

    reg [5:0]  state, state_ret;
    assign cmd_idle = state == C_IDLE;

    // ---- the payload buffer (a byte RAM with registered read)
    // no_rw_check: a read of the byte being written in the same cycle may return either
    // value (no collision bypass in the FPGA build); such a read is never used: the buffer
    // is read only after the frame is in. It is read at the pointer itself (no address
    // register) in F_ADDR; the byte stays until the next read.
    (* no_rw_check *) reg [7:0] rx_buf [0:MAX_PAYLOAD-1];
    reg [7:0]  rx_rdata;

    always @(posedge clk) begin
        if (state == F_ADDR) rx_rdata <= rx_buf[pay_ptr[BW-1:0]];
        if (!rst && pay_we) rx_buf[pay_ptr[BW-1:0]] <= rx_data;
    end

    // ---- replay memory and response
    reg        replay_valid;
    reg [7:0]  last_seq;
    // the response's header: OP is last_op | 0x80 (the executed or replayed command), SEQ is
    // frame_seq, LEN is tx_ptr (kept for a replay: only a new command clears it); a NACK's
    // payload is frame_op and nack_code. frame_* and tx_ptr hold until the response is sent.
    reg        run_active;    // inside a RUN: errors end the stream instead of a NACK

    // ---- sub-routine arguments and results
    reg [2:0]  xfer_n;        // bytes a fetch or a store has still to move (1, 2 or 4)
    // fetch_val: the bytes fetched from the payload, shifted in from the top (a field of n
    // bytes ends in the top n: fv1, fv2, the whole word), or the word a bus read returned. It
    // is also the value a store sends to the response: shifted out from the bottom (one
    // shift for both; nothing reads a fetched or read word once it has been stored)
    reg [31:0] fetch_val;
    wire [7:0]  fv1 = fetch_val[31:24];
    wire [15:0] fv2 = fetch_val[31:16];
    wire [31:0] fv_shift = {rx_rdata, fetch_val[31:8]};
    assign tx_we    = state == S_STORE;
    assign tx_wdata = fetch_val[7:0];

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
    // counter widths: the limit itself (each count is compared for equality with its limit
    // at every step, so it never has to hold more; past it the value is not used again)
    localparam integer PC_W0 = $clog2(RUN_TIMEOUT + 1);
    localparam integer PC_W = (PC_W0 > 16) ? PC_W0 : 16;  // also the 16-bit item index
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

    // the link counters' and IDENTIFY table's reads (host_link): a READ of LINK reads when
    // every event is counted (Q_LOOP -> Q_LW), IDENTIFY its table word cmd_k (I_ROM -> I_RW)
    assign lnk_rd_link   = state == Q_LOOP;
    assign lnk_link_idx  = cmd_off[1:0];
    assign lnk_rd_ident  = state == I_ROM;
    assign lnk_ident_idx = cmd_k[4:0];
    assign lnk_hold      = state == Q_LW || state == I_RW;

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

    // ---- calls: a sub-routine (fetch, store: xfer_n bytes; bus) returns to state_ret.
    // Each calling state returns to one state with one byte count (D_DISPATCH: by the op,
    // U_IN: by whether inputs remain), this table, so state_ret and xfer_n are written in
    // every cycle of a calling state whichever way it goes on, and so are the bus request's
    // direction, address and data in every state that may start one (host_req alone starts
    // it). A state that goes elsewhere leaves values nothing reads: the next call writes
    // them again. Their enables are then a decode of the state, not the conditions of each
    // call (those were the iCE40's critical path); the calls only move the state.
    reg       call_v;    // the state calls a sub-routine on some branch
    reg       call_bus;  // ... it may call bus
    reg [5:0] call_ret;  // where the sub-routine returns
    reg [2:0] call_n;    // fetch, store: bytes
    always @(*) begin
        call_v = 1'b1; call_bus = 1'b0; call_n = 3'd2; call_ret = C_IDLE;
        case (state)
            D_DISPATCH: begin  // RESET: bus; RUN: fetch 2 bytes; WRITE, READ: fetch 4
                call_bus = 1'b1;
                call_n   = (frame_op == OP_RUN) ? 3'd2 : 3'd4;
                call_ret = (frame_op == OP_RESET) ? X_POLL
                         : ((frame_op == OP_RUN) ? U_STEPS
                            : ((frame_op[7:4] == OP_WRITE[7:4]) ? W_OFF : Q_OFF));
            end
            W_OFF:    begin call_n = 3'd1; call_ret = W_MODE; end
            W_LOOP:   begin call_n = cmd_width; call_ret = W_DATA; end
            W_DATA:   begin call_bus = 1'b1; call_ret = W_LOOP; end
            Q_OFF:    call_ret = Q_CNT;
            Q_CNT:    begin call_n = 3'd1; call_ret = Q_WIDTH; end
            Q_LOOP:   begin call_bus = 1'b1; call_ret = Q_DATA; end
            Q_LX:     begin call_n = cmd_width; call_ret = Q_LOOP; end
            Q_DATA:   begin call_n = cmd_width; call_ret = Q_LOOP; end
            I_RX:     begin call_n = 3'd4; call_ret = I_ROM; end
            I_CORE:   begin call_bus = 1'b1; call_ret = I_DATA; end
            I_DATA:   begin call_n = 3'd4; call_ret = I_CORE; end
            X_POLL:   begin call_bus = 1'b1; call_ret = X_CHECK; end
            U_V_CNT:  call_ret = U_V_NEXT;
            U_STEP:   call_ret = U_NIN;
            U_NIN:    begin call_bus = 1'b1; call_ret = U_RUN; end
            U_RUN:    begin call_bus = 1'b1; call_ret = U_IN; end
            U_IN:     begin call_bus = 1'b1; call_ret = (cmd_k == cmd_count) ? U_POLL : U_IDX; end
            U_IDX:    begin call_bus = 1'b1; call_ret = U_IN; end
            U_POLL:   begin call_bus = 1'b1; call_ret = U_CHECK; end
            U_CHECK:  begin call_bus = 1'b1; call_ret = U_LEVEL; end
            U_LEVEL:  call_ret = U_EVENTS;
            U_EVENTS: begin call_bus = 1'b1; call_ret = U_EVENT; end
            U_EVENT:  call_ret = U_EVENTS;
            U_FINISH: call_ret = U_DONE;
            N_NACK:   begin call_n = 3'd4; call_ret = U_DONE; end
            default:  call_v = 1'b0;
        endcase
    end

    task fetch;  // xfer_n bytes from the payload into fetch_val
        begin
            state <= F_ADDR;
        end
    endtask

    task store;  // fetch_val's low xfer_n bytes to the response
        begin
            state <= S_STORE;
        end
    endtask

    // A bus transaction: its direction, address and data are a function of the calling
    // state (bus_we, bus_addr, bus_wdata below: a table, not a multiplexer per call site)
    task bus;
        begin
            host_req <= 1'b1;
            tmr      <= {TM_W{1'b0}};
            state    <= B_REQ;
        end
    endtask

    localparam [31:0] A_CTRL = `SNN_REG_CTRL, A_STEPS = `SNN_REG_STEPS;
    localparam [31:0] A_STATUS = `SNN_REG_STATUS, A_IN_FIFO = `SNN_REG_IN_FIFO;
    localparam [31:0] A_OUT_FIFO = `SNN_REG_OUT_FIFO, A_OUT_LEVEL = `SNN_REG_OUT_LEVEL;
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
            D_DISPATCH: begin  // RESET: CTRL = RESET_STATE
                bus_we = 1'b1; bus_addr = A_CTRL;
                bus_wdata = 32'd1 << `SNN_CTRL_RESET_STATE_BIT;
            end
            W_DATA: begin  // a WRITE's item
                bus_we = 1'b1; bus_wdata = widen(fetch_val, cmd_width, cmd_flag);
            end
            I_CORE: bus_addr = REGION_BASE[31:0] + {16'd0, cmd_k};  // the core's identify words
            X_POLL, U_POLL: bus_addr = A_STATUS;
            U_NIN: begin  // STEPS = 1
                bus_we = 1'b1; bus_addr = A_STEPS; bus_wdata = 32'd1;
            end
            U_RUN: begin  // CTRL = RUN
                bus_we = 1'b1; bus_addr = A_CTRL; bus_wdata = 32'd1 << `SNN_CTRL_RUN_BIT;
            end
            U_IN: begin  // the end-of-step marker
                bus_we = 1'b1; bus_addr = A_IN_FIFO; bus_wdata = 32'd1 << `SNN_FIFO_MARK_BIT;
            end
            U_IDX: begin  // an input spike
                bus_we = 1'b1; bus_addr = A_IN_FIFO; bus_wdata = {16'd0, fv2};
            end
            U_CHECK: bus_addr = A_OUT_LEVEL;
            U_EVENTS: bus_addr = A_OUT_FIFO;
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

    wire        st_busy = fetch_val[`SNN_STATUS_BUSY_BIT];  // STATUS read by X_POLL / U_POLL
    wire        st_done = fetch_val[`SNN_STATUS_DONE_BIT];
    wire [16:0] tx_len17 = {{(17-PTR_W){1'b0}}, tx_ptr};

    always @(posedge clk) begin
        if (rst) begin
            state        <= C_IDLE;
            state_ret    <= C_IDLE;
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
            ev_replay    <= 1'b0;
            tmr          <= {TM_W{1'b0}};
        end else begin
            snd_start  <= 1'b0;
            nack_pulse <= 1'b0;
            ev_replay  <= 1'b0;
            // the receiver's inter-byte silence; outside a frame the timer counts bus wait
            // cycles (cleared by each bus call)
            if (tmr_clear) begin
                tmr <= {TM_W{1'b0}};
            end else begin
                tmr <= tmr + 1'b1;
            end
            // the receiver's payload bytes
            if (pay_clear) pay_ptr <= P0;
            if (pay_we) pay_ptr <= pay_ptr + 1'b1;
            if (call_v) begin  // the calls' table (above)
                state_ret <= call_ret;
                xfer_n    <= call_n;
            end
            if (call_bus) begin
                host_we    <= bus_we;
                host_addr  <= bus_addr[ADDR_W-1:0];
                host_wdata <= bus_wdata;
            end
            case (state)
                // ------------------------------------------------------------ a frame
                C_IDLE: begin
                    if (frame_good) state <= D_DISPATCH;
                    else if (frame_bad_crc) nack(`SNN_ERR_BAD_CRC);  // keeps the replay
                    else if (frame_bad_len) nack(`SNN_ERR_BAD_LENGTH);  // memory: nothing ran
                end

                // ------------------------------------------------------------ dispatch
                D_DISPATCH: begin
                    resp_nack <= 1'b0;
                    pay_ptr   <= P0;
                    if (frame_op != OP_IDENTIFY && replay_valid && frame_seq == last_seq
                            && frame_op == last_op) begin
                        ev_replay  <= 1'b1;  // the stored response (tx_ptr bytes) again
                        snd_start  <= 1'b1;
                        state      <= W_SEND;
                    end else begin
                        replay_valid <= 1'b0;
                        resp_stream  <= 1'b0;
                        tx_ptr       <= P0;
                        last_op      <= frame_op;
                        last_seq     <= frame_seq;
                        if (frame_op == OP_IDENTIFY) begin
                            if (frame_len != 0) nack(`SNN_ERR_BAD_LENGTH);
                            else begin
                                poll_cnt <= {PC_W{1'b0}};
                                state    <= I_ROM;
                            end
                        end else if (frame_op == OP_RESET) begin
                            if (frame_len != 0) nack(`SNN_ERR_BAD_LENGTH);
                            else begin
                                poll_cnt <= {PC_W{1'b0}};
                                bus;
                            end
                        end else if (frame_op == OP_RUN) begin
                            if (frame_len[LEN_W-1:1] == 0) nack(`SNN_ERR_BAD_LENGTH);  // < 2
                            else begin
                                run_rem <= {1'b0, frame_len};
                                fetch;
                            end
                        end else if (frame_op[7:4] == OP_WRITE[7:4]) begin
                            if (frame_len[LEN_W-1:3] == 0 && frame_len[2:0] < 3'd5)
                                nack(`SNN_ERR_BAD_LENGTH);
                            else fetch;
                        end else if (frame_op[7:4] == OP_READ[7:4]) begin
                            if (frame_len != 7) nack(`SNN_ERR_BAD_LENGTH);
                            else fetch;
                        end else begin
                            nack(`SNN_ERR_BAD_OPCODE);
                        end
                    end
                end

                // ------------------------------------------------------------ sub-routines
                F_ADDR: begin  // the payload byte at pay_ptr is read (rx_rdata)
                    pay_ptr  <= pay_ptr + 1'b1;
                    state    <= F_WAIT;
                end
                F_WAIT: state <= F_TAKE;
                F_TAKE: begin
                    fetch_val <= fv_shift;
                    xfer_n    <= xfer_n - 1'b1;
                    state     <= (xfer_n == 3'd1) ? state_ret : F_ADDR;
                end
                S_STORE: begin  // fetch_val[7:0] goes to the response (tx_we)
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
                        nack(`SNN_ERR_BUS_TIMEOUT);
                    end
                end
                B_WAIT: begin
                    if (host_rvalid) begin
                        fetch_val <= host_rdata;
                        state     <= state_ret;
                    end else if ({{(32-TM_W){1'b0}}, tmr} == BUS_TIMEOUT) begin
                        nack(`SNN_ERR_BUS_TIMEOUT);
                    end
                end

                // ------------------------------------------------------------ WRITE
                W_OFF: begin
                    cmd_off <= fetch_val[OFF_W-1:0];
                    cmd_off_big <= fetch_val[31:OFF_W] != 0;
                    fetch;
                end
                W_MODE: begin
                    cmd_width <= fv1[2:0];
                    cmd_flag  <= fv1[7];
                    cmd_count <= count_of(data_bytes, fv1[2:0]);  // words to write
                    poll_cnt  <= {PC_W{1'b0}};
                    if (fv1[6:3] != 0 || !(fv1[2:0] == 3'd1 || fv1[2:0] == 3'd2
                            || fv1[2:0] == 3'd4)) begin
                        nack(`SNN_ERR_BAD_WIDTH);
                    end else begin
                        state <= W_LOOP;
                    end
                end
                W_LOOP: begin
                    if (cmd_k == 16'd0 && ((cmd_width == 3'd2 && data_bytes[0])
                            || (cmd_width == 3'd4 && data_bytes[1:0] != 2'd0))) begin
                        nack(`SNN_ERR_BAD_LENGTH);
                    end else if (cmd_k == 16'd0 && (region_size == 0 || region == LINK)) begin
                        nack(region == LINK ? `SNN_ERR_READ_ONLY : `SNN_ERR_BAD_ADDRESS);
                    end else if (cmd_k == 16'd0 && !REGION_WR[region]) begin
                        nack(`SNN_ERR_READ_ONLY);
                    end else if (cmd_k == 16'd0 && cmd_out) begin
                        nack(`SNN_ERR_BAD_ADDRESS);
                    end else if (cmd_k == cmd_count) begin
                        state <= ACK;
                    end else begin
                        fetch;
                    end
                end
                W_DATA: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    cmd_off <= cmd_off + 1'b1;
                    bus;
                end

                // ------------------------------------------------------------ READ
                Q_OFF: begin
                    cmd_off <= fetch_val[OFF_W-1:0];
                    cmd_off_big <= fetch_val[31:OFF_W] != 0;
                    fetch;
                end
                Q_CNT: begin
                    cmd_count <= fv2;
                    fetch;
                end
                Q_WIDTH: begin
                    cmd_width <= fv1[2:0];
                    poll_cnt  <= {PC_W{1'b0}};
                    if (!(fv1 == 8'd1 || fv1 == 8'd2 || fv1 == 8'd4)) begin
                        nack(`SNN_ERR_BAD_WIDTH);
                    end else if (cmd_count == 0
                            || gt_pow2({13'd0, read_bytes(cmd_count, fv1[2:0])}, MAX_PAYLOAD)) begin
                        nack(`SNN_ERR_BAD_LENGTH);
                    end else if (region_size == 0 || cmd_out) begin
                        nack(`SNN_ERR_BAD_ADDRESS);
                    end else begin
                        state <= Q_LOOP;
                    end
                end
                Q_LOOP: begin
                    if (cmd_k == cmd_count) begin
                        state <= ACK;
                    end else if (region == LINK) begin
                        // host_link reads counter cmd_off[1:0] (lnk_rd_link); wait while a
                        // count is in flight
                        if (lnk_idle) state <= Q_LW;
                    end else begin
                        bus;
                    end
                end
                Q_LW: state <= Q_LX;  // the counter RAM samples its address
                Q_LX: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    cmd_off <= cmd_off + 1'b1;
                    fetch_val <= lnk_rdata;
                    store;
                end
                Q_DATA: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    cmd_off <= cmd_off + 1'b1;
                    store;
                end

                // ------------------------------------------------------------ IDENTIFY
                I_ROM: begin  // the table words, then the core's identify words
                    if ({16'd0, cmd_k} == ID_WORDS) begin
                        poll_cnt <= {PC_W{1'b0}};
                        state    <= I_CORE;
                    end else if (lnk_idle) begin
                        state <= I_RW;  // host_link reads table word cmd_k (lnk_rd_ident)
                    end
                end
                I_RW: state <= I_RX;  // the RAM samples its address
                I_RX: begin
                    fetch_val <= lnk_rdata;
                    poll_cnt  <= poll_cnt + 1'b1;
                    store;
                end
                I_CORE: begin
                    if ({16'd0, cmd_k} == REGION_SIZE[31:0]) begin
                        state <= ACK;
                    end else begin
                        poll_cnt <= poll_cnt + 1'b1;
                        bus;
                    end
                end
                I_DATA: store;

                // ------------------------------------------------------------ RESET
                X_POLL: bus;
                X_CHECK: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    if (!st_busy) begin
                        state <= ACK;
                    end else if ({{(32-PC_W){1'b0}}, poll_cnt} == RUN_TIMEOUT) begin
                        nack(`SNN_ERR_RUN_TIMEOUT);
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
                        if (run_rem != 0) nack(`SNN_ERR_BAD_LENGTH);
                        else begin  // the ACK stream starts now, steps follow
                            pay_ptr     <= P2;
                            tx_ptr      <= P0;
                            resp_stream <= 1'b1;
                            run_fin     <= 1'b0;
                            run_active  <= 1'b1;
                            snd_start   <= 1'b1;
                            state       <= U_STEP;
                        end
                    end else if (run_rem[RR_W-1] || run_rem[RR_W-2:1] == 0) begin  // < 2 bytes
                        nack(`SNN_ERR_BAD_LENGTH);
                    end else begin
                        fetch;  // pay_ptr: at this step's count field
                    end
                end
                U_V_NEXT: begin  // past this step's events (pay_ptr used only while <= LEN)
                    run_rem  <= run_rem_next;
                    pay_ptr  <= pay_ptr + {fv2[PTR_W-2:0], 1'b0};
                    poll_cnt <= poll_cnt + 1'b1;
                    state    <= U_V_CNT;
                end
                U_STEP: begin
                    if (run_steps == 16'd0
                            || ROOM_I < 0 || tx_len17 > ROOM) begin
                        state <= U_FINISH;
                    end else begin
                        fetch;
                    end
                end
                U_NIN: begin
                    cmd_count <= fv2;
                    poll_cnt  <= {PC_W{1'b0}};
                    bus;
                end
                U_RUN: bus;
                U_IN: begin
                    if (cmd_k == cmd_count) begin
                        bus;
                        poll_cnt <= {PC_W{1'b0}};
                    end else begin
                        fetch;
                    end
                end
                U_IDX: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    bus;
                end
                U_POLL: bus;
                U_CHECK: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    if (st_done && !st_busy) begin
                        bus;
                    end else if ({{(32-PC_W){1'b0}}, poll_cnt} == RUN_TIMEOUT) begin
                        nack(`SNN_ERR_RUN_TIMEOUT);
                    end else begin
                        state <= U_POLL;
                    end
                end
                U_LEVEL: begin
                    cmd_count <= fetch_val[15:0];
                    poll_cnt  <= {PC_W{1'b0}};
                    if (gt_pow2(fetch_val, MAX_EVENTS)) nack(`SNN_ERR_EVENT_OVERFLOW);
                    else store;
                end
                U_EVENTS: begin
                    if (cmd_k == cmd_count) begin
                        run_steps <= run_steps - 1'b1;
                        state    <= U_STEP;
                    end else begin
                        bus;
                    end
                end
                U_EVENT: begin
                    poll_cnt <= poll_cnt + 1'b1;
                    store;
                end
                U_FINISH: begin  // end-of-stream marker
                    fetch_val <= {16'd0, `SNN_END_OF_STREAM};
                    store;
                end
                N_NACK: begin
                    nack_pulse <= 1'b1;
                    if (run_active) begin  // the stream ends with the abort marker and the code
                        fetch_val <= {12'd0, nack_code, `SNN_ABORT};
                        store;
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
                W_SEND: if (!snd_start && !snd_busy) state <= C_IDLE;
                default: state <= C_IDLE;
            endcase
        end
    end

endmodule

`default_nettype wire
