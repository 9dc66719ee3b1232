/* Scale, crop and flip of image + labels (see geometric.h). */
#include "augment/geometric.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/preprocess.h"

static int check_image(const ic_image *img, const char *who)
{
    if (!img || !img->data || img->w <= 0 || img->h <= 0)
        return ic_error_set(IC_EINVAL, "%s: missing or empty image", who);
    if (img->depth != 8 || img->c < 1 || img->c > 4)
        return ic_error_set(IC_EINVAL, "%s: needs an 8-bit image with 1..4 channels, got %d-bit x %d",
                            who, img->depth, img->c);
    return 0;
}

int ic_aug_hflip(ic_image *img, int32_t *labels)
{
    int rc = check_image(img, "hflip");
    if (rc)
        return rc;
    const int w = img->w, c = img->c;
    for (int y = 0; y < img->h; y++) {
        uint8_t *row = (uint8_t *)img->data + (size_t)y * (size_t)w * (size_t)c;
        for (int a = 0, b = w - 1; a < b; a++, b--) {
            for (int k = 0; k < c; k++) {
                uint8_t t = row[a * c + k];
                row[a * c + k] = row[b * c + k];
                row[b * c + k] = t;
            }
        }
        if (labels) {
            int32_t *l = labels + (size_t)y * (size_t)w;
            for (int a = 0, b = w - 1; a < b; a++, b--) {
                int32_t t = l[a];
                l[a] = l[b];
                l[b] = t;
            }
        }
    }
    return 0;
}

/* Nearest source index of output position i for an in -> out resize: the
 * pixel whose centre is nearest to (i + 0.5) * in / out - 0.5, i.e. the one
 * that contains (i + 0.5) * in / out. Same geometry as the bilinear image
 * resize, so a label edge falls where the image edge does. */
static int nearest_src(int i, int in, int out)
{
    int s = (int)floor(((double)i + 0.5) * (double)in / (double)out);
    return s < 0 ? 0 : s >= in ? in - 1 : s;
}

/* Scaled copies of img and labels (lab may be NULL); inputs untouched. */
static int scale_to(const ic_image *img, const int32_t *lab, float factor, ic_image *out,
                    int32_t **out_lab)
{
    if (!(factor > 0.0f) || !isfinite(factor))
        return ic_error_set(IC_EINVAL, "scale: factor %g must be positive", (double)factor);
    double fw = floor((double)img->w * factor + 0.5), fh = floor((double)img->h * factor + 0.5);
    if (fw > IC_AUG_MAX_SIDE || fh > IC_AUG_MAX_SIDE)
        return ic_error_set(IC_ELIMIT, "scale: %dx%d by %g exceeds %d pixels per side", img->w,
                            img->h, (double)factor, IC_AUG_MAX_SIDE);
    const int ow = fw < 1.0 ? 1 : (int)fw, oh = fh < 1.0 ? 1 : (int)fh;
    int32_t *nl = NULL;
    int *sx = NULL;
    if (lab) {
        nl = ic_malloc((size_t)ow * (size_t)oh * sizeof *nl);
        sx = ic_malloc((size_t)ow * sizeof *sx);
        if (!nl || !sx) {
            ic_free(nl);
            ic_free(sx);
            return ic_error_set(IC_ENOMEM, "scale: out of memory for %dx%d labels", ow, oh);
        }
    }
    int rc = ic_image_resize_bilinear(img, ow, oh, out);
    if (rc) {
        ic_free(nl);
        ic_free(sx);
        return rc;
    }
    if (lab) {
        for (int x = 0; x < ow; x++)
            sx[x] = nearest_src(x, img->w, ow);
        for (int y = 0; y < oh; y++) {
            const int32_t *src = lab + (size_t)nearest_src(y, img->h, oh) * (size_t)img->w;
            int32_t *dst = nl + (size_t)y * (size_t)ow;
            for (int x = 0; x < ow; x++)
                dst[x] = src[sx[x]];
        }
        ic_free(sx);
    }
    *out_lab = nl;
    return 0;
}

/* Cropped/padded copies (window drawn from rng); inputs untouched. */
static int crop_to(ic_aug_rng *rng, const ic_image *img, const int32_t *lab, int out_w, int out_h,
                   const uint8_t fill[3], ic_image *out, int32_t **out_lab)
{
    if (out_w <= 0 || out_h <= 0 || out_w > IC_AUG_MAX_SIDE || out_h > IC_AUG_MAX_SIDE)
        return ic_error_set(IC_EINVAL, "crop: bad size %dx%d", out_w, out_h);
    static const uint8_t mean[3] = {124, 116, 104};
    const uint8_t *fc = fill ? fill : mean;
    const int c = img->c, w = img->w, h = img->h;
    /* Source window [sx, sx + cw) lands at destination offset dx (and the
     * same for y): cropping when the image is larger, padding when smaller. */
    int sx = 0, dx = 0, sy = 0, dy = 0;
    if (w >= out_w)
        sx = ic_aug_rng_int(rng, w - out_w + 1);
    else
        dx = ic_aug_rng_int(rng, out_w - w + 1);
    if (h >= out_h)
        sy = ic_aug_rng_int(rng, h - out_h + 1);
    else
        dy = ic_aug_rng_int(rng, out_h - h + 1);
    const int cw = w < out_w ? w : out_w, ch = h < out_h ? h : out_h;
    int32_t *nl = NULL;
    if (lab) {
        nl = ic_calloc((size_t)out_w * (size_t)out_h, sizeof *nl); /* 0 = void */
        if (!nl)
            return ic_error_set(IC_ENOMEM, "crop: out of memory for labels");
    }
    int rc = ic_image_alloc(out, out_w, out_h, c, 8);
    if (rc) {
        ic_free(nl);
        return rc;
    }
    uint8_t px[4];
    for (int k = 0; k < c; k++)
        px[k] = c == 1 ? fc[0] : k < 3 ? fc[k] : 255;
    uint8_t *o = out->data;
    if (cw < out_w || ch < out_h) {
        const size_t npx = (size_t)out_w * (size_t)out_h;
        for (size_t i = 0; i < npx; i++)
            memcpy(o + i * (size_t)c, px, (size_t)c);
    }
    const uint8_t *s = img->data;
    for (int y = 0; y < ch; y++) {
        memcpy(o + ((size_t)(y + dy) * (size_t)out_w + (size_t)dx) * (size_t)c,
               s + ((size_t)(y + sy) * (size_t)w + (size_t)sx) * (size_t)c, (size_t)cw * (size_t)c);
        if (nl)
            memcpy(nl + (size_t)(y + dy) * (size_t)out_w + (size_t)dx,
                   lab + (size_t)(y + sy) * (size_t)w + (size_t)sx, (size_t)cw * sizeof *nl);
    }
    *out_lab = nl;
    return 0;
}

/* Frees the old image/labels and installs the new ones. */
static void replace(ic_image *img, int32_t **labels, ic_image *nimg, int32_t *nlab)
{
    ic_image_free(img);
    *img = *nimg;
    if (labels && *labels) {
        ic_free(*labels);
        *labels = nlab;
    }
}

int ic_aug_scale(ic_image *img, int32_t **labels, float factor)
{
    int rc = check_image(img, "scale");
    if (rc)
        return rc;
    ic_image out;
    int32_t *nl = NULL;
    rc = scale_to(img, labels ? *labels : NULL, factor, &out, &nl);
    if (rc)
        return rc;
    replace(img, labels, &out, nl);
    return 0;
}

int ic_aug_crop(ic_aug_rng *rng, ic_image *img, int32_t **labels, int out_w, int out_h,
                const uint8_t fill[3])
{
    int rc = check_image(img, "crop");
    if (rc)
        return rc;
    if (!rng)
        return ic_error_set(IC_EINVAL, "crop: NULL rng");
    ic_image out;
    int32_t *nl = NULL;
    rc = crop_to(rng, img, labels ? *labels : NULL, out_w, out_h, fill, &out, &nl);
    if (rc)
        return rc;
    replace(img, labels, &out, nl);
    return 0;
}

ic_aug_geom_params ic_aug_geom_params_default(void)
{
    ic_aug_geom_params p = {
        .scale_min = 0.5f,
        .scale_max = 2.0f,
        .crop_w = 512,
        .crop_h = 256,
        .p_flip = 0.5f,
        .fill = {124, 116, 104},
    };
    return p;
}

int ic_aug_geometric(ic_aug_rng *rng, ic_image *img, int32_t **labels,
                     const ic_aug_geom_params *p)
{
    if (!rng || !p)
        return ic_error_set(IC_EINVAL, "geometric: NULL argument");
    if (!(p->scale_min > 0.0f) || !(p->scale_max >= p->scale_min) || !isfinite(p->scale_max))
        return ic_error_set(IC_EINVAL, "geometric: bad scale range [%g, %g]",
                            (double)p->scale_min, (double)p->scale_max);
    if (p->crop_w < 0 || p->crop_h < 0 || (p->crop_w == 0) != (p->crop_h == 0))
        return ic_error_set(IC_EINVAL, "geometric: bad crop %dx%d", p->crop_w, p->crop_h);
    if (!(p->p_flip >= 0.0f && p->p_flip <= 1.0f))
        return ic_error_set(IC_EINVAL, "geometric: p_flip %g outside [0, 1]", (double)p->p_flip);
    int rc = check_image(img, "geometric");
    if (rc)
        return rc;
    const int32_t *lab = labels ? *labels : NULL;
    /* Draw the factor and the flip before anything can fail, so that the
     * stream is the same whatever the image. */
    const float f = ic_aug_rng_range(rng, p->scale_min, p->scale_max);
    const int flip = ic_aug_rng_chance(rng, p->p_flip);
    ic_image s = *img, c;
    int32_t *sl = NULL, *cl = NULL;
    if (f != 1.0f) {
        rc = scale_to(img, lab, f, &s, &sl);
        if (rc)
            return rc;
    } else {
        sl = (int32_t *)lab;
    }
    if (p->crop_w > 0) {
        rc = crop_to(rng, &s, sl, p->crop_w, p->crop_h, p->fill, &c, &cl);
        if (s.data != img->data) {
            ic_image_free(&s);
            ic_free(sl);
        }
        if (rc)
            return rc;
    } else if (s.data != img->data) {
        c = s;
        cl = sl;
    } else {
        c = *img;
        cl = (int32_t *)lab;
    }
    if (flip)
        ic_aug_hflip(&c, cl);
    if (c.data != img->data)
        replace(img, labels, &c, cl);
    return 0;
}
