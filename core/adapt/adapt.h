/* Choosing a request's forward strategy (model/forward.h) from its
 * calibration mode: TENT adapts a private copy of the network first
 * (adapt/tent.h), instcal-e averages the network's instcal-g forward and its
 * tbn forward of the mirrored image (adapt/ensemble.h); every other mode
 * runs the serving network as it is. The choice is made once, before the
 * inference path runs (core/infer). */
#ifndef IC_ADAPT_ADAPT_H
#define IC_ADAPT_ADAPT_H

#include "adapt/tent.h"
#include "model/forward.h"

/* The strategy for mode: TENT on `tent` (a copy of net's weights made with
 * ic_tent_create(); NULL when this caller offers no TENT), instcal-e as an
 * ensemble of net's forwards, any other mode on net itself. Returns 0, or
 * IC_EINVAL with a message when the mode cannot run: net lacks the mode's
 * tensors (instcal-u, -c, -g; instcal-e needs instcal-g's), or mode is tent
 * and tent is NULL or holds another model. */
int ic_adapt_forward(ic_forward *out, const ic_pdl *net, ic_tent *tent, ic_calib_mode mode);

#endif
