/* The ic_image type, header limit checks, the format sniffer, the decode
 * dispatcher and the EXIF orientation transform (see image.h). The codecs
 * themselves are in jpeg.c and png.c. */
#include "image/image.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/jpeg.h"
#include "image/png.h"

ic_image_decode_opts ic_image_decode_opts_default(void)
{
    ic_image_decode_opts o;
    memset(&o, 0, sizeof o);
    o.limits = ic_image_limits_resolve(NULL);
    return o;
}

ic_image_limits ic_image_limits_resolve(const ic_image_limits *lim)
{
    ic_image_limits r = {IC_IMAGE_MAX_SIDE_DEFAULT, IC_IMAGE_MAX_SIDE_DEFAULT,
                         IC_IMAGE_MAX_PIXELS_DEFAULT, IC_IMAGE_MAX_SCANS_DEFAULT};
    if (lim) {
        if (lim->max_w > 0)
            r.max_w = lim->max_w;
        if (lim->max_h > 0)
            r.max_h = lim->max_h;
        if (lim->max_pixels > 0)
            r.max_pixels = lim->max_pixels;
        if (lim->max_scans > 0)
            r.max_scans = lim->max_scans;
    }
    return r;
}

int ic_image_check_limits(const ic_image_limits *lim, int64_t w, int64_t h, const char *what)
{
    ic_image_limits l = ic_image_limits_resolve(lim);
    if (!what)
        what = "image";
    if (w <= 0 || h <= 0)
        return ic_error_set(IC_EFORMAT, "%s header says the image is %lldx%lld; an image needs at "
                                        "least one pixel",
                            what, (long long)w, (long long)h);
    if (w > l.max_w)
        return ic_error_set(IC_ELIMIT, "%s is %lld pixels wide, limit %d", what, (long long)w,
                            l.max_w);
    if (h > l.max_h)
        return ic_error_set(IC_ELIMIT, "%s is %lld pixels high, limit %d", what, (long long)h,
                            l.max_h);
    /* w, h <= INT_MAX here, so the product fits in 64 bits. */
    if (w * h > l.max_pixels)
        return ic_error_set(IC_ELIMIT, "%s is %lldx%lld = %lld pixels, limit %lld", what,
                            (long long)w, (long long)h, (long long)(w * h),
                            (long long)l.max_pixels);
    return 0;
}

int ic_image_alloc(ic_image *img, int w, int h, int c, int depth)
{
    if (!img || w <= 0 || h <= 0 || (c != 1 && c != 2 && c != 3 && c != 4) ||
        (depth != 8 && depth != 16))
        return ic_error_set(IC_EINVAL, "ic_image_alloc: bad shape %dx%dx%d, depth %d", w, h, c,
                            depth);
    size_t n;
    if (ic_size_mul(&n, (size_t)w, (size_t)h) || ic_size_mul(&n, n, (size_t)c) ||
        ic_size_mul(&n, n, (size_t)(depth / 8)))
        return ic_error_set(IC_EINVAL, "image %dx%dx%d is too large to address", w, h, c);
    void *data = ic_malloc(n);
    if (!data)
        return ic_error_set(IC_ENOMEM, "out of memory for a %dx%dx%d image (%zu bytes)", w, h, c,
                            n);
    img->w = w;
    img->h = h;
    img->c = c;
    img->depth = depth;
    img->data = data;
    return 0;
}

void ic_image_free(ic_image *img)
{
    if (!img)
        return;
    ic_free(img->data);
    memset(img, 0, sizeof *img);
}

// ---- sniffing and dispatch

ic_image_format ic_image_sniff(const void *buf, size_t len)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    static const unsigned char jp2_sig[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', '\r', '\n', 0x87,
                                              '\n'};
    const unsigned char *b = buf;
    if (!b)
        return IC_IMAGE_FORMAT_UNKNOWN;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return IC_IMAGE_FORMAT_JPEG;
    if (len >= 8 && memcmp(b, png_sig, 8) == 0)
        return IC_IMAGE_FORMAT_PNG;
    if (len >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return IC_IMAGE_FORMAT_GIF;
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return IC_IMAGE_FORMAT_WEBP;
    if (len >= 2 && b[0] == 'B' && b[1] == 'M')
        return IC_IMAGE_FORMAT_BMP;
    if (len >= 4 && ((b[0] == 'I' && b[1] == 'I' && b[2] == 42 && b[3] == 0) ||
                     (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && b[3] == 42)))
        return IC_IMAGE_FORMAT_TIFF;
    if (len >= 12 && memcmp(b + 4, "ftyp", 4) == 0)
        return IC_IMAGE_FORMAT_HEIF;
    if ((len >= 12 && memcmp(b, jp2_sig, 12) == 0) ||
        (len >= 4 && b[0] == 0xFF && b[1] == 0x4F && b[2] == 0xFF && b[3] == 0x51))
        return IC_IMAGE_FORMAT_JPEG2000;
    if (len >= 4 && memcmp(b, "qoif", 4) == 0)
        return IC_IMAGE_FORMAT_QOI;
    return IC_IMAGE_FORMAT_UNKNOWN;
}

const char *ic_image_format_name(ic_image_format f)
{
    switch (f) {
    case IC_IMAGE_FORMAT_JPEG:
        return "JPEG";
    case IC_IMAGE_FORMAT_PNG:
        return "PNG";
    case IC_IMAGE_FORMAT_GIF:
        return "GIF";
    case IC_IMAGE_FORMAT_WEBP:
        return "WebP";
    case IC_IMAGE_FORMAT_BMP:
        return "BMP";
    case IC_IMAGE_FORMAT_TIFF:
        return "TIFF";
    case IC_IMAGE_FORMAT_HEIF:
        return "HEIF/AVIF";
    case IC_IMAGE_FORMAT_JPEG2000:
        return "JPEG 2000";
    case IC_IMAGE_FORMAT_QOI:
        return "QOI";
    case IC_IMAGE_FORMAT_UNKNOWN:
        break;
    }
    return "unknown";
}

int ic_image_decode(const void *buf, size_t len, const ic_image_decode_opts *opts, ic_image *out)
{
    if (!out || (!buf && len > 0))
        return ic_error_set(IC_EINVAL, "ic_image_decode: NULL argument");
    if (len == 0)
        return ic_error_set(IC_EFORMAT, "image is empty (0 bytes)");
    ic_image_format f = ic_image_sniff(buf, len);
    switch (f) {
    case IC_IMAGE_FORMAT_JPEG:
        return ic_image_decode_jpeg(buf, len, opts, out);
    case IC_IMAGE_FORMAT_PNG:
        return ic_image_decode_png(buf, len, opts, out);
    case IC_IMAGE_FORMAT_UNKNOWN: {
        /* Name what was seen so that a client can tell a text error page or
         * a truncated upload from a real image. */
        const unsigned char *b = buf;
        char hex[3 * 8 + 1] = "";
        size_t n = len < 8 ? len : 8;
        for (size_t i = 0; i < n; i++) {
            static const char digits[] = "0123456789abcdef";
            hex[3 * i] = digits[b[i] >> 4];
            hex[3 * i + 1] = digits[b[i] & 15];
            hex[3 * i + 2] = i + 1 < n ? ' ' : '\0';
        }
        return ic_error_set(IC_EUNSUPPORTED,
                            "not a JPEG or PNG image (%zu bytes starting with %s)", len, hex);
    }
    default:
        return ic_error_set(IC_EUNSUPPORTED, "%s images are not supported; send JPEG or PNG",
                            ic_image_format_name(f));
    }
}

// ---- orientation

int ic_image_orient(ic_image *img, int orientation)
{
    if (!img || !img->data || img->w <= 0 || img->h <= 0 || (img->depth != 8 && img->depth != 16))
        return ic_error_set(IC_EINVAL, "ic_image_orient: invalid image");
    if (orientation < 2 || orientation > 8)
        return 0;
    const int w = img->w, h = img->h;
    const int swap = orientation >= 5;
    const int ow = swap ? h : w, oh = swap ? w : h;
    const size_t px = (size_t)img->c * (size_t)(img->depth / 8);
    ic_image dst;
    int rc = ic_image_alloc(&dst, ow, oh, img->c, img->depth);
    if (rc)
        return rc;
    const unsigned char *s = img->data;
    unsigned char *d = dst.data;
    /* For every output pixel (x, y) find the stored pixel (sx, sy) that the
     * viewer sees there. */
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            default: sx = w - 1 - y; sy = x; break; /* 8 */
            }
            memcpy(d + ((size_t)y * (size_t)ow + (size_t)x) * px,
                   s + ((size_t)sy * (size_t)w + (size_t)sx) * px, px);
        }
    }
    ic_free(img->data);
    *img = dst;
    return 0;
}
