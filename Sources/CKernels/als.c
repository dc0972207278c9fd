// Implicit-feedback ALS (Hu, Koren and Volinsky 2008): one half-sweep of conjugate-gradient solves, the way
// implicit and Takács et al. solve it (a few CG steps per row, warm-started from the row's previous vector).
// The AVX2+FMA copy is compiled for that target only and chosen at run time (mfrec_kernels_vectorized).
#include "mfrec_kernels.h"

#include <string.h>

#if defined(__x86_64__)
#define MFREC_X86 1
#endif

int mfrec_kernels_vectorized(void);

__attribute__((always_inline)) static inline float als_dot(const float *a, const float *b, int32_t k) {
    // Reassociated, so the sum vectorizes: the CG solve is approximate anyway, and the same code gives the same
    // sums on every run and thread count.
#pragma clang fp reassociate(on)
    float s = 0;
    for (int32_t c = 0; c < k; c++) s += a[c] * b[c];
    return s;
}

// out = G v (G k × k, row-major).
__attribute__((always_inline)) static inline void als_gemv(const float *G, const float *v, int32_t k, float *out) {
    for (int32_t x = 0; x < k; x++) out[x] = als_dot(G + (size_t)x * k, v, k);
}

__attribute__((always_inline)) static inline void als_cg_body(const int64_t *indptr, const int32_t *indices,
                                                              const float *conf, int32_t begin, int32_t end,
                                                              const float *Y, const float *G, int32_t k, float *X,
                                                              int32_t steps, float *r, float *p, float *ap) {
    for (int32_t u = begin; u < end; u++) {
        float *x = X + (size_t)u * k;
        int64_t from = indptr[u], to = indptr[u + 1];
        if (from == to) {
            memset(x, 0, sizeof(float) * (size_t)k);
            continue;
        }
        // r = b − A x, b = Σ (1 + c_j) y_j, A = G + Σ c_j y_j y_jᵀ.
        als_gemv(G, x, k, r);
        for (int32_t c = 0; c < k; c++) r[c] = -r[c];
        for (int64_t e = from; e < to; e++) {
            const float *y = Y + (size_t)indices[e] * k;
            float cj = conf[e], w = 1 + cj - cj * als_dot(y, x, k);
            for (int32_t c = 0; c < k; c++) r[c] += w * y[c];
        }
        memcpy(p, r, sizeof(float) * (size_t)k);
        float rs = als_dot(r, r, k);
        for (int32_t it = 0; it < steps && rs > 1e-20f; it++) {
            als_gemv(G, p, k, ap);
            for (int64_t e = from; e < to; e++) {
                const float *y = Y + (size_t)indices[e] * k;
                float w = conf[e] * als_dot(y, p, k);
                for (int32_t c = 0; c < k; c++) ap[c] += w * y[c];
            }
            float pap = als_dot(p, ap, k);
            if (!(pap > 0)) break;
            float a = rs / pap;
            for (int32_t c = 0; c < k; c++) {
                x[c] += a * p[c];
                r[c] -= a * ap[c];
            }
            float next = als_dot(r, r, k);
            float beta = next / rs;
            for (int32_t c = 0; c < k; c++) p[c] = r[c] + beta * p[c];
            rs = next;
        }
    }
}

static void als_cg_portable(const int64_t *indptr, const int32_t *indices, const float *conf, int32_t begin,
                            int32_t end, const float *Y, const float *G, int32_t k, float *X, int32_t steps,
                            float *scratch) {
    als_cg_body(indptr, indices, conf, begin, end, Y, G, k, X, steps, scratch, scratch + k, scratch + 2 * k);
}

#ifdef MFREC_X86
__attribute__((target("avx2,fma"))) static void als_cg_avx2(const int64_t *indptr, const int32_t *indices,
                                                             const float *conf, int32_t begin, int32_t end,
                                                             const float *Y, const float *G, int32_t k, float *X,
                                                             int32_t steps, float *scratch) {
    als_cg_body(indptr, indices, conf, begin, end, Y, G, k, X, steps, scratch, scratch + k, scratch + 2 * k);
}
#endif

void mfrec_als_cg(const int64_t *indptr, const int32_t *indices, const float *conf, int32_t begin, int32_t end,
                  const float *Y, const float *G, int32_t k, float *X, int32_t steps, float *scratch) {
#ifdef MFREC_X86
    if (mfrec_kernels_vectorized()) {
        als_cg_avx2(indptr, indices, conf, begin, end, Y, G, k, X, steps, scratch);
        return;
    }
#endif
    als_cg_portable(indptr, indices, conf, begin, end, Y, G, k, X, steps, scratch);
}
