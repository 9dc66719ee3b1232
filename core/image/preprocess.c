/* Size fitting, bilinear resize and normalisation (see preprocess.h). */
#include "image/preprocess.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

int ic_image_fit_size(int w, int h, int short_edge, int max_size, int *out_w, int *out_h)
{
    if (w <= 0 || h <= 0 || short_edge <= 0 || !out_w || !out_h)
        return ic_error_set(IC_EINVAL, "ic_image_fit_size: bad arguments %dx%d, short edge %d",
                            w, h, short_edge);
    /* Same arithmetic, in double, as detectron2's
     * ResizeShortestEdge.get_output_shape, so sizes agree to the pixel. */
    double size = short_edge;
    double scale = size / (h < w ? h : w);
    double nh, nw;
    if (h < w) {
        nh = size;
        nw = scale * w;
    } else {
        nh = scale * h;
        nw = size;
    }
    double longest = nh > nw ? nh : nw;
    if (max_size > 0 && longest > max_size) {
        scale = max_size / longest;
        nh *= scale;
        nw *= scale;
    }
    int rw = (int)(nw + 0.5), rh = (int)(nh + 0.5);
    *out_w = rw > 0 ? rw : 1;
    *out_h = rh > 0 ? rh : 1;
    return 0;
}

/* One output coordinate's taps: source indices i0, i1 (i1 = i0 at the edge)
 * and the weight of i1. */
typedef struct tap {
    int i0, i1;
    float l1;
} tap;

/* PyTorch's area_pixel_compute_source_index for align_corners=False. */
static void make_taps(tap *t, int in, int out)
{
    const float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        float r = scale * ((float)o + 0.5f) - 0.5f;
        if (r < 0.0f)
            r = 0.0f;
        int i0 = (int)r;
        if (i0 > in - 1)
            i0 = in - 1;
        t[o].i0 = i0;
        t[o].i1 = i0 < in - 1 ? i0 + 1 : i0;
        t[o].l1 = r - (float)i0;
    }
}

int ic_image_resize_bilinear(const ic_image *src, int out_w, int out_h, ic_image *dst)
{
    if (!src || !src->data || !dst || src->w <= 0 || src->h <= 0)
        return ic_error_set(IC_EINVAL, "ic_image_resize_bilinear: invalid source image");
    if (src->depth != 8 || src->c < 1 || src->c > 4)
        return ic_error_set(IC_EINVAL, "bilinear resize needs 8-bit samples, got %d-bit x %d",
                            src->depth, src->c);
    if (out_w <= 0 || out_h <= 0)
        return ic_error_set(IC_EINVAL, "cannot resize to %dx%d", out_w, out_h);
    ic_image d;
    int rc = ic_image_alloc(&d, out_w, out_h, src->c, 8);
    if (rc)
        return rc;
    if (out_w == src->w && out_h == src->h) {
        memcpy(d.data, src->data, ic_image_row_bytes(src) * (size_t)src->h);
        *dst = d;
        return 0;
    }
    tap *tx = ic_malloc(((size_t)out_w + (size_t)out_h) * sizeof *tx);
    if (!tx) {
        ic_image_free(&d);
        return ic_error_set(IC_ENOMEM, "out of memory for resize tables");
    }
    tap *ty = tx + out_w;
    make_taps(tx, src->w, out_w);
    make_taps(ty, src->h, out_h);
    const int c = src->c;
    const size_t sstride = ic_image_row_bytes(src);
    const uint8_t *s = src->data;
    uint8_t *o = d.data;
    for (int y = 0; y < out_h; y++) {
        const uint8_t *r0 = s + (size_t)ty[y].i0 * sstride;
        const uint8_t *r1 = s + (size_t)ty[y].i1 * sstride;
        const float h1 = ty[y].l1, h0 = 1.0f - h1;
        for (int x = 0; x < out_w; x++) {
            const size_t a = (size_t)tx[x].i0 * (size_t)c, b = (size_t)tx[x].i1 * (size_t)c;
            const float w1 = tx[x].l1, w0 = 1.0f - w1;
            for (int k = 0; k < c; k++) {
                /* Same association as PyTorch's kernel: rows first weighted
                 * by the vertical lambdas of horizontally mixed pairs. */
                float v = h0 * (w0 * r0[a + k] + w1 * r0[b + k]) +
                          h1 * (w0 * r1[a + k] + w1 * r1[b + k]);
                int q = (int)(v + 0.5f);
                *o++ = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
    }
    ic_free(tx);
    *dst = d;
    return 0;
}

int ic_image_to_tensor(const ic_image *img, const float mean[3], const float std[3],
                       ic_tensor *t, int n)
{
    if (!img || !img->data || !mean || !std || !t || !t->data)
        return ic_error_set(IC_EINVAL, "ic_image_to_tensor: NULL argument");
    if (img->depth != 8 || (img->c != 1 && img->c != 3 && img->c != 4))
        return ic_error_set(IC_EINVAL, "cannot normalise a %d-bit image with %d channels",
                            img->depth, img->c);
    if (t->c != 3 || n < 0 || n >= t->n || t->h < img->h || t->w < img->w)
        return ic_error_set(IC_EINVAL,
                            "tensor (%d, %d, %d, %d) item %d cannot hold a %dx%d RGB image",
                            t->n, t->c, t->h, t->w, n, img->w, img->h);
    /* A table per channel gives exactly (p - mean) / std, as PyTorch
     * computes it, for the price of a lookup. */
    float lut[3][256];
    for (int k = 0; k < 3; k++) {
        if (!(std[k] != 0.0f) || !isfinite(std[k]) || !isfinite(mean[k]))
            return ic_error_set(IC_EINVAL, "normalisation mean %g / std %g of channel %d is "
                                           "unusable",
                                (double)mean[k], (double)std[k], k);
        for (int v = 0; v < 256; v++)
            lut[k][v] = ((float)v - mean[k]) / std[k];
    }
    const int c = img->c;
    const uint8_t *s = img->data;
    for (int k = 0; k < 3; k++) {
        float *plane = ic_tensor_at(t, n, k);
        const int sk = c == 1 ? 0 : k;
        for (int y = 0; y < img->h; y++) {
            const uint8_t *row = s + (size_t)y * (size_t)img->w * (size_t)c;
            float *dst = plane + (size_t)y * (size_t)t->w;
            for (int x = 0; x < img->w; x++)
                dst[x] = lut[k][row[(size_t)x * (size_t)c + (size_t)sk]];
            for (int x = img->w; x < t->w; x++)
                dst[x] = 0.0f;
        }
        for (int y = img->h; y < t->h; y++)
            memset(plane + (size_t)y * (size_t)t->w, 0, (size_t)t->w * sizeof(float));
    }
    return 0;
}
