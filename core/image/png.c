/* PNG decode and encode with libpng 1.6 (see png.h). As in jpeg.c, the
 * functions that call setjmp keep no state of their own: everything the
 * cleanup needs sits in a struct owned by the caller, so a longjmp cannot
 * leave it indeterminate. libpng's allocations go through ic_malloc and a
 * failed one is remembered, so an out-of-memory longjmp is reported as
 * IC_ENOMEM rather than as a corrupt file. */
#include "image/png.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "base/alloc.h"
#include "base/err.h"

/* Ancillary chunks (ICC profiles, text) larger than this are an error:
 * nothing we use needs them and they would cost memory per request. */
#define PNG_CHUNK_MAX ((png_alloc_size_t)8 << 20)

/* No single libpng buffer may be larger than this. libpng 1.6.39 does not
 * apply the chunk limit above to every chunk: a 7x5 PNG whose sPLT chunk
 * claims 2 GB made it allocate 2 GB before reading a byte of that chunk
 * (found by fuzz_image). Legitimate buffers are rows (our pixel limits keep
 * them far below this), zlib state and the small chunks we read. */
#define PNG_BUFFER_MAX (2 * PNG_CHUNK_MAX)

typedef struct png_io {
    /* writing */
    unsigned char *dst;
    size_t dst_len, dst_cap;
    /* both */
    int oom;
    size_t refused; /* size of a buffer over PNG_BUFFER_MAX, 0 if none */
    char msg[256];
    char warning[128]; /* the last warning, "" if none */
} png_io;

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

/* Library code does not print; benign issues are ignored, but the last one
 * is kept to explain image data that ends early. */
static void on_png_warning(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    snprintf(io->warning, sizeof io->warning, "%s", msg ? msg : "");
}

static png_voidp on_png_malloc(png_structp png, png_alloc_size_t size)
{
    png_io *io = png_get_mem_ptr(png);
    if (size > PNG_BUFFER_MAX) {
        if (io)
            io->refused = size;
        return NULL;
    }
    void *p = ic_malloc(size);
    if (!p && io)
        io->oom = 1;
    return p;
}

static void on_png_free(png_structp png, png_voidp p)
{
    (void)png;
    ic_free(p);
}

// ---- decoding
//
// libpng's progressive reader, fed the whole file at once. Its sequential
// reader (png_read_image) inflates every byte of image data left after the
// last row, which made a 2 MB file whose 8x8 image is followed by 2 GB of
// deflated zeros cost 16 s; the progressive reader stops at the first byte
// the rows do not need. Rows arrive per Adam7 pass and are placed here, and
// the count of rows still due tells a complete image from a truncated one.
// As with png_read_image(), the image is whole once every row is in and the
// last IDAT chunk's CRC has been checked; what follows (more chunks, a
// damaged or missing IEND) carries no pixels and cannot fail the decode.

#define CHUNK_IDAT ((png_uint_32)'I' << 24 | (png_uint_32)'D' << 16 | (png_uint_32)'A' << 8 | 'T')

/* Offset just past the CRC of the last of the consecutive IDAT chunks, from
 * the chunk headers (it may lie beyond len in a truncated file); 0 if no
 * IDAT header is found. */
static uint64_t idat_end(const unsigned char *b, size_t len)
{
    uint64_t pos = 8, end = 0;
    while (pos + 8 <= len) {
        uint32_t n = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 |
                     (uint32_t)b[pos + 2] << 8 | b[pos + 3];
        int idat = memcmp(b + pos + 4, "IDAT", 4) == 0;
        if (!idat && end)
            break;
        pos += 12 + (uint64_t)n;
        if (idat)
            end = pos;
    }
    return end;
}

typedef struct png_rstate {
    png_io io;
    png_structp png;
    png_infop info;
    const ic_image_decode_opts *o;
    ic_image img;
    int rc;              /* our own error, raised from a callback; 0 if none */
    int interlaced;
    size_t px;           /* bytes per output pixel */
    uint64_t rows_due;   /* rows of every pass not yet delivered */
} png_rstate;

static int read_failed(png_rstate *st)
{
    if (st->rc)
        return st->rc; /* message set by ic_error_set */
    if (st->io.refused)
        return ic_error_set(IC_EFORMAT,
                            "corrupt PNG: a chunk asks for a %zu-byte buffer, limit %zu",
                            st->io.refused, (size_t)PNG_BUFFER_MAX);
    if (st->io.oom)
        return ic_error_set(IC_ENOMEM, "out of memory while decoding PNG");
    return ic_error_set(IC_EFORMAT, "corrupt PNG: %s", st->io.msg);
}

/* Sets up libpng's transformations so that rows come out with `c` channels
 * of `depth` bits; `stored` (a gray or palette file read as a label map)
 * only unpacks samples below 8 bits and byte-swaps 16-bit ones. */
static void set_transforms(png_structp png, int ct, int bd, int has_trns, int c, int depth,
                           int stored)
{
    if (stored) {
        if (bd < 8)
            png_set_packing(png);
        if (bd == 16 && host_is_little_endian())
            png_set_swap(png);
        return;
    }
    int is_palette = ct == PNG_COLOR_TYPE_PALETTE;
    int is_gray = !(ct & PNG_COLOR_MASK_COLOR);
    /* After expansion, does the row carry alpha? palette_to_rgb turns tRNS
     * into alpha by itself; for gray/RGB we ask only when keeping it. */
    int alpha = (ct & PNG_COLOR_MASK_ALPHA) != 0;
    if (is_palette) {
        png_set_palette_to_rgb(png);
        alpha = has_trns;
    } else if (has_trns && c == 4) {
        png_set_tRNS_to_alpha(png);
        alpha = 1;
    }
    if (is_gray && bd < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (bd == 16) {
        if (depth == 16) {
            if (host_is_little_endian())
                png_set_swap(png);
        } else {
            png_set_scale_16(png);
        }
    }
    if (c == 1 && !is_gray)
        png_set_rgb_to_gray_fixed(png, 1, -1, -1);
    if (c >= 3 && is_gray)
        png_set_gray_to_rgb(png);
    if (c == 4 && !alpha)
        png_set_add_alpha(png, depth == 16 ? 0xFFFF : 0xFF, PNG_FILLER_AFTER);
    if (c < 4 && alpha)
        png_set_strip_alpha(png);
}

/* Rows of every Adam7 pass that has pixels (libpng skips empty passes). */
static uint64_t rows_of(png_uint_32 w, png_uint_32 h, int interlaced)
{
    if (!interlaced)
        return h;
    uint64_t n = 0;
    for (int p = 0; p < 7; p++)
        if (PNG_PASS_COLS(w, p) > 0)
            n += PNG_PASS_ROWS(h, p);
    return n;
}

/* Raises our own error `rc` (message already set) out of a callback. */
static void fail_from_callback(png_rstate *st, int rc)
{
    st->rc = rc;
    png_error(st->png, "stopped by the decoder");
}

static void on_info(png_structp png, png_infop info)
{
    png_rstate *st = png_get_progressive_ptr(png);
    const ic_image_decode_opts *o = st->o;
    png_uint_32 w32, h32;
    int bd, ct, interlace;
    png_get_IHDR(png, info, &w32, &h32, &bd, &ct, &interlace, NULL, NULL);
    int rc = ic_image_check_limits(&o->limits, w32, h32, "PNG");
    if (rc)
        fail_from_callback(st, rc);
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    int stored = o->keep_values && (ct == PNG_COLOR_TYPE_PALETTE || ct == PNG_COLOR_TYPE_GRAY);
    int depth = bd == 16 && (o->keep16 || stored) ? 16 : 8;
    int c = o->channels;
    if (stored)
        c = 1;
    else if (c == 0)
        c = ((ct & PNG_COLOR_MASK_ALPHA) || has_trns) ? 4 : (ct & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    set_transforms(png, ct, bd, has_trns, c, depth, stored);
    png_read_update_info(png, info);

    /* Trust but verify: a transform combination libpng does not honour must
     * not turn into a buffer overrun. */
    size_t want_row = (size_t)w32 * (size_t)c * (size_t)(depth / 8);
    if (png_get_channels(png, info) != c || png_get_bit_depth(png, info) != depth ||
        png_get_rowbytes(png, info) != want_row)
        fail_from_callback(
            st, ic_error_set(IC_EUNSUPPORTED,
                             "PNG colour type %d, %d-bit: libpng gives %d channels of %d bits, "
                             "expected %d of %d",
                             ct, bd, png_get_channels(png, info), png_get_bit_depth(png, info), c,
                             depth));
    if ((rc = ic_image_alloc(&st->img, (int)w32, (int)h32, c, depth)) != 0)
        fail_from_callback(st, rc);
    st->interlaced = interlace != PNG_INTERLACE_NONE;
    st->px = (size_t)c * (size_t)(depth / 8);
    st->rows_due = rows_of(w32, h32, st->interlaced);
}

/* One row of pass `pass` (row `n` of that pass's sub-image when
 * interlaced), already transformed. */
static void on_row(png_structp png, png_bytep row, png_uint_32 n, int pass)
{
    png_rstate *st = png_get_progressive_ptr(png);
    ic_image *img = &st->img;
    if (!row || !img->data || !st->rows_due)
        return;
    const size_t stride = ic_image_row_bytes(img);
    unsigned char *dst = img->data;
    if (!st->interlaced) {
        if (n < (png_uint_32)img->h)
            memcpy(dst + (size_t)n * stride, row, stride);
    } else {
        png_uint_32 y = PNG_ROW_FROM_PASS_ROW(n, pass);
        png_uint_32 x = PNG_PASS_START_COL(pass), dx = 1u << PNG_PASS_COL_SHIFT(pass);
        for (size_t i = 0; y < (png_uint_32)img->h && x < (png_uint_32)img->w; i++, x += dx)
            memcpy(dst + (size_t)y * stride + (size_t)x * st->px, row + i * st->px, st->px);
    }
    st->rows_due--;
}

static int decode_inner(png_rstate *st, const void *buf, size_t len)
{
    png_structp png = st->png;
    if (setjmp(png_jmpbuf(png))) {
        /* An error in a chunk after the image data is harmless. */
        if (st->img.data && !st->rows_due && png_get_io_chunk_type(png) != CHUNK_IDAT)
            return 0;
        return read_failed(st);
    }
    /* Our own check names the numbers; keep libpng's out of the way. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MAX);
    /* Skip every ancillary chunk but tRNS unread (only its CRC is checked):
     * nothing else changes the samples we return, and zTXt, iTXt and iCCP
     * are inflated on reading. An 8x8 PNG of 1000 zTXt chunks that each
     * inflate to 8 MB kept a worker busy for 67 s. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_progressive_read_fn(png, st, on_info, on_row, NULL);
    /* libpng only reads the buffer (its prototype predates const). */
    png_process_data(png, st->info, (png_bytep)(uintptr_t)buf, len);
    if (!st->img.data || st->rows_due || idat_end(buf, len) > len) {
        if (st->img.data && st->io.warning[0])
            return ic_error_set(IC_EFORMAT, "corrupt PNG: the image data ends %llu rows early (%s)",
                                (unsigned long long)st->rows_due, st->io.warning);
        return ic_error_set(IC_EFORMAT, "PNG is truncated: the data ends after %zu bytes", len);
    }
    return 0;
}

int ic_image_decode_png(const void *buf, size_t len, const ic_image_decode_opts *opts,
                        ic_image *out)
{
    if (!out || (!buf && len > 0))
        return ic_error_set(IC_EINVAL, "ic_image_decode_png: NULL argument");
    ic_image_decode_opts o = opts ? *opts : ic_image_decode_opts_default();
    if (o.channels != 0 && o.channels != 1 && o.channels != 3 && o.channels != 4)
        return ic_error_set(IC_EINVAL, "cannot decode to %d channels (use 0, 1, 3 or 4)",
                            o.channels);
    if (ic_image_sniff(buf, len) != IC_IMAGE_FORMAT_PNG)
        return ic_error_set(IC_EFORMAT, "not a PNG (%zu bytes, no PNG signature)", len);

    png_rstate *st = ic_calloc(1, sizeof *st);
    if (!st)
        return ic_error_set(IC_ENOMEM, "out of memory for the PNG decoder");
    st->o = &o;
    int rc;
    st->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &st->io, on_png_error,
                                       on_png_warning, &st->io, on_png_malloc, on_png_free);
    if (st->png)
        st->info = png_create_info_struct(st->png);
    if (!st->png || !st->info)
        rc = ic_error_set(IC_ENOMEM, "out of memory creating the PNG decoder");
    else
        rc = decode_inner(st, buf, len);
    if (st->png)
        png_destroy_read_struct(&st->png, st->info ? &st->info : NULL, NULL);
    if (rc == 0)
        *out = st->img;
    else
        ic_image_free(&st->img);
    ic_free(st);
    return rc;
}

// ---- encoding

static void on_png_write(png_structp png, png_bytep data, size_t n)
{
    png_io *io = png_get_io_ptr(png);
    if (n > io->dst_cap - io->dst_len) {
        size_t cap = io->dst_cap ? io->dst_cap : 4096;
        while (cap - io->dst_len < n) {
            if (ic_size_mul(&cap, cap, 2)) {
                io->oom = 1;
                png_error(png, "output too large");
            }
        }
        unsigned char *p = ic_realloc(io->dst, cap);
        if (!p) {
            io->oom = 1;
            png_error(png, "out of memory");
        }
        io->dst = p;
        io->dst_cap = cap;
    }
    memcpy(io->dst + io->dst_len, data, n);
    io->dst_len += n;
}

static void on_png_flush(png_structp png)
{
    (void)png;
}

typedef struct png_wstate {
    png_io io;
    png_structp png;
    png_infop info;
} png_wstate;

/* Writes w x h rows of `c` channels, `depth` bits, from `data`; `palette`
 * (n_colors RGB triplets) makes it a palette PNG. */
static int encode_inner(png_wstate *st, const void *data, int w, int h, int c, int depth,
                        const uint8_t *palette, int n_colors, int level)
{
    png_structp png = st->png;
    png_infop info = st->info;
    if (setjmp(png_jmpbuf(png))) {
        if (st->io.oom)
            return ic_error_set(IC_ENOMEM, "out of memory while encoding PNG");
        return ic_error_set(IC_EIO, "PNG encoder failed: %s", st->io.msg);
    }
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    int ct = palette ? PNG_COLOR_TYPE_PALETTE : types[c];
    png_set_write_fn(png, &st->io, on_png_write, on_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ct, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color pal[256];
        for (int i = 0; i < n_colors; i++) {
            pal[i].red = palette[3 * i];
            pal[i].green = palette[3 * i + 1];
            pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, n_colors);
    }
    png_set_compression_level(png, level);
    /* One fixed filter instead of libpng's adaptive choice (which tries all
     * five per row): masks compress best unfiltered (long runs), photos and
     * id maps well enough with Sub, at a fraction of the time. */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, palette || c < 3 ? PNG_FILTER_NONE : PNG_FILTER_SUB);
    png_write_info(png, info);
    if (depth == 16 && host_is_little_endian())
        png_set_swap(png);
    const size_t stride = (size_t)w * (size_t)c * (size_t)(depth / 8);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)data + (size_t)y * stride);
    png_write_end(png, NULL);
    return 0;
}

static int encode_common(const void *data, int w, int h, int c, int depth, const uint8_t *palette,
                         int n_colors, const ic_png_encode_opts *opts, unsigned char **out,
                         size_t *out_len)
{
    int level = opts && opts->level > 0 ? opts->level : 2;
    if (level > 9)
        level = 9;
    png_wstate *st = ic_calloc(1, sizeof *st);
    if (!st)
        return ic_error_set(IC_ENOMEM, "out of memory for the PNG encoder");
    int rc;
    st->png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &st->io, on_png_error,
                                        on_png_warning, &st->io, on_png_malloc, on_png_free);
    if (st->png)
        st->info = png_create_info_struct(st->png);
    if (!st->png || !st->info)
        rc = ic_error_set(IC_ENOMEM, "out of memory creating the PNG encoder");
    else
        rc = encode_inner(st, data, w, h, c, depth, palette, n_colors, level);
    if (st->png)
        png_destroy_write_struct(&st->png, st->info ? &st->info : NULL);
    if (rc == 0) {
        *out = st->io.dst;
        *out_len = st->io.dst_len;
    } else {
        ic_free(st->io.dst);
    }
    ic_free(st);
    return rc;
}

int ic_image_encode_png(const ic_image *img, const ic_png_encode_opts *opts, unsigned char **out,
                        size_t *out_len)
{
    if (!img || !img->data || !out || !out_len)
        return ic_error_set(IC_EINVAL, "ic_image_encode_png: NULL argument");
    if (img->w <= 0 || img->h <= 0 || img->c < 1 || img->c > 4 ||
        (img->depth != 8 && img->depth != 16))
        return ic_error_set(IC_EINVAL, "cannot encode a %dx%dx%d image of depth %d as PNG",
                            img->w, img->h, img->c, img->depth);
    return encode_common(img->data, img->w, img->h, img->c, img->depth, NULL, 0, opts, out,
                         out_len);
}

int ic_image_encode_png_indexed(const uint8_t *index, int w, int h, const uint8_t *palette,
                                int n_colors, const ic_png_encode_opts *opts, unsigned char **out,
                                size_t *out_len)
{
    if (!index || !palette || !out || !out_len)
        return ic_error_set(IC_EINVAL, "ic_image_encode_png_indexed: NULL argument");
    if (w <= 0 || h <= 0 || n_colors < 1 || n_colors > 256)
        return ic_error_set(IC_EINVAL, "cannot encode a %dx%d palette PNG with %d colours", w, h,
                            n_colors);
    /* libpng would write an out-of-range index and only complain at the end;
     * a decoder then shows black or fails. Catch the caller's bug here. */
    if (n_colors < 256) {
        size_t n = (size_t)w * (size_t)h;
        for (size_t i = 0; i < n; i++)
            if (index[i] >= n_colors)
                return ic_error_set(IC_EINVAL,
                                    "palette index %d at (%zu, %zu) is not below %d colours",
                                    index[i], i % (size_t)w, i / (size_t)w, n_colors);
    }
    return encode_common(index, w, h, 1, 8, palette, n_colors, opts, out, out_len);
}
