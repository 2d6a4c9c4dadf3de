// The core: host bus, registers, population / projection tables, FIFOs, the state, weight
// and trace memories, and the step sequencer (snn_seq). Map: docs/hardware.md; its numbers
// (register offsets, table fields, flag bits) come from snn_map.vh.
`default_nettype none
`include "snn_map.vh"

module snn_core #(
    parameter integer N_MAX     = 256,   // neurons incl. inputs
    parameter integer SYN_MAX   = 16384, // weight words
    parameter integer P_MAX     = 8,     // populations
    parameter integer PR_MAX    = 16,    // projections
    parameter integer D_MAX     = 7,     // largest axonal delay in steps
    parameter integer TR_MAX    = 1024,  // STDP trace words
    parameter integer W_BITS    = 8,     // weight width
    parameter integer S_BITS    = 16,    // state width
    parameter integer D_BITS    = 12,    // decay fraction bits
    parameter integer T_BITS    = 8,     // trace width
    parameter integer FRAC      = 6,     // weight / state fraction bits
    parameter integer T_FRAC    = 6,     // trace fraction bits
    parameter integer STDP_FRAC = 8,     // extra fraction bits of the STDP amplitudes
    parameter integer A_BITS    = 24,    // STDP amplitude width
    parameter integer R_BITS    = 8,     // refractory counter width
    parameter integer IN_DEPTH  = 256,   // input FIFO words (power of two)
    parameter integer OUT_DEPTH = 256,   // output FIFO words (power of two)
    parameter integer ADDR_W    = 24,    // host word-address width
    parameter integer DELAYED_RESET = 0, // 1: the delayed reset's C1, C2 fields (D_MAX >= 2;
                                         // FEATURES bit delayed_reset, docs/hardware.md)
    parameter         W_INIT    = "",    // $readmemh image of the weights (baked-in network)
    parameter         POP_INIT  = "",    // ... of the population table
    parameter         PROJ_INIT = "",    // ... of the projection table
    parameter         REGS_INIT = "",    // ... of {N_POP, N_PROJ}
    parameter         B_INIT    = ""     // ... of the per-neuron biases
) (
    input  wire              clk,         // core clock
    input  wire              rst,         // synchronous reset, active high
    input  wire              host_req,    // bus request (one word)
    input  wire              host_we,     // 1: write host_wdata, 0: read
    input  wire [ADDR_W-1:0] host_addr,   // word address (docs/hardware.md)
    input  wire [31:0]       host_wdata,  // write data
    output wire              host_ready,  // request accepted when host_req && host_ready
    output reg               host_rvalid, // read data valid, 2 cycles after acceptance
    output reg  [31:0]       host_rdata,  // read data
    output wire              busy,        // running steps or the reset pass
    output wire              out_valid    // output FIFO not empty
);

    // ------------------------------------------------------------------ derived sizes
    localparam integer N_AW   = (N_MAX > 2) ? $clog2(N_MAX) : 1;
    localparam integer SYN_AW = (SYN_MAX > 2) ? $clog2(SYN_MAX) : 1;
    localparam integer TR_AW  = (TR_MAX > 2) ? $clog2(TR_MAX) : 1;
    localparam integer PP_W   = (P_MAX > 2) ? $clog2(P_MAX) : 1;
    localparam integer PR_W   = (PR_MAX > 2) ? $clog2(PR_MAX) : 1;
    localparam integer IN_AW  = $clog2(IN_DEPTH);
    localparam integer OUT_AW = $clog2(OUT_DEPTH);
    // never overflows: the weights of every event, plus (DELAYED_RESET) C1 and C2
    localparam integer ACC_W0 = W_BITS + N_AW + PR_W;
    localparam integer ACC_W  = (DELAYED_RESET == 0) ? ACC_W0 + 2
                                : ((ACC_W0 > S_BITS + 1) ? ACC_W0 : S_BITS + 1) + 2;
    localparam integer SL_W   = (D_MAX + 1 > 2) ? $clog2(D_MAX + 1) : 1;
    localparam integer PT_W   = (PP_W > PR_W) ? PP_W : PR_W;  // table entry index width
    // sized copies of the map's numbers where a width matters (concatenations, indices)
    localparam [4:0]   RG_STEPS = `SNN_REG_STEPS;       // rg_mem word of STEPS
    // rg_mem words of the counters: RG_CT + i, i = 0 .. 3 (RG_CT is a multiple of 4)
    localparam [4:0]   RG_CT = `SNN_REG_STEP_COUNT, RG_CYC_LO = `SNN_REG_CYCLES_LO;
    localparam [4:0]   RG_CYC_HI = `SNN_REG_CYCLES_HI;
    localparam [1:0]   CT_STEP = RG_CT[1:0], CT_CYC_LO = RG_CYC_LO[1:0];
    localparam [1:0]   CT_CYC_HI = RG_CYC_HI[1:0];
    localparam [15:0]  POP_SIGNED  = `SNN_POP_SIGNED;   // bit f: field f is signed
    localparam [15:0]  PROJ_SIGNED = `SNN_PROJ_SIGNED;

    // ------------------------------------------------------------------ registers
    reg  [31:0]   regs_init [0:1];
    reg  [PP_W:0] n_pop;
    reg  [PR_W:0] n_proj;
    wire [31:0]   run_steps;  // STEPS, read from rg_mem with the CTRL write (below)
    reg           learn;
    reg           done_flag;
    reg           in_err_flag;

    initial begin
        regs_init[0] = 32'd0; regs_init[1] = 32'd0;
        if (REGS_INIT != "") $readmemh(REGS_INIT, regs_init);
    end

    // ------------------------------------------------------------------ sequencer
    wire                seq_busy, seq_stepping, seq_done, seq_in_err, seq_waiting, seq_syn_event;
    wire [14:0]         step_count;
    wire [31:0]         steps_left;
    wire                seq_step_wrap;
    wire                in_pop, in_empty, in_full, out_push, out_full, out_empty;
    wire [31:0]         in_data, out_data, out_dout;
    wire [IN_AW:0]      in_level;
    wire [OUT_AW:0]     out_level;
    wire                s_st_re, s_st_we, s_w_re, s_w_we, s_tr_re, s_tr_we;
    wire [N_AW-1:0]     s_st_raddr, s_st_waddr;
    wire [S_BITS-1:0]   s_st_wv, s_st_wi, s_st_wth;
    wire [R_BITS-1:0]   s_st_wref;
    wire [SYN_AW-1:0]   s_w_raddr, s_w_waddr;
    wire [W_BITS:0]     s_w_wdata;
    wire [TR_AW-1:0]    s_tr_raddr, s_tr_waddr;
    wire [2*T_BITS-1:0] s_tr_wdata;
    wire [S_BITS-1:0]   st_rv, st_ri, st_rth;
    wire [S_BITS-1:0]   nb_rdata;  // the bias of the neuron read with the state
    wire [R_BITS-1:0]   st_rref;
    wire [W_BITS:0]     w_rdata;
    wire [2*T_BITS-1:0] tr_rdata;
    wire                s_tab_re, s_tab_proj, s_wb_re;
    wire [PR_W-1:0]     s_wb_entry;
    wire [PT_W-1:0]     s_tab_entry;
    wire [3:0]          s_tab_field;
    reg                 cmd_run, cmd_clear;
    wire                acc_rd, acc_wr;  // host read / write accepted this cycle
    wire                w_touched;       // a weight or projection write (STDP: dense pass)

    // ------------------------------------------------------------------ tables
    // Each table is a 32-bit block RAM (TABLE_STRIDE = 16 words per entry: the field is the
    // low 4 bits of an entry's word index); a host write stores the field
    // cut to its real width and sign- or zero-extended (docs/hardware.md), so what the
    // sequencer loads and the host reads back is the field's value. The sequencer reads the
    // parameters of the population / projection it works on from the RAM (into registers or
    // just before each use, V_INIT in the clear pass); the few fields it needs for every
    // population or projection at once (geometry, flags) are also kept in flip-flops,
    // written through on a host write.
    localparam integer T_CW = N_AW + 1;
    localparam integer T_DW = D_BITS + 1;
    wire [PP_W+3:0]  pop_i;
    wire [PR_W+3:0]  prj_i;
    wire             tab_pop_we, tab_proj_we;
    wire [31:0]      pop_rdata, proj_rdata;

    // verilator lint_off UNUSEDSIGNAL
    function integer pop_fw;  // width of population field f
        input integer f;
        reg [3:0] g;
        begin
            g = f[3:0];
            case (g)
                `SNN_POP_OFFSET, `SNN_POP_SIZE:                    pop_fw = T_CW;
                `SNN_POP_FLAGS:                                    pop_fw = 3;
                `SNN_POP_REFRACTORY:                               pop_fw = R_BITS;
                `SNN_POP_ALPHA, `SNN_POP_BETA, `SNN_POP_ADAPT_DECAY: pop_fw = T_DW;
                `SNN_POP_C1, `SNN_POP_C2:  pop_fw = (DELAYED_RESET != 0) ? S_BITS : 0;
                `SNN_POP_THRESHOLD, `SNN_POP_V_RESET, `SNN_POP_V_INIT,
                `SNN_POP_ADAPT_PLUS:                               pop_fw = S_BITS;
                `SNN_POP_PROJ_FIRST, `SNN_POP_PROJ_COUNT:          pop_fw = PR_W + 1;
                default:                                           pop_fw = 0;
            endcase
        end
    endfunction

    function integer proj_fw;  // width of projection field f
        input integer f;
        reg [3:0] g;
        begin
            g = f[3:0];
            case (g)
                `SNN_PROJ_SRC, `SNN_PROJ_TGT:                proj_fw = PP_W;
                `SNN_PROJ_DELAY:                             proj_fw = SL_W + 1;
                `SNN_PROJ_W_BASE:                            proj_fw = SYN_AW;
                `SNN_PROJ_FLAGS:                             proj_fw = 3;
                `SNN_PROJ_A_PLUS, `SNN_PROJ_A_MINUS:         proj_fw = A_BITS;
                `SNN_PROJ_PRE_DECAY, `SNN_PROJ_POST_DECAY:   proj_fw = T_DW;
                `SNN_PROJ_W_MIN, `SNN_PROJ_W_MAX:            proj_fw = W_BITS;
                `SNN_PROJ_TR_BASE:                           proj_fw = TR_AW;
                default:                                     proj_fw = 0;
            endcase
        end
    endfunction
    // verilator lint_on UNUSEDSIGNAL

    // the host word as a table field stores it: cut to the field's width, extended
    wire [31:0] pop_din, proj_din;
    wire [16*32-1:0] pop_norm, proj_norm;
    genvar gf;
    generate
        for (gf = 0; gf < 16; gf = gf + 1) begin : g_norm
            localparam integer PW = pop_fw(gf), RW = proj_fw(gf);
            localparam integer PS = POP_SIGNED[gf] ? 1 : 0;
            localparam integer RS = PROJ_SIGNED[gf] ? 1 : 0;
            if (PW == 0) begin : g_p0
                assign pop_norm[gf*32 +: 32] = 32'd0;
            end else if (PW >= 32) begin : g_pw
                assign pop_norm[gf*32 +: 32] = host_wdata;
            end else begin : g_pn
                assign pop_norm[gf*32 +: 32] = {{(32-PW){PS != 0 && host_wdata[PW-1]}},
                                                host_wdata[PW-1:0]};
            end
            if (RW == 0) begin : g_r0
                assign proj_norm[gf*32 +: 32] = 32'd0;
            end else if (RW >= 32) begin : g_rw
                assign proj_norm[gf*32 +: 32] = host_wdata;
            end else begin : g_rn
                assign proj_norm[gf*32 +: 32] = {{(32-RW){RS != 0 && host_wdata[RW-1]}},
                                                 host_wdata[RW-1:0]};
            end
        end
    endgenerate
    assign pop_din  = pop_norm[pop_i[3:0] * 32 +: 32];
    assign proj_din = proj_norm[prj_i[3:0] * 32 +: 32];

    snn_ram #(.DATA_W(32), .DEPTH(16 * P_MAX), .ADDR_W(PP_W + 4), .INIT_FILE(POP_INIT)) u_pop_tab (
        .clk(clk), .we(tab_pop_we), .waddr(pop_i), .wdata(pop_din),
        .re(seq_busy ? (s_tab_re && !s_tab_proj) : acc_rd),
        .raddr(seq_busy ? {s_tab_entry[PP_W-1:0], s_tab_field} : pop_i), .rdata(pop_rdata));
    snn_ram #(.DATA_W(32), .DEPTH(16 * PR_MAX), .ADDR_W(PR_W + 4), .INIT_FILE(PROJ_INIT)) u_proj_tab (
        .clk(clk), .we(tab_proj_we), .waddr(prj_i), .wdata(proj_din),
        .re(seq_busy ? ((s_tab_re && s_tab_proj) || s_wb_re) : acc_rd),
        .raddr(seq_busy ? (s_wb_re ? {s_wb_entry, `SNN_PROJ_W_BASE} : {s_tab_entry[PR_W-1:0], s_tab_field})
                        : prj_i), .rdata(proj_rdata));

    // flip-flop copies of the fields used for every entry
    reg [T_CW-1:0]   c_off    [0:P_MAX-1];
    reg [T_CW-1:0]   c_size   [0:P_MAX-1];
    reg [2:0]        c_flags  [0:P_MAX-1];
    reg [PP_W-1:0]   c_src    [0:PR_MAX-1];
    reg [PP_W-1:0]   c_tgt    [0:PR_MAX-1];
    reg [SL_W:0]     c_delay  [0:PR_MAX-1];
    reg [2:0]        c_rflags [0:PR_MAX-1];
    wire [PP_W-1:0]  pw_e = pop_i[PP_W+3:4];
    wire [PR_W-1:0]  rw_e = prj_i[PR_W+3:4];

    always @(posedge clk) begin
        if (tab_pop_we)
            case (pop_i[3:0])
                `SNN_POP_OFFSET: c_off[pw_e]   <= host_wdata[T_CW-1:0];
                `SNN_POP_SIZE:   c_size[pw_e]  <= host_wdata[T_CW-1:0];
                `SNN_POP_FLAGS:  c_flags[pw_e] <= host_wdata[2:0];
                default: ;
            endcase
        if (tab_proj_we)
            case (prj_i[3:0])
                `SNN_PROJ_SRC:   c_src[rw_e]    <= host_wdata[PP_W-1:0];
                `SNN_PROJ_TGT:   c_tgt[rw_e]    <= host_wdata[PP_W-1:0];
                `SNN_PROJ_DELAY: c_delay[rw_e]  <= host_wdata[SL_W:0];
                `SNN_PROJ_FLAGS: c_rflags[rw_e] <= host_wdata[2:0];
                default: ;
            endcase
    end

    // the copies as flat vectors for the sequencer
    wire [P_MAX*T_CW-1:0]     pc_off, pc_size;
    wire [P_MAX*3-1:0]        pc_flags;
    wire [PR_MAX*PP_W-1:0]    rc_src, rc_tgt;
    wire [PR_MAX*(SL_W+1)-1:0] rc_delay;
    wire [PR_MAX*3-1:0]       rc_flags;
    genvar gc;
    generate
        for (gc = 0; gc < P_MAX; gc = gc + 1) begin : g_pc
            assign pc_off[gc*T_CW +: T_CW]             = c_off[gc];
            assign pc_size[gc*T_CW +: T_CW]            = c_size[gc];
            assign pc_flags[gc*3 +: 3]                 = c_flags[gc];
        end
        for (gc = 0; gc < PR_MAX; gc = gc + 1) begin : g_rc
            assign rc_src[gc*PP_W +: PP_W]             = c_src[gc];
            assign rc_tgt[gc*PP_W +: PP_W]             = c_tgt[gc];
            assign rc_delay[gc*(SL_W+1) +: SL_W+1]     = c_delay[gc];
            assign rc_flags[gc*3 +: 3]                 = c_rflags[gc];
        end
    endgenerate

    // baked-in tables: the images hold 16 words per entry, each field in a word's low bits
    // (the RAMs load them as INIT_FILE; the copies here)
    generate
        if (POP_INIT != "" || PROJ_INIT != "") begin : g_bake
            reg [31:0] pop_img  [0:16*P_MAX-1];
            reg [31:0] proj_img [0:16*PR_MAX-1];
            integer q;
            initial begin
                for (q = 0; q < 16 * P_MAX; q = q + 1) pop_img[q] = 32'd0;
                for (q = 0; q < 16 * PR_MAX; q = q + 1) proj_img[q] = 32'd0;
                if (POP_INIT != "") $readmemh(POP_INIT, pop_img);
                if (PROJ_INIT != "") $readmemh(PROJ_INIT, proj_img);
                for (q = 0; q < P_MAX; q = q + 1) begin
                    c_off[q]    = pop_img[16 * q + `SNN_POP_OFFSET][T_CW-1:0];
                    c_size[q]   = pop_img[16 * q + `SNN_POP_SIZE][T_CW-1:0];
                    c_flags[q]  = pop_img[16 * q + `SNN_POP_FLAGS][2:0];
                end
                for (q = 0; q < PR_MAX; q = q + 1) begin
                    c_src[q]    = proj_img[16 * q + `SNN_PROJ_SRC][PP_W-1:0];
                    c_tgt[q]    = proj_img[16 * q + `SNN_PROJ_TGT][PP_W-1:0];
                    c_delay[q]  = proj_img[16 * q + `SNN_PROJ_DELAY][SL_W:0];
                    c_rflags[q] = proj_img[16 * q + `SNN_PROJ_FLAGS][2:0];
                end
            end
        end
    endgenerate

    // the population of an input index: the sequencer's map (built from the tables after a
    // geometry write: OFFSET, SIZE or N_POP)
    wire geo_touched = (tab_pop_we && (pop_i[3:0] == `SNN_POP_OFFSET
                                       || pop_i[3:0] == `SNN_POP_SIZE))
                       || (acc_wr && is_reg && offset == `SNN_REG_N_POP);

    snn_seq #(.N_MAX(N_MAX), .P_MAX(P_MAX), .PR_MAX(PR_MAX), .D_MAX(D_MAX),
              .TR_MAX(TR_MAX), .W_BITS(W_BITS), .S_BITS(S_BITS), .D_BITS(D_BITS),
              .T_BITS(T_BITS), .FRAC(FRAC), .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC),
              .A_BITS(A_BITS), .R_BITS(R_BITS), .ACC_W(ACC_W), .N_AW(N_AW), .SYN_AW(SYN_AW),
              .TR_AW(TR_AW), .PP_W(PP_W), .PR_W(PR_W), .PT_W(PT_W),
              .DELAYED_RESET(DELAYED_RESET)) u_seq (
        .clk(clk), .rst(rst), .cmd_run(cmd_run), .cmd_clear(cmd_clear), .run_steps(run_steps),
        .learn(learn), .w_touched(w_touched), .n_pop(n_pop), .n_proj(n_proj),
        .pc_off(pc_off), .pc_size(pc_size), .pc_flags(pc_flags),
        .rc_src(rc_src), .rc_tgt(rc_tgt),
        .rc_delay(rc_delay), .rc_flags(rc_flags),
        .tab_re(s_tab_re), .tab_proj(s_tab_proj), .tab_entry(s_tab_entry),
        .wb_re(s_wb_re), .wb_entry(s_wb_entry),
        .tab_field(s_tab_field), .tab_pop_rdata(pop_rdata), .tab_proj_rdata(proj_rdata),
        .geo_touched(geo_touched),
        .in_empty(in_empty), .in_data(in_data), .in_pop(in_pop),
        .out_room(out_room), .out_push(out_push), .out_data(out_data),
        .busy(seq_busy), .stepping(seq_stepping), .done(seq_done), .in_err(seq_in_err), .waiting(seq_waiting),
        .syn_event(seq_syn_event), .step_count(step_count), .step_wrap(seq_step_wrap),
        .steps_left(steps_left),
        .st_re(s_st_re), .st_raddr(s_st_raddr), .st_rv(st_rv), .st_ri(st_ri),
        .st_rref(st_rref), .st_rth(st_rth), .st_rbias(nb_rdata),
        .st_we(s_st_we), .st_waddr(s_st_waddr),
        .st_wv(s_st_wv), .st_wi(s_st_wi), .st_wref(s_st_wref), .st_wth(s_st_wth),
        .w_re(s_w_re), .w_raddr(s_w_raddr), .w_rdata(w_rdata), .w_we(s_w_we),
        .w_waddr(s_w_waddr), .w_wdata(s_w_wdata),
        .tr_re(s_tr_re), .tr_raddr(s_tr_raddr), .tr_rdata(tr_rdata), .tr_we(s_tr_we),
        .tr_waddr(s_tr_waddr), .tr_wdata(s_tr_wdata));

    assign busy      = seq_busy;
    // out_level <= OUT_DEPTH - 4 = 0b0 1..1 00: a test of the bits (no adder, no comparator)
    wire   out_room  = (OUT_AW < 3) ? ({{(31-OUT_AW){1'b0}}, out_level} + 32'd4 <= OUT_DEPTH)
                     : (!out_level[OUT_AW] && (out_level[OUT_AW-1:0] >> 2 != {OUT_AW{1'b1}} >> 2
                                               || out_level[1:0] == 2'd0));
    assign out_valid = !out_empty;

    // ------------------------------------------------------------------ host decode
    wire [3:0]  region   = host_addr[ADDR_W-1:ADDR_W-4];
    wire [19:0] offset   = host_addr[19:0];
    wire [31:0] off32    = {12'd0, offset};
    // table ranges: a test of the high offset bits when the range is a power of two aligned
    // to it (no comparator carry chains), else two comparisons
    localparam [31:0]  POP_B = `SNN_POP_TABLE, PRJ_B = `SNN_PROJ_TABLE;
    localparam integer POP_S = `SNN_TABLE_STRIDE * P_MAX, PRJ_S = `SNN_TABLE_STRIDE * PR_MAX;
    localparam integer POP_L = $clog2(POP_S), PRJ_L = $clog2(PRJ_S);
    localparam         POP_AL = (POP_S == (1 << POP_L)) && (POP_B % POP_S == 0);
    localparam         PRJ_AL = (PRJ_S == (1 << PRJ_L)) && (PRJ_B % PRJ_S == 0);
    wire        in_pop_c = POP_AL ? ((off32 >> POP_L) == (POP_B >> POP_L))
                                  : ((off32 >= POP_B) && (off32 < POP_B + POP_S));
    wire        in_prj_c = PRJ_AL ? ((off32 >> PRJ_L) == (PRJ_B >> PRJ_L))
                                  : ((off32 >= PRJ_B) && (off32 < PRJ_B + PRJ_S));
    wire [31:0] pop_i32  = off32 - POP_B;
    wire [31:0] prj_i32  = off32 - PRJ_B;
    assign pop_i = pop_i32[PP_W+3:0];
    assign prj_i = prj_i32[PR_W+3:0];
    wire        is_reg_c = (region == `SNN_REGION_REGS);
    wire        reg_lo   = offset[19:6] == 14'd0;  // offsets 0x000 .. 0x03F: the registers

    // The address is decoded into registers (no decoder in front of host_ready and what it
    // enables): a request is accepted at the earliest in its second cycle (hq), when the flags
    // are those of its address (the host holds the address until the request is accepted).
    reg         hq;        // a request was pending (not accepted) in the last cycle
    reg         is_reg, is_table, a_ctrl, a_infifo, a_outpop, in_pop_t, in_prj_t;
    reg         rg_acc, rg_wa, rg_rd;
    reg  [4:1]  mem_sel;   // region 1, 2, 3, 4: state, weights, traces, biases
    always @(posedge clk) begin
        hq       <= host_req && !(acc_rd || acc_wr) && !rst;
        is_reg   <= is_reg_c;
        is_table <= is_reg_c && (offset[19:8] != 12'd0);  // offset >= POP_TABLE (0x100)
        a_ctrl   <= is_reg_c && (offset == `SNN_REG_CTRL);
        a_infifo <= is_reg_c && (offset == `SNN_REG_IN_FIFO);
        a_outpop <= is_reg_c && (offset == `SNN_REG_OUT_FIFO);
        in_pop_t <= is_reg_c && in_pop_c;
        in_prj_t <= is_reg_c && in_prj_c;
        rg_acc   <= is_reg_c && reg_lo && !offset[5];  // 0x000 .. 0x01F: rg_mem's words
        rg_wa    <= is_reg_c && reg_lo && offset[5:0] == {1'b0, RG_STEPS};
        // rg_mem's words with contents: the identify words (0x000 .. 0x00F), STEPS and the
        // counters' high bits
        rg_rd    <= is_reg_c && reg_lo && (offset[5:4] == 2'b00 || offset[5:0] == {1'b0, RG_STEPS}
                                           || offset[5:2] == {1'b0, RG_CT[4:2]});
        mem_sel  <= {region == `SNN_REGION_BIAS, region == `SNN_REGION_TRACE,
                     region == `SNN_REGION_WEIGHT, region == `SNN_REGION_STATE};
    end

    // memories and tables wait for idle; input pushes wait for room; CTRL waits for idle
    assign host_ready = hq && !(seq_busy && (|mem_sel || is_table || (host_we && a_ctrl)))
                        && !(host_we && a_infifo && in_full) && !(ct_busy && rg_acc);
    assign acc_rd = host_req && host_ready && !host_we;
    assign acc_wr = host_req && host_ready && host_we;

    // host ports of the shared memories (used only while idle)
    wire [N_AW-1:0]   h_nidx  = offset[N_AW+1:2];
    wire [1:0]        h_nfld  = offset[1:0];
    // (a memory region's or a table's access is ready exactly when the sequencer is idle:
    // written out here, so their write enables do not wait for host_ready's other terms,
    // which concern other addresses)
    wire              h_mem_wr = host_req && hq && host_we && !seq_busy;
    assign tab_pop_we  = h_mem_wr && in_pop_t;
    assign tab_proj_we = h_mem_wr && in_prj_t;
    wire              h_st_wr = h_mem_wr && mem_sel[1];
    wire              h_w_wr  = h_mem_wr && mem_sel[2];
    assign w_touched = h_w_wr || tab_proj_we;
    wire              h_tr_wr = h_mem_wr && mem_sel[3];
    wire              h_nb_wr = h_mem_wr && mem_sel[4];

    wire [N_AW-1:0]   st_raddr = seq_busy ? s_st_raddr : h_nidx;
    wire              st_re    = seq_busy ? s_st_re : acc_rd;
    wire [N_AW-1:0]   st_waddr = seq_busy ? s_st_waddr : h_nidx;
    wire [S_BITS-1:0] h_ws     = host_wdata[S_BITS-1:0];

    snn_ram #(.DATA_W(S_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_v (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == `SNN_STATE_V)), .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wv : h_ws), .re(st_re), .raddr(st_raddr), .rdata(st_rv));
    snn_ram #(.DATA_W(S_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_i (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == `SNN_STATE_I)), .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wi : h_ws), .re(st_re), .raddr(st_raddr), .rdata(st_ri));
    snn_ram #(.DATA_W(R_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_refrac (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == `SNN_STATE_REFRACTORY)),
        .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wref : host_wdata[R_BITS-1:0]), .re(st_re), .raddr(st_raddr),
        .rdata(st_rref));
    snn_ram #(.DATA_W(S_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_theta (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == `SNN_STATE_THETA)),
        .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wth : h_ws), .re(st_re), .raddr(st_raddr), .rdata(st_rth));
    // the per-neuron biases: written by the host (word g of region BIAS), read by the
    // sequencer with the neuron's state (the same address and enable)
    snn_ram #(.DATA_W(S_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW), .INIT_FILE(B_INIT)) u_bias (
        .clk(clk), .we(h_nb_wr), .waddr(offset[N_AW-1:0]), .wdata(h_ws), .re(st_re),
        .raddr(seq_busy ? s_st_raddr : offset[N_AW-1:0]), .rdata(nb_rdata));
    snn_ram #(.DATA_W(W_BITS + 1), .DEPTH(SYN_MAX), .ADDR_W(SYN_AW), .INIT_FILE(W_INIT)) u_weights (
        .clk(clk), .we(seq_busy ? s_w_we : h_w_wr),
        .waddr(seq_busy ? s_w_waddr : offset[SYN_AW-1:0]),
        .wdata(seq_busy ? s_w_wdata : {host_wdata[`SNN_PLASTIC_BIT], host_wdata[W_BITS-1:0]}),
        .re(seq_busy ? s_w_re : acc_rd), .raddr(seq_busy ? s_w_raddr : offset[SYN_AW-1:0]),
        .rdata(w_rdata));
    snn_ram #(.DATA_W(2 * T_BITS), .DEPTH(TR_MAX), .ADDR_W(TR_AW)) u_traces (
        .clk(clk), .we(seq_busy ? s_tr_we : h_tr_wr),
        .waddr(seq_busy ? s_tr_waddr : offset[TR_AW-1:0]),
        .wdata(seq_busy ? s_tr_wdata : {{T_BITS{1'b0}}, host_wdata[T_BITS-1:0]}),
        .re(seq_busy ? s_tr_re : acc_rd), .raddr(seq_busy ? s_tr_raddr : offset[TR_AW-1:0]),
        .rdata(tr_rdata));

    snn_fifo #(.DATA_W(32), .DEPTH(IN_DEPTH), .ADDR_W(IN_AW)) u_in_fifo (
        .clk(clk), .rst(rst), .push(acc_wr && a_infifo), .din(host_wdata), .pop(in_pop),
        .dout(in_data), .empty(in_empty), .full(in_full), .level(in_level));
    snn_fifo #(.DATA_W(32), .DEPTH(OUT_DEPTH), .ADDR_W(OUT_AW)) u_out_fifo (
        .clk(clk), .rst(rst), .push(out_push), .din(out_data), .pop(acc_rd && a_outpop),
        .dout(out_dout), .empty(out_empty), .full(out_full), .level(out_level));

    // ------------------------------------------------------------------ register writes
    always @(posedge clk) begin
        cmd_run <= 1'b0; cmd_clear <= 1'b0;
        if (rst) begin
            n_pop <= regs_init[0][PP_W:0]; n_proj <= regs_init[1][PR_W:0];
            learn <= 1'b1; done_flag <= 1'b0; in_err_flag <= 1'b0;
        end else begin
            if (seq_done) done_flag <= 1'b1;
            if (seq_in_err) in_err_flag <= 1'b1;
            if (acc_wr && is_reg) begin
                case (offset)
                    `SNN_REG_CTRL: begin
                        if (host_wdata[`SNN_CTRL_RUN_BIT]) begin
                            cmd_run <= 1'b1; done_flag <= 1'b0;
                        end
                        if (host_wdata[`SNN_CTRL_RESET_STATE_BIT]) begin
                            cmd_clear <= 1'b1; in_err_flag <= 1'b0;
                        end
                    end
                    `SNN_REG_LEARN:  learn <= host_wdata[0];
                    `SNN_REG_N_POP:  n_pop <= host_wdata[PP_W:0];
                    `SNN_REG_N_PROJ: n_proj <= host_wdata[PR_W:0];
                    default: ;
                endcase
            end
        end
    end

    // ------------------------------------------------------------------ reads (2 cycles)
    reg        rd1_valid;
    reg        rd1_pop, rd1_prj;  // a table read: the RAM's word, not rd1_reg
    reg        rd1_rg;            // a read of rg_mem
    reg [3:0]  rd1_region;
    reg [1:0]  rd1_field;
    reg [31:0] rd1_reg;

    function automatic [31:0] sx_s;  // sign-extend a state word
        input [S_BITS-1:0] x;
        begin
            sx_s = {{(32-S_BITS){x[S_BITS-1]}}, x};
        end
    endfunction

    // The identify words (0x000 .. 0x00F: constants, the initial contents), STEPS and
    // the counters' high bits (below) are kept in a block RAM, not in flip-flops and
    // multiplexers: read like the tables (the RAM's read register is the first read stage);
    // the CTRL write reads STEPS for the run (run_steps is valid with cmd_run). STEPS is 0 at
    // configuration and keeps its value over a reset.
    //
    // CYCLES (64 bits) and SYN_EVENTS count in 8-bit flip-flop prescalers, STEP_COUNT in
    // the sequencer's 15 bits (they go into the output words); the higher bits are the
    // counter words RG_CT + i of the RAM: STEP_COUNT[31:15], CYCLES_LO[31:8], CYCLES_HI and
    // SYN_EVENTS[31:8] (their low bits stay 0: a read ORs the flip-flops in).
    // A prescaler's wrap (at most once per 256 cycles) is carried in by one read-modify-write
    // adder (2 cycles); a reset or RESET_STATE zeroes the four words (4 cycles). Host
    // accesses to offsets 0x000 .. 0x01F wait while a carry or the clear pass is in flight,
    // so a read sees consistent words.
    (* ram_style = "block", no_rw_check *) reg [31:0] rg_mem [0:31];
    reg  [31:0] rg_rdata;
    reg  [7:0]  cyc_lo, syn_lo;
    reg  [3:0]  ct_pend;  // carries waiting into word RG_CT + i (bit i)
    reg         ct_ph;    // a word was read: write it back with its carry
    reg  [1:0]  ct_w;     // that word: RG_CT + ct_w
    reg  [2:0]  ct_clr;   // clear pass: words left to zero (4, 3, 2, 1: RG_CT + 0, 3, 2, 1)
    wire        ct_busy = ct_pend != 4'd0 || ct_ph || ct_clr != 3'd0;
    wire [1:0]  ct_next = ct_pend[0] ? 2'd0 : (ct_pend[1] ? 2'd1 : (ct_pend[2] ? 2'd2 : 2'd3));
    wire        ct_rd   = ct_pend != 4'd0 && !ct_ph && ct_clr == 3'd0;
    wire [32:0] ct_sum  = {1'b0, rg_rdata} + ((ct_w == CT_CYC_HI) ? 33'd1
                                              : ((ct_w == CT_STEP) ? 33'h8000 : 33'd256));
    wire        rg_we   = acc_wr && rg_wa;
    wire        ct_clear = acc_wr && a_ctrl && host_wdata[1];
    integer     rq;
    initial begin
        for (rq = 0; rq < 32; rq = rq + 1) rg_mem[rq] = 32'd0;
        rg_mem[`SNN_REG_ID]       = `SNN_MAGIC;
        rg_mem[`SNN_REG_VERSION]  = `SNN_CORE_VERSION;
        rg_mem[`SNN_REG_N_MAX]    = N_MAX;
        rg_mem[`SNN_REG_SYN_MAX]  = SYN_MAX;
        rg_mem[`SNN_REG_SIZES]    = {P_MAX[7:0], PR_MAX[7:0], D_MAX[7:0], 8'd1};  // 1 lane
        rg_mem[`SNN_REG_WIDTHS]   = {W_BITS[7:0], S_BITS[7:0], D_BITS[7:0], T_BITS[7:0]};
        rg_mem[`SNN_REG_FRACS]    = {FRAC[7:0], T_FRAC[7:0], STDP_FRAC[7:0], A_BITS[7:0]};
        rg_mem[`SNN_REG_FEATURES] = `SNN_FEATURES
                                    | ((DELAYED_RESET != 0) ? `SNN_FEATURE_DELAYED_RESET : 32'd0);
        rg_mem[`SNN_REG_TR_MAX]   = TR_MAX;
        rg_mem[`SNN_REG_FIFOS]    = {IN_DEPTH[15:0], OUT_DEPTH[15:0]};
        rg_mem[`SNN_REG_R_BITS]   = R_BITS;
        rg_rdata   = 32'd0;
    end
    always @(posedge clk) begin
        if (ct_clr != 3'd0 || ct_ph || rg_we)
            rg_mem[(ct_clr != 3'd0) ? {RG_CT[4:2], ct_clr[1:0]}
                                    : (ct_ph ? {RG_CT[4:2], ct_w} : offset[4:0])]
                <= (ct_clr != 3'd0) ? 32'd0 : (ct_ph ? ct_sum[31:0] : host_wdata);
        if (ct_rd || acc_rd || acc_wr)
            rg_rdata <= rg_mem[ct_rd ? {RG_CT[4:2], ct_next} : (host_we ? RG_STEPS : offset[4:0])];
        if (rst || ct_clear) begin
            cyc_lo <= 8'd0; syn_lo <= 8'd0; ct_pend <= 4'd0; ct_ph <= 1'b0; ct_clr <= 3'd4;
        end else begin
            if (seq_stepping) cyc_lo <= cyc_lo + 8'd1;
            if (seq_syn_event) syn_lo <= syn_lo + 8'd1;
            // bit i: word RG_CT + i (STEP_COUNT, CYCLES_LO, CYCLES_HI, SYN_EVENTS)
            ct_pend <= ct_pend | {seq_syn_event && syn_lo == 8'hFF, 1'b0,
                                  seq_stepping && cyc_lo == 8'hFF, seq_step_wrap};
            if (ct_clr != 3'd0) begin
                ct_clr <= ct_clr - 3'd1;
            end else if (ct_ph) begin
                ct_ph <= 1'b0;
                ct_pend[ct_w] <= 1'b0;
                if (ct_w == CT_CYC_LO && ct_sum[32]) ct_pend[CT_CYC_HI] <= 1'b1;
            end else if (ct_rd) begin
                ct_ph <= 1'b1; ct_w <= ct_next;
            end
        end
    end
    assign run_steps = rg_rdata;

    // the other registers: offsets 0x000 .. 0x03F, decoded on the low 6 bits once the others are
    // tested zero (reg_lo: one test, not one per register)
    reg [31:0] rd1_reg_c;
    reg [31:0] status;
    always @* begin
        status = 32'd0;
        status[`SNN_STATUS_BUSY_BIT]        = seq_busy;
        status[`SNN_STATUS_DONE_BIT]        = done_flag;
        status[`SNN_STATUS_INPUT_ERROR_BIT] = in_err_flag;
        status[`SNN_STATUS_WAITING_BIT]     = seq_waiting;
        status[`SNN_STATUS_OUT_FULL_BIT]    = out_full;
        rd1_reg_c = 32'd0;
        if (reg_lo) case (offset[5:0])
            `SNN_REG_LEARN:      rd1_reg_c = {31'd0, learn};
            `SNN_REG_STATUS:     rd1_reg_c = status;
            `SNN_REG_STEP_COUNT: rd1_reg_c = {17'd0, step_count};  // | rg_mem's word (bits
                                                                    // 14:0 are 0)
            `SNN_REG_CYCLES_LO:  rd1_reg_c = {24'd0, cyc_lo};  // | rg_mem's word (low byte 0)
            `SNN_REG_SYN_EVENTS: rd1_reg_c = {24'd0, syn_lo};
            `SNN_REG_STEPS_LEFT: rd1_reg_c = steps_left;
            `SNN_REG_N_POP:      rd1_reg_c = {{(31-PP_W){1'b0}}, n_pop};
            `SNN_REG_N_PROJ:     rd1_reg_c = {{(31-PR_W){1'b0}}, n_proj};
            `SNN_REG_IN_LEVEL:   rd1_reg_c = {{(31-IN_AW){1'b0}}, in_level};
            `SNN_REG_OUT_FIFO:   rd1_reg_c = out_empty ? 32'd0 : out_dout;
            `SNN_REG_OUT_LEVEL:  rd1_reg_c = {{(31-OUT_AW){1'b0}}, out_level};
            default: ;
        endcase
    end

    always @(posedge clk) begin
        if (rst) begin
            rd1_valid <= 1'b0; host_rvalid <= 1'b0; host_rdata <= 32'd0;
        end else begin
            rd1_valid <= acc_rd;
            rd1_region <= region;
            rd1_pop    <= in_pop_t;
            rd1_prj    <= in_prj_t;
            rd1_rg     <= rg_rd;
            rd1_field  <= offset[1:0];
            rd1_reg   <= rd1_reg_c;
            host_rvalid <= rd1_valid;
            if (rd1_valid) begin
                case (rd1_region)
                    `SNN_REGION_REGS: host_rdata <= rd1_pop ? pop_rdata : (rd1_prj ? proj_rdata
                                                                  : (rd1_rg ? rg_rdata | rd1_reg : rd1_reg));
                    `SNN_REGION_STATE: case (rd1_field)
                        `SNN_STATE_V:          host_rdata <= sx_s(st_rv);
                        `SNN_STATE_I:          host_rdata <= sx_s(st_ri);
                        `SNN_STATE_REFRACTORY: host_rdata <= {{(32-R_BITS){1'b0}}, st_rref};
                        default:               host_rdata <= sx_s(st_rth);  // THETA
                    endcase
                    // bit 31 (the word's top bit: PLASTIC_BIT) plastic, the weight below it
                    `SNN_REGION_WEIGHT: host_rdata <= {w_rdata[W_BITS],
                                                       {(31-W_BITS+1){w_rdata[W_BITS-1]}},
                                                       w_rdata[W_BITS-2:0]};
                    `SNN_REGION_TRACE: host_rdata <= {{(32-T_BITS){1'b0}}, tr_rdata[T_BITS-1:0]};
                    `SNN_REGION_BIAS:  host_rdata <= sx_s(nb_rdata);
                    default: host_rdata <= 32'd0;
                endcase
            end
        end
    end

    // verilator lint_off UNUSEDSIGNAL
    wire unused_ok = ^{regs_init[0], regs_init[1], tr_rdata, host_addr, pop_i32, prj_i32};
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
