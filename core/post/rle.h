/* COCO run-length encoding (RLE) of binary masks, as pycocotools does it.
 *
 * COCO RLE walks the mask in column-major (Fortran) order, pixel index
 * x*h + y, and stores the lengths of alternating runs starting with a run of
 * zeros (possibly empty): [0 0 1 1 1 0 1] -> [2 3 1 1]. The compressed string
 * form is cocoapi's rleToString (common/maskApi.c): each count, delta-coded
 * against the count two runs earlier for i > 2, is written as 5-bit
 * little-endian chunks with a continuation bit (0x20) and an offset of 48.
 *
 * Masks come from a panoptic id map (row-major int32 H x W) and a segment id,
 * so no binary mask is ever materialised; counts live in a caller's arena. */
#ifndef IC_POST_RLE_H
#define IC_POST_RLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"

/* Run lengths of the mask (map == id), column-major, zeros first, exactly as
 * pycocotools.mask.encode. `bbox` ([x, y, w, h], may be NULL) must cover every
 * pixel of the segment; it only limits the scan (ic_pano segments carry one).
 * On success *ret_counts (allocated in `a`) holds *ret_n counts summing to
 * h*w. Errors: IC_EINVAL (bad size or bbox outside the image), IC_ENOMEM. */
int ic_rle_encode_id(uint32_t **ret_counts, size_t *ret_n, ic_arena *a, const int32_t *map, int h,
                     int w, int32_t id, const int bbox[4]);

/* Length (without the terminating NUL) of the compressed string of counts. */
size_t ic_rle_string_len(const uint32_t *counts, size_t n);

/* Writes the compressed string (rleToString) and a NUL into dst, which must
 * hold ic_rle_string_len(counts, n) + 1 bytes. Returns the string length. */
size_t ic_rle_to_string(char *dst, const uint32_t *counts, size_t n);

/* Parses a compressed string (rleFrString) of `len` chars into counts in
 * `a`, checking what cocoapi does not: characters in range, no truncated
 * chunk, no negative or overflowing count, and that the counts sum to
 * `n_pixels`. Errors: IC_EFORMAT (with the offending position), IC_ENOMEM. */
int ic_rle_from_string(uint32_t **ret_counts, size_t *ret_n, ic_arena *a, const char *s, size_t len,
                       uint64_t n_pixels);

#endif
