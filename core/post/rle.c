/* COCO RLE encoder and compressed-string codec (see rle.h). */
#include "post/rle.h"

#include "base/alloc.h"
#include "base/err.h"

/* Walks the bbox in column-major order and reports each run boundary. With
 * out == NULL it only counts, so the caller can size the array exactly
 * (the number of runs is unknown and can reach h*w+1). Pixels outside the
 * bbox are zeros, so boundaries only happen inside it. */
static size_t scan_runs(uint32_t *out, const int32_t *map, int h, int w, int32_t id, int x0, int y0,
                        int x1, int y1)
{
    size_t n = 0;
    uint64_t run_start = 0; /* column-major index where the current run began */
    int cur = 0;            /* value of the current run; COCO starts with zeros */
    for (int x = x0; x < x1; x++) {
        const int32_t *col = map + x;
        uint64_t base = (uint64_t)x * (uint64_t)h;
        for (int y = y0; y < y1; y++) {
            int v = col[(size_t)y * (size_t)w] == id;
            if (v != cur) {
                uint64_t p = base + (uint64_t)y;
                if (out)
                    out[n] = (uint32_t)(p - run_start);
                n++;
                run_start = p;
                cur = v;
            }
        }
        /* The pixel after this column's bbox part is outside the bbox (a
         * zero) unless the bbox spans whole columns and continues. */
        uint64_t q = base + (uint64_t)y1;
        int next_inside = y1 == h && y0 == 0 && x + 1 < x1;
        if (cur && !next_inside && q < (uint64_t)h * (uint64_t)w) {
            if (out)
                out[n] = (uint32_t)(q - run_start);
            n++;
            run_start = q;
            cur = 0;
        }
    }
    if (out)
        out[n] = (uint32_t)((uint64_t)h * (uint64_t)w - run_start);
    return n + 1;
}

int ic_rle_encode_id(uint32_t **ret_counts, size_t *ret_n, ic_arena *a, const int32_t *map, int h,
                     int w, int32_t id, const int bbox[4])
{
    if (h <= 0 || w <= 0 || !map || !ret_counts || !ret_n)
        return ic_error_set(IC_EINVAL, "rle: bad mask size %dx%d", h, w);
    if ((uint64_t)h * (uint64_t)w > UINT32_MAX)
        return ic_error_set(IC_ELIMIT, "rle: mask %dx%d exceeds 32-bit COCO counts", h, w);
    int x0 = 0, y0 = 0, x1 = w, y1 = h;
    if (bbox) {
        x0 = bbox[0];
        y0 = bbox[1];
        x1 = bbox[0] + bbox[2];
        y1 = bbox[1] + bbox[3];
        if (x0 < 0 || y0 < 0 || bbox[2] < 0 || bbox[3] < 0 || x1 > w || y1 > h)
            return ic_error_set(IC_EINVAL, "rle: bbox [%d %d %d %d] outside %dx%d", bbox[0],
                                bbox[1], bbox[2], bbox[3], w, h);
    }
    size_t n = scan_runs(NULL, map, h, w, id, x0, y0, x1, y1);
    uint32_t *counts = ic_arena_calloc(a, n, sizeof *counts);
    if (!counts)
        return ic_error_prefix(IC_ENOMEM, "rle: counts");
    scan_runs(counts, map, h, w, id, x0, y0, x1, y1);
    *ret_counts = counts;
    *ret_n = n;
    return 0;
}

/* The value rleToString codes for count i: raw for the first three, then the
 * difference to the count two runs earlier (same colour, so often small). */
static int64_t coded_value(const uint32_t *counts, size_t i)
{
    int64_t x = (int64_t)counts[i];
    if (i > 2)
        x -= (int64_t)counts[i - 2];
    return x;
}

/* Emits one value in 5-bit chunks; dst may be NULL to count. Arithmetic
 * right shift of a negative int64 is what cocoapi relies on (`long x`); it is
 * implementation-defined in C11 but arithmetic on every compiler we build
 * with, and the shift below is written to not depend on it. */
static size_t put_value(char *dst, int64_t x)
{
    size_t p = 0;
    int more = 1;
    while (more) {
        int c = (int)(x & 0x1f);
        x = x < 0 ? ~(~x >> 5) : x >> 5;
        more = (c & 0x10) ? x != -1 : x != 0;
        if (more)
            c |= 0x20;
        if (dst)
            dst[p] = (char)(c + 48);
        p++;
    }
    return p;
}

size_t ic_rle_string_len(const uint32_t *counts, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += put_value(NULL, coded_value(counts, i));
    return len;
}

size_t ic_rle_to_string(char *dst, const uint32_t *counts, size_t n)
{
    size_t p = 0;
    for (size_t i = 0; i < n; i++)
        p += put_value(dst + p, coded_value(counts, i));
    dst[p] = '\0';
    return p;
}

int ic_rle_from_string(uint32_t **ret_counts, size_t *ret_n, ic_arena *a, const char *s, size_t len,
                       uint64_t n_pixels)
{
    /* Every count takes at least one char, so len bounds the count number. */
    uint32_t *cnts = ic_arena_calloc(a, len ? len : 1, sizeof *cnts);
    if (!cnts)
        return ic_error_prefix(IC_ENOMEM, "rle: counts");
    size_t m = 0, p = 0;
    uint64_t total = 0;
    while (p < len) {
        int64_t x = 0;
        int k = 0, more = 1;
        size_t start = p;
        while (more) {
            if (p >= len)
                return ic_error_set(IC_EFORMAT, "rle: truncated value at char %zu", start);
            int c = (unsigned char)s[p] - 48;
            if (c < 0 || c > 63)
                return ic_error_set(IC_EFORMAT, "rle: bad char 0x%02x at %zu",
                                    (unsigned char)s[p], p);
            if (k >= 7)
                return ic_error_set(IC_EFORMAT, "rle: value too long at char %zu", start);
            x |= (int64_t)(c & 0x1f) << (5 * k);
            more = c & 0x20;
            p++;
            k++;
            if (!more && (c & 0x10))
                x |= (int64_t)(~(uint64_t)0 << (5 * k)); /* sign-extend */
        }
        if (m > 2)
            x += (int64_t)cnts[m - 2];
        if (x < 0 || x > (int64_t)UINT32_MAX)
            return ic_error_set(IC_EFORMAT, "rle: count %lld out of range at char %zu",
                                (long long)x, start);
        cnts[m++] = (uint32_t)x;
        total += (uint64_t)x;
    }
    if (total != n_pixels)
        return ic_error_set(IC_EFORMAT, "rle: counts sum to %llu, mask has %llu pixels",
                            (unsigned long long)total, (unsigned long long)n_pixels);
    *ret_counts = cnts;
    *ret_n = m;
    return 0;
}
