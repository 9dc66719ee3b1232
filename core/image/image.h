/* Decoded images, decode limits, format sniffing and the decode dispatcher.
 *
 * An ic_image is a heap-owned, row-major, channel-interleaved pixel buffer
 * (8- or 16-bit samples) as it comes out of a decoder. Everything a client
 * uploads passes through ic_image_decode(), which recognises the format from
 * the first bytes and hands the buffer to the JPEG or PNG decoder. Both
 * decoders check the header against an ic_image_limits before they allocate
 * any pixel memory, so a small file that claims a huge size (a decompression
 * bomb) costs nothing, and their work is bounded by the file size and the
 * pixels (PNG: ancillary chunks are skipped, image data past the last row
 * is not inflated; JPEG: at most max_scans scans). Conversion to network input lives in preprocess.h;
 * the codecs are declared in jpeg.h and png.h. */
#ifndef IC_IMAGE_IMAGE_H
#define IC_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ic_image {
    int w, h;   /* pixels; both > 0 for a decoded image */
    int c;      /* channels per pixel: 1 gray (or palette index), 3 RGB, 4 RGBA */
    int depth;  /* bits per sample: 8 (uint8_t) or 16 (uint16_t, host byte order) */
    void *data; /* (h, w, c) interleaved, rows packed without padding; ic_malloc'd */
} ic_image;

/* Size limits checked from the header, before any pixel allocation, and
 * the decoders' work budget. A field <= 0 selects its default below
 * (dimensions must still be > 0). */
typedef struct ic_image_limits {
    int max_w;          /* widest accepted image */
    int max_h;          /* tallest accepted image */
    int64_t max_pixels; /* largest accepted w * h */
    int max_scans;      /* JPEG: most scans a (progressive) file may have */
} ic_image_limits;

/* Defaults: 16384 x 16384 and 40 megapixels (a 40 MP RGB image is 120 MB).
 * libjpeg and mozjpeg write about 10 scans per progressive file; every scan
 * is a pass over all the image's coefficients (2000 nearly empty scans of a
 * 4000x4000 image took 17 s), so 100 bounds that at about a second. */
#define IC_IMAGE_MAX_SIDE_DEFAULT 16384
#define IC_IMAGE_MAX_PIXELS_DEFAULT 40000000LL
#define IC_IMAGE_MAX_SCANS_DEFAULT 100

/* Options of every decoder. Zero-initialised options are valid and mean:
 * default limits, natural channel count, 8-bit output, EXIF orientation
 * applied. Prefer starting from ic_image_decode_opts_default(). */
typedef struct ic_image_decode_opts {
    ic_image_limits limits; /* all-zero selects the defaults above */
    /* Output channels: 0 = natural (gray -> 1, colour -> 3, anything with
     * alpha or tRNS -> 4), 1 = gray, 3 = RGB, 4 = RGBA. Alpha is dropped
     * without compositing when not asked for; colour -> gray uses the
     * decoder's luma (JPEG: Y of YCbCr; PNG: libpng's sRGB coefficients). */
    int channels;
    int keep16;       /* PNG: keep 16-bit samples; else scale to 8 */
    /* PNG label maps: a gray or palette file comes out as the values it
     * stores, in 1 channel: palette indices, gray samples unscaled (1/2/4
     * bits unpacked to 8, 16 bits kept at depth 16), tRNS ignored. Other
     * colour types decode as usual. */
    int keep_values;
    int ignore_exif;  /* JPEG: do not apply the EXIF orientation */
} ic_image_decode_opts;

typedef enum ic_image_format {
    IC_IMAGE_FORMAT_UNKNOWN = 0,
    IC_IMAGE_FORMAT_JPEG,
    IC_IMAGE_FORMAT_PNG,
    /* Recognised only to name them in errors; not decodable. */
    IC_IMAGE_FORMAT_GIF,
    IC_IMAGE_FORMAT_WEBP,
    IC_IMAGE_FORMAT_BMP,
    IC_IMAGE_FORMAT_TIFF,
    IC_IMAGE_FORMAT_HEIF, /* HEIC / AVIF (ISO BMFF 'ftyp') */
    IC_IMAGE_FORMAT_JPEG2000,
    IC_IMAGE_FORMAT_QOI,
} ic_image_format;

/* Default options (default limits, natural channels, EXIF applied). */
ic_image_decode_opts ic_image_decode_opts_default(void);

/* Effective limits: `lim` with every zero/negative field replaced by the
 * default. NULL gives the defaults. */
ic_image_limits ic_image_limits_resolve(const ic_image_limits *lim);

/* Checks a header's dimensions against `lim` (resolved as above). `what`
 * names the format in the message ("PNG", "JPEG"). Returns 0, IC_EFORMAT for
 * a zero or negative dimension, IC_ELIMIT with the numbers in the message
 * (e.g. "PNG is 100000x100000 = 10000000000 pixels, limit 40000000"). */
int ic_image_check_limits(const ic_image_limits *lim, int64_t w, int64_t h, const char *what);

/* Allocates img->data for w x h x c samples of `depth` bits (uninitialised)
 * and fills the fields. *img is only written on success. Returns 0,
 * IC_EINVAL (bad c/depth/size), IC_ENOMEM. */
int ic_image_alloc(ic_image *img, int w, int h, int c, int depth);

/* Frees img->data and zeroes *img. Accepts NULL and a zeroed image. */
void ic_image_free(ic_image *img);

/* Bytes per sample (1 or 2) and bytes of one row. */
static inline size_t ic_image_row_bytes(const ic_image *img)
{
    return (size_t)img->w * (size_t)img->c * (size_t)(img->depth / 8);
}

/* Recognises the container from the first bytes (JPEG: FF D8 FF; PNG: the
 * 8-byte signature; the others by their magic numbers). Never fails. */
ic_image_format ic_image_sniff(const void *buf, size_t len);

/* Short upper-case name of a format ("JPEG", "PNG", "GIF", ..., "unknown"). */
const char *ic_image_format_name(ic_image_format f);

/* Decodes a JPEG or PNG held in memory. `opts` may be NULL (defaults).
 * On success *out owns a new buffer (release with ic_image_free); on failure
 * *out is untouched. Returns 0, IC_EINVAL (NULL buffer with len > 0, bad
 * option), IC_EFORMAT (empty, truncated or corrupt data), IC_EUNSUPPORTED
 * (another format, named in the message, or an unsupported JPEG/PNG kind),
 * IC_ELIMIT (header over the limits, too many JPEG scans), IC_ENOMEM. */
int ic_image_decode(const void *buf, size_t len, const ic_image_decode_opts *opts, ic_image *out);

/* Applies an EXIF orientation (1..8, TIFF tag 0x0112 semantics: 2 mirror
 * horizontally, 3 rotate 180, 4 mirror vertically, 5 transpose, 6 rotate
 * 90 degrees clockwise, 7 transverse, 8 rotate 90 counter-clockwise) in
 * place: img->data is replaced by a new buffer and w/h swap for 5..8.
 * Orientation 1 and values outside 1..8 leave the image as is. Returns 0,
 * IC_EINVAL, IC_ENOMEM (image unchanged). */
int ic_image_orient(ic_image *img, int orientation);

#endif
