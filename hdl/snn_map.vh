// The core's memory map and the UART link's constants, as Verilog defines.
// GENERATED from snnkit/memory_map.py: do not edit; regenerate with
//     python -m snnkit.map_header
// (tests/test_memory_map.py checks that this file is current).
`ifndef SNN_MAP_VH
`define SNN_MAP_VH

// ---- the core's host bus (docs/hardware.md)
`define SNN_ADDR_W                   24           // host bus word-address width
`define SNN_REGION_REGS              4'h0         // host_addr[23:20]
`define SNN_REGION_STATE             4'h1         // host_addr[23:20]
`define SNN_REGION_WEIGHT            4'h2         // host_addr[23:20]
`define SNN_REGION_TRACE             4'h3         // host_addr[23:20]
`define SNN_REGION_BIAS              4'h6         // host_addr[23:20]
`define SNN_REG_ID                   'h000        // word offset in region REGS
`define SNN_REG_VERSION              'h001        // word offset in region REGS
`define SNN_REG_N_MAX                'h002        // word offset in region REGS
`define SNN_REG_SYN_MAX              'h003        // word offset in region REGS
`define SNN_REG_SIZES                'h004        // word offset in region REGS
`define SNN_REG_WIDTHS               'h005        // word offset in region REGS
`define SNN_REG_FRACS                'h006        // word offset in region REGS
`define SNN_REG_FEATURES             'h007        // word offset in region REGS
`define SNN_REG_TR_MAX               'h008        // word offset in region REGS
`define SNN_REG_FIFOS                'h009        // word offset in region REGS
`define SNN_REG_R_BITS               'h00A        // word offset in region REGS
`define SNN_REG_CTRL                 'h010        // word offset in region REGS
`define SNN_REG_STEPS                'h011        // word offset in region REGS
`define SNN_REG_LEARN                'h012        // word offset in region REGS
`define SNN_REG_STATUS               'h013        // word offset in region REGS
`define SNN_REG_STEP_COUNT           'h014        // word offset in region REGS
`define SNN_REG_CYCLES_LO            'h015        // word offset in region REGS
`define SNN_REG_CYCLES_HI            'h016        // word offset in region REGS
`define SNN_REG_SYN_EVENTS           'h017        // word offset in region REGS
`define SNN_REG_STEPS_LEFT           'h018        // word offset in region REGS
`define SNN_REG_N_POP                'h019        // word offset in region REGS
`define SNN_REG_N_PROJ               'h01A        // word offset in region REGS
`define SNN_REG_IN_FIFO              'h020        // word offset in region REGS
`define SNN_REG_IN_LEVEL             'h021        // word offset in region REGS
`define SNN_REG_OUT_FIFO             'h022        // word offset in region REGS
`define SNN_REG_OUT_LEVEL            'h023        // word offset in region REGS
`define SNN_POP_TABLE                'h100        // POP[p] field f: + TABLE_STRIDE * p + f
`define SNN_PROJ_TABLE               'h400        // PROJ[k] field f: + TABLE_STRIDE * k + f
`define SNN_TABLE_STRIDE             16           // words per table entry
`define SNN_STATE_STRIDE             4            // words per neuron in region STATE
`define SNN_MAGIC                    32'h534E4E31 // identify word ID
`define SNN_CORE_VERSION             32'h00020000 // identify word VERSION
`define SNN_FEATURES                 32'h0000003F // identify word FEATURES: those every core has
`define SNN_FEATURE_DELAYED_RESET    32'h00000040 // identify word FEATURES: an optional feature's bit
`define SNN_FIFO_MARK_BIT            31           // IN_FIFO end-of-step marker, OUT_FIFO valid
`define SNN_PLASTIC_BIT              31           // a WEIGHT word: plastic
`define SNN_CTRL_RUN_BIT             0            // bit of a CTRL write
`define SNN_CTRL_RESET_STATE_BIT     1            // bit of a CTRL write
`define SNN_STATUS_BUSY_BIT          0            // bit of STATUS
`define SNN_STATUS_DONE_BIT          1            // bit of STATUS
`define SNN_STATUS_INPUT_ERROR_BIT   2            // bit of STATUS
`define SNN_STATUS_WAITING_BIT       3            // bit of STATUS
`define SNN_STATUS_OUT_FULL_BIT      4            // bit of STATUS

// ---- the multi-core design (hdl/snn_multi.v)
`define SNN_MREG_CORES               'h00B        // word offset in region REGS
`define SNN_MREG_CORE_SEL            'h01B        // word offset in region REGS
`define SNN_MREG_N_WAVES             'h02F        // word offset in region REGS
`define SNN_MREG_WAVE                'h030        // word offset in region REGS
`define SNN_REGION_ROUTE             4'h4         // host_addr[23:20]
`define SNN_REGION_INMAP             4'h5         // host_addr[23:20]

// ---- table fields (4 bits: the word in the entry) and flag bits
`define SNN_POP_OFFSET               4'd0         // population field
`define SNN_POP_SIZE                 4'd1         // population field
`define SNN_POP_FLAGS                4'd2         // population field
`define SNN_POP_REFRACTORY           4'd3         // population field
`define SNN_POP_ALPHA                4'd4         // population field
`define SNN_POP_BETA                 4'd5         // population field
`define SNN_POP_ADAPT_DECAY          4'd6         // population field
`define SNN_POP_THRESHOLD            4'd7         // population field
`define SNN_POP_V_RESET              4'd8         // population field
`define SNN_POP_C1                   4'd9         // population field
`define SNN_POP_V_INIT               4'd10        // population field
`define SNN_POP_ADAPT_PLUS           4'd11        // population field
`define SNN_POP_PROJ_FIRST           4'd12        // population field
`define SNN_POP_PROJ_COUNT           4'd13        // population field
`define SNN_POP_C2                   4'd14        // population field
`define SNN_POP_SIGNED               16'h4F80     // bit f: population field f is signed
`define SNN_POP_FLAG_INPUT_BIT       0            // bit of a population's FLAGS
`define SNN_POP_FLAG_SUBTRACT_BIT    1            // bit of a population's FLAGS
`define SNN_POP_FLAG_OUT_EN_BIT      2            // bit of a population's FLAGS
`define SNN_PROJ_SRC                 4'd0         // projection field
`define SNN_PROJ_TGT                 4'd1         // projection field
`define SNN_PROJ_DELAY               4'd2         // projection field
`define SNN_PROJ_W_BASE              4'd3         // projection field
`define SNN_PROJ_FLAGS               4'd4         // projection field
`define SNN_PROJ_A_PLUS              4'd5         // projection field
`define SNN_PROJ_A_MINUS             4'd6         // projection field
`define SNN_PROJ_PRE_DECAY           4'd7         // projection field
`define SNN_PROJ_POST_DECAY          4'd8         // projection field
`define SNN_PROJ_W_MIN               4'd9         // projection field
`define SNN_PROJ_W_MAX               4'd10        // projection field
`define SNN_PROJ_TR_BASE             4'd11        // projection field
`define SNN_PROJ_SIGNED              16'h0600     // bit f: projection field f is signed
`define SNN_PROJ_FLAG_STDP_BIT       0            // bit of a projection's FLAGS
`define SNN_PROJ_FLAG_NEAREST_BIT    1            // bit of a projection's FLAGS
`define SNN_PROJ_FLAG_SOFT_BIT       2            // bit of a projection's FLAGS
`define SNN_STATE_V                  2'd0         // word of a neuron in region STATE
`define SNN_STATE_I                  2'd1         // word of a neuron in region STATE
`define SNN_STATE_REFRACTORY         2'd2         // word of a neuron in region STATE
`define SNN_STATE_THETA              2'd3         // word of a neuron in region STATE

// ---- the UART link (docs/uart-protocol.md, snnkit/protocol.py)
`define SNN_SYNC                     8'hA5        // first byte of every frame
`define SNN_PROTOCOL_VERSION         8'd1         // IDENTIFY's version byte
`define SNN_IDLE_BITS                20000        // silent bit periods that drop a partial frame
`define SNN_N_REGIONS                16           // IDENTIFY's region count (a byte)
`define SNN_END_OF_STREAM            16'hFFFF     // count that ends a RUN stream
`define SNN_ABORT                    16'hFFFE     // count that aborts it (then the error code)
`define SNN_OP_IDENTIFY              8'h01        // opcode
`define SNN_OP_RESET                 8'h02        // opcode
`define SNN_OP_RUN                   8'h03        // opcode
`define SNN_OP_WRITE                 8'h20        // opcode
`define SNN_OP_READ                  8'h30        // opcode
`define SNN_OP_NACK                  8'hFF        // opcode
`define SNN_ERR_BAD_CRC              4'd1         // NACK error code
`define SNN_ERR_BAD_OPCODE           4'd2         // NACK error code
`define SNN_ERR_BAD_LENGTH           4'd3         // NACK error code
`define SNN_ERR_BAD_ADDRESS          4'd4         // NACK error code
`define SNN_ERR_BAD_WIDTH            4'd5         // NACK error code
`define SNN_ERR_READ_ONLY            4'd6         // NACK error code
`define SNN_ERR_BUS_TIMEOUT          4'd7         // NACK error code
`define SNN_ERR_RUN_TIMEOUT          4'd8         // NACK error code
`define SNN_ERR_EVENT_OVERFLOW       4'd9         // NACK error code
`define SNN_LINK_IDENT               4'd0         // protocol region
`define SNN_LINK_CTRL                4'd1         // protocol region
`define SNN_LINK_POP                 4'd2         // protocol region
`define SNN_LINK_PROJ                4'd3         // protocol region
`define SNN_LINK_STATE               4'd4         // protocol region
`define SNN_LINK_WEIGHT              4'd5         // protocol region
`define SNN_LINK_TRACE               4'd6         // protocol region
`define SNN_LINK_COUNTER             4'd7         // protocol region
`define SNN_LINK_LINK                4'd8         // protocol region
`define SNN_LINK_FIFO                4'd9         // protocol region
`define SNN_LINK_ROUTE               4'd10        // protocol region
`define SNN_LINK_INMAP               4'd11        // protocol region
`define SNN_LINK_WAVES               4'd12        // protocol region
`define SNN_LINK_BIAS                4'd13        // protocol region
// region r's first word on the core's bus: bits 32r +: 32
`define SNN_LINK_BASES {32'h0, 32'h0, 32'h600000, 32'h0, 32'h0, 32'h0, 32'h20, 32'h0, 32'h14, 32'h300000, 32'h200000, 32'h100000, 32'h400, 32'h100, 32'h10, 32'h0}
// region r's words, given the core's sizes as 32-bit values
`define SNN_LINK_SIZES(N, SYN, P, PR, TR) {32'd0, 32'd0, (N), 32'd0, 32'd0, 32'd0, 32'd4, 32'd4, 32'd4, (TR), (SYN), 32'd4 * (N), 32'd16 * (PR), 32'd16 * (P), 32'd11, 32'd11}
`define SNN_LINK_WRITABLE            16'h223E     // bit r: region r accepts writes

`endif
