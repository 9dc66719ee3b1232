/* Output ensembles of calibrated forwards: the same network run under
 * several calibration modes, each optionally on the horizontally mirrored
 * image (its outputs mirrored back, the x offsets negated), the outputs
 * averaged.
 *
 * instcal-e is the ensemble of instcal-g (which keeps the clean domain:
 * strengths near 0 on unshifted images) and tbn on the mirrored image (pure
 * instance statistics, the strongest correction on shifted ones; mirrored,
 * its errors are less alike instcal-g's). The semantic output is the
 * log of the members' mean softmax probabilities (a valid logit: its
 * softmax is that mean), the centre heatmap and the offsets are the
 * members' means, and so are the mean strengths and the drift score. It
 * costs one forward per member; the activation memory is one forward's plus
 * the running sums (each member's scratch is rewound before the next). */
#ifndef IC_ADAPT_ENSEMBLE_H
#define IC_ADAPT_ENSEMBLE_H

#include "model/pdl.h"

/* Most members of one ensemble. */
#define IC_ENSEMBLE_MAX 4

/* One member: a calibration mode, run on x or (mirror) on x mirrored
 * left-right. */
typedef struct ic_ensemble_member {
    ic_calib_mode mode;
    int mirror;
} ic_ensemble_member;

/* instcal-e's members, in the order they run. */
extern const ic_ensemble_member ic_ensemble_instcal_e[2];

/* Runs net for each of members[0..n) (opts gives the other fields, its mode
 * is ignored) and writes the averaged outputs into out, allocated in arena.
 * Returns 0, or an error with a message: n outside 1..IC_ENSEMBLE_MAX, a
 * member that is an ensemble or tent, a member the network cannot run, or
 * any error of the members' forwards. */
int ic_ensemble_forward(const ic_pdl *net, const ic_ensemble_member *members, int n,
                        const ic_tensor *x,
                        const ic_calib_opts *opts, int flags, ic_arena *arena, ic_pdl_outputs *out);

#endif
