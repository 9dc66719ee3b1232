/* Turning a decoded image into network input: size fitting, bilinear
 * resize, and normalisation into an NCHW float tensor.
 *
 * The resize follows PyTorch's F.interpolate(mode="bilinear",
 * align_corners=False) without antialiasing: output pixel x samples source
 * position (x + 0.5) * in/out - 0.5, clamped at 0, computed in float32 as
 * PyTorch does, and the 8-bit result is rounded to nearest. So resizing
 * then normalising here equals, up to that final rounding, interpolating
 * the uint8 image cast to float in PyTorch. (detectron2's own
 * ResizeShortestEdge uses PIL, which antialiases when shrinking; for
 * downscales by more than ~2x expect differences from that pipeline.) */
#ifndef IC_IMAGE_PREPROCESS_H
#define IC_IMAGE_PREPROCESS_H

#include "base/tensor.h"
#include "image/image.h"

/* detectron2's defaults for ImageNet-pretrained backbones, on 0..255 RGB. */
#define IC_IMAGE_MEAN_DEFAULT {123.675f, 116.28f, 103.53f}
#define IC_IMAGE_STD_DEFAULT {58.395f, 57.12f, 57.375f}

/* Output size of detectron2's ResizeShortestEdge: scale so that the short
 * side becomes `short_edge`, then shrink so that the long side is at most
 * `max_size` (<= 0: no cap), rounding each side to nearest (at least 1).
 * Returns 0, IC_EINVAL for non-positive inputs. */
int ic_image_fit_size(int w, int h, int short_edge, int max_size, int *out_w, int *out_h);

/* Bilinear resize (semantics above) of an 8-bit image with 1..4 channels to
 * out_w x out_h. *dst receives a new image (ic_image_free); it is untouched
 * on failure. Equal sizes give an exact copy. Returns 0, IC_EINVAL
 * (16-bit, bad sizes), IC_ENOMEM. */
int ic_image_resize_bilinear(const ic_image *src, int out_w, int out_h, ic_image *dst);

/* Writes batch item `n` of `t` (shape (N, 3, H, W), caller-owned storage,
 * e.g. from an arena) as (pixel - mean[c]) / std[c] in RGB order, from an
 * 8-bit image with 1 (gray, replicated to RGB), 3 or 4 (alpha ignored)
 * channels. H, W may exceed the image's size: the extra bottom rows and
 * right columns are set to 0, i.e. the mean colour, which is how detectron2
 * pads to the backbone's size divisibility. Returns 0, IC_EINVAL (wrong
 * tensor shape, n out of range, std 0, 16-bit image). */
int ic_image_to_tensor(const ic_image *img, const float mean[3], const float std[3],
                       ic_tensor *t, int n);

#endif
