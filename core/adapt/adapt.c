/* The forward strategies of adapt.h. */
#include "adapt/adapt.h"

#include <string.h>

#include "adapt/ensemble.h"
#include "base/err.h"

/* TENT's forward: adapt the copy, run it, restore it (see tent.h). */
static int tent_run(void *ctx, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                    ic_arena *arena, ic_pdl_outputs *out)
{
    return ic_tent_forward(ctx, x, opts, flags, arena, out, NULL);
}

/* instcal-e's forward: instcal-g and the mirrored tbn averaged (see
 * ensemble.h). */
static int ensemble_run(void *ctx, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                        ic_arena *arena, ic_pdl_outputs *out)
{
    return ic_ensemble_forward(ctx, ic_ensemble_instcal_e, 2, x, opts, flags, arena, out);
}

int ic_adapt_forward(ic_forward *out, const ic_pdl *net, ic_tent *tent, ic_calib_mode mode)
{
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    *out = ic_forward_plain(net);
    if (mode != IC_CALIB_TENT) {
        if (!ic_pdl_supports(net, mode))
            return ic_error_set(IC_EINVAL, "calibration mode '%s' is not available for model '%s'",
                                ic_calib_mode_name(mode), cfg->name);
        if (mode == IC_CALIB_INSTCAL_E) {
            out->run = ensemble_run;
            out->ctx = (void *)net; /* only read: ic_forward's ctx is not const */
        }
        return 0;
    }
    /* TENT runs on the caller's private trainable copy; it must be the same
     * network, or the outputs would not match the config. */
    if (!tent)
        return ic_error_set(IC_EINVAL, "calibration mode 'tent' is not available here (it "
                                       "needs a per-worker TENT context)");
    const ic_pdl_config *tc = ic_pdl_get_config(ic_tent_model(tent));
    if (tc->num_classes != cfg->num_classes || strcmp(tc->name, cfg->name) != 0)
        return ic_error_set(IC_EINVAL, "the TENT context holds model '%s', not '%s'", tc->name,
                            cfg->name);
    out->run = tent_run;
    out->ctx = tent;
    return 0;
}
