/* Event-driven convolution sums for snnkit.conv (built and loaded by snnkit.conv).

   A dense convolution multiplies every kernel tap with every source, spiking or not; with
   binary spikes at a few percent activity almost all of that work is multiplying zeros. Here
   each spiking source (c, y, x) adds, for each kernel tap (ky, kx) that reaches an output
   position, the kernel's column w[g*cog : (g+1)*cog, c % cg, ky, kx] to that position's
   output channels: a contiguous vector add into a channels-last accumulator of one frame
   (in cache), which is then written out channel-major ([C_out, OH, OW], as torch.flatten).
   The work is (spikes x taps per source x C_out/groups) adds instead of (outputs x fan-in)
   multiply-adds. Integer sums are exact (the caller checks that no partial sum leaves
   int32); float sums differ from a dense convolution only in summation order.

   Frames are independent: n_threads threads take chunks of them in turn. */

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct conv_s {
    int64_t C, H, W, CO, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, G;
    const uint8_t *x; /* spikes [N, C*H*W], bytes 0/1 */
    const void *w;    /* kernel [C, KH, KW, CO/G]: source channel, tap, its group's outputs */
    void *out;        /* sums [N, CO*OH*OW] */
    const int32_t *first, *taps; /* per source position: its (output offset, tap) pairs */
    int64_t N, chunk; /* frames, and how many a worker takes at a time */
    int64_t next;     /* the next frame to take (atomic) */
    int64_t done;     /* frames finished (atomic) */
    int refs;         /* workers still holding this struct, caller included (atomic) */
    void (*run)(const struct conv_s *, void *, int64_t, int64_t);
} conv_t;

typedef float vf __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t vi __attribute__((vector_size(64), aligned(4), may_alias));

/* The spikes of channel c of one frame: for each, add its kernel columns to the outputs
   each tap reaches (16 lanes at a time where C_out/groups is a multiple of 16). */
#define DEFINE_CONV(NAME, TYPE, VEC)                                                         \
    static void NAME(const conv_t *a, void *acc_, int64_t n0, int64_t n1) {                  \
        const int64_t HW = a->H * a->W, P = a->OH * a->OW, CO = a->CO;                       \
        const int64_t cog = a->CO / a->G, cg = a->C / a->G, KK = a->KH * a->KW;              \
        const int64_t nv = cog % 16 ? 0 : cog / 16;                                          \
        const TYPE *w = (const TYPE *)a->w;                                                  \
        /* locals: the vector stores below may alias anything, so fields of *a would be      \
           read again after each */                                                          \
        const int32_t *first = a->first, *taps = a->taps;                                    \
        const uint8_t *x = a->x;                                                             \
        const int64_t C = a->C;                                                              \
        TYPE *acc = acc_;                                                                    \
        for (int64_t n = n0; n < n1; n++) {                                                  \
            memset(acc, 0, sizeof(TYPE) * (size_t)(P * CO));                                 \
            for (int64_t c = 0; c < C; c++) {                                                \
                const uint8_t *xc = x + (n * C + c) * HW;                                    \
                TYPE *dst = acc + (c / cg) * cog;                                            \
                const TYPE *wc = w + c * KK * cog;                                           \
                for (int64_t r0 = 0; r0 < HW; r0 += 8) {                                     \
                    uint64_t word = 0;                                                       \
                    if (r0 + 8 <= HW) memcpy(&word, xc + r0, 8);                             \
                    else memcpy(&word, xc + r0, (size_t)(HW - r0));                          \
                    while (word) {                                                           \
                        int b = __builtin_ctzll(word) >> 3;                                  \
                        word &= ~((uint64_t)0xff << (b << 3));                               \
                        const int32_t *t = taps + 2 * first[r0 + b];                         \
                        const int32_t *te = taps + 2 * first[r0 + b + 1];                    \
                        if (nv == 1)                                                         \
                            for (; t < te; t += 2)                                           \
                                *(VEC *)(dst + t[0]) += *(const VEC *)(wc + t[1]);           \
                        else if (nv == 2)                                                    \
                            for (; t < te; t += 2) {                                         \
                                VEC *d = (VEC *)(dst + t[0]);                                \
                                const VEC *k = (const VEC *)(wc + t[1]);                     \
                                d[0] += k[0], d[1] += k[1];                                  \
                            }                                                                \
                        else                                                                 \
                            for (; t < te; t += 2) {                                         \
                                TYPE *d = dst + t[0];                                        \
                                const TYPE *k = wc + t[1];                                   \
                                if (nv)                                                      \
                                    for (int64_t j = 0; j < nv; j++)                         \
                                        ((VEC *)d)[j] += ((const VEC *)k)[j];                \
                                else                                                         \
                                    for (int64_t j = 0; j < cog; j++) d[j] += k[j];          \
                            }                                                                \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
            TYPE *o = (TYPE *)a->out + n * CO * P;                                           \
            for (int64_t ch = 0; ch < CO; ch++)                                              \
                for (int64_t p = 0; p < P; p++) o[ch * P + p] = acc[p * CO + ch];            \
        }                                                                                    \
    }

DEFINE_CONV(conv_f32, float, vf)
DEFINE_CONV(conv_i32, int32_t, vi)

/* Take chunks of frames until none is left. A helper thread that gets a core only after the
   caller has run every chunk finds none and leaves: on a loaded machine the caller does not
   wait for it (the last worker out frees the struct). */
static void take_chunks(conv_t *a, void *acc) {
    for (;;) {
        int64_t n0 = __atomic_fetch_add(&a->next, a->chunk, __ATOMIC_RELAXED);
        if (n0 >= a->N) break;
        int64_t n1 = n0 + a->chunk < a->N ? n0 + a->chunk : a->N;
        a->run(a, acc, n0, n1);
        __atomic_fetch_add(&a->done, n1 - n0, __ATOMIC_RELEASE);
    }
}

static void release(conv_t *a) {
    if (__atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0) free(a);
}

static void *helper(void *arg) {
    conv_t *a = arg;
    void *acc = malloc(4 * (size_t)(a->OH * a->OW * a->CO));
    if (acc) take_chunks(a, acc); /* no memory: leave the frames to the others */
    free(acc);
    release(a);
    return NULL;
}

/* For each source position r = y*W + x: the outputs its taps reach, as pairs (offset of the
   output position in the channels-last accumulator, offset (ky*KW + kx) * C_out/G of the
   tap's kernel column in its channel's kernel), from taps[2*first[r]] to taps[2*first[r+1]].
   Returns NULL when memory ran out. */
static int32_t *tap_table(const int64_t *g, int32_t **first_out) {
    int64_t H = g[1], W = g[2], CO = g[3], OH = g[4], OW = g[5], KH = g[6], KW = g[7];
    int64_t SH = g[8], SW = g[9], PH = g[10], PW = g[11], DH = g[12], DW = g[13];
    int32_t *first = malloc(sizeof(int32_t) * (size_t)(H * W + 1));
    int32_t *taps = malloc(sizeof(int32_t) * 2 * (size_t)(H * W * KH * KW + 1));
    if (!first || !taps) { free(first); free(taps); return NULL; }
    int64_t m = 0;
    for (int64_t iy = 0; iy < H; iy++)
        for (int64_t ix = 0; ix < W; ix++) {
            first[iy * W + ix] = (int32_t)m;
            for (int64_t ky = 0; ky < KH; ky++) {
                int64_t ty = iy + PH - ky * DH;
                if (ty < 0 || ty % SH || ty / SH >= OH) continue;
                for (int64_t kx = 0; kx < KW; kx++) {
                    int64_t tx = ix + PW - kx * DW;
                    if (tx < 0 || tx % SW || tx / SW >= OW) continue;
                    taps[2 * m] = (int32_t)(((ty / SH) * OW + tx / SW) * CO);
                    taps[2 * m + 1] = (int32_t)((ky * KW + kx) * (CO / g[14]));
                    m++;
                }
            }
        }
    first[H * W] = (int32_t)m;
    *first_out = first;
    return taps;
}

/* kind 0: float32 kernel and sums, 1: int32. geom: C, H, W, CO, OH, OW, KH, KW, SH, SW, PH,
   PW, DH, DW, G. Returns 0, -1 when memory ran out, -2 for a bad kind. */
int snn_conv_events(int kind, int64_t N, const int64_t *geom, const uint8_t *x, const void *w,
                    void *out, int n_threads) {
    if (kind != 0 && kind != 1) return -2;
    if (N <= 0) return 0;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > N) n_threads = (int)N;
    conv_t *a = calloc(1, sizeof(conv_t));
    int32_t *first = NULL, *taps = tap_table(geom, &first);
    void *acc = malloc(4 * (size_t)(geom[3] * geom[4] * geom[5]));
    int rc = -1;
    if (a && taps && acc) {
        memcpy(&a->C, geom, 15 * sizeof(int64_t));
        a->x = x, a->w = w, a->out = out, a->first = first, a->taps = taps;
        a->run = kind ? conv_i32 : conv_f32;
        a->N = N, a->chunk = N / (8 * n_threads) > 1 ? N / (8 * n_threads) : 1;
        a->refs = 1;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (int k = 1; k < n_threads; k++) {
            pthread_t th;
            __atomic_add_fetch(&a->refs, 1, __ATOMIC_RELAXED);
            if (pthread_create(&th, &attr, helper, a)) __atomic_sub_fetch(&a->refs, 1,
                                                                         __ATOMIC_RELAXED);
        }
        pthread_attr_destroy(&attr);
        take_chunks(a, acc);
        while (__atomic_load_n(&a->done, __ATOMIC_ACQUIRE) < N) sched_yield();
        release(a);
        a = NULL;
        rc = 0;
    }
    free(a);
    free(acc);
    free(first);
    free(taps);
    return rc;
}
