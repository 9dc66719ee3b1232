/* The DeepAugment-like random conv net (see deepaug.h). */
#include "augment/deepaug.h"

#include <math.h>
#include <string.h>

#include "augment/aug_internal.h"
#include "base/alloc.h"
#include "base/err.h"
#include "image/preprocess.h"
#include "ops/conv2d.h"

#define C1 16 /* latent channels */
#define PASS 6 /* channels 0..5 carry +x, -x */

typedef struct net {
    float w1[C1 * 3 * 9], b1[C1];
    float w2[C1 * C1 * 9], b2[C1];
    float w3[3 * C1 * 9], b3[3];
    int dil2;
} net;

static float gauss(ic_aug_rng *r, float s)
{
    return s * (float)ic_aug_rng_normal(r);
}

/* Weight-space perturbations on one layer's filters (cout filters of
 * cin x 3 x 3 weights), in the spirit of the official options: negate or
 * zero some filters, rescale, rotate kernels. Filters below `keep` carry
 * the image itself and are only rescaled and rotated: negating or zeroing
 * them would erase a colour channel, and with it the scene the labels
 * describe. */
static void perturb_filters(ic_aug_rng *r, float *w, int cout, int cin, int keep, float m)
{
    const int len = cin * 9;
    for (int o = 0; o < cout; o++) {
        float *f = w + (size_t)o * (size_t)len;
        if (o < keep) {
            /* pass-through filter: no negation or zeroing */
        } else if (ic_aug_rng_chance(r, 0.15f * m)) {
            for (int i = 0; i < len; i++)
                f[i] = -f[i];
        } else if (ic_aug_rng_chance(r, 0.1f * m)) {
            memset(f, 0, (size_t)len * sizeof *f);
        }
        if (ic_aug_rng_chance(r, 0.3f * m)) {
            float s = expf(0.5f * m * (float)ic_aug_rng_normal(r));
            for (int i = 0; i < len; i++)
                f[i] *= s;
        }
        if (ic_aug_rng_chance(r, 0.15f * m)) {
            /* Rotate each 3x3 kernel by 90 degrees: (i, j) -> (j, 2 - i). */
            for (int c = 0; c < cin; c++) {
                float k[9], *q = f + c * 9;
                memcpy(k, q, sizeof k);
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        q[j * 3 + (2 - i)] = k[i * 3 + j];
            }
        }
    }
}

static void build_net(ic_aug_rng *r, net *n, float m)
{
    memset(n, 0, sizeof *n);
    /* Layer 1: +x, -x pass-through with jittered taps, then random filters. */
    for (int o = 0; o < C1; o++) {
        for (int c = 0; c < 3; c++) {
            for (int t = 0; t < 9; t++) {
                float *wv = &n->w1[(o * 3 + c) * 9 + t];
                if (o < PASS)
                    *wv = (c == o % 3 && t == 4 ? (o < 3 ? 1.0f : -1.0f) : 0.0f) +
                          gauss(r, 0.08f * m);
                else
                    *wv = gauss(r, sqrtf(2.0f / 27.0f));
            }
        }
        n->b1[o] = o < PASS ? 0.0f : gauss(r, 0.05f);
    }
    /* Layer 2: identity on every channel plus random taps. */
    n->dil2 = 1 + ic_aug_rng_int(r, 2);
    const float s2 = 0.1f * m;
    for (int o = 0; o < C1; o++) {
        for (int c = 0; c < C1; c++)
            for (int t = 0; t < 9; t++)
                n->w2[(o * C1 + c) * 9 + t] = (o == c && t == 4 ? 1.0f : 0.0f) + gauss(r, s2 / 3.0f);
        n->b2[o] = gauss(r, 0.02f * m);
    }
    /* Layer 3: x = (+x) - (-x), plus feature mixtures that grow with m. */
    for (int o = 0; o < 3; o++) {
        for (int c = 0; c < C1; c++) {
            for (int t = 0; t < 9; t++) {
                float base = 0.0f;
                if (t == 4 && c == o)
                    base = 1.0f;
                else if (t == 4 && c == o + 3)
                    base = -1.0f;
                float s = c < PASS ? 0.05f * m : 0.12f * m;
                n->w3[(o * C1 + c) * 9 + t] = base + gauss(r, s / 3.0f);
            }
        }
        n->b3[o] = gauss(r, 0.03f * m);
    }
    perturb_filters(r, n->w1, C1, 3, PASS, m);
    perturb_filters(r, n->w2, C1, C1, PASS, m);
    /* The output layer is left intact apart from a rescale: negating it
     * would just invert the image, which solarize already covers. */
    for (int o = 0; o < 3; o++) {
        float s = expf(0.15f * m * (float)ic_aug_rng_normal(r));
        for (int i = 0; i < C1 * 9; i++)
            n->w3[o * C1 * 9 + i] *= s;
    }
}

/* Latent-space perturbations of the (C1, h, w) activations, one or two of
 * the official per-forward options. Zeroing and negation spare the
 * pass-through channels (see perturb_filters) and permutations stay within
 * one group. `tmp` is one plane of scratch. */
static void perturb_latent(ic_aug_rng *r, float *z, int h, int w, float m, float *tmp)
{
    const size_t plane = (size_t)h * (size_t)w;
    int kinds = 1 + ic_aug_rng_int(r, 2);
    for (int k = 0; k < kinds; k++) {
        int opt = ic_aug_rng_int(r, 5);
        for (int c = 0; c < C1; c++) {
            float *p = z + (size_t)c * plane;
            switch (opt) {
            case 0: { /* rescale channels */
                float s = expf(0.6f * m * (float)ic_aug_rng_normal(r));
                for (size_t i = 0; i < plane; i++)
                    p[i] *= s;
                break;
            }
            case 1: /* zero 20% of the feature channels */
                if (c >= PASS && ic_aug_rng_chance(r, 0.2f + 0.1f * m))
                    memset(p, 0, plane * sizeof *p);
                break;
            case 2: /* negate some feature channels */
                if (c >= PASS && ic_aug_rng_chance(r, 0.2f + 0.2f * m))
                    for (size_t i = 0; i < plane; i++)
                        p[i] = -p[i];
                break;
            case 3: { /* random spatial shift of a channel (ghosting) */
                if (!ic_aug_rng_chance(r, 0.5f))
                    break;
                int lim = 1 + (int)(3.0f * m);
                int sx = ic_aug_rng_int(r, 2 * lim + 1) - lim;
                int sy = ic_aug_rng_int(r, 2 * lim + 1) - lim;
                for (int y = 0; y < h; y++) {
                    int ys = y - sy;
                    for (int x = 0; x < w; x++) {
                        int xs = x - sx;
                        tmp[(size_t)y * (size_t)w + (size_t)x] =
                            ys >= 0 && ys < h && xs >= 0 && xs < w
                                ? p[(size_t)ys * (size_t)w + (size_t)xs]
                                : 0.0f;
                    }
                }
                memcpy(p, tmp, plane * sizeof *p);
                break;
            }
            default: { /* uniform noise on the latent, 8 draws per 64 bits */
                const float s = 0.08f * m;
                uint64_t b = 0;
                for (size_t i = 0; i < plane; i++) {
                    if ((i & 7) == 0)
                        b = ic_aug_rng_next(r);
                    p[i] += s * ((float)(b & 0xFF) / 128.0f - 1.0f);
                    b >>= 8;
                }
                break;
            }
            }
        }
        if (opt == 4 && ic_aug_rng_chance(r, 0.5f)) {
            /* Swap two channels of one group (the official "permute"
             * option): two pass channels swap colours, two feature channels
             * swap what the next layer reads. */
            int feat = ic_aug_rng_int(r, 2);
            int lo = feat ? PASS : 0, span = feat ? C1 - PASS : PASS;
            int a = lo + ic_aug_rng_int(r, span), b = lo + ic_aug_rng_int(r, span);
            if (a != b) {
                float *pa = z + (size_t)a * plane, *pb = z + (size_t)b * plane;
                memcpy(tmp, pa, plane * sizeof *tmp);
                memcpy(pa, pb, plane * sizeof *pa);
                memcpy(pb, tmp, plane * sizeof *pb);
            }
        }
    }
}

ic_aug_deepaug_params ic_aug_deepaug_params_default(void)
{
    ic_aug_deepaug_params p = {.magnitude = 1.0f, .downscale = 2};
    return p;
}

/* One bilinear tap for output index i of an in -> out upsampling, with
 * ic_image_resize_bilinear's half-pixel centres. */
typedef struct tap {
    int i0, i1;
    float l1;
} tap;

static tap make_tap(int i, int in, int out)
{
    float f = ((float)i + 0.5f) * (float)in / (float)out - 0.5f;
    if (f < 0.0f)
        f = 0.0f;
    tap t;
    t.i0 = (int)f;
    if (t.i0 > in - 1)
        t.i0 = in - 1;
    t.i1 = t.i0 + 1 < in ? t.i0 + 1 : in - 1;
    t.l1 = f - (float)t.i0;
    if (t.l1 > 1.0f)
        t.l1 = 1.0f;
    return t;
}

int ic_aug_deepaug(ic_aug_rng *rng, ic_image *img, const ic_aug_deepaug_params *p)
{
    if (!rng || !p)
        return ic_error_set(IC_EINVAL, "deepaug: NULL argument");
    int rc = aug_check_rgb(img, p->magnitude, "deepaug");
    if (rc)
        return rc;
    if (p->downscale != 1 && p->downscale != 2)
        return ic_error_set(IC_EINVAL, "deepaug: downscale %d must be 1 or 2", p->downscale);
    const float m = p->magnitude;
    if (m == 0.0f)
        return 0;
    int ds = p->downscale;
    if (img->w < 8 || img->h < 8)
        ds = 1; /* too small to halve usefully */
    const int sw = ds == 1 ? img->w : (img->w + 1) / 2, sh = ds == 1 ? img->h : (img->h + 1) / 2;
    const size_t plane = (size_t)sw * (size_t)sh;

    net *n = ic_malloc(sizeof *n);
    if (!n)
        return ic_error_set(IC_ENOMEM, "deepaug: out of memory");
    build_net(rng, n, m);
    const ic_conv2d_params p1 = {.cin = 3, .cout = C1, .kh = 3, .kw = 3, .stride_h = 1,
                                 .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1,
                                 .groups = 1, .relu = 1};
    ic_conv2d_params p2 = p1;
    p2.cin = C1;
    p2.pad_h = p2.pad_w = p2.dil_h = p2.dil_w = n->dil2;
    ic_conv2d_params p3 = p1;
    p3.cin = C1;
    p3.cout = 3;
    p3.relu = 0;
    size_t ws = ic_conv2d_workspace_floats(&p1, sh, sw);
    size_t ws2 = ic_conv2d_workspace_floats(&p2, sh, sw);
    size_t ws3 = ic_conv2d_workspace_floats(&p3, sh, sw);
    ws = ws2 > ws ? ws2 : ws;
    ws = ws3 > ws ? ws3 : ws;
    /* x (3) + z1 (C1) + z2 (C1) + y (3) + one scratch plane + workspace. */
    float *buf = ic_malloc_aligned(((3 + C1 + C1 + 3 + 1) * plane + ws) * sizeof(float));
    ic_image small = {0};
    if (!buf) {
        ic_free(n);
        return ic_error_set(IC_ENOMEM, "deepaug: out of memory for %dx%d", sw, sh);
    }
    const ic_image *src = img;
    if (ds == 2) {
        rc = ic_image_resize_bilinear(img, sw, sh, &small);
        if (rc)
            goto done;
        src = &small;
    }
    float *x = buf, *z1 = x + 3 * plane, *z2 = z1 + C1 * plane, *y = z2 + C1 * plane;
    float *tmp = y + 3 * plane, *work = tmp + plane;
    {
        const uint8_t *s = src->data;
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                x[(size_t)c * plane + i] = (float)s[i * 3 + (size_t)c] / 255.0f - 0.5f;
    }
    ic_tensor tx = ic_tensor_wrap(x, 1, 3, sh, sw), t1 = ic_tensor_wrap(z1, 1, C1, sh, sw);
    ic_tensor t2 = ic_tensor_wrap(z2, 1, C1, sh, sw), ty = ic_tensor_wrap(y, 1, 3, sh, sw);
    rc = ic_conv2d_forward(&t1, &tx, n->w1, n->b1, &p1, ws ? work : NULL);
    if (!rc) {
        perturb_latent(rng, z1, sh, sw, m, tmp);
        rc = ic_conv2d_forward(&t2, &t1, n->w2, n->b2, &p2, ws ? work : NULL);
    }
    if (!rc)
        rc = ic_conv2d_forward(&ty, &t2, n->w3, n->b3, &p3, ws ? work : NULL);
    if (rc)
        goto done;
    /* Residual r = net(x) - x with the output squashed into [0, 1] first, so
     * a runaway channel saturates instead of wrapping the blend around. */
    for (size_t i = 0; i < 3 * plane; i++) {
        float o = y[i] + 0.5f;
        o = o < 0.0f ? 0.0f : o > 1.0f ? 1.0f : o;
        y[i] = 255.0f * (o - (x[i] + 0.5f));
    }
    {
        const float lam = m * ic_aug_rng_range(rng, 0.6f, 1.0f);
        const int w = img->w, h = img->h;
        tap *tx = ic_malloc((size_t)w * sizeof *tx);
        if (!tx) {
            rc = ic_error_set(IC_ENOMEM, "deepaug: out of memory");
            goto done;
        }
        for (int xx = 0; xx < w; xx++)
            tx[xx] = make_tap(xx, sw, w);
        uint8_t *d = img->data;
        for (int yy = 0; yy < h; yy++) {
            tap ty = make_tap(yy, sh, h);
            for (int c = 0; c < 3; c++) {
                const float *r0 = y + (size_t)c * plane + (size_t)ty.i0 * (size_t)sw;
                const float *r1 = y + (size_t)c * plane + (size_t)ty.i1 * (size_t)sw;
                uint8_t *q = d + (size_t)yy * (size_t)w * 3u + (size_t)c;
                for (int xx = 0; xx < w; xx++, q += 3) {
                    const tap t = tx[xx];
                    float top = r0[t.i0] + t.l1 * (r0[t.i1] - r0[t.i0]);
                    float bot = r1[t.i0] + t.l1 * (r1[t.i1] - r1[t.i0]);
                    *q = aug_u8((float)*q + lam * (top + ty.l1 * (bot - top)));
                }
            }
        }
        ic_free(tx);
    }
done:
    ic_image_free(&small);
    ic_free_aligned(buf);
    ic_free(n);
    return rc;
}

int ic_aug_deepaug_op(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    ic_aug_deepaug_params p = ic_aug_deepaug_params_default();
    p.magnitude = magnitude;
    return ic_aug_deepaug(rng, img, &p);
}
