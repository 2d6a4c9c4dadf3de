// The emulator core: host bus, registers, population / projection tables, FIFOs, the state,
// weight and trace memories, and the step sequencer (snn_seq). Map: docs/hardware.md.
`default_nettype none

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
    parameter         W_INIT    = "",    // $readmemh image of the weights (baked-in network)
    parameter         POP_INIT  = "",    // ... of the population table
    parameter         PROJ_INIT = "",    // ... of the projection table
    parameter         REGS_INIT = ""     // ... of {N_POP, N_PROJ}
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
    localparam integer ACC_W  = W_BITS + N_AW + PR_W + 2;  // never overflows
    localparam integer SL_W   = (D_MAX + 1 > 2) ? $clog2(D_MAX + 1) : 1;
    localparam [31:0]  VERSION = 32'h0001_0000;

    // ------------------------------------------------------------------ registers
    reg  [31:0]   regs_init [0:1];
    reg  [PP_W:0] n_pop;
    reg  [PR_W:0] n_proj;
    reg  [31:0]   run_steps;
    reg           learn;
    reg           done_flag;
    reg           in_err_flag;
    reg  [63:0]   cycles;
    reg  [31:0]   syn_events;

    initial begin
        regs_init[0] = 32'd0; regs_init[1] = 32'd0;
        if (REGS_INIT != "") $readmemh(REGS_INIT, regs_init);
    end

    // ------------------------------------------------------------------ sequencer
    wire [PP_W-1:0]     pop_sel_a, pop_sel_b, lk_pop;
    wire [PR_W-1:0]     proj_sel;
    wire [15:0]         lk_idx;
    reg                 lk_hit;
    reg  [PP_W-1:0]     lk_pop_r;
    wire [16*32-1:0]    pop_bus_a, pop_bus_b, proj_bus;
    wire                seq_busy, seq_stepping, seq_done, seq_in_err, seq_waiting, seq_syn_event;
    wire [31:0]         step_count, steps_left;
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
    wire [R_BITS-1:0]   st_rref;
    wire [W_BITS:0]     w_rdata;
    wire [2*T_BITS-1:0] tr_rdata;
    reg                 cmd_run, cmd_clear;

    // ------------------------------------------------------------------ tables
    wire [PP_W+3:0]  pop_i;
    wire [PR_W+3:0]  prj_i;
    wire             tab_pop_we, tab_proj_we;
    wire [31:0]      pop_rword, proj_rword;

    // Each field is stored at its real width (flip-flops; a 32-bit word per field would cost
    // 4x the cells and 512-bit read multiplexers). A field is written from the low bits of a
    // host word and reads back zero- or sign-extended to 32 bits (docs/hardware.md); fields
    // 14, 15 of a population and 12 .. 15 of a projection hold nothing and read 0. The
    // sequencer sees three entries at once (two populations, one projection) as 16 extended
    // 32-bit words each.
    localparam integer T_CW = N_AW + 1;
    localparam integer T_DW = D_BITS + 1;

    function integer pop_fw;  // width of population field f
        input integer f;
        begin
            case (f)
                0, 1:              pop_fw = T_CW;        // OFFSET, SIZE
                2:                 pop_fw = 3;           // FLAGS
                3:                 pop_fw = R_BITS;      // REFRACTORY
                4, 5, 6:           pop_fw = T_DW;        // ALPHA, BETA, ADAPT_DECAY
                7, 8, 9, 10, 11:   pop_fw = S_BITS;      // THRESHOLD .. ADAPT_PLUS (signed)
                12, 13:            pop_fw = PR_W + 1;    // PROJ_FIRST, PROJ_COUNT
                default:           pop_fw = 0;
            endcase
        end
    endfunction

    function integer proj_fw;  // width of projection field f
        input integer f;
        begin
            case (f)
                0, 1:              proj_fw = PP_W;       // SRC, TGT
                2:                 proj_fw = SL_W + 1;   // DELAY
                3:                 proj_fw = SYN_AW;     // W_BASE
                4:                 proj_fw = 3;          // FLAGS
                5, 6:              proj_fw = A_BITS;     // A_PLUS, A_MINUS
                7, 8:              proj_fw = T_DW;       // PRE_DECAY, POST_DECAY
                9, 10:             proj_fw = W_BITS;     // W_MIN, W_MAX (signed)
                11:                proj_fw = TR_AW;      // TR_BASE
                default:           proj_fw = 0;
            endcase
        end
    endfunction

    function integer pop_fp;  // bit position of population field f in an entry
        input integer f;
        integer y;
        begin
            pop_fp = 0;
            for (y = 0; y < f; y = y + 1) pop_fp = pop_fp + pop_fw(y);
        end
    endfunction

    function integer proj_fp;  // bit position of projection field f in an entry
        input integer f;
        integer y;
        begin
            proj_fp = 0;
            for (y = 0; y < f; y = y + 1) proj_fp = proj_fp + proj_fw(y);
        end
    endfunction

    localparam integer POP_W  = pop_fp(14);
    localparam integer PROJ_W = proj_fp(12);

    reg  [POP_W-1:0]  pop_e  [0:P_MAX-1];   // population entries, fields packed
    reg  [PROJ_W-1:0] proj_e [0:PR_MAX-1];  // projection entries
    wire [POP_W-1:0]  pop_din, pop_mask;    // host word placed in every field; written field
    wire [PROJ_W-1:0] proj_din, proj_mask;
    // the selected entries, and each as 16 extended words
    wire [POP_W-1:0]  ent_a = pop_e[pop_sel_a];
    wire [POP_W-1:0]  ent_b = pop_e[pop_sel_b];
    wire [POP_W-1:0]  ent_h = pop_e[pop_i[PP_W+3:4]];
    wire [PROJ_W-1:0] ent_r = proj_e[proj_sel];
    wire [PROJ_W-1:0] ent_q = proj_e[prj_i[PR_W+3:4]];
    wire [16*32-1:0]  pop_hbus, proj_hbus;

    genvar gf;
    generate
        for (gf = 0; gf < 16; gf = gf + 1) begin : g_pop_f
            if (gf < 14) begin : g_used
                localparam integer W = pop_fw(gf), P = pop_fp(gf);
                localparam integer SG = (gf >= 7 && gf <= 11) ? 1 : 0;
                assign pop_din[P +: W]  = host_wdata[W-1:0];
                assign pop_mask[P +: W] = {W{pop_i[3:0] == gf}};
                wire [W-1:0] va = ent_a[P +: W], vb = ent_b[P +: W], vh = ent_h[P +: W];
                assign pop_bus_a[gf*32 +: 32] = {{(32-W){SG != 0 && va[W-1]}}, va};
                assign pop_bus_b[gf*32 +: 32] = {{(32-W){SG != 0 && vb[W-1]}}, vb};
                assign pop_hbus[gf*32 +: 32]  = {{(32-W){SG != 0 && vh[W-1]}}, vh};
            end else begin : g_none
                assign pop_bus_a[gf*32 +: 32] = 32'd0;
                assign pop_bus_b[gf*32 +: 32] = 32'd0;
                assign pop_hbus[gf*32 +: 32]  = 32'd0;
            end
        end
        for (gf = 0; gf < 16; gf = gf + 1) begin : g_proj_f
            if (gf < 12) begin : g_used
                localparam integer W = proj_fw(gf), P = proj_fp(gf);
                localparam integer SG = (gf == 9 || gf == 10) ? 1 : 0;
                assign proj_din[P +: W]  = host_wdata[W-1:0];
                assign proj_mask[P +: W] = {W{prj_i[3:0] == gf}};
                wire [W-1:0] vr = ent_r[P +: W], vq = ent_q[P +: W];
                assign proj_bus[gf*32 +: 32]  = {{(32-W){SG != 0 && vr[W-1]}}, vr};
                assign proj_hbus[gf*32 +: 32] = {{(32-W){SG != 0 && vq[W-1]}}, vq};
            end else begin : g_none
                assign proj_bus[gf*32 +: 32]  = 32'd0;
                assign proj_hbus[gf*32 +: 32] = 32'd0;
            end
        end
    endgenerate

    always @(posedge clk) begin
        if (tab_pop_we)
            pop_e[pop_i[PP_W+3:4]] <= (pop_e[pop_i[PP_W+3:4]] & ~pop_mask) | (pop_din & pop_mask);
        if (tab_proj_we)
            proj_e[prj_i[PR_W+3:4]] <= (proj_e[prj_i[PR_W+3:4]] & ~proj_mask)
                                       | (proj_din & proj_mask);
    end

    // baked-in tables: the images hold 16 words per entry, each field in a word's low bits
    generate
        if (POP_INIT != "" || PROJ_INIT != "") begin : g_bake
            reg [31:0] pop_img  [0:16*P_MAX-1];
            reg [31:0] proj_img [0:16*PR_MAX-1];
            integer q, b, c;
            initial begin
                for (q = 0; q < 16 * P_MAX; q = q + 1) pop_img[q] = 32'd0;
                for (q = 0; q < 16 * PR_MAX; q = q + 1) proj_img[q] = 32'd0;
                if (POP_INIT != "") $readmemh(POP_INIT, pop_img);
                if (PROJ_INIT != "") $readmemh(PROJ_INIT, proj_img);
                for (q = 0; q < P_MAX; q = q + 1)
                    for (b = 0; b < 14; b = b + 1)
                        for (c = 0; c < pop_fw(b); c = c + 1)
                            pop_e[q][pop_fp(b) + c] = pop_img[16 * q + b][c];
                for (q = 0; q < PR_MAX; q = q + 1)
                    for (b = 0; b < 12; b = b + 1)
                        for (c = 0; c < proj_fw(b); c = c + 1)
                            proj_e[q][proj_fp(b) + c] = proj_img[16 * q + b][c];
            end
        end
    endgenerate

    assign pop_rword  = pop_hbus[pop_i[3:0] * 32 +: 32];
    assign proj_rword = proj_hbus[prj_i[3:0] * 32 +: 32];

    // verilator lint_off UNUSEDSIGNAL
    wire unused_tab = ^host_wdata;  // the widest table field may be narrower
    // verilator lint_on UNUSEDSIGNAL


    // which population holds global index lk_idx: one comparator pair per table entry
    wire [P_MAX-1:0] lk_in;
    genvar gp;
    generate
        for (gp = 0; gp < P_MAX; gp = gp + 1) begin : g_lk
            wire [17:0] g_off = {{(17-N_AW){1'b0}}, pop_e[gp][pop_fp(0) +: T_CW]};
            wire [17:0] g_end = g_off + {{(17-N_AW){1'b0}}, pop_e[gp][pop_fp(1) +: T_CW]};
            assign lk_in[gp] = (gp < n_pop) && ({2'd0, lk_idx} >= g_off)
                               && ({2'd0, lk_idx} < g_end);
        end
    endgenerate

    integer e;
    always @* begin
        lk_hit = |lk_in; lk_pop_r = {PP_W{1'b0}};
        for (e = 0; e < P_MAX; e = e + 1)
            if (lk_in[e]) lk_pop_r = e[PP_W-1:0];
    end
    assign lk_pop = lk_pop_r;

    snn_seq #(.N_MAX(N_MAX), .P_MAX(P_MAX), .D_MAX(D_MAX),
              .TR_MAX(TR_MAX), .W_BITS(W_BITS), .S_BITS(S_BITS), .D_BITS(D_BITS),
              .T_BITS(T_BITS), .FRAC(FRAC), .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC),
              .A_BITS(A_BITS), .R_BITS(R_BITS), .ACC_W(ACC_W), .N_AW(N_AW), .SYN_AW(SYN_AW),
              .TR_AW(TR_AW), .PP_W(PP_W), .PR_W(PR_W)) u_seq (
        .clk(clk), .rst(rst), .cmd_run(cmd_run), .cmd_clear(cmd_clear), .run_steps(run_steps),
        .learn(learn), .n_pop(n_pop), .n_proj(n_proj),
        .pop_sel_a(pop_sel_a), .pop_bus_a(pop_bus_a), .pop_sel_b(pop_sel_b),
        .pop_bus_b(pop_bus_b), .proj_sel(proj_sel), .proj_bus(proj_bus),
        .lk_idx(lk_idx), .lk_pop(lk_pop), .lk_hit(lk_hit),
        .in_empty(in_empty), .in_data(in_data), .in_pop(in_pop),
        .out_full(out_full), .out_push(out_push), .out_data(out_data),
        .busy(seq_busy), .stepping(seq_stepping), .done(seq_done), .in_err(seq_in_err), .waiting(seq_waiting),
        .syn_event(seq_syn_event), .step_count(step_count), .steps_left(steps_left),
        .st_re(s_st_re), .st_raddr(s_st_raddr), .st_rv(st_rv), .st_ri(st_ri),
        .st_rref(st_rref), .st_rth(st_rth), .st_we(s_st_we), .st_waddr(s_st_waddr),
        .st_wv(s_st_wv), .st_wi(s_st_wi), .st_wref(s_st_wref), .st_wth(s_st_wth),
        .w_re(s_w_re), .w_raddr(s_w_raddr), .w_rdata(w_rdata), .w_we(s_w_we),
        .w_waddr(s_w_waddr), .w_wdata(s_w_wdata),
        .tr_re(s_tr_re), .tr_raddr(s_tr_raddr), .tr_rdata(tr_rdata), .tr_we(s_tr_we),
        .tr_waddr(s_tr_waddr), .tr_wdata(s_tr_wdata));

    assign busy      = seq_busy;
    assign out_valid = !out_empty;

    // ------------------------------------------------------------------ host decode
    wire [3:0]  region   = host_addr[ADDR_W-1:ADDR_W-4];
    wire [19:0] offset   = host_addr[19:0];
    wire [31:0] off32    = {12'd0, offset};
    wire        in_pop_t = (off32 >= 32'h100) && (off32 < 32'h100 + 16 * P_MAX);
    wire        in_prj_t = (off32 >= 32'h400) && (off32 < 32'h400 + 16 * PR_MAX);
    wire [31:0] pop_i32  = off32 - 32'h100;
    wire [31:0] prj_i32  = off32 - 32'h400;
    assign pop_i = pop_i32[PP_W+3:0];
    assign prj_i = prj_i32[PR_W+3:0];
    wire        is_reg   = (region == 4'h0);
    wire        is_mem   = (region == 4'h1) || (region == 4'h2) || (region == 4'h3);
    wire        is_table = is_reg && (offset >= 20'h100);
    wire        a_ctrl   = is_reg && (offset == 20'h010);
    wire        a_infifo = is_reg && (offset == 20'h020);
    wire        a_outpop = is_reg && (offset == 20'h022);

    // memories and table writes wait for idle; input pushes wait for room; CTRL waits for idle
    assign host_ready = !(seq_busy && (is_mem || (host_we && (is_table || a_ctrl))))
                        && !(host_we && a_infifo && in_full);
    wire acc_rd = host_req && host_ready && !host_we;
    wire acc_wr = host_req && host_ready && host_we;
    assign tab_pop_we  = acc_wr && is_reg && in_pop_t;
    assign tab_proj_we = acc_wr && is_reg && in_prj_t;

    // host ports of the shared memories (used only while idle)
    wire [N_AW-1:0]   h_nidx  = offset[N_AW+1:2];
    wire [1:0]        h_nfld  = offset[1:0];
    wire              h_st_wr = acc_wr && region == 4'h1;
    wire              h_w_wr  = acc_wr && region == 4'h2;
    wire              h_tr_wr = acc_wr && region == 4'h3;

    wire [N_AW-1:0]   st_raddr = seq_busy ? s_st_raddr : h_nidx;
    wire              st_re    = seq_busy ? s_st_re : acc_rd;
    wire [N_AW-1:0]   st_waddr = seq_busy ? s_st_waddr : h_nidx;
    wire [S_BITS-1:0] h_ws     = host_wdata[S_BITS-1:0];

    snn_ram #(.DATA_W(S_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_v (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == 2'd0)), .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wv : h_ws), .re(st_re), .raddr(st_raddr), .rdata(st_rv));
    snn_ram #(.DATA_W(S_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_i (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == 2'd1)), .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wi : h_ws), .re(st_re), .raddr(st_raddr), .rdata(st_ri));
    snn_ram #(.DATA_W(R_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_refrac (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == 2'd2)), .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wref : host_wdata[R_BITS-1:0]), .re(st_re), .raddr(st_raddr),
        .rdata(st_rref));
    snn_ram #(.DATA_W(S_BITS), .DEPTH(N_MAX), .ADDR_W(N_AW)) u_state_theta (
        .clk(clk), .we(seq_busy ? s_st_we : (h_st_wr && h_nfld == 2'd3)), .waddr(st_waddr),
        .wdata(seq_busy ? s_st_wth : h_ws), .re(st_re), .raddr(st_raddr), .rdata(st_rth));
    snn_ram #(.DATA_W(W_BITS + 1), .DEPTH(SYN_MAX), .ADDR_W(SYN_AW), .INIT_FILE(W_INIT)) u_weights (
        .clk(clk), .we(seq_busy ? s_w_we : h_w_wr),
        .waddr(seq_busy ? s_w_waddr : offset[SYN_AW-1:0]),
        .wdata(seq_busy ? s_w_wdata : {host_wdata[31], host_wdata[W_BITS-1:0]}),
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
            run_steps <= 32'd0; learn <= 1'b1; done_flag <= 1'b0; in_err_flag <= 1'b0;
            cycles <= 64'd0; syn_events <= 32'd0;
        end else begin
            if (seq_stepping) cycles <= cycles + 64'd1;
            if (seq_syn_event) syn_events <= syn_events + 32'd1;
            if (seq_done) done_flag <= 1'b1;
            if (seq_in_err) in_err_flag <= 1'b1;
            if (acc_wr && is_reg) begin
                case (offset)
                    20'h010: begin
                        if (host_wdata[0]) begin cmd_run <= 1'b1; done_flag <= 1'b0; end
                        if (host_wdata[1]) begin
                            cmd_clear <= 1'b1; in_err_flag <= 1'b0;
                            cycles <= 64'd0; syn_events <= 32'd0;
                        end
                    end
                    20'h011: run_steps <= host_wdata;
                    20'h012: learn <= host_wdata[0];
                    20'h019: n_pop <= host_wdata[PP_W:0];
                    20'h01A: n_proj <= host_wdata[PR_W:0];
                    default: ;
                endcase
            end
        end
    end

    // ------------------------------------------------------------------ reads (2 cycles)
    reg        rd1_valid;
    reg [3:0]  rd1_region;
    reg [1:0]  rd1_field;
    reg [31:0] rd1_reg;

    function automatic [31:0] sx_s;  // sign-extend a state word
        input [S_BITS-1:0] x;
        begin
            sx_s = {{(32-S_BITS){x[S_BITS-1]}}, x};
        end
    endfunction

    reg [31:0] rd1_reg_c;
    always @* begin
        rd1_reg_c = 32'd0;
        case (offset)
            20'h000: rd1_reg_c = 32'h534E_4E31;
            20'h001: rd1_reg_c = VERSION;
            20'h002: rd1_reg_c = N_MAX;
            20'h003: rd1_reg_c = SYN_MAX;
            20'h004: rd1_reg_c = {P_MAX[7:0], PR_MAX[7:0], D_MAX[7:0], 8'd1};
            20'h005: rd1_reg_c = {W_BITS[7:0], S_BITS[7:0], D_BITS[7:0], T_BITS[7:0]};
            20'h006: rd1_reg_c = {FRAC[7:0], T_FRAC[7:0], STDP_FRAC[7:0], A_BITS[7:0]};
            20'h007: rd1_reg_c = 32'h0000_001F;
            20'h008: rd1_reg_c = TR_MAX;
            20'h009: rd1_reg_c = {IN_DEPTH[15:0], OUT_DEPTH[15:0]};
            20'h00A: rd1_reg_c = R_BITS;
            20'h011: rd1_reg_c = run_steps;
            20'h012: rd1_reg_c = {31'd0, learn};
            20'h013: rd1_reg_c = {27'd0, out_full, seq_waiting, in_err_flag, done_flag, seq_busy};
            20'h014: rd1_reg_c = step_count;
            20'h015: rd1_reg_c = cycles[31:0];
            20'h016: rd1_reg_c = cycles[63:32];
            20'h017: rd1_reg_c = syn_events;
            20'h018: rd1_reg_c = steps_left;
            20'h019: rd1_reg_c = {{(31-PP_W){1'b0}}, n_pop};
            20'h01A: rd1_reg_c = {{(31-PR_W){1'b0}}, n_proj};
            20'h021: rd1_reg_c = {{(31-IN_AW){1'b0}}, in_level};
            20'h022: rd1_reg_c = out_empty ? 32'd0 : out_dout;
            20'h023: rd1_reg_c = {{(31-OUT_AW){1'b0}}, out_level};
            default: begin
                if (in_pop_t)      rd1_reg_c = pop_rword;
                else if (in_prj_t) rd1_reg_c = proj_rword;
            end
        endcase
    end

    always @(posedge clk) begin
        if (rst) begin
            rd1_valid <= 1'b0; host_rvalid <= 1'b0; host_rdata <= 32'd0;
        end else begin
            rd1_valid <= acc_rd;
            rd1_region <= region;
            rd1_field  <= offset[1:0];
            rd1_reg   <= rd1_reg_c;
            host_rvalid <= rd1_valid;
            if (rd1_valid) begin
                case (rd1_region)
                    4'h0: host_rdata <= rd1_reg;
                    4'h1: case (rd1_field)
                        2'd0: host_rdata <= sx_s(st_rv);
                        2'd1: host_rdata <= sx_s(st_ri);
                        2'd2: host_rdata <= {{(32-R_BITS){1'b0}}, st_rref};
                        default: host_rdata <= sx_s(st_rth);
                    endcase
                    4'h2: host_rdata <= {w_rdata[W_BITS], {(31-W_BITS+1){w_rdata[W_BITS-1]}},
                                         w_rdata[W_BITS-2:0]};
                    4'h3: host_rdata <= {{(32-T_BITS){1'b0}}, tr_rdata[T_BITS-1:0]};
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
