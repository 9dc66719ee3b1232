/* COCO-panoptic segment ids stored in RGB PNGs.
 *
 * The COCO panoptic format (and Cityscapes' panoptic export) stores each
 * pixel's segment id in an 8-bit RGB PNG as id = R + 256 * G + 65536 * B,
 * with 0 meaning "void". These functions convert between such an image and
 * an int32 id map; the PNG itself is read and written by png.h. */
#ifndef IC_IMAGE_IDS_H
#define IC_IMAGE_IDS_H

#include <stdint.h>

#include "image/image.h"

/* Largest id that fits in 24 bits. */
#define IC_IMAGE_ID_MAX 0xFFFFFF

/* Decodes an 8-bit RGB or RGBA image (alpha ignored) into `ids`, a
 * caller-owned array of img->w * img->h int32 (row-major). Returns 0,
 * IC_EINVAL (NULL, or not an 8-bit image with 3 or 4 channels: the message
 * says what was given). */
int ic_image_ids_from_rgb(const ic_image *img, int32_t *ids);

/* Encodes a w x h id map into `rgb`, a caller-owned array of w * h * 3
 * bytes. Returns 0, or IC_EINVAL for NULL, a bad size, or an id outside
 * 0..IC_IMAGE_ID_MAX (the message names the first one and its pixel; `rgb`
 * is then partly written). */
int ic_image_ids_to_rgb(const int32_t *ids, int w, int h, uint8_t *rgb);

#endif
