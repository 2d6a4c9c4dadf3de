/* 8-bit sums on the AMX tile unit (included by _kernels.c; snn_layer picks it where it pays).

   Where the CPU has Intel AMX, the 8-bit sums of dense-enough inputs are matrix products on
   the tile unit instead: spikes (u8 0/1) times weights (s8) into exact int32 sums, 32 batch
   elements x 32 columns at a time, then the neuron update as in the layer kernel. The product
   does not skip silent sources, so it only pays above AMX_DENSITY spikes per source and
   sample (event sums: ~11 ms, tiles: ~4 ms for this machine's benchmark layer at 0.1).
   Integer sums are exact in any order: the same integers as the event sums. (Float weights
   split exactly into three bf16 parts, on the bf16 tiles, measured slower than the event sums
   at 0.1: the weight tiles' reads from L2 bound both, and bf16 holds half the sources per
   byte of int8, three times over.) */

#ifdef HAVE_AMX
#define AMX_DENSITY 0.04      /* spikes per source and sample above which tiles pay */
#define AMX_ROWS 32           /* batch elements per item: two 16-row tiles */
#define AMX_MAX_COPY 1e9      /* bytes of spikes beyond which the padded copy is not worth it */

static int amx_state = -1; /* -1: not asked yet, 0: refused, 1: granted */
static int64_t amx_runs;   /* layers run on AMX, for the tests */

int64_t snn_amx_runs(void) { return __atomic_load_n(&amx_runs, __ATOMIC_RELAXED); }

/* Linux hands out the tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM for
   XFEATURE_XTILEDATA); the grant is for the whole process. */
int snn_amx_available(void) {
    if (amx_state < 0) amx_state = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    return amx_state;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg_t;

/* Tiles 0-3: int32 sums (2 row halves x 2 column tiles); 4, 5: spikes; 6, 7: weights; all
   16 rows x 64 bytes. The configuration lives in (thread-local) static memory:
   on the stack, gcc 12 -O2 dropped its stores before ldtilecfg read it, and the load
   faulted. */
static void amx_configure(void) {
    static __thread tilecfg_t c __attribute__((aligned(64)));
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.rows[t] = 16, c.colsb[t] = 64;
    _tile_loadconfig(&c);
}

/* out[r][c] (row stride BLOCK) = sums of 32 rows of x (stride Kp bytes, 64-aligned) times
   columns [c0, c0 + n) of the packed weights wv ([Np32 / 16][Kp / 4][16][4]: one weight tile
   is 1 KB in a row), n rounded up to 32. */
static void amx_sums_i8(const void *xv, int64_t Kp, const void *wvv, int64_t np32, int64_t c0,
                        int64_t n, void *outv) {
    const uint8_t *x = (const uint8_t *)xv;
    const int8_t *wv = (const int8_t *)wvv;
    int32_t *out = (int32_t *)outv;
    const int64_t gs = Kp * 16; /* bytes per 16 columns */
    (void)np32;
    for (int64_t g = 0; g < n; g += 32) {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        const int8_t *w0 = wv + (c0 + g) / 16 * gs;
        for (int64_t k = 0; k < Kp; k += 64) {
            _tile_loadd(4, x + k, Kp);
            _tile_loadd(6, w0 + k * 16, 64);
            _tile_dpbusd(0, 4, 6);
            _tile_loadd(5, x + 16 * Kp + k, Kp);
            _tile_dpbusd(2, 5, 6);
            _tile_loadd(7, w0 + gs + k * 16, 64);
            _tile_dpbusd(1, 4, 7);
            _tile_dpbusd(3, 5, 7);
        }
        _tile_stored(0, out + g, BLOCK * 4);
        _tile_stored(1, out + g + 16, BLOCK * 4);
        _tile_stored(2, out + 16 * BLOCK + g, BLOCK * 4);
        _tile_stored(3, out + 16 * BLOCK + g + 16, BLOCK * 4);
    }
}


typedef struct {
    int64_t T, B, N, Kp, np32;
    const void *x; /* [T * B + AMX_ROWS, Kp] spikes, zero-padded: u8 (8-bit), bf16 (float) */
    const void *wv;
    const void *dense;
    neuron_t p;
    uint8_t *spikes;
    void *sums; /* [T, B, N] or NULL: the sums instead of the update (snn_layer) */
    void *rec_v, *rec_i, *rec_theta;
    int64_t n_groups; /* of AMX_ROWS batch elements */
} amx_layer_t;

/* One item = (block of BLOCK columns, group of 32 batch elements): per step, the tile sums
   of the group, then the neuron update of each of its batch elements (state: 32 rows). */
#define DEF_AMX_ITEM(NAME, ST, XB, SUMS, UPD, DELAYED)                                \
    static void NAME(void *ctx, int64_t item, void *scratch) {                        \
        const amx_layer_t *L = (const amx_layer_t *)ctx;                              \
        const neuron_t *p = &L->p;                                                    \
        int64_t blk = item / L->n_groups, b0 = item % L->n_groups * AMX_ROWS;         \
        int64_t c0 = blk * BLOCK, n = L->N - c0 < BLOCK ? L->N - c0 : BLOCK;          \
        int64_t nb = L->B - b0 < AMX_ROWS ? L->B - b0 : AMX_ROWS;                     \
        ST *x = (ST *)scratch, *V = x + AMX_ROWS * BLOCK, *I = V + AMX_ROWS * BLOCK;  \
        ST *TH = I + AMX_ROWS * BLOCK;                                                \
        int32_t *R = (int32_t *)(TH + AMX_ROWS * BLOCK);                              \
        for (int64_t r = 0; r < nb; r++)                                              \
            for (int64_t c = 0; c < n; c++) {                                         \
                V[r * BLOCK + c] = ((const ST *)p->v_init)[c0 + c];                   \
                I[r * BLOCK + c] = TH[r * BLOCK + c] = 0;                             \
                R[r * BLOCK + c] = 0;                                                 \
            }                                                                         \
        amx_configure();                                                              \
        for (int64_t t = 0; t < L->T; t++) {                                          \
            SUMS((const char *)L->x + (t * L->B + b0) * L->Kp * XB, L->Kp, L->wv, L->np32, \
                 c0, n, x);                                                           \
            for (int64_t r = 0; r < nb; r++) {                                        \
                int64_t o = (t * L->B + b0 + r) * L->N + c0, step = L->B * L->N;      \
                ST *xr = x + r * BLOCK, *Vr = V + r * BLOCK, *Ir = I + r * BLOCK;     \
                ST *THr = TH + r * BLOCK;                                             \
                int32_t *Rr = R + r * BLOCK;                                          \
                if (L->dense)                                                         \
                    for (int64_t c = 0; c < n; c++) xr[c] += ((const ST *)L->dense)[o + c]; \
                if (L->sums) {                                                        \
                    memcpy((ST *)L->sums + o, xr, sizeof(ST) * n);                    \
                    continue;                                                         \
                }                                                                     \
                DELAYED(n, p, c0, t >= 1 ? L->spikes + o - step : NULL,               \
                        t >= 2 ? L->spikes + o - 2 * step : NULL, xr);                \
                UPD(n, p, c0, xr, Vr, Ir, THr, Rr, L->spikes + o);                     \
                if (L->rec_v) memcpy((ST *)L->rec_v + o, Vr, sizeof(ST) * n);         \
                if (L->rec_i) memcpy((ST *)L->rec_i + o, Ir, sizeof(ST) * n);         \
                if (L->rec_theta) memcpy((ST *)L->rec_theta + o, THr, sizeof(ST) * n); \
            }                                                                         \
        }                                                                             \
        _tile_release();                                                              \
    }

DEF_AMX_ITEM(item_amx_i8, int32_t, 1, amx_sums_i8, update_i32, delayed_i32)

typedef struct {
    const uint8_t *x;
    uint8_t *xp;
    int64_t S, Kp, rows;
} pad_t;

static void pad_item(void *c, int64_t item, void *scratch) {
    (void)scratch;
    const pad_t *P = (const pad_t *)c;
    for (int64_t r = item * 256; r < (item + 1) * 256 && r < P->rows; r++) {
        memcpy(P->xp + r * P->Kp, P->x + r * P->S, (size_t)P->S);
        memset(P->xp + r * P->Kp + P->S, 0, (size_t)(P->Kp - P->S));
    }
}

/* The 8-bit layer on AMX (see above); wv from snnkit.kernels.pack_amx. */
static int layer_amx(int64_t T, int64_t B, int64_t N, int64_t S, const uint8_t *x,
                     const void *wv, const void *dense, const neuron_t *p, uint8_t *spikes,
                     void *rec_v, void *rec_i, void *rec_theta, void *sums, int n_threads) {
    __atomic_add_fetch(&amx_runs, 1, __ATOMIC_RELAXED);
    int64_t Kp = (S + 63) / 64 * 64, rows = T * B;
    size_t bytes = (size_t)((rows + AMX_ROWS) * Kp);
    uint8_t *xp = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!xp) return -1;
    memset(xp + rows * Kp, 0, (size_t)(AMX_ROWS * Kp)); /* the last group's missing rows */
    pad_t P = {x, xp, S, Kp, rows};
    int rc = parallel_for(pad_item, &P, (rows + 255) / 256, n_threads, 0);
    if (!rc) {
        amx_layer_t L = {T, B, N, Kp, (N + 31) / 32 * 32, xp, wv, dense, *p, spikes, sums,
                         rec_v, rec_i, rec_theta, (B + AMX_ROWS - 1) / AMX_ROWS};
        rc = parallel_for(item_amx_i8, &L, (N + BLOCK - 1) / BLOCK * L.n_groups, n_threads,
                          5 * AMX_ROWS * BLOCK * 4);
    }
    free(xp);
    return rc;
}
#else
int snn_amx_available(void) { return 0; }
int64_t snn_amx_runs(void) { return 0; }
#endif
