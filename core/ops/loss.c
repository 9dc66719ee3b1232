/* Panoptic-DeepLab training losses (see loss.h).
 *
 * DeepLabCE needs the k-th largest of N*H*W pixel losses. A full sort is
 * O(P log P) on ~10^6 pixels per batch; a quickselect is O(P). The partition
 * is 3-way because the loss vector is full of exact ties (every ignored pixel
 * is 0, and with top_k = 0.2 those zeros often straddle the k-th position),
 * which would make a 2-way quickselect quadratic. */
#include "ops/loss.h"

#include <math.h>

#include "base/err.h"

/* ---- selection ---- */

/* The k-th largest value (k >= 1, 1 = the maximum) of a[0..n), permuting a.
 * Iterative 3-way quickselect with a median-of-three pivot: each round splits
 * [lo, hi) into > pivot, == pivot, < pivot and continues in the part that
 * holds position k - 1. NaN compares neither greater nor less, so it lands
 * with the pivot and the loop still terminates. */
static float select_kth_largest(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n, want = k - 1;
    for (;;) {
        if (hi - lo == 1)
            return a[lo];
        float p0 = a[lo], p1 = a[lo + (hi - lo) / 2], p2 = a[hi - 1];
        float pivot = p0 > p1 ? (p1 > p2 ? p1 : (p0 > p2 ? p2 : p0))
                              : (p0 > p2 ? p0 : (p1 > p2 ? p2 : p1));
        /* invariant: [lo, gt) > pivot, [gt, i) == pivot, [lt, hi) < pivot */
        size_t gt = lo, i = lo, lt = hi;
        while (i < lt) {
            float v = a[i];
            if (v > pivot) {
                a[i] = a[gt];
                a[gt] = v;
                gt++;
                i++;
            } else if (v < pivot) {
                lt--;
                a[i] = a[lt];
                a[lt] = v;
            } else {
                i++;
            }
        }
        if (want < gt)
            hi = gt;
        else if (want < lt)
            return pivot;
        else
            lo = lt;
    }
}

/* ---- DeepLabCE ---- */

/* -log softmax(x)[label] for the pixel at offset i of image plane block x0
 * (channels hw apart), in double. */
static double pixel_ce(const float *x0, size_t hw, int c, int label)
{
    double m = -INFINITY;
    for (int k = 0; k < c; k++)
        if (x0[(size_t)k * hw] > m)
            m = x0[(size_t)k * hw];
    double s = 0;
    for (int k = 0; k < c; k++)
        s += exp(x0[(size_t)k * hw] - m);
    return m + log(s) - x0[(size_t)label * hw];
}

int ic_loss_deeplab_ce_forward(float *loss, float *coef, float *work, const ic_tensor *logits,
                               const int32_t *labels, const float *weights, double top_k,
                               int ignore_index)
{
    if (!loss || !coef || !work || !labels)
        return ic_error_set(IC_EINVAL, "deeplab ce: missing buffer");
    if (logits->n <= 0 || logits->c <= 0 || logits->h <= 0 || logits->w <= 0)
        return ic_error_set(IC_ESHAPE, "deeplab ce: empty logits");
    if (!(top_k > 0 && top_k <= 1))
        return ic_error_set(IC_EINVAL, "deeplab ce: top_k %g must be in (0, 1]", top_k);
    size_t hw = ic_tensor_plane(logits), np = (size_t)logits->n * hw;
    size_t k = (size_t)(top_k * (double)np);
    if (k == 0)
        return ic_error_set(IC_EINVAL, "deeplab ce: top_k %g of %zu pixels selects none", top_k, np);
    for (int n = 0; n < logits->n; n++) {
        const float *xb = ic_tensor_at(logits, n, 0);
        for (size_t i = 0; i < hw; i++) {
            size_t j = (size_t)n * hw + i;
            int lab = labels[j];
            if (lab == ignore_index) {
                coef[j] = 0.0f;
                continue;
            }
            if (lab < 0 || lab >= logits->c)
                return ic_error_set(IC_EINVAL, "deeplab ce: label %d at pixel %zu outside [0, %d)", lab,
                                    j, logits->c);
            /* float like PyTorch's per-pixel loss tensor, so mining sees
             * the same values */
            float pl = (float)pixel_ce(xb + i, hw, logits->c, lab);
            coef[j] = weights ? pl * weights[j] : pl;
        }
    }
    /* threshold t = k-th largest; every pixel above it is selected, then
     * ties with t in index order until k are chosen */
    float t = -INFINITY;
    size_t above = 0;
    if (k < np) {
        for (size_t j = 0; j < np; j++)
            work[j] = coef[j];
        t = select_kth_largest(work, np, k);
        for (size_t j = 0; j < np; j++)
            above += coef[j] > t;
    }
    size_t ties = k - above;
    double sum = 0;
    for (size_t j = 0; j < np; j++) {
        float v = coef[j];
        int sel = k == np || v > t || (v == t && ties > 0 && ties--);
        if (sel)
            sum += v;
        coef[j] = sel ? (float)((weights ? (double)weights[j] : 1.0) / (double)k) : 0.0f;
    }
    *loss = (float)(sum / (double)k);
    return 0;
}

int ic_loss_deeplab_ce_backward(ic_tensor *dlogits, float dloss, const float *coef,
                                const ic_tensor *logits, const int32_t *labels, int ignore_index)
{
    if (!ic_tensor_same_shape(dlogits, logits))
        return ic_error_set(IC_ESHAPE, "deeplab ce backward: dlogits and logits shapes differ");
    size_t hw = ic_tensor_plane(logits);
    int c = logits->c;
    for (int n = 0; n < logits->n; n++) {
        const float *xb = ic_tensor_at(logits, n, 0);
        float *db = ic_tensor_at(dlogits, n, 0);
        for (size_t i = 0; i < hw; i++) {
            size_t j = (size_t)n * hw + i;
            if (coef[j] == 0.0f || labels[j] == ignore_index)
                continue;
            const float *x = xb + i;
            double m = -INFINITY, s = 0;
            for (int q = 0; q < c; q++)
                if (x[(size_t)q * hw] > m)
                    m = x[(size_t)q * hw];
            for (int q = 0; q < c; q++)
                s += exp(x[(size_t)q * hw] - m);
            double g = (double)dloss * coef[j];
            for (int q = 0; q < c; q++) {
                double p = exp(x[(size_t)q * hw] - m) / s - (q == labels[j] ? 1.0 : 0.0);
                db[(size_t)q * hw + i] += (float)(g * p);
            }
        }
    }
    return 0;
}

/* ---- center MSE and offset L1 ---- */

/* pred and target share a shape; weight is (N, 1, H, W). */
static int check_dense(const ic_tensor *pred, const ic_tensor *target, const ic_tensor *weight,
                       const char *what)
{
    if (!ic_tensor_same_shape(pred, target) || weight->n != pred->n || weight->c != 1 ||
        weight->h != pred->h || weight->w != pred->w)
        return ic_error_set(IC_ESHAPE, "%s: pred (%d, %d, %d, %d), target (%d, %d, %d, %d), weight (%d, %d, %d, %d)",
                            what, pred->n, pred->c, pred->h, pred->w, target->n, target->c, target->h,
                            target->w, weight->n, weight->c, weight->h, weight->w);
    return 0;
}

static double weight_sum(const ic_tensor *weight)
{
    double s = 0;
    size_t n = ic_tensor_numel(weight);
    for (size_t i = 0; i < n; i++)
        s += weight->data[i];
    return s;
}

/* sum over elements of f(pred - target) * w, w broadcast over channels;
 * l1 selects |d| instead of d^2. */
static double weighted_sum(const ic_tensor *pred, const ic_tensor *target, const ic_tensor *weight,
                           int l1)
{
    size_t hw = ic_tensor_plane(pred);
    double s = 0;
    for (int n = 0; n < pred->n; n++) {
        const float *w = ic_tensor_at(weight, n, 0);
        for (int c = 0; c < pred->c; c++) {
            const float *p = ic_tensor_at(pred, n, c), *t = ic_tensor_at(target, n, c);
            for (size_t i = 0; i < hw; i++) {
                double d = (double)p[i] - t[i];
                s += (l1 ? fabs(d) : d * d) * w[i];
            }
        }
    }
    return s;
}

/* dpred += scale * f'(pred - target) * w; f' = 2d (MSE) or sign(d) (L1). */
static void weighted_grad(ic_tensor *dpred, double scale, const ic_tensor *pred,
                          const ic_tensor *target, const ic_tensor *weight, int l1)
{
    size_t hw = ic_tensor_plane(pred);
    for (int n = 0; n < pred->n; n++) {
        const float *w = ic_tensor_at(weight, n, 0);
        for (int c = 0; c < pred->c; c++) {
            const float *p = ic_tensor_at(pred, n, c), *t = ic_tensor_at(target, n, c);
            float *d = ic_tensor_at(dpred, n, c);
            for (size_t i = 0; i < hw; i++) {
                double e = (double)p[i] - t[i];
                double f = l1 ? (e > 0 ? 1.0 : (e < 0 ? -1.0 : 0.0)) : 2.0 * e;
                d[i] += (float)(scale * f * w[i]);
            }
        }
    }
}

static int dense_forward(float *loss, const ic_tensor *pred, const ic_tensor *target,
                         const ic_tensor *weight, int l1, const char *what)
{
    int rc = check_dense(pred, target, weight, what);
    if (rc)
        return rc;
    double ws = weight_sum(weight);
    *loss = ws == 0 ? 0.0f : (float)(weighted_sum(pred, target, weight, l1) / ws);
    return 0;
}

static int dense_backward(ic_tensor *dpred, float dloss, const ic_tensor *pred,
                          const ic_tensor *target, const ic_tensor *weight, int l1, const char *what)
{
    int rc = check_dense(pred, target, weight, what);
    if (rc)
        return rc;
    if (!ic_tensor_same_shape(dpred, pred))
        return ic_error_set(IC_ESHAPE, "%s: dpred shape differs from pred", what);
    double ws = weight_sum(weight);
    if (ws != 0)
        weighted_grad(dpred, (double)dloss / ws, pred, target, weight, l1);
    return 0;
}

int ic_loss_center_mse_forward(float *loss, const ic_tensor *pred, const ic_tensor *target,
                               const ic_tensor *weight)
{
    return dense_forward(loss, pred, target, weight, 0, "center mse");
}

int ic_loss_center_mse_backward(ic_tensor *dpred, float dloss, const ic_tensor *pred,
                                const ic_tensor *target, const ic_tensor *weight)
{
    return dense_backward(dpred, dloss, pred, target, weight, 0, "center mse backward");
}

int ic_loss_offset_l1_forward(float *loss, const ic_tensor *pred, const ic_tensor *target,
                              const ic_tensor *weight)
{
    return dense_forward(loss, pred, target, weight, 1, "offset l1");
}

int ic_loss_offset_l1_backward(ic_tensor *dpred, float dloss, const ic_tensor *pred,
                               const ic_tensor *target, const ic_tensor *weight)
{
    return dense_backward(dpred, dloss, pred, target, weight, 1, "offset l1 backward");
}
