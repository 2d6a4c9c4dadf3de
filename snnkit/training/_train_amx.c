/* The weight gradient dw = x^T g of a float projection on the tile unit (AMX int8 tiles), for
   _train_kernels.c (which includes this file).

   x is the source's 0/1 spikes (bytes). Each column c of g is written in fixed point, q =
   round(g * 2^e_c) with the power of two e_c that brings the column's largest |g| to
   [2^29, 2^30], and q (two's complement) as four bytes, q = q3 2^24 + q2 2^16 + q1 2^8 + q0
   (q0..q2 unsigned, q3 signed): four int8 products (TDPBUUD, TDPBUSD) whose int32 sums are
   exact, combined exactly in int64 and scaled back, rounded to float32 once. The error is
   the fixed point's, at most 2^-31 of the column's largest |g| per event: far below the
   rounding of a float32 event sum (2^-24 of the partial sum per addition). Dense work (every
   spike, 0 or 1, times four parts) at the tile unit's rate beats the event pass's L2-bound
   row sums from a few % of spikes on (snnkit.training.kernel decides).

   Layout. A tiles (x^T): [source block of 16][row block of 64] bytes, 1 KB each, built once
   from the source's lists by row. B tiles (g's parts, VNNI: 4 rows interleaved by bytes):
   per column tile of 16 (a work item) [row block][part] of 16 x 16 x 4 bytes, packed into
   the item's scratch; then for every source block, 4 int32 accumulator tiles (one per part)
   over all row blocks. */

#if defined(HAVE_AMX) && defined(__AVX512F__) && defined(__AVX512BW__) \
    && defined(__AVX512VBMI__) /* HAVE_AMX: _kernels.c, the tile unit on Linux */
#define HAVE_TRAIN_AMX 1

static int64_t train_amx_runs; /* weight gradients computed on the tiles, for the tests */

/* The tile unit's permission (snn_amx_available) and configuration (amx_configure: tiles 0-7
   of 16 rows x 64 bytes) are the simulator's, _kernels_amx.c. */

typedef struct {
    int accumulate;
    int64_t S, N, ld, rows, KB, MB; /* KB row blocks of 64, MB source blocks of 16 */
    const uint8_t *a;               /* [MB][KB][16][64] */
    const float *g;                 /* [rows, ld] */
    int64_t r0, dr;                 /* the lists' rows of g's row 0 (+ dr: the source's lag) */
    const int64_t *offsets;         /* the source's lists by row */
    const int32_t *idx;
    float *dw;                      /* [S, N] */
} tamx_t;

/* Columns [c0, c0 + n) of dw by events, in float32 (a gradient that is not finite there:
   the IEEE result, inf or nan, as the event pass gives it). */
static void wgrad_amx_events(const tamx_t *E, int64_t c0, int64_t n) {
    if (!E->accumulate)
        for (int64_t j = 0; j < E->S; j++) memset(E->dw + j * E->N + c0, 0, sizeof(float) * (size_t)n);
    for (int64_t s = E->r0 - E->dr < 0 ? 0 : E->r0 - E->dr; s < E->r0 + E->rows - E->dr; s++) {
        const float *gr = E->g + (s + E->dr - E->r0) * E->ld + c0;
        for (int64_t ev = E->offsets[s]; ev < E->offsets[s + 1]; ev++) {
            float *d = E->dw + (int64_t)E->idx[ev] * E->N + c0;
            for (int64_t c = 0; c < n; c++) d[c] += gr[c];
        }
    }
}

#define TAMX_NT 4 /* column tiles per work item: rows of dw written 64 columns at a time */

static void wgrad_amx_item(void *ctx, int64_t item, void *scratch) {
    const tamx_t *E = (const tamx_t *)ctx;
    const int64_t c0 = item * 16 * TAMX_NT;
    const int64_t n = E->N - c0 < 16 * TAMX_NT ? E->N - c0 : 16 * TAMX_NT;
    const int nt = (int)((n + 15) / 16);
    uint8_t *b = (uint8_t *)scratch; /* [nt][KB][4 parts][16][64] */
    int32_t *cst = (int32_t *)(b + TAMX_NT * E->KB * 4096); /* [4][16][16] staging */
    float *out = (float *)(cst + 1024); /* [MB * 16][16 * TAMX_NT] the item's dw */
    double back[16 * TAMX_NT];
    /* byte and word shuffles that turn the 4 rows' int32 q (16 columns each) into the 4 parts
       in VNNI order: per column c, bytes (q_h[c] >> 8 part) & 255 for the rows h = 0..3 */
    uint8_t ib[2][64];
    uint16_t iw[2][32];
    for (int c = 0; c < 16; c++)
        for (int half = 0; half < 2; half++) { /* bytes 0, 1 (half 0) or 2, 3 of rows h, h + 1 */
            ib[half][4 * c + 0] = (uint8_t)(4 * c + 2 * half);
            ib[half][4 * c + 1] = (uint8_t)(64 + 4 * c + 2 * half);
            ib[half][4 * c + 2] = (uint8_t)(4 * c + 2 * half + 1);
            ib[half][4 * c + 3] = (uint8_t)(64 + 4 * c + 2 * half + 1);
            iw[half][2 * c] = (uint16_t)(2 * c + half); /* even part: word 2c, odd: 2c + 1 */
            iw[half][2 * c + 1] = (uint16_t)(32 + 2 * c + half);
        }
    const __m512i ib0 = _mm512_loadu_si512(ib[0]), ib1 = _mm512_loadu_si512(ib[1]);
    const __m512i iw0 = _mm512_loadu_si512(iw[0]), iw1 = _mm512_loadu_si512(iw[1]);
    /* the columns' largest |g|: the item's rows of g, 64 columns at a time (strided rows:
       the next ones asked for ahead) */
    __m512 mx[TAMX_NT];
    __mmask16 mt[TAMX_NT];
    const __m512 absm = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int t = 0; t < TAMX_NT; t++) {
        const int64_t nc = t < nt ? (E->N - c0 - 16 * t < 16 ? E->N - c0 - 16 * t : 16) : 0;
        mt[t] = (__mmask16)((1u << nc) - 1);
        mx[t] = _mm512_setzero_ps();
    }
    for (int64_t r = 0; r < E->rows; r++) {
        const float *gr = E->g + r * E->ld + c0;
        if (r + 8 < E->rows)
            for (int64_t c = 0; c < n + 16; c += 16)
                __builtin_prefetch(gr + 8 * E->ld + (c < n ? c : n - 1));
        for (int t = 0; t < nt; t++)
            mx[t] = _mm512_max_ps(mx[t], _mm512_and_ps(absm,
                                                       _mm512_maskz_loadu_ps(mt[t], gr + 16 * t)));
    }
    for (int t = 0; t < nt; t++) {
        const int64_t ct = c0 + 16 * t, nc = E->N - ct < 16 ? E->N - ct : 16;
        const __mmask16 m = (__mmask16)((1u << nc) - 1);
        float pw[16];
        uint32_t mc[16]; /* the bits of the largest |g| (no libm: the bits say it all) */
        _mm512_storeu_si512(mc, _mm512_castps_si512(mx[t]));
        for (int c = 0; c < 16; c++) {
            const int biased = (int)(mc[c] >> 23); /* the sign bit is 0 */
            if (biased == 255) { /* inf or nan: IEEE results, the item's columns by events */
                wgrad_amx_events(E, c0, n);
                return;
            }
            /* mc < 2^ex with ex = biased - 126 (subnormals: as 2^-125), so mc 2^(30 - ex) <
               2^30; ec >= -98, at most 126 (2^ec a normal float: columns below 2^-96 lose
               digits below 2^-127) */
            const int ex = (biased ? biased : 1) - 126;
            const int ec = !mc[c] ? 0 : 30 - ex < 126 ? 30 - ex : 126;
            const uint32_t pb = (uint32_t)(ec + 127) << 23;
            const uint64_t bb = (uint64_t)(1023 - ec) << 52;
            memcpy(pw + c, &pb, 4);
            memcpy(back + 16 * t + c, &bb, 8);
        }
        const __m512 scale = _mm512_loadu_ps(pw);
        uint8_t *bt = b + t * E->KB * 4096;
        for (int64_t k = 0; k < E->KB; k++)
            for (int p = 0; p < 16; p++) { /* rows 4p .. 4p + 3 of the block */
                __m512i q[4];
                for (int h = 0; h < 4; h++) {
                    const int64_t r = k * 64 + 4 * p + h;
                    q[h] = r < E->rows ? _mm512_cvtps_epi32(_mm512_mul_ps(
                                             _mm512_maskz_loadu_ps(m, E->g + r * E->ld + ct), scale))
                                       : _mm512_setzero_si512();
                }
                const __m512i a01[2] = {_mm512_permutex2var_epi8(q[0], ib0, q[1]),
                                        _mm512_permutex2var_epi8(q[0], ib1, q[1])};
                const __m512i a23[2] = {_mm512_permutex2var_epi8(q[2], ib0, q[3]),
                                        _mm512_permutex2var_epi8(q[2], ib1, q[3])};
                uint8_t *o = bt + k * 4096 + p * 64;
                _mm512_store_si512((__m512i *)o, _mm512_permutex2var_epi16(a01[0], iw0, a23[0]));
                _mm512_store_si512((__m512i *)(o + 1024),
                                   _mm512_permutex2var_epi16(a01[0], iw1, a23[0]));
                _mm512_store_si512((__m512i *)(o + 2048),
                                   _mm512_permutex2var_epi16(a01[1], iw0, a23[1]));
                _mm512_store_si512((__m512i *)(o + 3072),
                                   _mm512_permutex2var_epi16(a01[1], iw1, a23[1]));
            }
    }
    amx_configure();
    const int64_t lo = 16 * TAMX_NT; /* out's row length */
    for (int t = 0; t < nt; t++) { /* a column tile's parts (in L1) against every A tile */
        const uint8_t *bt = b + t * E->KB * 4096;
        for (int64_t mb = 0; mb < E->MB; mb++) {
            const uint8_t *a = E->a + mb * E->KB * 1024;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int64_t k = 0; k < E->KB; k++) {
                const uint8_t *bk = bt + k * 4096;
                _tile_loadd(4, a + k * 1024, 64);
                _tile_loadd(5, bk, 64);
                _tile_dpbuud(0, 4, 5);
                _tile_loadd(6, bk + 1024, 64);
                _tile_dpbuud(1, 4, 6);
                _tile_loadd(7, bk + 2048, 64);
                _tile_dpbuud(2, 4, 7);
                _tile_loadd(5, bk + 3072, 64);
                _tile_dpbusd(3, 4, 5); /* the top part, signed */
            }
            _tile_stored(0, cst, 64);
            _tile_stored(1, cst + 256, 64);
            _tile_stored(2, cst + 512, 64);
            _tile_stored(3, cst + 768, 64);
            /* (C3 2^8 + C2) 2^16 + (C1 2^8 + C0): each bracket exact in int32 for up to
               2^15 rows (C0..C2 < 255 rows, |C3| <= 64 rows), the sum an integer below 2^53 in
               doubles, so exact; else the four parts in doubles (below 2^53 for up to 2^22
               rows); times 2^-e_c, exact; one rounding to float32 */
            float *o = out + mb * 16 * lo + 16 * t;
            const int narrow = E->rows <= (1 << 15);
            for (int i = 0; i < 16; i++) {
                __m512i cp[4];
                for (int q = 0; q < 4; q++) cp[q] = _mm512_load_si512(cst + 256 * q + 16 * i);
                const __m512i l32 = _mm512_add_epi32(_mm512_slli_epi32(cp[1], 8), cp[0]);
                const __m512i h32 = _mm512_add_epi32(_mm512_slli_epi32(cp[3], 8), cp[2]);
                for (int h = 0; h < 2; h++) {
#define TAMX_HALF(x) _mm512_cvtepi32_pd(h ? _mm512_extracti32x8_epi32((x), 1) \
                                          : _mm512_castsi512_si256(x))
                    __m512d v;
                    if (narrow) {
                        v = _mm512_fmadd_pd(TAMX_HALF(h32), _mm512_set1_pd(65536.0),
                                            TAMX_HALF(l32));
                    } else {
                        v = _mm512_fmadd_pd(TAMX_HALF(cp[1]), _mm512_set1_pd(256.0),
                                            TAMX_HALF(cp[0]));
                        v = _mm512_fmadd_pd(TAMX_HALF(cp[2]), _mm512_set1_pd(65536.0), v);
                        v = _mm512_fmadd_pd(TAMX_HALF(cp[3]), _mm512_set1_pd(16777216.0), v);
                    }
#undef TAMX_HALF
                    v = _mm512_mul_pd(v, _mm512_loadu_pd(back + 16 * t + 8 * h));
                    _mm256_storeu_ps(o + i * lo + 8 * h, _mm512_cvtpd_ps(v));
                }
            }
        }
    }
    for (int64_t j = 0; j < E->S; j++) {
        float *d = E->dw + j * E->N + c0;
        const float *o = out + j * lo;
        if (j + 1 < E->S) /* the next row, a miss, arrives while this one is written */
            for (int64_t c = 0; c < n + 16; c += 16)
                __builtin_prefetch(d + E->N + (c < n ? c : n - 1), 1);
        if (E->accumulate)
            for (int64_t c = 0; c < n; c++) d[c] += o[c];
        else
            memcpy(d, o, sizeof(float) * (size_t)n);
    }
    _tile_release();
}
#endif

/* dw [S, N] (accumulate: +=) = x^T g on the tile unit: x the source's spikes by row (offsets,
   idx: lists by row), g [r1 - r0, ld >= N] the gradients of the target rows [r0, r1), the
   source lagging dr rows (row r of the target reads source row r - dr; rows below 0:
   silent). Columns of g that hold a value that is not finite are summed by events (IEEE
   results). Returns 0, -1 when memory ran out, -3 where the tile unit is not available. */
int snn_train_wgrad_amx(int64_t r0, int64_t r1, int64_t dr, int64_t S, int64_t N, int64_t ld,
                        const int64_t *offsets, const int32_t *idx, const float *g, float *dw,
                        int accumulate, int n_threads) {
#ifdef HAVE_TRAIN_AMX
    const int64_t rows = r1 - r0, KB = (rows + 63) / 64, MB = (S + 15) / 16;
    if (rows <= 0 || rows > (1 << 22) || !snn_amx_available()) return -3; /* int32 sums: exact */
    uint8_t *a = aligned_alloc(64, (size_t)(MB * KB) * 1024 + 64);
    if (!a) return -1;
    memset(a, 0, (size_t)(MB * KB) * 1024);
    for (int64_t s = r0 - dr < 0 ? 0 : r0 - dr; s < r1 - dr; s++) {
        const int64_t rr = s + dr - r0, k = rr / 64, col = rr % 64;
        for (int64_t ev = offsets[s]; ev < offsets[s + 1]; ev++) {
            const int64_t j = idx[ev];
            a[((j / 16 * KB + k) * 16 + j % 16) * 64 + col] = 1;
        }
    }
    tamx_t E = {accumulate != 0, S, N, ld, rows, KB, MB, a, g, r0, dr, offsets, idx, dw};
    __atomic_add_fetch(&train_amx_runs, 1, __ATOMIC_RELAXED);
    int rc = parallel_for(wgrad_amx_item, &E, (N + 16 * TAMX_NT - 1) / (16 * TAMX_NT), n_threads,
                          (size_t)TAMX_NT * KB * 4096 + 4096 + (size_t)MB * 1024 * TAMX_NT);
    free(a);
    return rc;
#else
    (void)r0, (void)r1, (void)dr, (void)S, (void)N, (void)ld, (void)offsets, (void)idx;
    (void)g, (void)dw, (void)accumulate, (void)n_threads;
    return -3;
#endif
}

/* The weight gradients computed on the tiles so far; whether the tile unit is there (and
   the system lets this process use it). */
int64_t snn_train_amx_runs(void) {
#ifdef HAVE_TRAIN_AMX
    return __atomic_load_n(&train_amx_runs, __ATOMIC_RELAXED);
#else
    return 0;
#endif
}

int snn_train_amx_available(void) {
#ifdef HAVE_TRAIN_AMX
    return snn_amx_available();
#else
    return 0;
#endif
}
