/* DeepAugment-like distortion through a small randomly perturbed conv net.
 *
 * DeepAugment (Hendrycks et al., "The Many Faces of Robustness", 2021)
 * passes images through an image-to-image network whose weights and
 * activations are randomly distorted, which yields shifts no hand-written
 * op makes: odd colour responses, edge halos, texture changes, ghosting.
 * InstCal's official panoptic code pushes every training image through such
 * a network (a pretrained convolutional autoencoder, CAE). No pretrained
 * CAE is available here, so this is a stand-in with the same spirit:
 *
 *   x in [0, 1] -> conv3x3 3->16 + ReLU -> latent perturbation
 *               -> conv3x3 16->16 (dilation 1 or 2) + ReLU -> conv3x3 16->3
 *
 * The weights are drawn fresh for every call: six of the first layer's
 * channels carry +x and -x (so the image passes through), the other ten are
 * random He-initialised filters (edge and texture detectors); the second
 * layer is an identity plus random taps; the last layer reconstructs x and
 * adds random mixtures of the feature channels. Then per call, as the
 * official code's weight and latent options: some filters are negated,
 * zeroed, rescaled, flipped or rotated, and the latent is rescaled, partly
 * zeroed, negated, permuted, shifted spatially or made noisy. The output is
 * blended with the input (residual blend) so scene structure, and hence the
 * labels, stay valid. The differences from the official CAE: no learned
 * bottleneck (no binarised 32-channel code, no down/up-sampling inside the
 * net), and fresh weights per image instead of once per run. To keep it
 * cheap the net runs at half resolution by default and the residual
 * (output - input) is upsampled bilinearly and added at full resolution. */
#ifndef IC_AUGMENT_DEEPAUG_H
#define IC_AUGMENT_DEEPAUG_H

#include "augment/rng.h"
#include "image/image.h"

/* Settings of ic_aug_deepaug(). */
typedef struct ic_aug_deepaug_params {
    float magnitude; /* [0, 1]: size of the perturbations and of the blend */
    int downscale;   /* 1 (full resolution) or 2 (half: ~4x faster) */
} ic_aug_deepaug_params;

/* magnitude 1, downscale 2. */
ic_aug_deepaug_params ic_aug_deepaug_params_default(void);

/* Distorts an 8-bit RGB image in place. magnitude 0 is the identity.
 * Returns 0, IC_EINVAL (bad image or parameters), IC_ENOMEM (image
 * unchanged). */
int ic_aug_deepaug(ic_aug_rng *rng, ic_image *img, const ic_aug_deepaug_params *p);

/* The same net as an ic_aug_op_fn (downscale 2), so RandAugment/AugMix
 * chains and tests can treat it like the other ops. */
int ic_aug_deepaug_op(ic_aug_rng *rng, ic_image *img, float magnitude);

#endif
