/* dhp_dense: see dhp_dense.h. */
#include "dhp_dense.h"

#include <stddef.h>

#define B DHP_DENSE_BLOCK

/* DHP_DENSE_NO_SIMD builds the portable path alone (the tests compare both paths). */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) \
    && !defined(DHP_DENSE_NO_SIMD)
#define DHP_DENSE_X86 1
#include <immintrin.h>
#endif

int dhp_dense_abi_version(void) { return DHP_DENSE_ABI_VERSION; }

int dhp_dense_block(void) { return B; }

/* Writes the x, y, z lanes of one block (count <= B vertices) interleaved. */
static void store_block(float *out, const float *x, const float *y, const float *z, int count) {
    for (int l = 0; l < count; l++) {
        out[3 * l] = x[l];
        out[3 * l + 1] = y[l];
        out[3 * l + 2] = z[l];
    }
}

/* Portable path: plain loops over the B lanes of a block, which compilers vectorise for the
 * target's baseline (SSE2 on x86-64, NEON on arm64). */
static void product_portable(const float *weights, const float *mean, int n_vertices,
                             int n_cols, const float *rhs, const float *linear,
                             const float *offset, int n_faces, float *out) {
    const int n_blocks = (n_vertices + B - 1) / B;
    float acc[3][B];
    for (int b = 0; b < n_blocks; b++) {
        const float *wb = weights + (size_t)b * n_cols * B;
        const float *mb = mean + (size_t)b * 3 * B;
        const int count = n_vertices - b * B < B ? n_vertices - b * B : B;
        for (int f = 0; f < n_faces; f++) {
            const float *lin = linear + 9 * f;
            const float *r = rhs + (size_t)f * n_cols * 3;
            for (int c = 0; c < 3; c++) {
                for (int l = 0; l < B; l++) {
                    acc[c][l] = lin[3 * c] * mb[l] + lin[3 * c + 1] * mb[B + l]
                                + lin[3 * c + 2] * mb[2 * B + l];
                }
            }
            for (int j = 0; j < n_cols; j++) {
                const float *w = wb + (size_t)j * B;
                const float rx = r[3 * j], ry = r[3 * j + 1], rz = r[3 * j + 2];
                for (int l = 0; l < B; l++) {
                    const float v = w[l];
                    acc[0][l] += v * rx;
                    acc[1][l] += v * ry;
                    acc[2][l] += v * rz;
                }
            }
            /* the offset last: added to accumulators of image-sized values it would cost the
             * sum its low bits */
            for (int c = 0; c < 3; c++) {
                for (int l = 0; l < B; l++) acc[c][l] += offset[3 * f + c];
            }
            store_block(out + ((size_t)f * n_vertices + (size_t)b * B) * 3, acc[0], acc[1],
                        acc[2], count);
        }
    }
}

#ifdef DHP_DENSE_X86
/* AVX2 + FMA path: a block of 32 vertices is four vectors of eight, so one face keeps twelve
 * independent accumulators (x, y, z of each vector) and the FMA units, not their latency, set
 * the pace. */
__attribute__((target("avx2,fma"))) static void product_avx2(
    const float *weights, const float *mean, int n_vertices, int n_cols, const float *rhs,
    const float *linear, const float *offset, int n_faces, float *out) {
    const int n_blocks = (n_vertices + B - 1) / B;
    float lanes[3][B] __attribute__((aligned(32)));
    for (int b = 0; b < n_blocks; b++) {
        const float *wb = weights + (size_t)b * n_cols * B;
        const float *mb = mean + (size_t)b * 3 * B;
        const int count = n_vertices - b * B < B ? n_vertices - b * B : B;
        for (int f = 0; f < n_faces; f++) {
            const float *lin = linear + 9 * f, *off = offset + 3 * f;
            const float *r = rhs + (size_t)f * n_cols * 3;
            __m256 ax[4], ay[4], az[4];
            for (int v = 0; v < 4; v++) {
                const __m256 mx = _mm256_loadu_ps(mb + 8 * v);
                const __m256 my = _mm256_loadu_ps(mb + B + 8 * v);
                const __m256 mz = _mm256_loadu_ps(mb + 2 * B + 8 * v);
                ax[v] = _mm256_fmadd_ps(_mm256_set1_ps(lin[2]), mz, _mm256_fmadd_ps(
                    _mm256_set1_ps(lin[1]), my, _mm256_mul_ps(_mm256_set1_ps(lin[0]), mx)));
                ay[v] = _mm256_fmadd_ps(_mm256_set1_ps(lin[5]), mz, _mm256_fmadd_ps(
                    _mm256_set1_ps(lin[4]), my, _mm256_mul_ps(_mm256_set1_ps(lin[3]), mx)));
                az[v] = _mm256_fmadd_ps(_mm256_set1_ps(lin[8]), mz, _mm256_fmadd_ps(
                    _mm256_set1_ps(lin[7]), my, _mm256_mul_ps(_mm256_set1_ps(lin[6]), mx)));
            }
            for (int j = 0; j < n_cols; j++) {
                const float *w = wb + (size_t)j * B;
                /* the weights stream through once per frame: fetch two blocks ahead into
                 * L2 and the shared cache (T1). Non-temporal hints (NTA) keep them out of the
                 * shared cache on Intel, so every frame read them from memory again
                 * (docs/performance.md compares the hints) */
                if (f == 0 && b + 2 < n_blocks) {
                    _mm_prefetch((const char *)(w + 2 * (size_t)n_cols * B), _MM_HINT_T1);
                    _mm_prefetch((const char *)(w + 2 * (size_t)n_cols * B + 16), _MM_HINT_T1);
                }
                const __m256 rx = _mm256_set1_ps(r[3 * j]);
                const __m256 ry = _mm256_set1_ps(r[3 * j + 1]);
                const __m256 rz = _mm256_set1_ps(r[3 * j + 2]);
                for (int v = 0; v < 4; v++) {
                    const __m256 wv = _mm256_loadu_ps(w + 8 * v);
                    ax[v] = _mm256_fmadd_ps(wv, rx, ax[v]);
                    ay[v] = _mm256_fmadd_ps(wv, ry, ay[v]);
                    az[v] = _mm256_fmadd_ps(wv, rz, az[v]);
                }
            }
            for (int v = 0; v < 4; v++) { /* the offset last, as in the portable path */
                _mm256_store_ps(lanes[0] + 8 * v, _mm256_add_ps(ax[v], _mm256_set1_ps(off[0])));
                _mm256_store_ps(lanes[1] + 8 * v, _mm256_add_ps(ay[v], _mm256_set1_ps(off[1])));
                _mm256_store_ps(lanes[2] + 8 * v, _mm256_add_ps(az[v], _mm256_set1_ps(off[2])));
            }
            store_block(out + ((size_t)f * n_vertices + (size_t)b * B) * 3, lanes[0],
                        lanes[1], lanes[2], count);
        }
    }
}

static int have_avx2(void) {
    static int known = -1; /* a benign race: every thread computes the same answer */
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return known;
}
#endif

const char *dhp_dense_path(void) {
#ifdef DHP_DENSE_X86
    if (have_avx2()) return "avx2+fma";
#endif
    return "portable";
}

int dhp_dense_product(const float *weights, const float *mean, int n_vertices, int n_cols,
                      const float *rhs, const float *linear, const float *offset, int n_faces,
                      float *out) {
    if (n_vertices <= 0 || n_cols <= 0 || n_faces <= 0) return -1;
#ifdef DHP_DENSE_X86
    if (have_avx2()) {
        product_avx2(weights, mean, n_vertices, n_cols, rhs, linear, offset, n_faces, out);
        return 0;
    }
#endif
    product_portable(weights, mean, n_vertices, n_cols, rhs, linear, offset, n_faces, out);
    return 0;
}
