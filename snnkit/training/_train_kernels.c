/* CPU fast path of surrogate-gradient training (snnkit/training/kernel.py builds and loads it,
   snnkit/training/fused.py drives it).

   A feed-forward network is trained population by population in three fused passes instead
   of T steps of small torch operations:

   1. forward (snn_train_forward): for every block of neurons, sample and step, the synaptic
      input from the spiking sources' event lists (the weight rows of the sources that spike,
      summed in the simulator's order, so the float sums, and so the spikes, are the
      simulator's), then the neuron update of _train_neuron.c on it, keeping per step what
      the backward pass needs (the surrogate derivative, a byte of branch flags). The input
      never leaves the first-level cache;
   2. backward (snn_train_backward, _train_neuron.c): the time-reversed recurrence of the
      gradients, giving the gradient of every step's synaptic input;
   3. weight gradients (snn_train_wgrad): for every source, the sum of the input gradients of
      the steps in which it spiked (an event-driven pass instead of a dense matrix product);
      on the tile unit where there is one (snn_train_wgrad_amx, _train_amx.c), a dense
      product of the spikes and the gradients split exactly into bf16 parts, float32 sums.

   Blocks of neurons run in parallel on the simulator's thread pool. */

#include "../_kernels.c" /* the thread pool and the spike lists of the simulator */
#include "_train_neuron.c"

/* ------------------------------------------------------------------ event sums */

/* Float32 weights are read in the parameters' own layout [S, N] (rows not padded), so the
   last vector of a row is loaded under a mask: the last row must not be read past its end.
   Integer weights are converted copies with padded rows (snnkit.kernels.pad_weights). */
#if defined(__AVX512F__)
typedef __mmask16 tmask_t;
#define TMASK(tail) ((tmask_t)((tail) >= 16 ? 0xffffu : (1u << (tail)) - 1))
#define LOADT_F32(p, m) ((vf)_mm512_maskz_loadu_ps((m), (p)))
#elif defined(__AVX2__)
typedef __m256i tmask_t;
#define TMASK(tail) \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define LOADT_F32(p, m) ((vf)_mm256_maskload_ps((p), (m)))
#else
typedef int tmask_t;
#define TMASK(tail) (tail)
static inline vf loadt_f32(const float *p, int tail) {
    vf v = {0};
    memcpy(&v, p, sizeof(float) * (size_t)tail);
    return v;
}
#define LOADT_F32(p, m) loadt_f32((p), (m))
#endif
#define LOADT_I8(p, m) ((void)(m), LOAD_I8(p))
#define LOADT_I16(p, m) ((void)(m), LOAD_I16(p))

/* out[0 .. N vectors) (+)= the sum over e of the weight row w + idx[e] * ld, for a
   compile-time N so that the accumulators stay in registers; add: continue the sums in out
   (the next projection's events follow the previous one's, as in the simulator's
   concatenated list). Float sums start at +0.0 and add the rows in list order. */
#define DEF_TACC(NAME, WT, VT, LOAD, LOADT, N)                                           \
    static __attribute__((noinline)) void NAME(const WT *restrict w, int64_t ld,        \
                                               const int32_t *restrict idx, int64_t m,  \
                                               tmask_t tm, VT *restrict out, int add) { \
        VT a[N];                                                                        \
        _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) a[k] = add ? out[k] : (VT){0}; \
        for (int64_t e = 0; e < m; e++) {                                               \
            const WT *restrict r = w + (int64_t)idx[e] * ld;                            \
            _Pragma("GCC unroll 16") for (int k = 0; k < N - 1; k++) a[k] += LOAD(r + k * VL); \
            a[N - 1] += LOADT(r + (N - 1) * VL, tm);                                    \
        }                                                                               \
        _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) out[k] = a[k];            \
    }

#define TCASE(SUF, K) case K: tacc_##SUF##_##K(w, ld, idx, m, tm, out, add); break;
#if NV == 16
#define DEF_TACC_9_16(SUF, WT, VT, LOAD, LOADT)                                         \
    DEF_TACC(tacc_##SUF##_9, WT, VT, LOAD, LOADT, 9)                                    \
    DEF_TACC(tacc_##SUF##_10, WT, VT, LOAD, LOADT, 10)                                  \
    DEF_TACC(tacc_##SUF##_11, WT, VT, LOAD, LOADT, 11)                                  \
    DEF_TACC(tacc_##SUF##_12, WT, VT, LOAD, LOADT, 12)                                  \
    DEF_TACC(tacc_##SUF##_13, WT, VT, LOAD, LOADT, 13)                                  \
    DEF_TACC(tacc_##SUF##_14, WT, VT, LOAD, LOADT, 14)                                  \
    DEF_TACC(tacc_##SUF##_15, WT, VT, LOAD, LOADT, 15)                                  \
    DEF_TACC(tacc_##SUF##_16, WT, VT, LOAD, LOADT, 16)
#define TCASES_9_16(SUF) TCASE(SUF, 9) TCASE(SUF, 10) TCASE(SUF, 11) TCASE(SUF, 12)     \
    TCASE(SUF, 13) TCASE(SUF, 14) TCASE(SUF, 15) TCASE(SUF, 16)
#else
#define DEF_TACC_9_16(SUF, WT, VT, LOAD, LOADT)
#define TCASES_9_16(SUF)
#endif

/* tacc_SUF(w, ld, idx, m, nv, tm, out, add): any 1 <= nv <= NV vectors */
#define DEF_TACC_ALL(SUF, WT, VT, LOAD, LOADT)                                           \
    DEF_TACC(tacc_##SUF##_1, WT, VT, LOAD, LOADT, 1)                                    \
    DEF_TACC(tacc_##SUF##_2, WT, VT, LOAD, LOADT, 2)                                    \
    DEF_TACC(tacc_##SUF##_3, WT, VT, LOAD, LOADT, 3)                                    \
    DEF_TACC(tacc_##SUF##_4, WT, VT, LOAD, LOADT, 4)                                    \
    DEF_TACC(tacc_##SUF##_5, WT, VT, LOAD, LOADT, 5)                                    \
    DEF_TACC(tacc_##SUF##_6, WT, VT, LOAD, LOADT, 6)                                    \
    DEF_TACC(tacc_##SUF##_7, WT, VT, LOAD, LOADT, 7)                                    \
    DEF_TACC(tacc_##SUF##_8, WT, VT, LOAD, LOADT, 8)                                    \
    DEF_TACC_9_16(SUF, WT, VT, LOAD, LOADT)                                             \
    static void tacc_##SUF(const WT *w, int64_t ld, const int32_t *idx, int64_t m, int nv, \
                           tmask_t tm, VT *out, int add) {                              \
        switch (nv) {                                                                   \
            TCASE(SUF, 1) TCASE(SUF, 2) TCASE(SUF, 3) TCASE(SUF, 4)                     \
            TCASE(SUF, 5) TCASE(SUF, 6) TCASE(SUF, 7) TCASE(SUF, 8)                     \
            TCASES_9_16(SUF)                                                            \
        }                                                                               \
    }

DEF_TACC_ALL(f32, float, vf, LOAD_F32, LOADT_F32)
DEF_TACC_ALL(i8, int8_t, vi, LOAD_I8, LOADT_I8)
DEF_TACC_ALL(i16, int16_t, vi, LOAD_I16, LOADT_I16)

/* ------------------------------------------------------------------ forward */

/* One spiking projection into the population. */
typedef struct {
    const void *w;          /* [S, ldw] weights: float32, or int8 / int16 (rows padded) */
    int64_t ldw;            /* row stride of w, in elements */
    const int64_t *offsets; /* the source's events by row (t * B + b - row0) */
    const int32_t *idx;     /* the source neuron of each event */
    int64_t delay;          /* steps */
    int64_t row0;           /* the row of offsets[0]: lists of a part of the steps */
    int64_t own;            /* from the population itself (delay >= 1): its lists are written
                               step by step as the spikes are (snn_train_forward) */
    int64_t S;              /* rows of w: the source's size */
} tproj_t;

typedef struct {
    int64_t t0, T, B, N, blk;      /* steps t0 .. t0 + T - 1 */
    int64_t tlo, thi;              /* the steps of this pass: [tlo, thi) of the T */
    int kind, n_proj;              /* weights: 0 float32, 1 int8, 2 int16 */
    int n_own;                     /* own projections (see own_sums) */
    int pass;                      /* with own projections: 1 the other inputs into xin, all
                                      steps; 2 a step, from xin and the own spikes */
    void *xin;                     /* [T, B, N] the other inputs' sums: float32 (dense
                                      added), int32 (fixed point) */
    const tproj_t *proj;
    const void *dense;             /* [T, B, N] input added to the sums, or NULL */
    tneuron_t p;
    void *v, *i, *th;              /* [B, N] state, in and out */
    int32_t *r;                    /* [B, N] refractory counters, in and out */
    void *spikes;                  /* [T, B, N] 0/1 */
    void *h;                       /* [T, B, N] dS/dv (0 when refractory) or NULL */
    uint8_t *flags;                /* [T, B, N] or NULL */
    void *vprev, *iprev;           /* [T, B, N] v and i before the step, or NULL */
    void *rec_v, *rec_i, *rec_th;  /* [T, B, N] states after the step, or NULL */
    uint8_t *bits;                 /* [T, B, nb] the spikes, a bit each (lsb first), or NULL */
    int64_t nb;                    /* bytes per row of bits: ceil(N / 16) * 2 */
    int stage;                     /* float32: each item copies its block of the other
                                      populations' weights into its scratch (stage_off on) */
    size_t stage_off;
    int64_t groups;                /* items a block: the samples in groups (a population of
                                      fewer blocks than threads) */
} tfwd_t;

/* The spikes S[0 .. n) of a block as bits, 16 per 2 bytes at out (lanes past n: 0). */
#define DEF_BITS(NAME, RT, FAST)                                                        \
    static void NAME(const RT *restrict S, int64_t n, uint8_t *restrict out) {          \
        int64_t c0 = 0;                                                                 \
        FAST                                                                            \
        for (int64_t c = c0; c < n; c += 16) {                                          \
            uint32_t m = 0;                                                             \
            const int64_t k = n - c < 16 ? n - c : 16;                                  \
            for (int64_t l = 0; l < k; l++) m |= (uint32_t)(S[c + l] != 0) << l;        \
            out[c / 8] = (uint8_t)m;                                                    \
            out[c / 8 + 1] = (uint8_t)(m >> 8);                                         \
        }                                                                               \
    }
#if defined(__AVX512F__) /* 16 spikes compared at once */
#define BITS_F32_FAST                                                                   \
    for (; c0 + 16 <= n; c0 += 16) {                                                    \
        uint16_t m = _mm512_cmp_ps_mask(_mm512_loadu_ps(S + c0), _mm512_setzero_ps(),   \
                                        _CMP_NEQ_UQ);                                   \
        memcpy(out + c0 / 8, &m, 2); /* little-endian: lsb first */                     \
    }
#else
#define BITS_F32_FAST
#endif
DEF_BITS(bits_f32, float, BITS_F32_FAST)
DEF_BITS(bits_f64, double, )

/* The event sums of step tt, sample b, columns c0 .. into acc (nv vectors: float32 or exact
   int32): every projection's events in turn, as the simulator's one concatenated list; with
   which = 1 the projections from other populations only, 2 the own ones only. */
static void row_sums(const tfwd_t *F, const tproj_t *proj, int64_t tt, int64_t b, int64_t c0,
                     int nv, tmask_t tm, void *acc, int which) {
    int add = 0;
    for (int k = 0; k < F->n_proj; k++) {
        const tproj_t *P = proj + k;
        if (tt < P->delay) continue; /* a delayed source is silent before its first step */
        if (which && (which == 2) != (P->own != 0)) continue;
        int64_t s = (tt - P->delay) * F->B + b - P->row0;
        const int32_t *idx = P->idx + P->offsets[s];
        int64_t m = P->offsets[s + 1] - P->offsets[s];
        switch (F->kind) {
            case 0: tacc_f32((const float *)P->w + c0, P->ldw, idx, m, nv, tm, (vf *)acc, add); break;
            case 1: tacc_i8((const int8_t *)P->w + c0, P->ldw, idx, m, nv, tm, (vi *)acc, add); break;
            default: tacc_i16((const int16_t *)P->w + c0, P->ldw, idx, m, nv, tm, (vi *)acc, add);
        }
        add = 1;
    }
    if (!add) memset(acc, 0, (size_t)nv * VBYTES);
}

/* Float32: the sums of the population's own spikes (self projections) into acc, in the
   simulator's order (its recurrent and step kernels): each projection summed from +0.0, the
   sums added up in projection order. Returns 0 when none arrives (acc unwritten). */
static int own_sums(const tfwd_t *F, int64_t tt, int64_t b, int64_t c0, int nv, tmask_t tm,
                    vf *acc, vf *tmp) {
    int got = 0;
    for (int k = 0; k < F->n_proj; k++) {
        const tproj_t *P = F->proj + k;
        if (!P->own || tt < P->delay) continue;
        int64_t s = (tt - P->delay) * F->B + b - P->row0;
        const int32_t *idx = P->idx + P->offsets[s];
        int64_t m = P->offsets[s + 1] - P->offsets[s];
        if (!got) {
            tacc_f32((const float *)P->w + c0, P->ldw, idx, m, nv, tm, acc, got);
        } else {
            tacc_f32((const float *)P->w + c0, P->ldw, idx, m, nv, tm, tmp, 0);
            for (int v = 0; v < nv; v++) acc[v] += tmp[v];
        }
        got = 1;
    }
    return got;
}

/* Staging (float32 weights, in the parameters' layout [S, N]): an item's block of columns
   of each projection from another population, copied once into a compact [S, ceil(n / VL) *
   VL] (zero-padded) in the item's scratch at dst, where the sums read it: the rows are
   aligned, adjacent, and in the cache when the sums start, and no padded copy of all the
   weights is made before the pass. lp: the projections on their blocks (column 0 = c0; own
   projections on their own weights, from c0). */
#define STAGE_MAX 8
static void stage_blocks(const tfwd_t *F, int64_t c0, int64_t n, float *dst, tproj_t *lp) {
    const int64_t ldb = (n + VL - 1) / VL * VL;
    for (int k = 0; k < F->n_proj; k++) {
        const tproj_t *P = F->proj + k;
        lp[k] = *P;
        if (P->own) {
            lp[k].w = (const float *)P->w + c0;
            continue;
        }
        for (int64_t j = 0; j < P->S; j++) {
            memcpy(dst + j * ldb, (const float *)P->w + j * P->ldw + c0, sizeof(float) * n);
            for (int64_t c = n; c < ldb; c++) dst[j * ldb + c] = 0;
        }
        lp[k].w = dst;
        lp[k].ldw = ldb;
        dst += P->S * ldb;
    }
}

/* One work item = one block of columns, every sample and step. Scratch: the accumulators
   (NV vectors), then (fixed point) the input in doubles. */
#define DEF_FWD(NAME, RT, ROW, SG, SGS, BITS)                                           \
    static void NAME(void *ctx, int64_t item, void *scratch) {                          \
        const tfwd_t *F = (const tfwd_t *)ctx;                                          \
        const tneuron_t *p = &F->p;                                                     \
        const int64_t N = F->N, c0 = item / F->groups * F->blk;                         \
        const int64_t g = item % F->groups, b0 = F->B * g / F->groups;                  \
        const int64_t b1 = F->B * (g + 1) / F->groups;                                  \
        const int64_t n = N - c0 < F->blk ? N - c0 : F->blk;                            \
        const int nv = (int)((n + VL - 1) / VL);                                        \
        const tmask_t tm = TMASK((int)(n - (nv - 1) * VL));                             \
        const int general = p->has_alpha || p->has_bias || p->refractory || p->adaptive \
                            || p->delayed;                                              \
        RT *x = sizeof(RT) == 4 ? (RT *)scratch : (RT *)((char *)scratch + NV * VBYTES); \
        tproj_t lp[STAGE_MAX]; /* staged: the projections on the copied blocks */       \
        const tproj_t *PR = F->proj;                                                    \
        int64_t wc = c0; /* the weights' first column */                               \
        if (F->stage && F->pass != 2) {                                                 \
            stage_blocks(F, c0, n, (float *)((char *)scratch + F->stage_off), lp);      \
            PR = lp;                                                                    \
            wc = 0;                                                                     \
        }                                                                               \
        for (int64_t t = F->tlo; t < F->thi; t++) { /* then b: adjacent rows written */ \
            for (int64_t b = b0; b < b1; b++) {                                         \
                RT *V = (RT *)F->v + b * N + c0, *I = (RT *)F->i + b * N + c0;          \
                RT *TH = (RT *)F->th + b * N + c0;                                      \
                int32_t *R = F->r + b * N + c0;                                         \
                const int64_t o = (t * F->B + b) * N + c0;                              \
                const int64_t tt = F->t0 + t;                                           \
                if (F->pass == 1) { /* the other inputs only, every step */             \
                    row_sums(F, PR, tt, b, wc, nv, tm, scratch, 1);                     \
                    if (sizeof(RT) == 8)                                                \
                        memcpy((int32_t *)F->xin + o, scratch, sizeof(int32_t) * n);    \
                    else if (F->dense)                                                  \
                        for (int64_t c = 0; c < n; c++) ((float *)F->xin)[o + c] =      \
                            ((const float *)scratch)[c] + ((const float *)F->dense)[o + c]; \
                    else                                                                \
                        memcpy((float *)F->xin + o, scratch, sizeof(float) * n);        \
                    continue;                                                           \
                }                                                                       \
                if (F->pass == 2 && sizeof(RT) == 4) {                                  \
                    /* the own spikes' sums added last, own + (others + dense), as the  \
                       simulator */                                                     \
                    const float *xi = (const float *)F->xin + o;                        \
                    vf *own = (vf *)((char *)scratch + NV * VBYTES);                    \
                    if (own_sums(F, tt, b, c0, nv, tm, own, own + NV))                  \
                        for (int64_t c = 0; c < n; c++) x[c] = ((const RT *)own)[c] + xi[c]; \
                    else                                                                \
                        memcpy(x, xi, sizeof(float) * n);                               \
                } else {                                                                \
                    /* integers: exact in any order (int32 as the simulator's) */        \
                    row_sums(F, PR, tt, b, wc, nv, tm, scratch, F->pass == 2 ? 2 : 0);  \
                    const int32_t *a = (const int32_t *)scratch;                        \
                    if (F->pass == 2)                                                   \
                        for (int64_t c = 0; c < n; c++) x[c] = (RT)(int32_t)((uint32_t)a[c] \
                            + (uint32_t)((const int32_t *)F->xin)[o + c]);              \
                    else if (sizeof(RT) == 8)                                           \
                        for (int64_t c = 0; c < n; c++) x[c] = (RT)a[c];                \
                    if (F->dense)                                                       \
                        for (int64_t c = 0; c < n; c++) x[c] += ((const RT *)F->dense)[o + c]; \
                }                                                                       \
                RT *S = (RT *)F->spikes + o, *H = F->h ? (RT *)F->h + o : NULL;         \
                uint8_t *FL = F->flags ? F->flags + o : NULL;                           \
                if (F->vprev) memcpy((RT *)F->vprev + o, V, sizeof(RT) * n);            \
                if (F->iprev) memcpy((RT *)F->iprev + o, I, sizeof(RT) * n);            \
                if (H && FL) {                                                          \
                    if (general) ROW##_gen_s(n, p, c0, x, V, I, TH, R, S, H, FL);       \
                    else ROW##_lif_s(n, p, c0, x, V, I, TH, R, S, H, FL);               \
                    SG(p->surrogate, p->slope, (RT)p->lsb, H, FL, n);                   \
                } else if (H) { /* the spike in the sign of h */                        \
                    if (general) ROW##_gen_h(n, p, c0, x, V, I, TH, R, S, H, FL);       \
                    else ROW##_lif_h(n, p, c0, x, V, I, TH, R, S, H, FL);               \
                    SGS(p->surrogate, p->slope, (RT)p->lsb, H, S, n);                   \
                } else {                                                                \
                    if (general) ROW##_gen(n, p, c0, x, V, I, TH, R, S, H, FL);         \
                    else ROW##_lif(n, p, c0, x, V, I, TH, R, S, H, FL);                 \
                }                                                                       \
                if (F->rec_v) memcpy((RT *)F->rec_v + o, V, sizeof(RT) * n);            \
                if (F->rec_i) memcpy((RT *)F->rec_i + o, I, sizeof(RT) * n);            \
                if (F->rec_th) memcpy((RT *)F->rec_th + o, TH, sizeof(RT) * n);         \
                if (F->bits) BITS(S, n, F->bits + (t * F->B + b) * F->nb + c0 / 8);     \
            }                                                                           \
        }                                                                               \
    }

DEF_FWD(fwd_f32, float, row_f32, sg_f32, sgs_f32, bits_f32)
DEF_FWD(fwd_f64, double, row_f64, sg_f64, sgs_f64, bits_f64)

static int64_t tlist_bits(const uint8_t *x, int64_t n, int64_t stride, int32_t *out);

/* Steps t0 .. t0 + T - 1 of one population: the synaptic input from the n_proj spiking
   projections (kind: 0 float32 weights with float32 arithmetic, 1 / 2 int8 / int16 weights
   with the fixed point in doubles, dbl = 1) plus dense, then the neuron update. v, i, th, r:
   [B, N] state, updated in place; spikes, h, flags, vprev, iprev, rec_*: [T, B, N] out (all
   but spikes may be NULL); bits: [T, B, ceil(N / 16) * 2] the spikes as bits, or NULL.
   With own projections (self projections, delay >= 1), the steps run one after the other,
   all blocks of a step before the next, and after each step its spikes are listed from bits
   (own_off [(t0 + T) * B + 1] by row from step 0, listed there up to step t0 already;
   own_idx: room for every spike) for the own projections, whose tproj_t point there (bits
   NULL: the lists of these steps are there already, a recomputation); the other inputs are
   summed first, for all steps (as without own projections: each block's weights stay in
   cache over the steps), into xin [T, B, N] (float32, or int32 with dbl). stage (float32,
   at most STAGE_MAX projections): the blocks of the other populations' weights are copied
   to each item's scratch first (stage_blocks), S x blk floats per projection and thread.
   Returns 0, -1 when memory ran out, -2 for a bad kind or arguments. */
int snn_train_forward(int dbl, int kind, int64_t t0, int64_t T, int64_t B, int64_t N,
                      int n_proj, const tproj_t *proj, const void *dense, const tneuron_t *p,
                      void *v, void *i, void *th, int32_t *r, void *spikes, void *h,
                      uint8_t *flags, void *vprev, void *iprev, void *rec_v, void *rec_i,
                      void *rec_th, uint8_t *bits, int64_t *own_off, int32_t *own_idx,
                      void *xin, int stage, int n_threads) {
    if ((kind == 0) == (dbl != 0) || kind < 0 || kind > 2) return -2;
    int64_t blk = scan_block(N, n_threads);
    if (blk > BLOCK) blk = BLOCK;
    int n_own = 0;
    for (int k = 0; k < n_proj; k++) {
        if (!proj[k].own) continue;
        if (proj[k].delay < 1 || proj[k].row0 || proj[k].offsets != own_off) return -2;
        n_own++;
    }
    tfwd_t F = {t0, T, B, N, blk, 0, T, kind, n_proj, n_own, 0, xin, proj, dense, *p, v, i, th,
                r, spikes, h, flags, vprev, iprev, rec_v, rec_i, rec_th, bits,
                (N + 15) / 16 * 2, 0, 0, 1};
    void (*fn)(void *, int64_t, void *) = dbl ? fwd_f64 : fwd_f32;
    const size_t plain = 3 * NV * VBYTES + sizeof(double) * BLOCK_MAX;
    size_t scratch = plain;
    if (stage && kind == 0 && n_proj <= STAGE_MAX) {
        F.stage = 1;
        F.stage_off = (plain + 63) / 64 * 64;
        scratch = F.stage_off;
        for (int k = 0; k < n_proj; k++)
            if (!proj[k].own) scratch += sizeof(float) * (size_t)(proj[k].S * blk);
    }
    /* a population of fewer blocks than threads: its samples in as many groups (each
       sample's update is its own; the sums and spikes the same on any number of threads) */
    const int64_t blocks = (N + blk - 1) / blk;
    if (blocks < n_threads) F.groups = (n_threads + blocks - 1) / blocks < B
                                           ? (n_threads + blocks - 1) / blocks : B;
    const int64_t items = blocks * F.groups;
    if (!n_own) return parallel_for(fn, &F, items, n_threads, scratch);
    if (!own_off || !own_idx || !xin) return -2;
    F.pass = 1; /* the other inputs of all steps first, block by block (weights in cache) */
    int rc = parallel_for(fn, &F, items, n_threads, scratch);
    if (rc) return rc;
    F.pass = 2;
    if (bits && !t0) own_off[0] = 0;
    for (int64_t t = 0; t < T; t++) {
        F.tlo = t;
        F.thi = t + 1;
        rc = parallel_for(fn, &F, items, n_threads, plain); /* no staging */
        if (rc) return rc;
        if (bits) /* list the step's spikes (rows of the lists: steps from 0) */
            for (int64_t s = t * B; s < t * B + B; s++) {
                const int64_t q = t0 * B + s;
                own_off[q + 1] = own_off[q] + tlist_bits(bits + s * F.nb, N, 1, own_idx + own_off[q]);
            }
    }
    return 0;
}

/* ------------------------------------------------------------------ event lists */

/* Spike lists of float rows (the spikes of a trained population, 0.0 / 1.0): as the
   simulator's byte lists, without a conversion pass. kind 1: float32, 2: float64, 3: bits
   (rows of ceil(S / 16) * 2 bytes, as snn_train_forward writes them). */
typedef struct {
    int kind;
    const void *x;
    int64_t n_samples, S, stride;
    int64_t *offsets;
    int32_t *idx;
} flists_t;

/* Write j * stride for every nonzero x[j]; returns the count (branch-free where AVX-512
   can compress, as list_spikes). */
static int64_t list_f32(const float *x, int64_t n, int64_t stride, int32_t *out) {
    int64_t c = 0, j = 0;
#if defined(__AVX512F__)
    const __m512i step = _mm512_set1_epi32((int32_t)(16 * stride));
    __m512i offs = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int32_t)stride));
    for (; j + 16 <= n; j += 16, offs = _mm512_add_epi32(offs, step)) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), _mm512_setzero_ps(),
                                         _CMP_NEQ_UQ);
        int k = __builtin_popcount(m);
        _mm512_mask_storeu_epi32(out + c, (__mmask16)((1u << k) - 1),
                                 _mm512_maskz_compress_epi32(m, offs));
        c += k;
    }
#endif
    for (; j < n; j++)
        if (x[j] != 0) out[c++] = (int32_t)(j * stride);
    return c;
}

static int64_t list_f64(const double *x, int64_t n, int64_t stride, int32_t *out) {
    int64_t c = 0;
    for (int64_t j = 0; j < n; j++)
        if (x[j] != 0) out[c++] = (int32_t)(j * stride);
    return c;
}

/* The same from bits (16 per 2 bytes, lsb first; n columns). */
static int64_t tlist_bits(const uint8_t *x, int64_t n, int64_t stride, int32_t *out) {
    int64_t c = 0;
    for (int64_t g = 0; g * 16 < n; g++) {
        uint32_t m = (uint32_t)x[2 * g] | (uint32_t)x[2 * g + 1] << 8;
#if defined(__AVX512F__)
        const __m512i j = _mm512_mullo_epi32(
            _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                               15), _mm512_set1_epi32((int32_t)(16 * g))),
            _mm512_set1_epi32((int32_t)stride));
        int k = __builtin_popcount(m);
        _mm512_mask_storeu_epi32(out + c, (__mmask16)((1u << k) - 1),
                                 _mm512_maskz_compress_epi32((__mmask16)m, j));
        c += k;
#else
        for (; m; m &= m - 1) out[c++] = (int32_t)((16 * g + __builtin_ctz(m)) * stride);
#endif
    }
    return c;
}

static int64_t tcount_bits(const uint8_t *x, int64_t n) {
    int64_t c = 0, nb = (n + 15) / 16 * 2, j = 0;
    for (; j + 8 <= nb; j += 8) {
        uint64_t w;
        memcpy(&w, x + j, 8);
        c += __builtin_popcountll(w);
    }
    for (; j < nb; j++) c += __builtin_popcount(x[j]);
    return c;
}

#define DEF_FLIST(NAME, RT, LIST)                                                        \
    static void NAME(void *c, int64_t item, void *scratch) {                            \
        (void)scratch;                                                                  \
        flists_t *L = (flists_t *)c;                                                    \
        int64_t s1 = (item + 1) * 64 < L->n_samples ? (item + 1) * 64 : L->n_samples;   \
        for (int64_t s = item * 64; s < s1; s++) {                                      \
            const RT *x = (const RT *)L->x + s * L->S;                                  \
            if (!L->idx) {                                                              \
                int64_t n = 0;                                                          \
                for (int64_t j = 0; j < L->S; j++) n += x[j] != 0;                      \
                L->offsets[s + 1] = n;                                                  \
            } else {                                                                    \
                LIST(x, L->S, L->stride, L->idx + L->offsets[s]);                       \
            }                                                                           \
        }                                                                               \
    }
DEF_FLIST(flist_f32, float, list_f32)
DEF_FLIST(flist_f64, double, list_f64)

static void blist(void *c, int64_t item, void *scratch) { /* rows of bits */
    (void)scratch;
    flists_t L = *(flists_t *)c;
    const int64_t nb = (L.S + 15) / 16 * 2;
    int64_t s1 = (item + 1) * 64 < L.n_samples ? (item + 1) * 64 : L.n_samples;
    for (int64_t s = item * 64; s < s1; s++) {
        const uint8_t *x = (const uint8_t *)L.x + s * nb;
        if (!L.idx)
            L.offsets[s + 1] = tcount_bits(x, L.S);
        else
            tlist_bits(x, L.S, L.stride, L.idx + L.offsets[s]);
    }
}

static void (*const flist[])(void *, int64_t, void *) = {NULL, flist_f32, flist_f64, blist};

/* offsets[s + 1] = offsets[s] + spikes in row s of x [n_samples, S] (kind 0: bytes 0/1, 3: bits,
   1: float32, 2: float64); returns the total, or -1 when memory ran out. */
int64_t snn_train_count(int kind, const void *x, int64_t n_samples, int64_t S,
                        int64_t *offsets, int n_threads) {
    offsets[0] = 0;
    int rc;
    if (kind == 0) {
        lists_t L = {x, n_samples, S, 0, offsets, NULL, 64};
        rc = parallel_for(count_item, &L, (n_samples + 63) / 64, n_threads, 0);
    } else {
        flists_t L = {kind, x, n_samples, S, 0, offsets, NULL};
        rc = parallel_for(flist[kind], &L, (n_samples + 63) / 64, n_threads, 0);
    }
    if (rc) return -1;
    for (int64_t s = 0; s < n_samples; s++) offsets[s + 1] += offsets[s];
    return offsets[n_samples];
}

/* idx[offsets[s] ..] = j * stride for every spiking source j of row s. */
int snn_train_fill(int kind, const void *x, int64_t n_samples, int64_t S, int64_t stride,
                   const int64_t *offsets, int32_t *idx, int n_threads) {
    if (kind == 0) {
        lists_t L = {x, n_samples, S, stride, (int64_t *)offsets, idx, 64};
        return parallel_for(fill_item, &L, (n_samples + 63) / 64, n_threads, 0);
    }
    flists_t L = {kind, x, n_samples, S, stride, (int64_t *)offsets, idx};
    return parallel_for(flist[kind], &L, (n_samples + 63) / 64, n_threads, 0);
}

/* ------------------------------------------------------------------ weight gradients */

typedef struct {
    int accumulate;
    int64_t S, N, chunk, n_chunks, ld;
    const int64_t *toff; /* [S + 1] */
    const int32_t *tidx; /* row offsets into g */
    const float *g;      /* [rows, ld] input gradients */
    float *dw;           /* [S, N] */
} twgrad_t;

/* The events of the target rows [r0, r1) of a projection whose source lags dr rows (its
   delay times B), by source: toff [S + 1], and tidx = target row - r0 for every source row s
   in [r0 - dr, r1 - dr), s >= 0, in which source j spiked (rows ascending), from the source's
   lists by row (offsets, idx = j). Returns 0, or -1 when memory ran out. */
int snn_train_transpose(int64_t r0, int64_t r1, int64_t dr, int64_t S, const int64_t *offsets,
                        const int32_t *idx, int64_t *toff, int32_t *tidx) {
    memset(toff, 0, sizeof(int64_t) * (size_t)(S + 1));
    int64_t s0 = r0 - dr < 0 ? 0 : r0 - dr, s1 = r1 - dr;
    if (s1 <= s0) return 0;
    for (int64_t e = offsets[s0]; e < offsets[s1]; e++) toff[idx[e] + 1]++;
    for (int64_t j = 0; j < S; j++) toff[j + 1] += toff[j];
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(S + 1));
    if (!pos) return -1;
    memcpy(pos, toff, sizeof(int64_t) * (size_t)(S + 1));
    for (int64_t s = s0; s < s1; s++) {
        const int32_t o = (int32_t)(s + dr - r0);
        for (int64_t e = offsets[s]; e < offsets[s + 1]; e++) tidx[pos[idx[e]]++] = o;
    }
    free(pos);
    return 0;
}

#define WG_COLS (BLOCK < 128 ? BLOCK : 128) /* columns per weight-gradient item: 1600 rows
                                               x 128 stay in L2 */

/* One item = (block of WG_COLS columns, chunk of sources): each source's weight gradient
   row is the sum of the gradient rows of the steps in which it spiked, accumulated in
   registers from +0.0 (the forward's event sum, transposed), then written or added once
   (not started from dw's row: its load, a miss, would stall the sums). */
static void wgrad_item(void *ctx, int64_t item, void *scratch) {
    const twgrad_t *E = (const twgrad_t *)ctx;
    int64_t blk = item / E->n_chunks, ch = item % E->n_chunks;
    int64_t c0 = blk * WG_COLS, n = E->N - c0 < WG_COLS ? E->N - c0 : WG_COLS;
    int nv = (int)((n + VL - 1) / VL);
    const tmask_t tm = TMASK((int)(n - (nv - 1) * VL));
    int64_t j1 = (ch + 1) * E->chunk < E->S ? (ch + 1) * E->chunk : E->S;
    const float *sum = (const float *)scratch;
    for (int64_t j = ch * E->chunk; j < j1; j++) {
        float *d = E->dw + j * E->N + c0;
        if (j + 1 < j1) /* the next row of dw, a cache miss, arrives while this one sums */
            for (int64_t c = 0; c < n; c += 16) __builtin_prefetch(d + E->N + c, 1);
        tacc_f32(E->g + c0, E->ld, E->tidx + E->toff[j], E->toff[j + 1] - E->toff[j], nv, tm,
                 (vf *)scratch, 0);
        if (E->accumulate)
            for (int64_t c = 0; c < n; c++) d[c] += sum[c];
        else
            memcpy(d, sum, sizeof(float) * (size_t)n);
    }
}

/* dw [S, N] = x^T g (accumulate: +=): row j = the sum of the rows of g [rows, ld >= N] listed
   for source j by snn_train_transpose. Returns 0, or -1 when memory ran out. */
int snn_train_wgrad(int64_t S, int64_t N, int64_t ld, const int64_t *toff, const int32_t *tidx,
                    const float *g, float *dw, int accumulate, int n_threads) {
    int64_t chunk = 32;
    twgrad_t E = {accumulate != 0, S, N, chunk, (S + chunk - 1) / chunk, ld, toff, tidx, g, dw};
    return parallel_for(wgrad_item, &E, (N + WG_COLS - 1) / WG_COLS * E.n_chunks, n_threads,
                        (size_t)NV * VBYTES);
}

/* The weight gradient of a projection into few targets (N <= WG_ROWS_MAX), without
   transposing the source's lists: for each target row r in [r0, r1) (g's row r - r0), the
   row is added to dw's row of every source that spiked in source row r - dr >= 0 (lists by
   row, offsets / idx). dw [S, N] is zeroed first unless accumulate. Returns 0, -1 when
   memory ran out, or -2 when N is too large. */
#define WG_ROWS_MAX 32
int snn_train_wgrad_rows(int64_t r0, int64_t r1, int64_t dr, int64_t S, int64_t N,
                         int64_t ld, const int64_t *offsets, const int32_t *idx,
                         const float *g, float *dw, int accumulate) {
    if (N > WG_ROWS_MAX) return -2;
#if defined(__AVX512F__)
    if (N <= 16) { /* the rows of dw as whole aligned vectors in a scratch, one per source */
        const __mmask16 m = (__mmask16)((1u << N) - 1);
        __m512 *acc = aligned_alloc(64, 64 * (size_t)(S > 0 ? S : 1));
        if (!acc) return -1;
        for (int64_t j = 0; j < S; j++)
            acc[j] = accumulate ? _mm512_maskz_loadu_ps(m, dw + j * N) : _mm512_setzero_ps();
        for (int64_t r = r0 < dr ? dr : r0; r < r1; r++) {
            const int64_t q = r - dr;
            const __m512 v = _mm512_maskz_loadu_ps(m, g + (r - r0) * ld);
            for (int64_t e = offsets[q]; e < offsets[q + 1]; e++)
                acc[idx[e]] = _mm512_add_ps(acc[idx[e]], v);
        }
        for (int64_t j = 0; j < S; j++) _mm512_mask_storeu_ps(dw + j * N, m, acc[j]);
        free(acc);
        return 0;
    }
#endif
    if (!accumulate) memset(dw, 0, sizeof(float) * (size_t)(S * N));
    for (int64_t r = r0 < dr ? dr : r0; r < r1; r++) {
        const int64_t q = r - dr;
        float v[WG_ROWS_MAX];
        memcpy(v, g + (r - r0) * ld, sizeof(float) * (size_t)N);
        for (int64_t e = offsets[q]; e < offsets[q + 1]; e++) {
            float *restrict d = dw + (int64_t)idx[e] * N;
            for (int64_t c = 0; c < N; c++) d[c] += v[c];
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ tile unit */

#include "_train_amx.c"
