/* 8-bit sums on the AMX tile unit (included by _kernels.c; snn_layer picks it where it pays).

   Where the CPU has Intel AMX, the 8-bit sums of dense-enough inputs are matrix products on
   the tile unit instead: spikes (u8 0/1) times weights (s8) into exact int32 sums, 32 batch
   elements x 32 columns at a time, then the neuron update as in the layer kernel. The product
   does not skip silent sources, so it only pays above AMX_DENSITY spikes per source and
   sample (event sums: ~11 ms, tiles: ~4 ms for this machine's benchmark layer at 0.1).
   Integer sums are exact in any order: the same integers as the event sums.

   Float layers likewise on the bf16 tiles (layer_bf16), each weight split exactly into its
   fewest bf16 parts (1-3; see amx_sums_bf): float32 sums of the exact weights. Each part is
   one more product: on sim_speed's ff layer (784 -> 1000, batch 64, 1 thread) the tiles take
   ~12 / ~16 / ~23 ms for 1 / 2 / 3 parts at any density, the event sums ~11 ms at 6% of the
   sources spiking, ~16 at 10%, ~27 at 20% (cpu_path.BF16_DENSITY: where the tiles pay). */

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

/* whether snn_layer_bf16 runs (built with AMX-BF16, and the tiles granted) */
int snn_amx_bf16(void) {
#ifdef HAVE_AMX_BF16
    return snn_amx_available();
#else
    return 0;
#endif
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

/* Tiles 0-3 (32 samples x 32 columns) += spikes a [32, K] (row stride K) times the packed
 * int8 weights w (two 16-column groups gs bytes apart); K a multiple of 64. */
static inline void rec_amx_acc(const uint8_t *a, int64_t K, const int8_t *w, int64_t gs) {
    for (int64_t k = 0; k < K; k += 64) {
        _tile_loadd(4, a + k, K);
        _tile_loadd(6, w + k * 16, 64);
        _tile_dpbusd(0, 4, 6);
        _tile_loadd(5, a + 16 * K + k, K);
        _tile_dpbusd(2, 5, 6);
        _tile_loadd(7, w + gs + k * 16, 64);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(3, 5, 7);
    }
}

/* out[r][c] (row stride BLOCK) = sums of 32 rows of x (stride Kp bytes, 64-aligned) times
   columns [c0, c0 + n) of the packed weights wv ([Np32 / 16][Kp / 4][16][4]: one weight tile
   is 1 KB in a row), n rounded up to 32. */
static void amx_sums_i8(const void *xv, int64_t Kp, const void *wvv, int64_t parts, int64_t c0,
                        int64_t n, void *outv) {
    const uint8_t *x = (const uint8_t *)xv;
    const int8_t *wv = (const int8_t *)wvv;
    int32_t *out = (int32_t *)outv;
    const int64_t gs = Kp * 16; /* bytes per 16 columns */
    (void)parts;
    for (int64_t g = 0; g < n; g += 32) {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        const int8_t *w0 = wv + (c0 + g) / 16 * gs;
        rec_amx_acc(x, Kp, w0, gs);
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
    int64_t parts;    /* float: bf16 parts of each weight */
} amx_layer_t;

/* One item = (block of BLOCK columns, group of 32 batch elements): per step, the tile sums
   of the group, then the neuron update of each of its batch elements (state: 32 rows). */
#define DEF_AMX_ITEM(NAME, ST, XB, SUMS, UPD, DELAYED, ROWS)                             \
    static void NAME(void *ctx, int64_t item, void *scratch) {                        \
        const amx_layer_t *L = (const amx_layer_t *)ctx;                              \
        const neuron_t *p = &L->p;                                                    \
        int64_t blk = item / L->n_groups, b0 = item % L->n_groups * ROWS;         \
        int64_t c0 = blk * BLOCK, n = L->N - c0 < BLOCK ? L->N - c0 : BLOCK;          \
        int64_t nb = L->B - b0 < ROWS ? L->B - b0 : ROWS;                     \
        ST *x = (ST *)scratch, *V = x + ROWS * BLOCK, *I = V + ROWS * BLOCK;  \
        ST *TH = I + ROWS * BLOCK;                                                \
        int32_t *R = (int32_t *)(TH + ROWS * BLOCK);                              \
        for (int64_t r = 0; r < nb; r++)                                              \
            for (int64_t c = 0; c < n; c++) {                                         \
                V[r * BLOCK + c] = ((const ST *)p->v_init)[c0 + c];                   \
                I[r * BLOCK + c] = TH[r * BLOCK + c] = 0;                             \
                R[r * BLOCK + c] = 0;                                                 \
            }                                                                         \
        amx_configure();                                                              \
        for (int64_t t = 0; t < L->T; t++) {                                          \
            SUMS((const char *)L->x + (t * L->B + b0) * L->Kp * XB, L->Kp, L->wv, L->parts, \
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

DEF_AMX_ITEM(item_amx_i8, int32_t, 1, amx_sums_i8, update_i32, delayed_i32, AMX_ROWS)


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

#ifdef HAVE_AMX_BF16
/* Float sums on the bf16 tiles, exactly: every float32 weight is the sum of up to three
   bf16 parts (hi = its top 8 significant bits, mid = the next 8 of the rest, lo = what is
   left: 3 x 8 bits hold the 24 of a float32; snnkit.kernels.pack_bf16 keeps the fewest parts
   that hold every weight of the projection). Spikes (0/1) are exact in bf16 and TDPBF16PS
   multiplies and accumulates in float32, so each sum is a float32 sum of the exact weights,
   the parts in another order than the event sums add the rows (as any float summation order
   differs, e.g. torch's product's). Tiles flush subnormals: pack_bf16 refuses weights below
   2^-103, so that every part, and every partial sum, is a multiple of 2^-126 (zero or
   normal). out[r][c] (row stride BLOCK) = sums of 32 rows of x (bf16 0/1, Kp a multiple of
   32, row stride Kp) times columns [c0, c0 + n) of wv ([Np32 / 16][parts][Kp / 2][16][2]). */
#define AMX_BF_ROWS 64 /* batch elements per item: four 16-row tiles */
#define AMX_BF_KC 256  /* sources per pass: the pass's spikes (32 KB) stay in L1 */

/* one 32-source step of a 16-column tile for the 64 rows (tiles 0-3), P parts: the parts'
   weight tiles loaded once for the four rows' spikes (each weight tile read from L2 feeds 4
   products: the weights' reads from L2 bound the 2 x 2 arrangement of the 8-bit sums) */
#define BF_ROW(C, A, X, KP)                                                              \
    _tile_loadd(A, X, KP * 2);                                                           \
    _tile_dpbf16ps(C, A, 6);                                                             \
    if (parts > 1) _tile_dpbf16ps(C, A, 7);

/* done(ctx, g), where given: called as soon as columns [g, g + 16) are summed (their
   sums still in L1) */
static inline __attribute__((always_inline)) void amx_sums_bf_then(
    const void *xv, int64_t Kp, const void *wvv, int64_t parts, int64_t c0, int64_t n,
    void *outv, void (*done)(void *, int64_t), void *ctx) {
    const uint16_t *x = (const uint16_t *)xv, *wv = (const uint16_t *)wvv;
    float *out = (float *)outv;
    const int64_t ps = Kp * 16, gs = ps * parts; /* elements per part, per 16 columns */
    const int64_t ld = BLOCK * 4;
    /* the sources in passes; between passes the sums wait in out (stored and loaded back
       exactly: the same additions in the same order) */
    for (int64_t k0 = 0; k0 < Kp; k0 += AMX_BF_KC) {
        const int64_t k1 = Kp - k0 < AMX_BF_KC ? Kp : k0 + AMX_BF_KC;
        for (int64_t g = 0; g < n; g += 16) {
            float *o = out + g;
            if (k0) {
                _tile_loadd(0, o, ld);
                _tile_loadd(1, o + 16 * BLOCK, ld);
                _tile_loadd(2, o + 32 * BLOCK, ld);
                _tile_loadd(3, o + 48 * BLOCK, ld);
            } else {
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            }
            const uint16_t *w0 = wv + (c0 + g) / 16 * gs;
            if (parts <= 2)
                for (int64_t k = k0; k < k1; k += 32) {
                    _tile_loadd(6, w0 + k * 16, 64);
                    if (parts > 1) _tile_loadd(7, w0 + ps + k * 16, 64);
                    BF_ROW(0, 4, x + k, Kp)
                    BF_ROW(1, 5, x + 16 * Kp + k, Kp)
                    BF_ROW(2, 4, x + 32 * Kp + k, Kp)
                    BF_ROW(3, 5, x + 48 * Kp + k, Kp)
                }
            else
                for (int64_t k = k0; k < k1; k += 32) {
                    _tile_loadd(5, w0 + k * 16, 64);
                    _tile_loadd(6, w0 + ps + k * 16, 64);
                    _tile_loadd(7, w0 + 2 * ps + k * 16, 64);
                    for (int r = 0; r < 4; r++) {
                        _tile_loadd(4, x + r * 16 * Kp + k, Kp * 2);
                        switch (r) {
                            case 0: _tile_dpbf16ps(0, 4, 5); _tile_dpbf16ps(0, 4, 6);
                                    _tile_dpbf16ps(0, 4, 7); break;
                            case 1: _tile_dpbf16ps(1, 4, 5); _tile_dpbf16ps(1, 4, 6);
                                    _tile_dpbf16ps(1, 4, 7); break;
                            case 2: _tile_dpbf16ps(2, 4, 5); _tile_dpbf16ps(2, 4, 6);
                                    _tile_dpbf16ps(2, 4, 7); break;
                            default: _tile_dpbf16ps(3, 4, 5); _tile_dpbf16ps(3, 4, 6);
                                     _tile_dpbf16ps(3, 4, 7);
                        }
                    }
                }
            _tile_stored(0, o, ld);
            _tile_stored(1, o + 16 * BLOCK, ld);
            _tile_stored(2, o + 32 * BLOCK, ld);
            _tile_stored(3, o + 48 * BLOCK, ld);
            if (done && k1 == Kp) done(ctx, g);
        }
    }
}

static void amx_sums_bf(const void *xv, int64_t Kp, const void *wvv, int64_t parts, int64_t c0,
                        int64_t n, void *outv) {
    amx_sums_bf_then(xv, Kp, wvv, parts, c0, n, outv, NULL, NULL);
}

DEF_AMX_ITEM(item_amx_bf_any, float, 2, amx_sums_bf, update_f32, delayed_f32, AMX_BF_ROWS)

#if BB_FUSED
typedef struct {
    const layer_t *F;
    int64_t c0, n, t, b0, nb;
    const float *x;
    float *V;
} bf_upd_t;

static void bf_update(void *ctx, int64_t g) {
    const bf_upd_t *u = (const bf_upd_t *)ctx;
    fused_update_f32(u->F, &u->F->p, u->c0 + g, u->n - g < VL ? (int)(u->n - g) : VL, u->t,
                     u->b0, u->nb, u->x + g, BLOCK, u->V + g / VL * u->nb * VL);
}
#endif

/* item_amx_bf_any, with the LIF's update vector by vector (fused_update_f32, as the event
   sums' item_f32_bb runs it) right after the vector's sums, where the population is that LIF
   and no sums are asked for */
static void item_amx_bf(void *ctx, int64_t item, void *scratch) {
    const amx_layer_t *L = (const amx_layer_t *)ctx;
    const neuron_t *p = &L->p;
#if BB_FUSED
    if (!L->sums && PLAIN_LIF(p)) {
        const int64_t blk = item / L->n_groups, b0 = item % L->n_groups * AMX_BF_ROWS;
        const int64_t c0 = blk * BLOCK, n = L->N - c0 < BLOCK ? L->N - c0 : BLOCK;
        const int64_t nb = L->B - b0 < AMX_BF_ROWS ? L->B - b0 : AMX_BF_ROWS;
        const int nv = (int)((n + VL - 1) / VL);
        float *x = (float *)scratch, *V = x + AMX_BF_ROWS * BLOCK; /* V: [nv, nb, VL] */
        const layer_t F = {L->T, L->B, L->N, 0, 0, NULL, NULL, NULL, L->dense, *p, L->spikes,
                           NULL, L->rec_v, L->rec_i, L->rec_theta, 0, 0, 0, NULL};
        for (int k = 0; k < nv; k++)
            for (int64_t r = 0; r < nb; r++)
                for (int j = 0; j < VL; j++)
                    V[(k * nb + r) * VL + j] =
                        k * VL + j < n ? ((const float *)p->v_init)[c0 + k * VL + j] : 0;
        amx_configure();
        bf_upd_t u = {&F, c0, n, 0, b0, nb, x, V};
        for (int64_t t = 0; t < L->T; t++) {
            u.t = t;
            amx_sums_bf_then((const uint16_t *)L->x + (t * L->B + b0) * L->Kp, L->Kp, L->wv,
                             L->parts, c0, n, x, bf_update, &u);
        }
        _tile_release();
        return;
    }
#endif
    item_amx_bf_any(ctx, item, scratch);
}

/* spikes u8 0/1 -> bf16 0/1 (0x3f80: 1.0), rows padded with zeros to Kp */
static void pad_bf_item(void *c, int64_t item, void *scratch) {
    (void)scratch;
    const pad_t *P = (const pad_t *)c;
    uint16_t *xp = (uint16_t *)P->xp;
    for (int64_t r = item * 256; r < (item + 1) * 256 && r < P->rows; r++) {
        const uint8_t *restrict a = P->x + r * P->S;
        uint16_t *restrict o = xp + r * P->Kp;
        for (int64_t k = 0; k < P->S; k++) o[k] = (uint16_t)(a[k] * 0x3f80);
        for (int64_t k = P->S; k < P->Kp; k++) o[k] = 0;
    }
}
#endif

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
                         rec_v, rec_i, rec_theta, (B + AMX_ROWS - 1) / AMX_ROWS, 1};
        rc = parallel_for(item_amx_i8, &L, (N + BLOCK - 1) / BLOCK * L.n_groups, n_threads,
                          5 * AMX_ROWS * BLOCK * 4);
    }
    free(xp);
    return rc;
}

#ifdef HAVE_AMX_BF16
/* The float layer on the bf16 tiles (amx_sums_bf above, then the neuron update as
   snn_layer's); wv: the weights' parts (1-3) packed by snnkit.kernels.pack_bf16. */
static int layer_bf16(int64_t T, int64_t B, int64_t N, int64_t S, const uint8_t *x,
                      const void *wv, int64_t parts, const void *dense, const neuron_t *p,
                      uint8_t *spikes, void *rec_v, void *rec_i, void *rec_theta, void *sums,
                      int n_threads) {
    const int64_t Kp = (S + 31) / 32 * 32, rows = T * B;
    __atomic_add_fetch(&amx_runs, 1, __ATOMIC_RELAXED);
    size_t bytes = (size_t)((rows + AMX_BF_ROWS) * Kp) * 2;
    uint16_t *xp = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!xp) return -1;
    memset(xp + rows * Kp, 0, (size_t)(AMX_BF_ROWS * Kp) * 2); /* the last group's missing rows */
    pad_t P = {x, (uint8_t *)xp, S, Kp, rows};
    int rc = parallel_for(pad_bf_item, &P, (rows + 255) / 256, n_threads, 0);
    if (!rc) {
        amx_layer_t L = {T, B, N, Kp, (N + 31) / 32 * 32, xp, wv, dense, *p, spikes, sums,
                         rec_v, rec_i, rec_theta, (B + AMX_BF_ROWS - 1) / AMX_BF_ROWS, parts};
        rc = parallel_for(item_amx_bf, &L, (N + BLOCK - 1) / BLOCK * L.n_groups, n_threads,
                          5 * AMX_BF_ROWS * BLOCK * 4);
    }
    free(xp);
    return rc;
}
#endif

/* ------------------------------------------------------------------ fixed-point recurrent */

/* One fixed-point population fed back by itself only (self projections, delay >= 1: the
   RLeaky layer), 8-bit weights, on the tiles (snn_rec_amx). The step kernel sums each
   sample's arriving rows one sample at a time (every row of 1000 weights widened byte by
   byte, ~11 ms on sim_speed's rleaky); here every step is one matrix product for a group of
   samples: [input spikes at t | own spikes at t - delay_j ...] (u8 0/1, each part padded to
   64 sources) times the weights stacked the same way ([K, N], packed by
   snnkit.kernels.pack_rec_amx), exact int32 sums (integer sums in any order: the step
   kernel's integers), then the neuron update of the layer kernel. The product does not skip
   silent sources: it pays at the densities the layer's AMX path does. The own spikes are kept
   in a zero-padded buffer [T, Bp, Kn] that the tiles read directly. */
typedef struct {
    int64_t T, B, N, Kin, Kn, Ktot, np32, n_rec, Bp;
    neuron_t p;
    const uint8_t *xin; /* [T * B + AMX_ROWS, Kin] padded input spikes, or NULL (Kin 0) */
    const int8_t *wv;   /* [np32 / 16, Ktot / 4, 16, 4] */
    const int64_t *delay;
    uint8_t *sp;        /* [T, Bp, Kn] own spikes, zero-padded */
    uint8_t *spikes;    /* [T, B, N] */
    const int32_t *dense;
    void *rec_v, *rec_i, *rec_theta;
    int64_t gpi, n_groups; /* row groups (of AMX_ROWS samples) per item, in all */
} recamx_t;

/* x (row stride np32) = the sums of the item's row groups at step t, 32 columns at a time. */

static void rec_amx_sums(const recamx_t *Q, int64_t t, int64_t g0, int64_t ng, int32_t *x) {
    const int64_t gs = Q->Ktot * 16, ld = Q->np32 * 4;
    for (int64_t c = 0; c < Q->np32; c += 32) {
        const int8_t *w0 = Q->wv + c / 16 * gs;
        for (int64_t g = g0; g < g0 + ng; g++) {
            const int64_t b0 = g * AMX_ROWS;
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            const uint8_t *a = Q->Kin ? Q->xin + (t * Q->B + b0) * Q->Kin : NULL;
            rec_amx_acc(a, Q->Kin, w0, gs);
            for (int64_t j = 0; j < Q->n_rec; j++) {
                if (t < Q->delay[j]) continue;
                const uint8_t *s = Q->sp + ((t - Q->delay[j]) * Q->Bp + b0) * Q->Kn;
                const int8_t *wj = w0 + (Q->Kin + j * Q->Kn) * 16;
                rec_amx_acc(s, Q->Kn, wj, gs);
            }
            int32_t *o = x + (g - g0) * AMX_ROWS * Q->np32 + c;
            _tile_stored(0, o, ld);
            _tile_stored(1, o + 16, ld);
            _tile_stored(2, o + 16 * Q->np32, ld);
            _tile_stored(3, o + 16 * Q->np32 + 16, ld);
        }
    }
}

/* One item = gpi row groups, all steps. Scratch: x [gpi 32, np32], V, I, TH, R [gpi 32, N]. */
static void rec_amx_item(void *ctx, int64_t item, void *scratch) {
    const recamx_t *Q = (const recamx_t *)ctx;
    const neuron_t *p = &Q->p;
    const int64_t T = Q->T, B = Q->B, N = Q->N, np32 = Q->np32, Kn = Q->Kn, Bp = Q->Bp;
    const int64_t g0 = item * Q->gpi;
    const int64_t ng = Q->n_groups - g0 < Q->gpi ? Q->n_groups - g0 : Q->gpi;
    const int64_t rows = Q->gpi * AMX_ROWS;
    int32_t *x = (int32_t *)scratch, *V = x + rows * np32, *I = V + rows * N;
    int32_t *TH = I + rows * N, *R = TH + rows * N;
    for (int64_t r = 0; r < ng * AMX_ROWS; r++)
        for (int64_t c = 0; c < N; c++) {
            V[r * N + c] = ((const int32_t *)p->v_init)[c];
            I[r * N + c] = TH[r * N + c] = R[r * N + c] = 0;
        }
    amx_configure();
    for (int64_t t = 0; t < T; t++) {
        rec_amx_sums(Q, t, g0, ng, x);
        for (int64_t r = 0; r < ng * AMX_ROWS; r++) {
            const int64_t b = g0 * AMX_ROWS + r;
            if (b >= B) break;
            const int64_t o = (t * B + b) * N;
            int32_t *xr = x + r * np32;
            uint8_t *s = Q->sp + (t * Bp + b) * Kn;
            if (Q->dense)
                for (int64_t c = 0; c < N; c++) xr[c] += Q->dense[o + c];
            delayed_i32(N, p, 0, t >= 1 ? s - Bp * Kn : NULL, t >= 2 ? s - 2 * Bp * Kn : NULL,
                        xr);
            update_i32(N, p, 0, xr, V + r * N, I + r * N, TH + r * N, R + r * N, s);
            memcpy(Q->spikes + o, s, (size_t)N);
            if (Q->rec_v) memcpy((int32_t *)Q->rec_v + o, V + r * N, 4 * (size_t)N);
            if (Q->rec_i) memcpy((int32_t *)Q->rec_i + o, I + r * N, 4 * (size_t)N);
            if (Q->rec_theta) memcpy((int32_t *)Q->rec_theta + o, TH + r * N, 4 * (size_t)N);
        }
    }
    _tile_release();
}

#define REC_AMX_MAX 8 /* self projections */

/* Run one fixed-point population (int32 states) with self projections over T steps on the
   tiles (see above). wv: the stacked weights packed (snnkit.kernels.pack_rec_amx) with Kin =
   S_in rounded up to 64 rows of input weights, then per self projection N rounded up to 64;
   rec_delay[n_rec] >= 1; x: spikes from outside [T * B, S_in] (S_in 0: none); dense: other
   input [T, B, N] int32 or NULL; spikes, rec_*: as snn_layer. Returns 0, -1 when memory ran
   out, -2 for what it does not run (no AMX, bad arguments: then snn_group does). */
int snn_rec_amx(int64_t T, int64_t B, int64_t N, const neuron_t *p, uint8_t *spikes,
                void *rec_v, void *rec_i, void *rec_theta, int64_t n_rec,
                const int64_t *rec_delay, const uint8_t *x, int64_t S_in, const void *wv,
                const int32_t *dense, int n_threads) {
    if (!snn_amx_available() || n_rec < 1 || n_rec > REC_AMX_MAX || N < 1 || S_in < 0
        || B < 1 || T < 1)
        return -2;
    for (int64_t j = 0; j < n_rec; j++)
        if (rec_delay[j] < 1) return -2;
    const int64_t Kin = (S_in + 63) / 64 * 64, Kn = (N + 63) / 64 * 64;
    const int64_t n_groups = (B + AMX_ROWS - 1) / AMX_ROWS, Bp = n_groups * AMX_ROWS;
    /* the padded copies of the input and own spikes, as the layer's AMX path bounds its */
    if ((double)(T * B + AMX_ROWS) * (double)Kin > AMX_MAX_COPY
        || (double)(T * Bp) * (double)Kn > AMX_MAX_COPY)
        return -2;
    __atomic_add_fetch(&amx_runs, 1, __ATOMIC_RELAXED);
    int64_t per = (n_groups + n_threads - 1) / n_threads;
    per = per > 4 ? 4 : per; /* 4 row groups: 128 samples share each weight tile's load */
    recamx_t Q = {T, B, N, Kin, Kn, Kin + n_rec * Kn, (N + 31) / 32 * 32, n_rec, Bp, *p, NULL,
                  (const int8_t *)wv, rec_delay, NULL, spikes, dense, rec_v, rec_i, rec_theta,
                  per, n_groups};
    const int64_t rows = T * B;
    size_t sp_bytes = (size_t)(T * Bp * Kn);
    uint8_t *sp = aligned_alloc(64, (sp_bytes + 63) / 64 * 64);
    uint8_t *xp = NULL;
    int rc = sp ? 0 : -1;
    if (!rc) memset(sp, 0, sp_bytes);
    if (!rc && S_in) {
        size_t bytes = (size_t)((rows + AMX_ROWS) * Kin);
        xp = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!xp) rc = -1;
        if (!rc) {
            memset(xp + rows * Kin, 0, (size_t)(AMX_ROWS * Kin));
            pad_t P = {x, xp, S_in, Kin, rows};
            rc = parallel_for(pad_item, &P, (rows + 255) / 256, n_threads, 0);
        }
    }
    if (!rc) {
        Q.sp = sp;
        Q.xin = xp;
        const int64_t rws = per * AMX_ROWS;
        rc = parallel_for(rec_amx_item, &Q, (n_groups + per - 1) / per, n_threads,
                          (size_t)(rws * Q.np32 + 4 * rws * N) * 4);
    }
    free(xp);
    free(sp);
    return rc;
}
#else
int snn_amx_available(void) { return 0; }
int snn_amx_bf16(void) { return 0; }
int64_t snn_amx_runs(void) { return 0; }
int snn_rec_amx(int64_t T, int64_t B, int64_t N, const neuron_t *p, uint8_t *spikes, void *rec_v,
                void *rec_i, void *rec_theta, int64_t n_rec, const int64_t *rec_delay,
                const uint8_t *x, int64_t S_in, const void *wv, const int32_t *dense,
                int n_threads) {
    (void)T, (void)B, (void)N, (void)p, (void)spikes, (void)rec_v, (void)rec_i;
    (void)rec_theta, (void)n_rec, (void)rec_delay, (void)x, (void)S_in, (void)wv, (void)dense;
    (void)n_threads;
    return -2;
}
#endif
