/* Thin-K matrix product with fused bias + ReLU; see gemm_thin.h.
 *
 * Register blocking: MR rows of C by two vectors of columns, held in
 * 2*MR vector accumulators over the whole K; per k, two loads of B, MR
 * broadcasts of A and 2*MR multiply-adds. Vectors are GCC vector
 * extensions (base/vec.h), so the same C compiles to SSE, AVX2 or AVX-512
 * code. A last row block shorter than MR recomputes the last row rather
 * than branching in the inner loop; columns past the last full pair of
 * vectors take a scalar loop. */
#include "ops/gemm_thin.h"

#include "base/vec.h"

/* 2*MR accumulators + two B vectors + a broadcast fit the 32 vector
 * registers of AVX-512 with MR = 8 and the 16 of AVX2 or SSE with MR = 4
 * (on the stem at 512x1024, MR 8 ran 1.7x faster than MR 4 with AVX-512). */
#define VF IC_VF
#if IC_VF == 16
#define MR 8
#else
#define MR 4
#endif

typedef ic_vf vf;
#define vload ic_vload
#define vstore ic_vstore

static inline vf vact(vf v, int relu)
{
    return relu ? ic_vrelu(v) : v;
}

static float act(float v, int relu)
{
    return relu && v < 0.0f ? 0.0f : v;
}

void ic_gemm_thin(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                  const float *bias, int relu, float *c, int ldc)
{
    const int nv = n - n % (2 * VF);
    for (int i0 = 0; i0 < m; i0 += MR) {
        const int mr = m - i0 < MR ? m - i0 : MR;
        const float *ar[MR];
        float bi[MR];
        for (int r = 0; r < MR; r++) {
            const int i = i0 + (r < mr ? r : mr - 1);
            ar[r] = a + (size_t)i * lda;
            bi[r] = bias ? bias[i] : 0.0f;
        }
        for (int j = 0; j < nv; j += 2 * VF) {
            vf acc[MR][2];
            for (int r = 0; r < MR; r++)
                acc[r][0] = acc[r][1] = (vf){0} + bi[r];
            const float *bk = b + j;
            for (int kk = 0; kk < k; kk++, bk += ldb) {
                const vf b0 = vload(bk), b1 = vload(bk + VF);
                for (int r = 0; r < MR; r++) {
                    const float av = ar[r][kk];
                    acc[r][0] += av * b0;
                    acc[r][1] += av * b1;
                }
            }
            for (int r = 0; r < mr; r++) {
                float *cr = c + (size_t)(i0 + r) * ldc + j;
                vstore(cr, vact(acc[r][0], relu));
                vstore(cr + VF, vact(acc[r][1], relu));
            }
        }
        for (int r = 0; r < mr; r++)
            for (int j = nv; j < n; j++) {
                float s = bi[r];
                for (int kk = 0; kk < k; kk++)
                    s += ar[r][kk] * b[(size_t)kk * ldb + j];
                c[(size_t)(i0 + r) * ldc + j] = act(s, relu);
            }
    }
}

void ic_gemm_thin_ref(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                      const float *bias, int relu, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = bias ? bias[i] : 0.0;
            for (int kk = 0; kk < k; kk++)
                s += (double)a[(size_t)i * lda + kk] * (double)b[(size_t)kk * ldb + j];
            c[(size_t)i * ldc + j] = act((float)s, relu);
        }
}
