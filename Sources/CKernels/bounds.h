// The rounding bound shared by the kernels whose sums only pick candidates (scan.c's AVX-512 panel kernel,
// gemm.c's BLAS path): a sum computed in another order than the exact kernel's may differ from it by at most
// 2·γ_k·‖q‖·‖x‖ (Higham, Accuracy and Stability of Numerical Algorithms, §3.1), plus the bias term's share. A
// candidate is any sum at or above its user's threshold lowered by twice that, and the exact kernel re-scores it.
// Internal to CKernels (not under include/).
#ifndef MFREC_BOUNDS_H
#define MFREC_BOUNDS_H

#include <math.h>
#include <stddef.h>

// max_r |values[r]|; a NaN sticks (and fails isfinite).
static inline double mfrec_max_abs(const float *values, size_t count) {
    double top = 0;
    for (size_t r = 0; r < count; r++) {
        double v = fabs((double)values[r]);
        if (!(v <= top)) top = v;
    }
    return top;
}

// The float limit a sum must reach to be a candidate: `threshold` lowered by the doubled rounding bound for a
// query of Euclidean norm `norm` (rounded up), rows of norm at most `row_norm`, and a bias term `factor`·bias with
// |bias| ≤ `max_bias`; then lowered by a further float rounding (2⁻²² relative ≥ the 2⁻²⁴ the conversion may add
// back), so the float limit stays below.
static inline float mfrec_candidate_limit(float threshold, double norm, double row_norm, double factor,
                                          double max_bias, size_t k) {
    double unit = 0x1p-24, gamma = (double)(k + 4) * unit / (1.0 - (double)(k + 4) * unit);
    double bound = norm * row_norm + fabs(factor) * max_bias;
    double margin = 4.0 * gamma * bound * (1.0 + 0x1p-20) + 0x1p-126;
    double lowered = (double)threshold - margin;
    return (float)(lowered - fabs(lowered) * 0x1p-22);
}

#endif
