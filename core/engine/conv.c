/* Packing, path choice, scratch sizes and dispatch of the engine's
 * convolutions (see conv.h); the paths live in conv_direct.c, conv_wino.c
 * and conv_dw.c. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine/conv_internal.h"

static int is_depthwise(const ic_conv2d_params *p)
{
    return p->groups == p->cin && p->cout == p->cin && p->groups > 1;
}

/* 3x3, stride 1, "same" padding, at most 64 dilation phases. */
static int wino_shape(const ic_conv2d_params *p)
{
    return p->groups == 1 && p->kh == 3 && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1 &&
           p->pad_h == p->dil_h && p->pad_w == p->dil_w && p->dil_h * p->dil_w <= 64;
}

int ic_eng_conv_pack(ic_eng_conv *cv, const ic_conv2d_params *p, const float *weight,
                     const float *bias, int flags)
{
    memset(cv, 0, sizeof *cv);
    cv->p = *p;
    const int kk = p->kh * p->kw;
    if (p->groups != 1 && !is_depthwise(p))
        return ic_error_set(IC_EUNSUPPORTED, "engine: grouped convolutions (%d groups of %d) "
                                             "are not supported",
                            p->groups, p->cin / p->groups);
    if (kk > IC_ENG_MAX_TAPS)
        return ic_error_set(IC_EUNSUPPORTED, "engine: kernels above %d taps are not supported",
                            IC_ENG_MAX_TAPS);
    cv->cinb = (p->cin + 15) / 16;
    cv->coutb = (p->cout + 15) / 16;
    cv->pairs = (cv->coutb + 1) / 2;
    const size_t nb = (size_t)cv->pairs * IC_KERN_NR;
    cv->bias = ic_malloc_aligned(nb * sizeof *cv->bias);
    if (!cv->bias)
        goto nomem;
    memset(cv->bias, 0, nb * sizeof *cv->bias);
    if (bias)
        memcpy(cv->bias, bias, (size_t)p->cout * sizeof *bias);
    if (is_depthwise(p)) {
        const size_t n = (size_t)cv->coutb * (size_t)kk * 16;
        if (!(cv->w = ic_malloc_aligned(n * sizeof *cv->w)))
            goto nomem;
        memset(cv->w, 0, n * sizeof *cv->w);
        for (int c = 0; c < p->cout; c++)
            for (int t = 0; t < kk; t++)
                cv->w[((size_t)(c / 16) * kk + (size_t)t) * 16 + (size_t)(c % 16)] =
                    weight[(size_t)c * kk + (size_t)t];
        return 0;
    }
    if (wino_shape(p) && !(flags & IC_ENG_EXACT)) {
        const int rc = ic_eng_wino_pack(cv, weight);
        if (rc) {
            ic_eng_conv_free(cv); /* ic_eng_wino_pack recorded the message */
            return rc;
        }
        if (!(flags & IC_ENG_PACK_BOTH))
            return 0;
    }
    /* few input channels: taps into K (K blocks of cin*kk channels, one tap) */
    cv->im2col = p->cin < 16 && kk > 1 && p->cin * kk <= IC_ENG_IM2COL_K;
    cv->ktaps = cv->im2col ? 1 : kk;
    cv->kb = cv->im2col ? (p->cin * kk + 15) / 16 : cv->cinb;
    const size_t k16 = (size_t)cv->kb * 16;
    const size_t n = (size_t)cv->pairs * (size_t)cv->ktaps * k16 * IC_KERN_NR;
    if (!(cv->w = ic_malloc_aligned(n * sizeof *cv->w)))
        goto nomem;
    memset(cv->w, 0, n * sizeof *cv->w);
    for (int co = 0; co < p->cout; co++)
        for (int ci = 0; ci < p->cin; ci++)
            for (int t = 0; t < kk; t++) {
                /* (tap, channel) of the packed K, in im2col order t * cin + ci */
                const size_t tap = cv->im2col ? 0 : (size_t)t;
                const size_t k = cv->im2col ? (size_t)t * p->cin + (size_t)ci : (size_t)ci;
                cv->w[(((size_t)(co / 32) * cv->ktaps + tap) * k16 + k) * IC_KERN_NR +
                      (size_t)(co % 32)] = weight[((size_t)co * p->cin + ci) * kk + (size_t)t];
            }
    return 0;
nomem:
    ic_eng_conv_free(cv);
    return ic_error_set(IC_ENOMEM, "engine: out of memory for packed weights");
}

void ic_eng_conv_free(ic_eng_conv *cv)
{
    if (!cv)
        return;
    ic_free_aligned(cv->w);
    ic_free_aligned(cv->u);
    ic_free_aligned(cv->bias);
    memset(cv, 0, sizeof *cv);
}

/* Winograd on an (h, w) input: the tiles of the dilation phases must not
 * cover much more than the image (a big dilation on a small map is mostly
 * padding). */
static int wino_pays(const ic_eng_conv *cv, int h, int w)
{
    const int dh = cv->p.dil_h, dw = cv->p.dil_w;
    long long covered = 0;
    for (int a = 0; a < dh; a++)
        for (int b = 0; b < dw; b++) {
            const long long ph = (h - a + dh - 1) / dh, pw = (w - b + dw - 1) / dw;
            covered += ((ph + 3) / 4 * 4) * ((pw + 3) / 4 * 4);
        }
    return covered <= 2LL * h * w;
}

static ic_eng_path path_for(const ic_eng_conv *cv, int h, int w, int flags)
{
    if (is_depthwise(&cv->p))
        return IC_ENG_DEPTHWISE;
    if (cv->u && !(flags & IC_ENG_EXACT) && (!cv->w || wino_pays(cv, h, w)))
        return IC_ENG_WINOGRAD;
    return IC_ENG_GEMM;
}

ic_eng_path ic_eng_conv_path(const ic_eng_conv *cv, int flags)
{
    if (is_depthwise(&cv->p))
        return IC_ENG_DEPTHWISE;
    return cv->u && !(flags & IC_ENG_EXACT) ? IC_ENG_WINOGRAD : IC_ENG_GEMM;
}

const char *ic_eng_conv_path_name(const ic_eng_conv *cv, int h, int w, int flags)
{
    static const char *const names[] = {"gemm", "winograd", "depthwise"};
    return names[path_for(cv, h, w, flags)];
}

int ic_eng_conv_applies_in_place(const ic_eng_conv *cv)
{
    const ic_conv2d_params *p = &cv->p;
    return !cv->im2col && p->groups == 1 && p->kh == 1 && p->kw == 1 && p->pad_h == 0 &&
           p->pad_w == 0 && p->stride_h == 1 && p->stride_w == 1;
}

int ic_eng_conv_im2col(const ic_eng_conv *cv)
{
    return cv->im2col;
}

int ic_eng_conv_res_in_place(const ic_eng_conv *cv, int h, int w, int flags)
{
    int kcb;
    return path_for(cv, h, w, flags) == IC_ENG_GEMM && ic_eng_direct_chunks(cv, &kcb) == 1;
}

size_t ic_eng_stats_floats(const ic_eng_conv *cv, int threads)
{
    return (size_t)threads * (size_t)cv->pairs * 64 * 2; /* doubles */
}

size_t ic_eng_conv_ws_floats(const ic_eng_conv *cv, int n, int h, int w, int threads, int flags)
{
    (void)n;
    if (threads < 1)
        threads = 1;
    size_t path = 0;
    switch (path_for(cv, h, w, flags)) {
    case IC_ENG_GEMM:
        path = ic_eng_direct_ws_floats(cv, h, w);
        break;
    case IC_ENG_WINOGRAD:
        path = ic_eng_wino_ws_floats(cv, h, w, threads);
        break;
    case IC_ENG_DEPTHWISE:
        path = ic_eng_dw_ws_floats(cv, h, w, threads);
        break;
    }
    return ic_eng_stats_floats(cv, threads) + path;
}

void ic_eng_stats_merge(const ic_eng_job *j)
{
    const ic_eng_conv *cv = j->cv;
    const size_t c16 = (size_t)cv->coutb * 16;
    double *dst = j->o->stats + (size_t)j->n * 2 * c16;
    for (int t = 0; t < j->threads; t++)
        for (int pr = 0; pr < cv->pairs; pr++) {
            const double *s = j->st + ((size_t)t * cv->pairs + (size_t)pr) * 64;
            for (int l = 0; l < 32; l++) {
                const size_t c = (size_t)pr * 32 + (size_t)l;
                if (c < c16) {
                    dst[c] += s[l];
                    dst[c16 + c] += s[32 + l];
                }
            }
        }
}

int ic_eng_conv_forward(const ic_eng_conv *cv, ic_tensor *y, ic_tensor *x, const ic_blk_pend *pend,
                        const ic_eng_out *o, float *ws, int threads, int flags)
{
    int oh, ow;
    int rc = ic_conv2d_out_size(&cv->p, x->h, x->w, &oh, &ow);
    if (rc)
        return rc;
    if (x->c != cv->p.cin || y->n != x->n || y->c != cv->p.cout || y->h != oh || y->w != ow ||
        (o->res && (o->res->n != y->n || o->res->c != y->c || o->res->h != oh ||
                    o->res->w != ow)))
        return ic_error_set(IC_ESHAPE, "engine conv: shapes do not match its parameters");
    if (o->res && o->res->data == y->data && !ic_eng_conv_res_in_place(cv, x->h, x->w, flags))
        return ic_error_set(IC_EINVAL, "engine conv: this path cannot add a residual held in y");
    if (o->stats && !o->shift)
        return ic_error_set(IC_EINVAL, "engine conv: statistics need a shift");
    if (o->x_res && (!ic_eng_conv_applies_in_place(cv) || !ic_tensor_same_shape(o->x_res, x)))
        return ic_error_set(IC_EINVAL, "engine conv: only a 1x1 stride-1 conv adds a residual "
                                       "to its input, of the input's shape");
    if ((flags & IC_ENG_X_NCHW) && !cv->im2col)
        return ic_error_set(IC_EINVAL, "engine conv: only im2col convs read an NCHW input");
    if (!is_depthwise(&cv->p) && !cv->w && (flags & IC_ENG_EXACT))
        return ic_error_set(IC_EINVAL, "engine conv: packed for Winograd only, cannot run exact");
    if (threads < 1)
        threads = 1;
    const ic_eng_path path = path_for(cv, x->h, x->w, flags);
    double *st = (double *)ws;
    float *pws = ws + ic_eng_stats_floats(cv, threads);
    for (int n = 0; n < x->n; n++) {
        if (o->stats)
            memset(st, 0, ic_eng_stats_floats(cv, threads) * sizeof(float));
        ic_eng_job j = {.cv = cv, .y = y, .x = x, .pend = pend, .o = o, .n = n, .ws = pws,
                        .st = st, .threads = threads, .x_nchw = (flags & IC_ENG_X_NCHW) != 0};
        switch (path) {
        case IC_ENG_GEMM:
            ic_eng_direct_run(&j);
            break;
        case IC_ENG_WINOGRAD:
            ic_eng_wino_run(&j);
            break;
        case IC_ENG_DEPTHWISE:
            ic_eng_dw_run(&j);
            break;
        }
        if (o->stats)
            ic_eng_stats_merge(&j);
    }
    return 0;
}
