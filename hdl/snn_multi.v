// snn_multi: CORES copies of snn_core behind one host bus, joined by an address-event spike
// router (snn_router) that runs every step with the single-core semantics (docs/hardware.md,
// "Many cores in one design"). To a bus master it looks like one core: the same registers,
// input and output FIFOs (indices of the whole network), RUN / STATUS; CORE_SEL picks the
// core whose tables, memories and per-core registers the host reads and writes; regions 4
// and 5 hold the router's tables.
`default_nettype none
`include "snn_map.vh"

module snn_multi #(
    parameter integer CORES     = 2,     // cores (a power of two, at most 16)
    parameter integer N_MAX     = 256,   // snn_core parameters (docs/hardware.md) ...
    parameter integer SYN_MAX   = 16384,
    parameter integer P_MAX     = 8,
    parameter integer PR_MAX    = 16,
    parameter integer D_MAX     = 7,
    parameter integer TR_MAX    = 1024,
    parameter integer W_BITS    = 8,
    parameter integer S_BITS    = 16,
    parameter integer D_BITS    = 12,
    parameter integer T_BITS    = 8,
    parameter integer FRAC      = 6,
    parameter integer T_FRAC    = 6,
    parameter integer STDP_FRAC = 8,
    parameter integer A_BITS    = 24,
    parameter integer R_BITS    = 8,
    parameter integer IN_DEPTH  = 256,   // each core's input FIFO (>= N_MAX)
    parameter integer OUT_DEPTH = 256,   // each core's output FIFO
    parameter integer ADDR_W    = 24     // host word-address width
) (
    input  wire              clk,         // clock
    input  wire              rst,         // synchronous reset, active high
    input  wire              host_req,    // bus request (one word)
    input  wire              host_we,     // 1: write host_wdata, 0: read
    input  wire [ADDR_W-1:0] host_addr,   // word address (docs/hardware.md)
    input  wire [31:0]       host_wdata,  // write data
    output wire              host_ready,  // request accepted when host_req && host_ready
    output wire              host_rvalid, // read data valid, 2 cycles after acceptance
    output wire [31:0]       host_rdata,  // read data
    output wire              busy,        // running steps, or a core busy
    output wire              out_valid    // output FIFO not empty
);

    localparam integer K_W  = (CORES > 1) ? $clog2(CORES) : 1;
    localparam integer N_AW = (N_MAX > 2) ? $clog2(N_MAX) : 1;
    localparam integer G_W  = N_AW + K_W;       // index in the whole network
    localparam integer E_W  = N_AW + 1;         // {valid, local index}
    localparam integer RT_W = 2 * E_W;          // route word: {lag 1 field, lag 0 field}

    // ------------------------------------------------------------------ host decode
    wire [3:0]  region = host_addr[ADDR_W-1:ADDR_W-4];
    wire [19:0] offset = host_addr[19:0];
    wire        r0     = region == `SNN_REGION_REGS;
    wire        a_ctrl = r0 && offset == `SNN_REG_CTRL, a_steps = r0 && offset == `SNN_REG_STEPS;
    wire        a_learn = r0 && offset == `SNN_REG_LEARN;
    wire        a_inf  = r0 && offset == `SNN_REG_IN_FIFO;
    wire        a_outf = r0 && offset == `SNN_REG_OUT_FIFO;
    wire        a_sel  = r0 && offset == `SNN_MREG_CORE_SEL;
    wire        a_nwave = r0 && offset == `SNN_MREG_N_WAVES;
    wire [19:0] w_k    = offset - `SNN_MREG_WAVE;  // WAVE[k]
    wire        a_wave = r0 && offset >= `SNN_MREG_WAVE && w_k < CORES;
    wire        own_reg = r0 && (offset == `SNN_MREG_CORES || a_ctrl || a_steps
                                 || (offset >= `SNN_REG_STATUS && offset <= `SNN_REG_STEPS_LEFT)
                                 || a_sel || (offset >= `SNN_REG_IN_FIFO
                                              && offset <= `SNN_REG_OUT_LEVEL)
                                 || a_nwave || a_wave);
    wire        own_tab = region == `SNN_REGION_ROUTE || region == `SNN_REGION_INMAP;
    wire        own    = own_reg || own_tab || (a_learn && host_we);
    wire        fwd    = !own;  // to core CORE_SEL

    // ------------------------------------------------------------------ state
    reg  [K_W-1:0]   core_sel;
    reg  [CORES-1:0] core_en;
    reg  [3:0]       core_wave [0:CORES-1];
    reg  [3:0]       n_waves;
    reg  [31:0]      steps_reg;
    reg              done_flag;
    wire             r_idle;     // the router waits for a command
    wire             r_stepping; // the router runs steps
    wire             r_waiting;  // the router waits for input words
    wire [14:0]      r_step;
    wire [31:0]      r_steps_left;
    wire [63:0]      r_cycles;
    wire             r_done;

    // input staging (whole-network indices) and merged output FIFOs
    localparam integer F_W = G_W + 1;
    wire             st_full, st_empty, mo_full, mo_empty, st_pop, mo_push;
    wire [31:0]      st_dout, mo_dout, mo_din;
    wire [F_W-1:0]   st_level, mo_level;

    wire acc = host_req && host_ready;
    snn_fifo #(.DATA_W(32), .DEPTH(1 << G_W), .ADDR_W(G_W)) u_stage (
        .clk(clk), .rst(rst), .push(acc && host_we && a_inf), .din(host_wdata), .pop(st_pop),
        .dout(st_dout), .empty(st_empty), .full(st_full), .level(st_level));
    snn_fifo #(.DATA_W(32), .DEPTH(1 << G_W), .ADDR_W(G_W)) u_merged (
        .clk(clk), .rst(rst), .push(mo_push), .din(mo_din), .pop(acc && !host_we && a_outf),
        .dout(mo_dout), .empty(mo_empty), .full(mo_full), .level(mo_level));

    // router tables: route[target j] at {source core, local index}; inmap[core j] at the
    // whole-network index (host writes only)
    wire               rt_re, im_re;
    wire [G_W-1:0]     rt_raddr, im_raddr;
    wire [CORES*RT_W-1:0] rt_rdata;
    wire [CORES*E_W-1:0]  im_rdata;
    genvar gj;
    generate
        for (gj = 0; gj < CORES; gj = gj + 1) begin : g_tab
            snn_ram #(.DATA_W(RT_W), .DEPTH(1 << G_W), .ADDR_W(G_W)) u_route (
                .clk(clk), .we(acc && host_we && region == `SNN_REGION_ROUTE
                               && offset[G_W+K_W-1:G_W] == gj),
                .waddr(offset[G_W-1:0]), .wdata(host_wdata[RT_W-1:0]), .re(rt_re),
                .raddr(rt_raddr), .rdata(rt_rdata[gj*RT_W +: RT_W]));
            snn_ram #(.DATA_W(E_W), .DEPTH(1 << G_W), .ADDR_W(G_W)) u_inmap (
                .clk(clk), .we(acc && host_we && region == `SNN_REGION_INMAP
                               && offset[G_W+K_W-1:G_W] == gj),
                .waddr(offset[G_W-1:0]), .wdata(host_wdata[E_W-1:0]), .re(im_re),
                .raddr(im_raddr), .rdata(im_rdata[gj*E_W +: E_W]));
        end
    endgenerate

    // ------------------------------------------------------------------ cores
    wire [CORES-1:0]    c_req, c_we, c_ready, c_rvalid, c_busy, c_outv;
    wire [CORES*ADDR_W-1:0] c_addr;
    wire [CORES*32-1:0] c_wdata, c_rdata;
    wire [CORES-1:0]    r_req;
    wire                r_we;
    wire [ADDR_W-1:0]   r_addr;
    wire [CORES*32-1:0] r_wdata;
    wire                r_own = !r_idle;  // the router drives the cores' buses
    wire [CORES*4-1:0]  waves_flat;

    genvar gk;
    generate
        for (gk = 0; gk < CORES; gk = gk + 1) begin : g_core
            wire h_sel = fwd && core_sel == gk;
            assign c_req[gk]  = r_own ? r_req[gk] : (host_req && h_sel);
            assign c_we[gk]   = r_own ? r_we : host_we;
            assign c_addr[gk*ADDR_W +: ADDR_W] = r_own ? r_addr : host_addr;
            assign c_wdata[gk*32 +: 32] = r_own ? r_wdata[gk*32 +: 32] : host_wdata;
            assign waves_flat[gk*4 +: 4] = core_wave[gk];
            snn_core #(.N_MAX(N_MAX), .SYN_MAX(SYN_MAX), .P_MAX(P_MAX), .PR_MAX(PR_MAX),
                       .D_MAX(D_MAX), .TR_MAX(TR_MAX), .W_BITS(W_BITS), .S_BITS(S_BITS),
                       .D_BITS(D_BITS), .T_BITS(T_BITS), .FRAC(FRAC), .T_FRAC(T_FRAC),
                       .STDP_FRAC(STDP_FRAC), .A_BITS(A_BITS), .R_BITS(R_BITS),
                       .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH), .ADDR_W(ADDR_W)) u_core (
                .clk(clk), .rst(rst), .host_req(c_req[gk]), .host_we(c_we[gk]),
                .host_addr(c_addr[gk*ADDR_W +: ADDR_W]), .host_wdata(c_wdata[gk*32 +: 32]),
                .host_ready(c_ready[gk]), .host_rvalid(c_rvalid[gk]),
                .host_rdata(c_rdata[gk*32 +: 32]), .busy(c_busy[gk]), .out_valid(c_outv[gk]));
        end
    endgenerate

    // host commands to the router: RUN, RESET_STATE and LEARN to every core
    wire cmd_run   = acc && host_we && a_ctrl && host_wdata[`SNN_CTRL_RUN_BIT];
    wire cmd_reset = acc && host_we && a_ctrl && host_wdata[`SNN_CTRL_RESET_STATE_BIT];
    wire cmd_learn = acc && host_we && a_learn;

    snn_router #(.CORES(CORES), .N_AW(N_AW), .K_W(K_W), .ADDR_W(ADDR_W)) u_router (
        .clk(clk), .rst(rst), .cmd_run(cmd_run), .cmd_reset(cmd_reset),
        .cmd_learn(cmd_learn), .cmd_data(host_wdata), .run_steps(steps_reg),
        .core_en(core_en), .core_wave(waves_flat), .n_waves(n_waves),
        .st_empty(st_empty), .st_dout(st_dout), .st_pop(st_pop),
        .mo_full(mo_full), .mo_push(mo_push), .mo_din(mo_din),
        .im_re(im_re), .im_raddr(im_raddr), .im_rdata(im_rdata),
        .rt_re(rt_re), .rt_raddr(rt_raddr), .rt_rdata(rt_rdata),
        .bus_req(r_req), .bus_we(r_we), .bus_addr(r_addr), .bus_wdata(r_wdata),
        .bus_ready(c_ready), .bus_rvalid(c_rvalid), .bus_rdata(c_rdata),
        .idle(r_idle), .stepping(r_stepping), .waiting(r_waiting), .done(r_done),
        .step_count(r_step), .steps_left(r_steps_left), .cycles(r_cycles));

    // ------------------------------------------------------------------ host side
    // own registers are accepted at once (commands to the router only while it is idle),
    // forwarded accesses when the router is idle and the core accepts
    wire cmd_like = host_we && (a_ctrl || a_learn);
    wire own_ok = !(host_we && a_inf && st_full)
                  && !((cmd_like || own_tab || a_wave || a_nwave || a_sel) && !r_idle);
    assign host_ready = own ? own_ok : (r_idle && c_ready[core_sel]);

    integer q;
    always @(posedge clk) begin
        if (rst) begin
            core_sel <= {K_W{1'b0}}; core_en <= {CORES{1'b0}}; n_waves <= 4'd1;
            steps_reg <= 32'd0; done_flag <= 1'b0;
            for (q = 0; q < CORES; q = q + 1) core_wave[q] <= 4'd0;
        end else begin
            if (r_done) done_flag <= 1'b1;
            if (cmd_run) done_flag <= 1'b0;
            if (acc && host_we) begin
                if (a_sel) core_sel <= host_wdata[K_W-1:0];
                if (a_steps) steps_reg <= host_wdata;
                if (a_nwave) n_waves <= host_wdata[3:0];
                if (a_wave) begin
                    core_wave[w_k[3:0]] <= host_wdata[3:0];
                    core_en[w_k[3:0]] <= host_wdata[4];
                end
            end
        end
    end

    // reads: own registers in 2 cycles; forwarded ones come from the core
    reg        o_v1, o_v2, f_v1, f_v2;
    reg [31:0] o_d1, o_d2;
    reg [K_W-1:0] f_sel1, f_sel2;
    reg [31:0] o_c;
    always @* begin
        o_c = 32'd0;
        if (a_wave) o_c = {27'd0, core_en[w_k[3:0]], core_wave[w_k[3:0]]};
        else case (offset)
            `SNN_MREG_CORES:      o_c = CORES;
            `SNN_REG_STEPS:       o_c = steps_reg;
            `SNN_REG_STATUS: begin
                o_c[`SNN_STATUS_BUSY_BIT] = busy;
                o_c[`SNN_STATUS_DONE_BIT] = done_flag;
                o_c[`SNN_STATUS_WAITING_BIT] = r_waiting;
                o_c[`SNN_STATUS_OUT_FULL_BIT] = mo_full;
            end
            `SNN_REG_STEP_COUNT:  o_c = {17'd0, r_step};
            `SNN_REG_CYCLES_LO:   o_c = r_cycles[31:0];
            `SNN_REG_CYCLES_HI:   o_c = r_cycles[63:32];
            `SNN_REG_STEPS_LEFT:  o_c = r_steps_left;
            `SNN_MREG_CORE_SEL:   o_c = {{(32-K_W){1'b0}}, core_sel};
            `SNN_REG_IN_LEVEL:    o_c = {{(31-G_W){1'b0}}, st_level};
            `SNN_REG_OUT_FIFO:    o_c = mo_empty ? 32'd0 : mo_dout;
            `SNN_REG_OUT_LEVEL:   o_c = {{(31-G_W){1'b0}}, mo_level};
            `SNN_MREG_N_WAVES:    o_c = {28'd0, n_waves};
            default: ;
        endcase
    end
    always @(posedge clk) begin
        if (rst) begin
            o_v1 <= 1'b0; o_v2 <= 1'b0; f_v1 <= 1'b0; f_v2 <= 1'b0;
        end else begin
            o_v1 <= acc && !host_we && own;
            o_d1 <= o_c;
            o_v2 <= o_v1;
            o_d2 <= o_d1;
            f_v1 <= acc && !host_we && fwd;
            f_sel1 <= core_sel;
            f_v2 <= f_v1;
            f_sel2 <= f_sel1;
        end
    end
    assign host_rvalid = o_v2 || (f_v2 && c_rvalid[f_sel2]);
    assign host_rdata  = o_v2 ? o_d2 : c_rdata[f_sel2*32 +: 32];
    assign busy      = r_stepping || !r_idle || |c_busy;
    assign out_valid = !mo_empty;

    // verilator lint_off UNUSEDSIGNAL
    wire unused_ok = ^{c_outv, c_rvalid};
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
