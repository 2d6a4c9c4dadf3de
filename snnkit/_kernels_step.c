/* Step-by-step runs of a group of populations: recurrent, self and backward projections, and
   STDP (included by _kernels.c; snnkit/kernels.py run_group calls snn_group).

   A group is a set of populations whose spikes feed each other (a strongly connected part of
   the network), or one population with plastic inputs. One call runs all T steps of it; the
   batch samples are independent (each learns on its own copy of the plastic weights), so
   each thread runs whole samples. Per sample and step, in network order, each population sums
   the weight rows of the sources whose spikes arrive now (event-driven, as the layer kernel:
   the source's spikes at t - delay, which for a group member were written a step or more
   before, or earlier in this step for delay 0; cpu_path also passes sparse fixed-point
   inputs from earlier populations this way), adds the rest of the input from outside the
   group (summed beforehand by the layer kernel, all steps at once), and runs the update of
   _kernels.c; then STDP runs on the group's plastic projections (plasticity.stdp_step),
   touching only the rows of arriving sources and the columns of spiking targets (the first
   step touches every synapse: weights may start outside the bounds, which the rule clamps).

   Integer sums and the integer STDP are exact: the fixed point is bit-exact with the torch
   path. Float sums differ from it in summation order only; the float STDP is the same float32
   operations, one by one. */

typedef struct {
    int64_t N;
    neuron_t p;
    uint8_t *spikes;                 /* [T, B, N] output */
    const void *ext;                 /* [T, B, N] input from outside the group, or NULL */
    void *rec_v, *rec_i, *rec_theta; /* [T, B, N] or NULL */
} gpop_t;

typedef struct {
    int64_t target;     /* index of the target in the group's populations */
    const uint8_t *src; /* [T, B, S] spikes of the source */
    int64_t S, Np, delay;
    int kind;           /* weights: 0 float32, 1 int8, 2 int16 */
    void *w;            /* [S, Np] (kernels.pad_weights); plastic: [B, S, Np], learning in place */
    int plastic, nearest, soft, shift_hard, shift_soft;
    double fa_plus, fa_minus, fpre_decay, fpost_decay, fw_min, fw_max; /* float backend */
    int64_t ia_plus, ia_minus, ipre_decay, ipost_decay, iw_min, iw_max; /* fixed point */
    const uint8_t *mask; /* [S, Np]: 1 where the synapse learns */
    void *rec_w;         /* [T, B, N, S] weights after every step, or NULL */
} gproj_t;

typedef struct {
    int64_t T, B, n_pops, n_projs;
    int state;            /* 0 float32, 1 int32, 2 int64 */
    int decay_bits;       /* fixed point: decays, traces */
    int64_t trace_one, trace_hi;
    const gpop_t *pops;
    const gproj_t *projs;
    int64_t max_s, max_n; /* largest source and target sizes */
    size_t pop_bytes[64], trace_bytes; /* scratch layout */
} group_t;

#define GROUP_MAX_POPS 64
#define GROUP_MAX_PROJS 256

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }
static int64_t padded(int64_t n) { return (n + BLOCK - 1) / BLOCK * BLOCK + 2 * VL; }

/* acc_i8, reading no column past the nv vectors: acc_i8 on AVX-512BW reads vectors in pairs
   (the odd one's partner in the row padding or the matrix's spare tail), but a sample's
   plastic weights [S, Np] end where the next sample's begin, or the allocation does. */
static void acc_i8_exact(const int8_t *w, const int32_t *idx, int64_t n, int nv, vi *out) {
#if defined(__AVX512BW__)
    if (nv & 1) {
        vi a = {0};
        for (int64_t e = 0; e < n; e++) a += LOAD_I8(w + idx[e] + (nv - 1) * VL);
        out[nv - 1] += a;
        if (--nv == 0) return;
    }
#endif
    acc_i8(w, idx, n, nv, out);
}

/* x[0..N) += the rows of w at idx[0..n) (row offsets), block by block. */
static void sum_rows(int kind, const void *w, const int32_t *idx, int64_t n, int64_t N,
                     void *x) {
    for (int64_t c0 = 0; c0 < N; c0 += BLOCK) {
        int nv = (int)(((N - c0 < BLOCK ? N - c0 : BLOCK) + VL - 1) / VL);
        switch (kind) {
            case 0: acc_f32((const float *)w + c0, idx, n, nv, (vf *)((float *)x + c0)); break;
            case 1: acc_i8_exact((const int8_t *)w + c0, idx, n, nv, (vi *)((int32_t *)x + c0));
                break;
            default: acc_i16((const int16_t *)w + c0, idx, n, nv, (vi *)((int32_t *)x + c0));
        }
    }
}

/* The indices of the nonzero bytes of x[0..n) (list_spikes with stride 1: branch-free). */
static int64_t list_all(const uint8_t *x, int64_t n, int32_t *out) {
    return list_spikes(x, n, 1, out);
}

/* ------------------------------------------------------------------ STDP */

/* The columns of spiking targets in one row of 8- or 16-bit weights, a cache line (L = 64 or
   32 columns) at a time: the spiking targets listed as the lines they fall in (cidx: the
   line's first column, counted from the row's start, which may lie before it) with their
   lanes (cmask), each line row[c] = clamp(row[c] + u) in its lanes, saturating in the
   weights' type. Exact for |u| < 2^7 (2^15) and lo <= hi within the type (saturating first
   is a clamp to a wider range); the scalar loop it replaces takes one add and two selects
   per spiking target. Lines of the weights, not L-column chunks of the row: rows start
   anywhere in a line (a row of 400 int16 is 12.5 lines), and a vector across two lines
   costs two accesses.
   rows_*: the row of an arriving source, row[n] = clamp(row[n] - ds[n]) for the targets n
   that did not spike (post[n] = 0) and, unless mrow is NULL, learn (mrow[n]), a line at a
   time, saturating: exact for |ds| < 2^7 (2^15). */
#if defined(__AVX512BW__)
#define VEC_STDP 1
#define DEF_VEC_STDP(SUF, T, L, MASK, SET1, ADDS, SUBS, MAX, MIN, LOADZ, STORE, BYTES, TEST)  \
    static inline __attribute__((always_inline)) void cols_##SUF(                           \
        T *row, const int32_t *cidx, const uint64_t *cmask, int64_t nch, int u, int lo,     \
        int hi) {                                                                           \
        const __m512i vu = SET1((T)u), vlo = SET1((T)lo), vhi = SET1((T)hi);               \
        for (int64_t i = 0; i < nch; i++) {                                                 \
            T *p = row + cidx[i];                                                           \
            const MASK k = (MASK)cmask[i]; /* masked: nothing outside the row is touched */ \
            const __m512i v = MIN(MAX(ADDS(LOADZ(k, p), vu), vlo), vhi);                    \
            STORE(p, k, v);                                                                 \
        }                                                                                   \
    }                                                                                       \
    /* the same for an arriving source's row: + (u - ds[n]) (exact for |u| + |ds| within  \
       the type) */                                                                         \
    static inline __attribute__((always_inline)) void colsd_##SUF(                          \
        T *row, const int32_t *cidx, const uint64_t *cmask, int64_t nch, int u,             \
        const T *ds, int lo, int hi) {                                                      \
        const __m512i vu = SET1((T)u), vlo = SET1((T)lo), vhi = SET1((T)hi);               \
        for (int64_t i = 0; i < nch; i++) {                                                 \
            T *p = row + cidx[i];                                                           \
            const MASK k = (MASK)cmask[i];                                                  \
            const __m512i e = SUBS(vu, LOADZ(k, ds + cidx[i]));                             \
            STORE(p, k, MIN(MAX(ADDS(LOADZ(k, p), e), vlo), vhi));                          \
        }                                                                                   \
    }                                                                                       \
    static inline __attribute__((always_inline)) void rows_##SUF(                           \
        T *row, const uint8_t *mrow, const uint8_t *post, const T *ds, int64_t N, int lo,   \
        int hi) {                                                                           \
        const __m512i vlo = SET1((T)lo), vhi = SET1((T)hi);                                 \
        /* lanes outside [0, N) masked off: not read (no fault), not written */             \
        for (int64_t c = -(int64_t)((uintptr_t)row / sizeof(T) % L); c < N; c += L) {      \
            MASK k = c < 0 ? (MASK)(~(MASK)0 << -c) : ~(MASK)0;                             \
            if (N - c < L) k &= ((MASK)1 << (N - c)) - 1;                                   \
            const __typeof__(BYTES(k, post)) pb = BYTES(k, post + c);                      \
            k &= ~TEST(pb, pb);                                                             \
            if (mrow) {                                                                     \
                const __typeof__(BYTES(k, mrow)) mb = BYTES(k, mrow + c);                   \
                k &= TEST(mb, mb);                                                          \
            }                                                                               \
            const __m512i v = SUBS(LOADZ(k, row + c), LOADZ(k, ds + c));                    \
            STORE(row + c, k, MIN(MAX(v, vlo), vhi));                                       \
        }                                                                                   \
    }
DEF_VEC_STDP(i16, int16_t, 32, __mmask32, _mm512_set1_epi16, _mm512_adds_epi16,
             _mm512_subs_epi16, _mm512_max_epi16, _mm512_min_epi16, _mm512_maskz_loadu_epi16,
             _mm512_mask_storeu_epi16, _mm256_maskz_loadu_epi8, _mm256_test_epi8_mask)
DEF_VEC_STDP(i8, int8_t, 64, __mmask64, _mm512_set1_epi8, _mm512_adds_epi8,
             _mm512_subs_epi8, _mm512_max_epi8, _mm512_min_epi8, _mm512_maskz_loadu_epi8,
             _mm512_mask_storeu_epi8, _mm512_maskz_loadu_epi8, _mm512_test_epi8_mask)
#else
#define VEC_STDP 0
#define DEF_VEC_STDP(SUF, T)                                                                \
    static inline void cols_##SUF(T *row, const int32_t *cidx, const uint64_t *cmask,       \
                                  int64_t nch, int u, int lo, int hi) {                     \
        (void)row, (void)cidx, (void)cmask, (void)nch, (void)u, (void)lo, (void)hi;         \
    }                                                                                       \
    static inline void colsd_##SUF(T *row, const int32_t *cidx, const uint64_t *cmask,      \
                                   int64_t nch, int u, const T *ds, int lo, int hi) {       \
        (void)row, (void)cidx, (void)cmask, (void)nch, (void)u, (void)ds, (void)lo, (void)hi; \
    }                                                                                       \
    static inline void rows_##SUF(T *row, const uint8_t *mrow, const uint8_t *post,         \
                                  const T *ds, int64_t N, int lo, int hi) {                 \
        (void)row, (void)mrow, (void)post, (void)ds, (void)N, (void)lo, (void)hi;           \
    }
DEF_VEC_STDP(i16, int16_t)
DEF_VEC_STDP(i8, int8_t)
#endif
#define VEC_LINES 64 /* most lines (phases) a row may start at: 64 for bytes */

/* The spiking targets lpost[0..npost) (ascending) of a row starting `phase` weights into a
   line of L, as the lines for cols_*; returns their number. */
static int64_t lines_of(const int32_t *lpost, int64_t npost, int phase, int L, int32_t *cidx,
                        uint64_t *cmask) {
    int64_t nch = 0;
    for (int64_t k = 0; k < npost; k++) {
        const int32_t q = lpost[k] + phase, c = q / L * L - phase;
        if (!nch || cidx[nch - 1] != c) cidx[nch] = c, cmask[nch++] = 0;
        cmask[nch - 1] |= (uint64_t)1 << (q % L);
    }
    return nch;
}

/* One STDP step of one sample (plasticity.stdp_step): pre = arrivals [S], post = target
   spikes [N], w = the sample's weights [S, Np], traces xp [S], xq [N]. Each step visits the
   columns of spiking targets and the rows of arriving sources; the other synapses keep their
   weights (dw = 0, and they are within the bounds), except on the `first` step, which clamps
   them into the bounds (weights may start outside). With hard bounds the rows are vector
   loops: dw = -down[n] (the float rule's 0 * up - down * 1), computed in ROWT with down
   saturated (ds) where that gives the same clamped weight. */
#define DEF_STDP(NAME, WT, TT, ROWT, PRE, DEC, SC, TSAT, DSAT, ONE, A_PLUS, A_MINUS, PRE_D,    \
                 POST_D, WMIN, WMAX)                                                       \
    /* row[n] = clamp(row[n] + u) for the spiking targets n (lo <= hi: two selects) */     \
    static inline __attribute__((always_inline)) void NAME##_cols(WT *restrict row,       \
                                                      const int32_t *restrict lpost,       \
                                                      int64_t npost, ROWT u, ROWT lo,      \
                                                      ROWT hi) {                           \
        for (int64_t k = 0; k < npost; k++) {                                              \
            ROWT nw = (ROWT)row[lpost[k]] + u;                                             \
            nw = nw < lo ? lo : nw;                                                        \
            row[lpost[k]] = (WT)(nw > hi ? hi : nw);                                       \
        }                                                                                  \
    }                                                                                      \
    static void NAME(const group_t *G, const gproj_t *P, int64_t N, WT *restrict w,        \
                     const uint8_t *restrict pre, const uint8_t *restrict post,             \
                     TT *restrict xp, TT *restrict xq, int first, int32_t *lpre,            \
                     int32_t *lpost, TT *restrict up, TT *restrict down,                    \
                     ROWT *restrict ds, int32_t *lrow, uint8_t *restrict act,               \
                     int32_t *cidx, uint64_t *cmask, void *dsv, int all_plastic) {          \
        PRE                                                                                \
        const int64_t S = P->S, Np = P->Np;                                                \
        const uint8_t *mask = P->mask;                                                     \
        const TT a_plus = A_PLUS, a_minus = A_MINUS, pre_d = PRE_D, post_d = POST_D;       \
        const TT wmin = WMIN, wmax = WMAX, one = ONE; /* locals: G may alias the arrays */ \
        const int sh_h = P->shift_hard, sh_s = P->shift_soft;                              \
        (void)G, (void)sh_h, (void)sh_s;                                                   \
        for (int64_t m = 0; m < S; m++) xp[m] = DEC(xp[m], pre_d);                         \
        for (int64_t n = 0; n < N; n++) xq[n] = DEC(xq[n], post_d);                        \
        int64_t npre = list_all(pre, S, lpre), npost = list_all(post, N, lpost);           \
        if (first || npre || npost) {                                                      \
            if (!P->soft) {                                                                \
                for (int64_t m = 0; m < S; m++) up[m] = SC(xp[m], a_plus, sh_h);           \
                for (int64_t n = 0; n < N; n++) down[n] = SC(xq[n], a_minus, sh_h);        \
            }                                                                              \
            if (first) { /* the synapses of no arrival and no spike: w = clamp(w + 0) */   \
                const ROWT lo = (ROWT)wmin, hi = (ROWT)wmax;                               \
                for (int64_t m = 0; m < S; m++) {                                          \
                    WT *restrict row = w + m * Np;                                         \
                    const uint8_t *restrict mrow = mask + m * Np;                          \
                    for (int64_t n = 0; !pre[m] && n < N; n++) {                           \
                        ROWT nw = (ROWT)row[n];                                            \
                        nw = nw < lo ? lo : (nw > hi ? hi : nw);                           \
                        row[n] = (mrow[n] & (post[n] ^ 1)) ? (WT)nw : row[n];              \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
            if (P->soft) {                                                                 \
                for (int64_t k = 0; k < npre; k++)                                         \
                    for (int64_t n = 0; n < N; n++)                                        \
                        if (mask[lpre[k] * Np + n] && !post[n])                            \
                            STDP_SYN(WT, TT, SC, lpre[k], n, 0, 1);                        \
                for (int64_t k = 0; k < npost; k++)                                        \
                    for (int64_t m = 0; m < S; m++)                                        \
                        if (mask[m * Np + lpost[k]])                                       \
                            STDP_SYN(WT, TT, SC, m, lpost[k], 1, pre[m]);                  \
            } else {                                                                       \
                /* the columns of spiking targets (up - pre * down), row after row: the    \
                   rows stream through the cache, a column at a time would not. After the  \
                   first step every plastic weight is within the bounds, so a row with     \
                   up = 0 and no arrival keeps its weights (clamp(w + 0) = w): only the     \
                   others are visited (integer traces below a_plus's resolution scale to 0: \
                   most rows in fixed point, few in float) */                              \
                int64_t nrow = 0;                                                          \
                if (npost && !first) {                                                     \
                    for (int64_t m = 0; m < S; m++) act[m] = (up[m] != 0) | pre[m];         \
                    nrow = list_all(act, S, lrow);                                         \
                } else if (npost) {                                                        \
                    for (int64_t m = 0; m < S; m++) lrow[m] = (int32_t)m;                  \
                    nrow = S;                                                              \
                }                                                                          \
                /* 8- or 16-bit weights, bounds within them: whole lines of columns */   \
                const int wv = VEC_STDP && (sizeof(WT) == 1 || sizeof(WT) == 2);           \
                const int64_t vmax = sizeof(WT) == 1 ? 127 : 32767, L = 64 / sizeof(WT);   \
                const int w16 = wv && wmin >= -vmax - 1 && wmax <= vmax;                   \
                const int vec16 = w16 && nrow;                                             \
                /* down saturated: ds, and in the weights' type (dsv) where it fits */     \
                int fits = w16;                                                            \
                int64_t dmax = 0;                                                          \
                if (npre) {                                                                \
                    for (int64_t n = 0; n < N; n++) {                                      \
                        ds[n] = DSAT(down[n]);                                             \
                        const int64_t a = ds[n] < 0 ? -(int64_t)ds[n] : (int64_t)ds[n];    \
                        dmax = a > dmax ? a : dmax;                                        \
                    }                                                                      \
                    fits &= dmax <= vmax;                                                  \
                    for (int64_t n = 0; fits && sizeof(WT) == 1 && n < N; n++)             \
                        ((int8_t *)dsv)[n] = (int8_t)ds[n];                                \
                    for (int64_t n = 0; fits && sizeof(WT) == 2 && n < N; n++)             \
                        ((int16_t *)dsv)[n] = (int16_t)ds[n];                              \
                }                                                                          \
                /* the rows of arriving sources, but their spiking targets' columns       \
                   (visited next): those rows are still in L1 from this step's sums */     \
                if (npre) {                                                                \
                    const ROWT lo = (ROWT)wmin, hi = (ROWT)wmax;                           \
                    if (fits && sizeof(WT) == 1) {                                         \
                        const int8_t *d8 = (const int8_t *)dsv;                            \
                        for (int64_t k = 0; k < npre; k++)                                 \
                            rows_i8((int8_t *)(w + (int64_t)lpre[k] * Np),                 \
                                    all_plastic ? NULL : mask + (int64_t)lpre[k] * Np,     \
                                    post, d8, N, (int)wmin, (int)wmax);                    \
                    } else if (fits) {                                                     \
                        const int16_t *d16 = (const int16_t *)dsv;                         \
                        for (int64_t k = 0; k < npre; k++)                                 \
                            rows_i16((int16_t *)(w + (int64_t)lpre[k] * Np),               \
                                     all_plastic ? NULL : mask + (int64_t)lpre[k] * Np,    \
                                     post, d16, N, (int)wmin, (int)wmax);                  \
                    }                                                                      \
                    for (int64_t k = 0; !fits && k < npre; k++) { /* rows, but spiking targets */ \
                        WT *restrict row = w + (int64_t)lpre[k] * Np;                      \
                        const uint8_t *restrict mrow = mask + (int64_t)lpre[k] * Np;       \
                        for (int64_t n = 0; n < N; n++) {                                  \
                            ROWT nw = (ROWT)row[n] - ds[n];                                \
                            nw = nw < lo ? lo : (nw > hi ? hi : nw);                       \
                            row[n] = (mrow[n] & (post[n] ^ 1)) ? (WT)nw : row[n];          \
                        }                                                                  \
                    }                                                                      \
                }                                                                          \
                /* lines_of per phase (where a row starts in its line), as rows need it */ \
                const int64_t lcap = N / 32 + 2;                                           \
                int64_t nch[VEC_LINES];                                                    \
                for (int k = 0; vec16 && k < VEC_LINES; k++) nch[k] = -1;                  \
                /* the common case, every visited row on the vector path, tested once:   \
                   the loop then does nothing else */                                      \
                int64_t r0 = 0;                                                            \
                if (vec16 && all_plastic && (fits || !npre)) {                             \
                    TT umax = 0;                                                           \
                    for (int64_t m = 0; m < S; m++) {                                      \
                        const TT a = up[m] < 0 ? -up[m] : up[m];                           \
                        umax = a > umax ? a : umax;                                        \
                    }                                                                      \
                    for (; (int64_t)umax + dmax <= vmax && r0 < nrow; r0++) {              \
                        const int64_t m = lrow[r0];                                        \
                        WT *restrict row = w + m * Np;                                     \
                        const int ph = (int)((uintptr_t)row / sizeof(WT) % L);             \
                        if (nch[ph] < 0)                                                   \
                            nch[ph] = lines_of(lpost, npost, ph, (int)L, cidx + ph * lcap, \
                                               cmask + ph * lcap);                         \
                        const int32_t *ci = cidx + ph * lcap;                              \
                        const uint64_t *cm = cmask + ph * lcap;                            \
                        if (sizeof(WT) == 1 && pre[m])                                     \
                            colsd_i8((int8_t *)row, ci, cm, nch[ph], (int)up[m],           \
                                     (const int8_t *)dsv, (int)wmin, (int)wmax);           \
                        else if (sizeof(WT) == 1)                                          \
                            cols_i8((int8_t *)row, ci, cm, nch[ph], (int)up[m], (int)wmin, \
                                    (int)wmax);                                            \
                        else if (pre[m])                                                   \
                            colsd_i16((int16_t *)row, ci, cm, nch[ph], (int)up[m],         \
                                      (const int16_t *)dsv, (int)wmin, (int)wmax);         \
                        else                                                               \
                            cols_i16((int16_t *)row, ci, cm, nch[ph], (int)up[m],          \
                                     (int)wmin, (int)wmax);                                \
                    }                                                                      \
                }                                                                          \
                for (int64_t r = r0; r < nrow; r++) {                                      \
                    const int64_t m = lrow[r];                                             \
                    WT *restrict row = w + m * Np;                                         \
                    const uint8_t *restrict mrow = mask + m * Np;                          \
                    const TT u = up[m];                                                    \
                    const int p = pre[m];                                                  \
                    const int64_t ua = vec16 ? (u < 0 ? -(int64_t)u : (int64_t)u) : 0;     \
                    /* no mask; no arrival, or one with |u| + |ds| within the type */       \
                    if (vec16 && all_plastic && ua + (p ? dmax : 0) <= vmax && (!p || fits)) { \
                        const int ph = (int)((uintptr_t)row / sizeof(WT) % L);             \
                        const int32_t *ci = cidx + ph * lcap;                              \
                        const uint64_t *cm = cmask + ph * lcap;                            \
                        if (nch[ph] < 0)                                                   \
                            nch[ph] = lines_of(lpost, npost, ph, (int)L, cidx + ph * lcap, \
                                               cmask + ph * lcap);                         \
                        if (sizeof(WT) == 1 && p)                                          \
                            colsd_i8((int8_t *)row, ci, cm, nch[ph], (int)u,               \
                                     (const int8_t *)dsv, (int)wmin, (int)wmax);           \
                        else if (sizeof(WT) == 1)                                          \
                            cols_i8((int8_t *)row, ci, cm, nch[ph], (int)u, (int)wmin,     \
                                    (int)wmax);                                            \
                        else if (p)                                                        \
                            colsd_i16((int16_t *)row, ci, cm, nch[ph], (int)u,             \
                                      (const int16_t *)dsv, (int)wmin, (int)wmax);         \
                        else                                                               \
                            cols_i16((int16_t *)row, ci, cm, nch[ph], (int)u, (int)wmin,   \
                                     (int)wmax);                                           \
                        continue;                                                          \
                    }                                                                      \
                    if (all_plastic && !p) { /* no mask, no arrival: the common case */    \
                        /* in ROWT: up saturated (DSAT) clamps to the same weight */       \
                        NAME##_cols(row, lpost, npost, DSAT(u), (ROWT)wmin, (ROWT)wmax);   \
                        continue;                                                          \
                    }                                                                      \
                    if (all_plastic) {                                                     \
                        for (int64_t k = 0; k < npost; k++) {                              \
                            const int64_t n = lpost[k];                                    \
                            TT nw = (TT)row[n] + (u - down[n]);                            \
                            row[n] = (WT)(nw < wmin ? wmin : (nw > wmax ? wmax : nw));     \
                        }                                                                  \
                        continue;                                                          \
                    }                                                                      \
                    for (int64_t k = 0; k < npost; k++) {                                  \
                        const int64_t n = lpost[k];                                        \
                        TT nw = (TT)row[n] + (p ? u - down[n] : u);                        \
                        if (mrow[n]) row[n] = (WT)(nw < wmin ? wmin : (nw > wmax ? wmax : nw)); \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        if (P->nearest) {                                                                  \
            for (int64_t m = 0; m < S; m++) xp[m] = pre[m] ? one : xp[m];                  \
            for (int64_t n = 0; n < N; n++) xq[n] = post[n] ? one : xq[n];                 \
        } else {                                                                           \
            for (int64_t m = 0; m < S; m++) xp[m] = TSAT(xp[m] + (pre[m] ? one : (TT)0));  \
            for (int64_t n = 0; n < N; n++) xq[n] = TSAT(xq[n] + (post[n] ? one : (TT)0)); \
        }                                                                                  \
    }

/* One synapse (m, n) with post / pre flags: hard bounds take up[m] and down[n], soft bounds
   compute them from the weight (both from the weight before this step's change). */
#define STDP_SYN(WT, TT, SC, m, n, po, pr)                                                 \
    do {                                                                                   \
        WT *wp = w + (m) * Np + (n);                                                       \
        TT wv = (TT)*wp, u, d, dw;                                                         \
        if (P->soft) {                                                                     \
            u = (po) ? SC(xp[m] * (wmax - wv), a_plus, sh_s) : (TT)0;                      \
            d = (pr) ? SC(xq[n] * (wv - wmin), a_minus, sh_s) : (TT)0;                     \
        } else {                                                                           \
            u = (po) ? up[m] : (TT)0;                                                      \
            d = (pr) ? down[n] : (TT)0;                                                    \
        }                                                                                  \
        dw = (po) ? ((pr) ? u - d : u) : ((pr) ? -d : (TT)0);                              \
        TT nw = wv + dw;                                                                   \
        *wp = (WT)(nw < wmin ? wmin : (nw > wmax ? wmax : nw));                            \
    } while (0)

#define F_DEC(x, d) ((x) * (d))
#define F_SC(x, a, sh) ((x) * (a))
#define F_TSAT(x) (x)
#define F_DSAT(x) (x)
#define I_PRE                                                                              \
    const int D = G->decay_bits;                                                           \
    const int64_t half = (int64_t)1 << (D - 1), t_hi = G->trace_hi;
#define I_DEC(x, d) (((x) * (d) + half) >> D)
#define I_SC(x, a, sh) (((x) * (a) + (((int64_t)1 << (sh)) >> 1)) >> (sh))
#define I_TSAT(x) ((x) < 0 ? 0 : ((x) > t_hi ? t_hi : (x)))
/* down (or up) in int32: a larger one clamps to w_min (w_max) all the same (|w| < 2^15) */
#define I_DSAT(x) ((int32_t)((x) > (1 << 30) ? (1 << 30) : ((x) < -(1 << 30) ? -(1 << 30) : (x))))

DEF_STDP(stdp_f32, float, float, float, , F_DEC, F_SC, F_TSAT, F_DSAT, 1.0f,
         (float)P->fa_plus, (float)P->fa_minus, (float)P->fpre_decay, (float)P->fpost_decay,
         (float)P->fw_min, (float)P->fw_max)
DEF_STDP(stdp_i16, int16_t, int64_t, int32_t, I_PRE, I_DEC, I_SC, I_TSAT, I_DSAT,
         G->trace_one, P->ia_plus, P->ia_minus, P->ipre_decay, P->ipost_decay, P->iw_min,
         P->iw_max)
DEF_STDP(stdp_i8, int8_t, int64_t, int32_t, I_PRE, I_DEC, I_SC, I_TSAT, I_DSAT,
         G->trace_one, P->ia_plus, P->ia_minus, P->ipre_decay, P->ipost_decay, P->iw_min,
         P->iw_max)

/* ------------------------------------------------------------------ one sample */

/* Scratch of one sample: per population its sums, input, v, i, theta and refractory
   counters (padded); the spike list; per plastic projection its traces, then the STDP
   temporaries. */
#define KIND_BYTES(kind) ((kind) == 0 ? 4 : (kind) == 1 ? 1 : 2) /* weights: f32, i8, i16 */
#define DEF_GROUP_ITEM(NAME, ST, SUMT, TT, WT, ROWT, UPD, DELAYED, STDP, STDP8)            \
    static void NAME(void *ctx, int64_t b, void *scratch) {                                \
        const group_t *G = (const group_t *)ctx;                                           \
        const int64_t T = G->T, B = G->B;                                                  \
        char *sp = (char *)scratch;                                                        \
        SUMT *xs[GROUP_MAX_POPS];                                                          \
        ST *x[GROUP_MAX_POPS], *V[GROUP_MAX_POPS], *I[GROUP_MAX_POPS], *TH[GROUP_MAX_POPS]; \
        int32_t *R[GROUP_MAX_POPS];                                                        \
        for (int64_t k = 0; k < G->n_pops; k++) {                                          \
            const gpop_t *P = G->pops + k;                                                 \
            int64_t np = padded(P->N);                                                     \
            char *q = sp;                                                                  \
            xs[k] = (SUMT *)q; q += round64(sizeof(SUMT) * np);                            \
            x[k] = sizeof(ST) == sizeof(SUMT) ? (ST *)xs[k] : (ST *)q;                     \
            if (sizeof(ST) != sizeof(SUMT)) q += round64(sizeof(ST) * np);                 \
            V[k] = (ST *)q; q += round64(sizeof(ST) * np);                                 \
            I[k] = (ST *)q; q += round64(sizeof(ST) * np);                                 \
            TH[k] = (ST *)q; q += round64(sizeof(ST) * np);                                \
            R[k] = (int32_t *)q;                                                           \
            sp += G->pop_bytes[k];                                                         \
            for (int64_t c = 0; c < P->N; c++) {                                           \
                V[k][c] = ((const ST *)P->p.v_init)[c];                                    \
                I[k][c] = TH[k][c] = 0;                                                    \
                R[k][c] = 0;                                                               \
            }                                                                              \
        }                                                                                  \
        int32_t *idx = (int32_t *)sp;                                                      \
        sp += round64(sizeof(int32_t) * (G->max_s + 16));                                  \
        TT *traces = (TT *)sp;                                                             \
        memset(traces, 0, G->trace_bytes);                                                 \
        sp += G->trace_bytes;                                                              \
        int32_t *lpre = (int32_t *)sp;                                                     \
        sp += round64(sizeof(int32_t) * G->max_s);                                         \
        int32_t *lpost = (int32_t *)sp;                                                    \
        sp += round64(sizeof(int32_t) * G->max_n);                                         \
        TT *up = (TT *)sp;                                                                 \
        sp += round64(sizeof(TT) * (G->max_s > G->max_n ? G->max_s : G->max_n));           \
        TT *down = (TT *)sp;                                                               \
        sp += round64(sizeof(TT) * (G->max_s > G->max_n ? G->max_s : G->max_n));           \
        void *ds = sp; /* STDP: the rows' saturated down (ROWT [max_n]) */                  \
        sp += round64(sizeof(TT) * G->max_n);                                              \
        uint8_t *zeros = (uint8_t *)sp; /* the arrivals before step `delay` */             \
        memset(zeros, 0, (size_t)G->max_s);                                                \
        sp += round64(G->max_s);                                                           \
        int32_t *lrow = (int32_t *)sp; /* STDP: the rows it visits */                      \
        sp += round64(sizeof(int32_t) * G->max_s);                                         \
        uint8_t *act = (uint8_t *)sp;                                                      \
        sp += round64(G->max_s);                                                           \
        int32_t *cidx = (int32_t *)sp; /* STDP: lines_of's lists, per phase */            \
        sp += round64(sizeof(int32_t) * VEC_LINES * (G->max_n / 32 + 2));                  \
        uint64_t *cmask = (uint64_t *)sp;                                                  \
        sp += round64(sizeof(uint64_t) * VEC_LINES * (G->max_n / 32 + 2));                 \
        void *dsv = sp; /* STDP: ds in the weights' type, for rows_* */                    \
        uint8_t all_plastic[GROUP_MAX_PROJS];                                              \
        for (int64_t j = 0; j < G->n_projs && j < GROUP_MAX_PROJS; j++) {                  \
            const gproj_t *Q = G->projs + j;                                               \
            int all = Q->plastic;                                                          \
            for (int64_t m = 0; all && m < Q->S; m++)                                      \
                for (int64_t n = 0; n < G->pops[Q->target].N; n++)                        \
                    all &= Q->mask[m * Q->Np + n];                                         \
            all_plastic[j] = (uint8_t)all;                                                 \
        }                                                                                  \
        for (int64_t t = 0; t < T; t++) {                                                  \
            for (int64_t k = 0; k < G->n_pops; k++) {                                      \
                const gpop_t *P = G->pops + k;                                             \
                const int64_t N = P->N, o = (t * B + b) * N;                               \
                memset(xs[k], 0, sizeof(SUMT) * padded(N));                                \
                for (int64_t j = 0; j < G->n_projs; j++) {                                 \
                    const gproj_t *Q = G->projs + j;                                       \
                    if (Q->target != k || t < Q->delay) continue;                          \
                    const uint8_t *row = Q->src + ((t - Q->delay) * B + b) * Q->S;         \
                    int64_t n = list_spikes(row, Q->S, Q->Np, idx);                        \
                    if (!n) continue;                                                      \
                    const char *w = (const char *)Q->w;                                    \
                    if (Q->plastic)                                                        \
                        w += (size_t)b * Q->S * Q->Np * KIND_BYTES(Q->kind);               \
                    sum_rows(Q->kind, w, idx, n, N, xs[k]);                                \
                }                                                                          \
                if (P->ext) {                                                              \
                    const ST *e = (const ST *)P->ext + o;                                  \
                    for (int64_t c = 0; c < N; c++) x[k][c] = (ST)xs[k][c] + e[c];         \
                } else if (sizeof(ST) != sizeof(SUMT)) {                                   \
                    for (int64_t c = 0; c < N; c++) x[k][c] = (ST)xs[k][c];                \
                }                                                                          \
                DELAYED(N, &P->p, 0, t >= 1 ? P->spikes + o - B * N : NULL,                \
                        t >= 2 ? P->spikes + o - 2 * B * N : NULL, x[k]);                  \
                UPD(N, &P->p, 0, x[k], V[k], I[k], TH[k], R[k], P->spikes + o);        \
                if (P->rec_v) memcpy((ST *)P->rec_v + o, V[k], sizeof(ST) * N);            \
                if (P->rec_i) memcpy((ST *)P->rec_i + o, I[k], sizeof(ST) * N);            \
                if (P->rec_theta) memcpy((ST *)P->rec_theta + o, TH[k], sizeof(ST) * N);   \
            }                                                                              \
            TT *tr = traces;                                                               \
            for (int64_t j = 0; j < G->n_projs; j++) {                                     \
                const gproj_t *Q = G->projs + j;                                           \
                if (!Q->plastic) continue;                                                 \
                const gpop_t *P = G->pops + Q->target;                                     \
                const int64_t N = P->N, S = Q->S;                                          \
                const uint8_t *pre = t >= Q->delay                                         \
                    ? Q->src + ((t - Q->delay) * B + b) * S : zeros;                       \
                void *w = (char *)Q->w + (size_t)b * S * Q->Np * KIND_BYTES(Q->kind);      \
                TT *tq = tr + round64(sizeof(TT) * S) / sizeof(TT);                        \
                /* integer weights: 8 or 16 bits (kind), one rule */                       \
                if (Q->kind == 1)                                                          \
                    STDP8(G, Q, N, w, pre, P->spikes + (t * B + b) * N, tr, tq, t == 0,    \
                          lpre, lpost, up, down, (ROWT *)ds, lrow, act, cidx, cmask, dsv,  \
                          all_plastic[j]);                                                 \
                else                                                                       \
                    STDP(G, Q, N, w, pre, P->spikes + (t * B + b) * N, tr, tq, t == 0,     \
                         lpre, lpost, up, down, (ROWT *)ds, lrow, act, cidx, cmask, dsv,   \
                         all_plastic[j]);                                                  \
                if (Q->rec_w && Q->kind == 1) {                                            \
                    int8_t *r = (int8_t *)Q->rec_w + (t * B + b) * N * S;                  \
                    const int8_t *wk = (const int8_t *)w;                                  \
                    for (int64_t n = 0; n < N; n++)                                        \
                        for (int64_t m = 0; m < S; m++) r[n * S + m] = wk[m * Q->Np + n];  \
                } else if (Q->rec_w) {                                                     \
                    WT *r = (WT *)Q->rec_w + (t * B + b) * N * S;                          \
                    const WT *wk = (const WT *)w;                                          \
                    for (int64_t n = 0; n < N; n++)                                        \
                        for (int64_t m = 0; m < S; m++) r[n * S + m] = wk[m * Q->Np + n];  \
                }                                                                          \
                tr = tq + round64(sizeof(TT) * N) / sizeof(TT);                            \
            }                                                                              \
        }                                                                                  \
    }

DEF_GROUP_ITEM(group_f32, float, float, float, float, float, update_f32, delayed_f32, stdp_f32,
               stdp_f32)
DEF_GROUP_ITEM(group_i32, int32_t, int32_t, int64_t, int16_t, int32_t, update_i32, delayed_i32,
               stdp_i16, stdp_i8)
DEF_GROUP_ITEM(group_i64, int64_t, int32_t, int64_t, int16_t, int32_t, update_i64, delayed_i64,
               stdp_i16, stdp_i8)

/* Run a group over T steps for B samples (see the top of this file). pops: its populations in
   network order; projs: every projection into them that is summed here (from the group, or
   plastic). state: 0 float32, 1 int32, 2 int64 (then weights sum in int32 and widen).
   Returns 0, -1 when memory ran out, -2 for bad arguments. */
int snn_group(int64_t T, int64_t B, int state, int64_t n_pops, const gpop_t *pops,
              int64_t n_projs, const gproj_t *projs, int decay_bits, int64_t trace_one,
              int64_t trace_hi, int n_threads) {
    if (n_pops < 1 || n_pops > GROUP_MAX_POPS || n_projs > GROUP_MAX_PROJS || state < 0
        || state > 2)
        return -2;
    group_t G = {T, B, n_pops, n_projs, state, decay_bits, trace_one, trace_hi, pops, projs,
                 1, 1, {0}, 0};
    size_t st = state == 2 ? 8 : 4, tt = state == 0 ? 4 : 8, bytes = 0;
    for (int64_t k = 0; k < n_pops; k++) {
        int64_t np = padded(pops[k].N);
        G.pop_bytes[k] = round64(4 * np) + (st != 4 ? round64(st * np) : 0)
                         + 3 * round64(st * np) + round64(4 * np);
        bytes += G.pop_bytes[k];
        if (pops[k].N > G.max_n) G.max_n = pops[k].N;
    }
    for (int64_t j = 0; j < n_projs; j++) {
        if (projs[j].target < 0 || projs[j].target >= n_pops) return -2;
        if (projs[j].S > G.max_s) G.max_s = projs[j].S;
        if (projs[j].plastic)
            G.trace_bytes += round64(tt * projs[j].S) + round64(tt * pops[projs[j].target].N);
    }
    bytes += round64(4 * (G.max_s + 16)) + G.trace_bytes + round64(4 * G.max_s)
             + round64(4 * G.max_n) + 2 * round64(tt * (G.max_s > G.max_n ? G.max_s : G.max_n))
             + round64(tt * G.max_n) + 2 * round64(G.max_s) + round64(4 * G.max_s)
             + round64(4 * VEC_LINES * (G.max_n / 32 + 2))
             + round64(8 * VEC_LINES * (G.max_n / 32 + 2)) + round64(2 * G.max_n);
    void (*item)(void *, int64_t, void *) = state == 0 ? group_f32
                                            : state == 1 ? group_i32 : group_i64;
    return parallel_for(item, &G, B, n_threads, bytes);
}

/* ------------------------------------------------------------------ float recurrent, batch-blocked */

/* One float population whose only step-by-step inputs are its own spikes (self projections,
   delay >= 1), as snntorch's RLeaky imports, for 8 or more samples (snn_rec_f32). snn_group
   sums the recurrent rows sample by sample from the whole [N, Np] matrix (4 MB for 1000
   neurons: past L2, every row a page apart) and takes the input from outside summed
   beforehand into a [T, B, N] buffer (26 MB written and read back). Here a group of samples
   runs together, as item_f32_bb does for the layers: per step the spikes of step t - delay
   of every sample in the group, summed two vectors of columns at a time (the weights laid
   out in slabs [N, 2 VL], contiguous: kernels.slabs), eight samples interleaved, each slab read once
   a step for the whole group; that vector's neuron update right after its sums. The input
   spikes are summed the same way, slab by slab, for a few steps at a time into a small
   buffer that stays in cache. Every sum is still its sample's rows in the same order from
   zero, the recurrent projections one after another, then + (input sums + dense input), as
   snn_group adds them: bit for bit the same spikes. */
#define REC_MAX 8        /* self projections */
#define REC_CHUNK (1 << 22) /* bytes of input sums per group of steps: 16 of rleaky's; 1 MB (4
   steps) streamed its 3 MB of input weights through L2 every 4 steps, evicting the recurrent
   ones: 2 to 8 MB measured ~9% faster */

typedef struct {
    int64_t T, B, N, nvt;  /* nvt: vectors of columns */
    neuron_t p;
    uint8_t *spikes;       /* [T, B, N] */
    void *rec_v, *rec_i, *rec_theta;
    int64_t n_rec;
    const float *const *rw; /* [n_rec] of [nvt, N, VL] slabs */
    const int64_t *delay;  /* [n_rec] */
    int64_t S_in;          /* spike inputs from outside (0: none) */
    const float *iw;       /* [nvt, S_in, VL] slabs */
    const int64_t *ioff;   /* [T * B + 1] */
    const int32_t *iidx;
    const float *dense;    /* [T, B, N] or NULL */
    int64_t group, tc;     /* samples per item, steps per input chunk */
    int parts;             /* the columns in parts over torch's OpenMP team, all samples
                              (see snn_rec_f32); 0: the samples in groups, an item each */
    int *bar;              /* parts: the step barrier's count and generation */
    size_t bytes;          /* scratch a thread */
    int failed;
} rec_t;

/* All parts of a step done (one thread each, all of the team's running): the last one in
   starts the next generation. */
static void rec_barrier(int *bar, int n) {
    const int gen = __atomic_load_n(bar + 1, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(bar, 1, __ATOMIC_ACQ_REL) == n) {
        __atomic_store_n(bar, 0, __ATOMIC_RELAXED);
        __atomic_store_n(bar + 1, gen + 1, __ATOMIC_RELEASE);
        return;
    }
    for (int spins = 0; __atomic_load_n(bar + 1, __ATOMIC_ACQUIRE) == gen; spins++) {
        if (spins < 4096)
            __builtin_ia32_pause();
        else
            sched_yield();
    }
}

/* x[r * RW VL + h VL] (h < RW) = the sums of sample r's event rows (idx: offsets into w) of
   w [S, RW VL] (RW vectors of columns a row: one offset load and the loop's work for all),
   for the group's nb samples, REC_G interleaved; each sum its rows in order from zero, as
   bsums_f32's. pf: pf_n bytes to prefetch along the way (REC_PF), or NULL. */
#ifndef REC_W
#define REC_W 2
#endif
#define REC_G (16 / REC_W) /* samples side by side: 16 accumulators */
/* Cache lines of the next slab pair prefetched (into L2) per round of the event loop: the
   4 MB of rleaky's recurrent weights come from L3 each step, in random row order that the
   hardware prefetchers do not follow; streamed ahead, ~5% off the float rleaky's run (2 to 6
   lines measured alike, 8 slower). */
#ifndef REC_PF
#define REC_PF 4
#endif
static void bsums2_f32(const float *restrict w, const int32_t *restrict idx,
                       const int64_t *restrict off, int64_t nb, float *restrict x,
                       const char *pf, int64_t pf_n) {
    int64_t r = 0, pp = 0;
    for (; r + REC_G <= nb; r += REC_G) {
        const int32_t *ip[REC_G];
        int64_t ne[REC_G], m = INT64_MAX;
        vf a[REC_G][REC_W];
        _Pragma("GCC unroll 16") for (int g = 0; g < REC_G; g++) {
            ip[g] = idx + off[r + g];
            ne[g] = off[r + g + 1] - off[r + g];
            m = ne[g] < m ? ne[g] : m;
            _Pragma("GCC unroll 16") for (int h = 0; h < REC_W; h++) a[g][h] = (vf){0};
        }
        int64_t e = 0;
        for (; e < m; e++) {
            if (REC_PF && pp < pf_n) {
                _Pragma("GCC unroll 16") for (int u = 0; u < REC_PF; u++)
                    __builtin_prefetch(pf + pp + 64 * u, 0, 2);
                pp += 64 * REC_PF;
            }
            _Pragma("GCC unroll 16") for (int g = 0; g < REC_G; g++) {
                const float *restrict row = w + ip[g][e];
                _Pragma("GCC unroll 16") for (int h = 0; h < REC_W; h++)
                    a[g][h] += LOAD_F32(row + h * VL);
            }
        }
        _Pragma("GCC unroll 16") for (int g = 0; g < REC_G; g++) {
            for (int64_t f = e; f < ne[g]; f++)
                _Pragma("GCC unroll 16") for (int h = 0; h < REC_W; h++)
                    a[g][h] += LOAD_F32(w + ip[g][f] + h * VL);
            _Pragma("GCC unroll 16") for (int h = 0; h < REC_W; h++)
                *(vf *)(x + (r + g) * REC_W * VL + h * VL) = a[g][h];
        }
    }
    for (; r < nb; r++) {
        const int32_t *i0 = idx + off[r];
        vf a0[REC_W];
        _Pragma("GCC unroll 16") for (int h = 0; h < REC_W; h++) a0[h] = (vf){0};
        for (int64_t e = 0; e < off[r + 1] - off[r]; e++)
            _Pragma("GCC unroll 16") for (int h = 0; h < REC_W; h++)
                a0[h] += LOAD_F32(w + i0[e] + h * VL);
        _Pragma("GCC unroll 16") for (int h = 0; h < REC_W; h++)
            *(vf *)(x + r * REC_W * VL + h * VL) = a0[h];
    }
}

/* Group item (parts = 1) or part item of parts, all samples (parts > 1). */
static void rec_run(const rec_t *Q, int64_t item, int64_t parts, void *scratch) {
    const neuron_t *p = &Q->p;
    const int64_t T = Q->T, B = Q->B, N = Q->N, nvt = Q->nvt, G = Q->group, Tc = Q->tc;
    const int64_t b0 = parts > 1 ? 0 : item * G, nb = B - b0 < G ? B - b0 : G, step = B * N;
    /* the slab pairs of this item: all, or its part's */
    const int64_t nvp = (nvt + REC_W - 1) / REC_W, part = parts > 1 ? item : 0;
    const int64_t pp0 = nvp * part / parts, pp1 = nvp * (part + 1) / parts;
    const int64_t k0 = REC_W * pp0, k1 = REC_W * pp1 < nvt ? REC_W * pp1 : nvt;
    const int64_t sv = G * VL; /* one vector of columns for the group */
    float *xin = (float *)scratch;                       /* [Tc, nvt, G, VL] */
    float *xs = xin + (Q->S_in ? Tc * nvt * sv : 0);     /* [G, 2 VL] */
    float *tmp = xs + REC_W * sv, *V = tmp + REC_W * sv;        /* V, I, TH, R: [nvt, G, VL] */
    float *I = V + nvt * sv, *TH = I + nvt * sv;
    int32_t *R = (int32_t *)(TH + nvt * sv);
    int64_t *roff = (int64_t *)(R + nvt * sv);           /* [n_rec, G + 1] */
    int32_t *ridx = (int32_t *)(roff + Q->n_rec * (G + 1)); /* [n_rec, G * N + 16] */
    const int64_t ri = G * N + 16;
    layer_t L = {T, B, N, 0, 0, NULL, NULL, NULL, NULL, *p, Q->spikes, NULL,
                 Q->rec_v, Q->rec_i, Q->rec_theta, 0, 0, 0};
    (void)L; /* read by the fused update only (BB_FUSED builds) */
    for (int64_t k = k0; k < k1; k++) /* the part's state only: it updates no other */
        for (int64_t r = 0; r < nb; r++)
            for (int j = 0; j < VL; j++) {
                int64_t c = k * VL + j, o = (k * G + r) * VL + j;
                V[o] = c < N ? ((const float *)p->v_init)[c] : 0;
                I[o] = TH[o] = 0;
                R[o] = 0;
            }
    const int fused = BB_FUSED && PLAIN_LIF(p);
    for (int64_t t = 0; t < T; t++) {
        const int64_t tt = t % Tc;
        if (Q->S_in && tt == 0) /* the input sums of the next Tc steps, slab by slab */
            for (int64_t k = k0; k < k1; k++)
                for (int64_t u = t; u < T && u < t + Tc; u++)
                    bsums_f32(Q->iw + k * Q->S_in * VL, Q->S_in, Q->iidx,
                              Q->ioff + u * B + b0, nb, 1, xin + ((u - t) * nvt + k) * sv, VL);
        int64_t active[REC_MAX], na = 0;
        for (int64_t j = 0; j < Q->n_rec; j++) {
            if (t < Q->delay[j]) continue;
            int64_t *off = roff + j * (G + 1);
            int32_t *idx = ridx + j * ri;
            off[0] = 0;
            for (int64_t r = 0; r < nb; r++)
                off[r + 1] = off[r] + list_spikes_spare( /* 16 spare entries: ri */
                    Q->spikes + ((t - Q->delay[j]) * B + b0 + r) * N, N, REC_W * VL,
                    idx + off[r]);
            active[na++] = j;
        }
        for (int64_t pp = pp0; pp < pp1; pp++) {
            /* every other step backwards: the slabs of the step's end may still be in L2 */
            const int64_t kp = (t & 1) ? pp1 - 1 - (pp - pp0) : pp;
            for (int64_t a = 0; a < na; a++) {
                const int64_t j = active[a];
                /* the next slab pair prefetched while this one's sums run */
                const int64_t kn = (t & 1) ? kp - 1 : kp + 1;
                const char *pf = kn >= pp0 && kn < pp1 && a == na - 1
                                     ? (const char *)(Q->rw[active[0]] + kn * N * REC_W * VL)
                                     : NULL;
                bsums2_f32(Q->rw[j] + kp * N * REC_W * VL, ridx + j * ri, roff + j * (G + 1), nb,
                           a ? tmp : xs, pf, pf ? N * REC_W * VL * 4 : 0);
                if (a)
                    for (int64_t r = 0; r < REC_W * nb; r++)
                        *(vf *)(xs + r * VL) += *(vf *)(tmp + r * VL);
            }
            if (!na) memset(xs, 0, sizeof(float) * (size_t)(REC_W * sv));
            for (int64_t k = REC_W * kp; k < REC_W * kp + REC_W && k < nvt; k++) {
            const int64_t c = k * VL;
            const int m = N - c < VL ? (int)(N - c) : VL;
            float *xk = xs + (k - REC_W * kp) * VL; /* rows REC_W VL apart */
            const float *in = xin + (tt * nvt + k) * sv;
            for (int64_t r = 0; r < nb; r++) {
                const float *d = Q->dense ? Q->dense + (t * B + b0 + r) * N + c : NULL;
                float *xr = xk + r * REC_W * VL;
                if (Q->S_in && d)
                    for (int j = 0; j < m; j++) xr[j] += in[r * VL + j] + d[j];
                else if (Q->S_in)
                    for (int j = 0; j < m; j++) xr[j] += in[r * VL + j];
                else if (d)
                    for (int j = 0; j < m; j++) xr[j] += d[j];
            }
#if BB_FUSED
            if (fused) {
                fused_update_f32(&L, p, c, m, t, b0, nb, xk, REC_W * VL, V + k * sv);
                continue;
            }
#endif
            (void)fused;
            for (int64_t r = 0; r < nb; r++) {
                const int64_t o = (t * B + b0 + r) * N + c, s = (k * G + r) * VL;
                float *xr = xk + r * REC_W * VL;
                delayed_f32(m, p, c, t >= 1 ? Q->spikes + o - step : NULL,
                            t >= 2 ? Q->spikes + o - 2 * step : NULL, xr);
                update_f32(m, p, c, xr, V + s, I + s, TH + s, R + s, Q->spikes + o);
                if (Q->rec_v) memcpy((float *)Q->rec_v + o, V + s, sizeof(float) * m);
                if (Q->rec_i) memcpy((float *)Q->rec_i + o, I + s, sizeof(float) * m);
                if (Q->rec_theta) memcpy((float *)Q->rec_theta + o, TH + s, sizeof(float) * m);
            }
            }
        }
        /* parts: the next step's lists read every column's spikes of this one */
        if (parts > 1) rec_barrier(Q->bar, (int)parts);
    }
}

static void rec_item(void *ctx, int64_t item, void *scratch) {
    rec_run((const rec_t *)ctx, item, 1, scratch);
}

/* A thread of the team: its part of the columns, of as many parts as the team has threads
   (a nested region may get fewer than asked for: the parts follow) */
static void rec_team(void *ctx) {
    rec_t *Q = (rec_t *)ctx;
    const int n = omp_num_threads(), me = omp_thread_num();
    void *scratch = scratch_alloc(Q->bytes, &Q->failed);
    /* a thread without memory still takes part in the barriers, computing nothing */
    if (__atomic_load_n(&Q->failed, __ATOMIC_RELAXED) && n > 1) {
        for (int64_t t = 0; t < Q->T; t++) rec_barrier(Q->bar, n);
    } else if (scratch) {
        rec_run(Q, me, n, scratch);
    }
    free(scratch);
}

/* Vectors of columns a recurrent weight row holds (kernels.run_rec lays them out so). */
int snn_rec_width(void) { return REC_W; }

/* Run one float population with self projections over T steps for B >= 1 samples (see
   above). rec_w[j]: the weights of self projection j as slabs [nvp, N, REC_W VL] (nvp = N /
   (REC_W VL) rounded up; snnkit.kernels.slabs), delay rec_delay[j] >= 1; x: spikes from outside [T * B,
   S_in] with weights w_in as slabs [nvt, S_in, VL] (S_in 0: none);
   dense: other input from outside [T, B, N] or NULL; spikes, rec_*: as snn_layer. Returns 0,
   -1 when memory ran out, -2 for what it does not run (then snn_group does). */
int snn_rec_f32(int64_t T, int64_t B, int64_t N, const neuron_t *p, uint8_t *spikes,
                void *rec_v, void *rec_i, void *rec_theta, int64_t n_rec,
                const float *const *rec_w, const int64_t *rec_delay, const uint8_t *x,
                int64_t S_in, const float *w_in, const float *dense, int n_threads) {
    if (n_rec < 1 || n_rec > REC_MAX || N < 1 || N > BB_MAX_S || S_in < 0 || S_in > BB_MAX_S
        || B < 1 || T < 1)
        return -2;
    for (int64_t j = 0; j < n_rec; j++)
        if (rec_delay[j] < 1) return -2;
    const int64_t nvt = (N + VL - 1) / VL, nvp = (nvt + REC_W - 1) / REC_W;
    /* On torch's OpenMP team (all its threads running at once, so a barrier can wait for
       them) and up to BB_GROUP samples: the columns split over the threads, all samples
       each, a barrier after every step (the next step's lists read every column's spikes),
       so that each core reads only its part of the recurrent weights each step: rleaky at
       2 threads 19.0 -> 16.3 ms. Else the samples in groups, an item each. The same sums
       either way, bit for bit. */
    const int parts = gomp_parallel && omp_num_threads && n_threads > 1 && B <= BB_GROUP
                      && nvp >= 2 * n_threads ? n_threads : 0;
    int64_t G = BB_GROUP;
    while (G > BB_MIN && (B + G - 1) / G < n_threads) G /= 2;
    if (parts) G = B;
    const int64_t n_groups = parts ? parts : (B + G - 1) / G;
    if (!parts) G = (B + n_groups - 1) / n_groups;
    int64_t tc = REC_CHUNK / (nvt * G * VL * 4);
    tc = tc < 1 ? 1 : (tc > T ? T : tc);
    int64_t n_samples = T * B;
    int64_t *ioff = S_in ? calloc((size_t)n_samples + 1, sizeof(int64_t)) : NULL;
    int32_t *iidx = NULL;
    int rc = 0;
    if (S_in && !ioff) rc = -1;
    if (!rc && S_in) {
        lists_t Ls = {x, n_samples, S_in, VL, ioff, NULL, 64};
        int64_t n_chunks = (n_samples + Ls.chunk - 1) / Ls.chunk;
        rc = parallel_for(count_item, &Ls, n_chunks, n_threads, 0);
        for (int64_t s = 0; s < n_samples; s++) ioff[s + 1] += ioff[s];
        iidx = malloc(sizeof(int32_t) * (size_t)(ioff[n_samples] + 16));
        if (!iidx) rc = -1;
        if (!rc) {
            Ls.idx = iidx;
            rc = parallel_for(fill_item, &Ls, n_chunks, n_threads, 0);
        }
    }
    if (!rc) {
        int bar[2] = {0, 0};
        size_t sv = (size_t)(G * VL) * 4;
        size_t bytes = (S_in ? (size_t)(tc * nvt) * sv : 0) + 2 * REC_W * sv + 4 * (size_t)nvt * sv
                       + (size_t)(n_rec * (G + 1)) * 8 + (size_t)(n_rec * (G * N + 16)) * 4;
        rec_t Q = {T, B, N, nvt, *p, spikes, rec_v, rec_i, rec_theta, n_rec, rec_w, rec_delay,
                   S_in, w_in, ioff, iidx, dense, G, tc, parts, bar, bytes, 0};
        if (parts) {
            gomp_parallel(rec_team, &Q, (unsigned)parts, 0);
            rc = Q.failed ? -1 : 0;
        } else {
            rc = parallel_for(rec_item, &Q, n_groups, n_threads, bytes);
        }
    }
    free(ioff);
    free(iidx);
    return rc;
}
