/* A matrix product for a thin inner dimension, with bias and ReLU fused.
 *
 * For K below a few dozen (the stem convolution's 3*3*3 = 27) sgemm is
 * bound by writing C, and an im2col convolution writes C twice: once in
 * sgemm, once more in the bias + ReLU pass. This kernel keeps a block of C
 * in registers over the whole K and stores it once, with the bias added
 * and ReLU applied. It is single-threaded; the convolution splits the
 * output over threads. */
#ifndef IC_OPS_GEMM_THIN_H
#define IC_OPS_GEMM_THIN_H

/* C[i][j] = act(bias[i] + sum_k A[i][k] * B[k][j]) for i < m, j < n,
 * row-major with leading dimensions lda, ldb, ldc; bias may be NULL (0);
 * act is ReLU when relu is non-zero, identity otherwise. m, n, k >= 0;
 * nothing is checked: this is an inner kernel of ic_conv2d_forward(). */
void ic_gemm_thin(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                  const float *bias, int relu, float *c, int ldc);

/* The same product with plain loops, for tests. */
void ic_gemm_thin_ref(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                      const float *bias, int relu, float *c, int ldc);

#endif
