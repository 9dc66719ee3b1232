/* PNG decoding and encoding with libpng 1.6, entirely in memory.
 *
 * Decoding accepts every PNG colour type and bit depth and converts to the
 * channel count asked for; 16-bit samples are kept on request (label maps
 * with more than 256 ids) and otherwise scaled to 8 bits. libpng errors
 * longjmp back and become IC_E* codes, and libpng allocates through
 * ic_malloc, so fault injection reaches it too. Encoding writes 8/16-bit
 * gray, RGB, RGBA and 8-bit palette images with a fast zlib level, since the
 * server encodes masks on every request. */
#ifndef IC_IMAGE_PNG_H
#define IC_IMAGE_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"

/* Decodes a PNG from memory into *out. Output channels follow
 * opts->channels (natural: gray -> 1, RGB and palette -> 3, and 4 (RGBA)
 * whenever the file has an alpha channel or a tRNS chunk). opts->keep16 keeps 16-bit files at depth 16
 * (host byte order); otherwise samples are scaled to 8 bits with rounding.
 * opts->keep_values returns what a gray or palette file stores (label
 * maps: indices, unscaled gray of any depth) as 1 channel. Gamma and
 * colour profiles are ignored: samples are returned as stored.
 * Interlaced files are supported.
 * IHDR is checked against the limits before any row is allocated, and the
 * decoder's work is bounded by the file size and the pixels: ancillary
 * chunks other than tRNS are skipped without being inflated, and image
 * data beyond what the rows need is refused (IC_EFORMAT).
 * On success *out owns a new buffer (ic_image_free); on failure *out is
 * untouched. Returns 0, IC_EINVAL, IC_EFORMAT (not PNG, truncated, bad CRC
 * or zlib data, 0-sized), IC_ELIMIT, IC_ENOMEM. */
int ic_image_decode_png(const void *buf, size_t len, const ic_image_decode_opts *opts,
                        ic_image *out);

/* Encoder options; zero-initialised means defaults. */
typedef struct ic_png_encode_opts {
    /* zlib level 1..9; 0 selects the default (2), which is several times
     * faster than 6 and within a few percent on masks. */
    int level;
} ic_png_encode_opts;

/* Encodes `img` (c 1/3/4, and c 2 for gray+alpha; depth 8 or 16) as a
 * non-interlaced PNG. *out receives an ic_malloc'd buffer of *out_len bytes
 * owned by the caller (ic_free). opts may be NULL. On failure *out and
 * *out_len are untouched. Returns 0, IC_EINVAL, IC_ENOMEM, IC_EIO (libpng error). */
int ic_image_encode_png(const ic_image *img, const ic_png_encode_opts *opts, unsigned char **out,
                        size_t *out_len);

/* Encodes a w x h map of 8-bit palette indices (row-major, no padding) as a
 * palette PNG with `n_colors` (1..256) RGB entries `palette` (3 bytes per
 * entry). Every index must be < n_colors: the first one that is not is
 * named in an IC_EINVAL message. Output as for ic_image_encode_png. */
int ic_image_encode_png_indexed(const uint8_t *index, int w, int h, const uint8_t *palette,
                                int n_colors, const ic_png_encode_opts *opts, unsigned char **out,
                                size_t *out_len);

#endif
