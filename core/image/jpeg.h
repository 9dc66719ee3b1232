/* JPEG decoding with libjpeg-turbo, from a memory buffer, with the EXIF
 * orientation applied.
 *
 * libjpeg reports fatal errors by calling exit() and reports lost data
 * (a truncated file, a broken entropy stream) only as warnings while it
 * pads the image with gray. This decoder replaces both handlers: errors
 * longjmp back and become IC_E* codes, and warnings that mean pixels are
 * missing are treated as errors, so a truncated upload is rejected instead
 * of being segmented half gray. Nothing is printed. */
#ifndef IC_IMAGE_JPEG_H
#define IC_IMAGE_JPEG_H

#include <stddef.h>

#include "image/image.h"

/* Decodes a baseline, progressive or arithmetic-coded 8-bit JPEG (gray,
 * YCbCr or RGB) from memory into *out (8-bit; channels per opts->channels,
 * natural = 1 for gray files, 3 otherwise; 4 gives RGBA with alpha 255).
 * Limits are checked right after the frame header, before libjpeg allocates
 * image-sized buffers. Unless opts->ignore_exif, an APP1 Exif orientation is
 * applied, so w/h are those of the upright image. opts may be NULL.
 * On success *out owns a new buffer (ic_image_free); on failure *out is
 * untouched. Returns 0, IC_EINVAL, IC_EFORMAT (not JPEG, truncated, corrupt,
 * 0-sized; a file missing only its final EOI marker counts as truncated,
 * because libjpeg cannot tell it from one cut inside the last MCU row),
 * IC_EUNSUPPORTED (CMYK/YCCK, 12-bit, lossless, other colour
 * spaces), IC_ELIMIT (size over the limits, more than limits.max_scans
 * scans), IC_ENOMEM. */
int ic_image_decode_jpeg(const void *buf, size_t len, const ic_image_decode_opts *opts,
                         ic_image *out);

/* Reads the orientation (TIFF tag 0x0112) from the payload of an APP1
 * segment (the bytes after the segment length, starting with "Exif\0\0"),
 * in either byte order. Every offset is bounds-checked; a missing, malformed
 * or out-of-range value gives 1 (upright). Never fails. */
int ic_image_exif_orientation(const void *app1, size_t len);

#endif
