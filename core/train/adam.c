/* Adam over a filtered parameter list (see adam.h for the update rule). */
#include "train/adam.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

ic_adam_opts ic_adam_opts_default(void)
{
    return (ic_adam_opts){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                          .clip_norm = 0.0f};
}

int ic_adam_init(ic_adam *a, ic_param *params, int n, unsigned kinds, const ic_adam_opts *o)
{
    memset(a, 0, sizeof *a);
    ic_adam_opts d = o ? *o : ic_adam_opts_default();
    if (!(d.beta1 >= 0 && d.beta1 < 1) || !(d.beta2 >= 0 && d.beta2 < 1) || !(d.eps > 0) ||
        !(d.weight_decay >= 0))
        return ic_error_set(IC_EINVAL, "adam: betas must be in [0, 1), eps > 0, weight decay >= 0");
    kinds &= ~(unsigned)IC_PARAM_BN_STAT;
    int cnt = 0;
    for (int i = 0; i < n; i++)
        if ((params[i].kind & kinds) && params[i].grad)
            cnt++;
    if (!cnt)
        return ic_error_set(IC_EINVAL, "adam: no parameter of the requested kinds (mask %u)", kinds);
    a->p = ic_malloc((size_t)cnt * sizeof *a->p);
    if (!a->p)
        return ic_error_set(IC_ENOMEM, "adam: no memory for %d parameters", cnt);
    for (int i = 0; i < n; i++)
        if ((params[i].kind & kinds) && params[i].grad) {
            a->p[a->n++] = &params[i];
            a->total += params[i].n;
        }
    a->m = ic_calloc(a->total, sizeof(float));
    a->v = ic_calloc(a->total, sizeof(float));
    if (!a->m || !a->v) {
        ic_adam_deinit(a);
        return ic_error_set(IC_ENOMEM, "adam: no memory for the moments of %zu values", a->total);
    }
    a->o = d;
    return 0;
}

void ic_adam_deinit(ic_adam *a)
{
    if (!a)
        return;
    ic_free(a->p);
    ic_free(a->m);
    ic_free(a->v);
    memset(a, 0, sizeof *a);
}

void ic_adam_reset(ic_adam *a)
{
    memset(a->m, 0, a->total * sizeof(float));
    memset(a->v, 0, a->total * sizeof(float));
    a->step = 0;
}

double ic_adam_grad_norm(const ic_adam *a)
{
    double s = 0;
    for (int i = 0; i < a->n; i++) {
        const float *g = a->p[i]->grad;
        for (size_t j = 0; j < a->p[i]->n; j++)
            s += (double)g[j] * g[j];
    }
    return sqrt(s);
}

void ic_adam_step(ic_adam *a, float lr, double *ret_norm)
{
    float clip = 1.0f;
    if (a->o.clip_norm > 0 || ret_norm) {
        double norm = ic_adam_grad_norm(a);
        if (ret_norm)
            *ret_norm = norm;
        /* torch: clip_coef = max_norm / (total_norm + 1e-6), applied when < 1 */
        if (a->o.clip_norm > 0) {
            double c = a->o.clip_norm / (norm + 1e-6);
            if (c < 1)
                clip = (float)c;
        }
    }
    a->step++;
    /* Bias corrections in double as PyTorch computes them in Python, then
     * used as float32 scalars by the tensor ops. */
    double bc1 = 1.0 - pow(a->o.beta1, (double)a->step);
    double bc2 = 1.0 - pow(a->o.beta2, (double)a->step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float b1 = a->o.beta1, b2 = a->o.beta2, eps = a->o.eps, wd = a->o.weight_decay;
    size_t off = 0;
    for (int i = 0; i < a->n; i++) {
        float *p = a->p[i]->data, *g = a->p[i]->grad, *m = a->m + off, *v = a->v + off;
        size_t n = a->p[i]->n;
        for (size_t j = 0; j < n; j++) {
            float gj = g[j] * clip;
            if (wd != 0)
                gj += wd * p[j];
            m[j] = m[j] * b1 + (1 - b1) * gj;
            v[j] = v[j] * b2 + (1 - b2) * gj * gj;
            float denom = sqrtf(v[j]) / bc2_sqrt + eps;
            p[j] -= step_size * (m[j] / denom);
        }
        off += n;
    }
}
