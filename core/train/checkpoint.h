/* Training checkpoints that resume bit for bit.
 *
 * A checkpoint of iteration N in directory D is two files plus a pointer:
 *   D/model_<N>.safetensors  every model tensor (ic_pdl_save), BN running
 *                            statistics and calibration tensors included;
 *   D/state_<N>.safetensors  the optimiser (Adam m and v per parameter, as
 *                            "adam.m.<name>" / "adam.v.<name>") and, in the
 *                            metadata, the iteration, the Adam step count, the
 *                            seed and the sample counter;
 *   D/last_checkpoint        "<N>\n<previous N or -1>\n", written last.
 * Each file is written atomically (temporary + rename) and last_checkpoint
 * only after both, so a crash leaves the previous checkpoint intact. The
 * data RNG is counter-based (dataset.h): (seed, samples) is its whole state.
 * Older checkpoints than the previous one are removed. */
#ifndef IC_TRAIN_CHECKPOINT_H
#define IC_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model/pdl_train.h"
#include "train/adam.h"

/* Loop state stored beside the optimiser. */
typedef struct ic_checkpoint_state {
    int64_t iter;      /* completed iterations */
    uint64_t samples;  /* samples drawn so far (data RNG counter) */
    uint64_t seed;
} ic_checkpoint_state;

/* Writes the checkpoint of st->iter into `dir` (created if missing).
 * Returns 0, IC_EIO, IC_ENOMEM. */
int ic_checkpoint_save(const char *dir, const ic_pdl *net, const ic_adam *adam,
                       const ic_checkpoint_state *st);

/* Finds the latest checkpoint of `dir`: its iteration and the model path
 * (into model_path, size cap). Returns 0, IC_ENOTFOUND (no last_checkpoint),
 * IC_EFORMAT, IC_ELIMIT (path too long). */
int ic_checkpoint_latest(const char *dir, int64_t *iter, char *model_path, size_t cap);

/* Restores the optimiser and loop state of iteration `iter` from `dir` into
 * an ic_adam initialised over the same parameter selection (matched by
 * name and size). Returns 0, IC_EIO, IC_EFORMAT (missing or misshapen
 * tensor, bad metadata). */
int ic_checkpoint_load_state(const char *dir, int64_t iter, ic_adam *adam,
                             ic_checkpoint_state *st);

#endif
