/* Finite-difference gradient checking for the *_grad.c tests.
 *
 * A test wraps its forward in a function returning the scalar
 * L = sum_i y_i r_i (r random, summed in double), so that dL/dy = r is the
 * upstream gradient fed to the backward. Each parameter element is moved by
 * +-h and the secant (L+ - L-) / (x+ - x-) uses the float values actually
 * stored, so the rounding of x +- h does not enter the quotient. The error is
 * tensor-wise, max |analytic - numeric| / max |numeric|: element-wise
 * relative error is meaningless for gradients that are near zero. */
#ifndef IC_TESTS_GRADCHECK_H
#define IC_TESTS_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stddef.h>

/* Scalar objective evaluated at the current parameter values. */
typedef double (*gc_fn)(void *ctx);

/* sum_i y[i] * r[i] in double. */
static inline double gc_dot(const float *y, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)y[i] * r[i];
    return s;
}

/* Numerical gradient of f with respect to param[0..n) (restored after), with
 * Richardson extrapolation when richardson != 0 (two steps h and h/2,
 * (4 D(h/2) - D(h)) / 3, which removes the h^2 term for smooth functions).
 * Returns the tensor-wise relative error of `analytic` and prints it. */
static inline double gc_check(gc_fn f, void *ctx, float *param, size_t n, const float *analytic,
                              float h, int richardson, const char *label)
{
    double max_err = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        float v = param[i];
        double d[2];
        for (int s = 0; s < (richardson ? 2 : 1); s++) {
            float step = s ? h / 2 : h;
            param[i] = v + step;
            double xp = param[i], lp = f(ctx);
            param[i] = v - step;
            double xm = param[i], lm = f(ctx);
            param[i] = v;
            d[s] = (lp - lm) / (xp - xm);
        }
        double num = richardson ? (4 * d[1] - d[0]) / 3 : d[0];
        double e = fabs(num - analytic[i]);
        if (e > max_err)
            max_err = e;
        if (fabs(num) > max_ref)
            max_ref = fabs(num);
    }
    double rel = max_ref > 0 ? max_err / max_ref : max_err;
    printf("gradcheck %-28s n=%-5zu max rel error %.3e\n", label, n, rel);
    return rel;
}

#endif
