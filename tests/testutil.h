/* Helpers shared by the Check test programs: golden fixtures, random data,
 * tolerant comparison. */
#ifndef IC_TESTS_TESTUTIL_H
#define IC_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/tensor.h"
#include "io/safetensors.h"

/* Absolute path of a file under the source tree's tests/ folder. The result
 * is a static buffer, valid until the next call. */
const char *tu_path(const char *rel);

/* Opens tests/golden/fixtures/<name>.safetensors; fails the test if absent. */
ic_safetensors *tu_fixture(const char *name);
/* Tensor of a fixture by name; fails the test if absent. */
const ic_st_tensor *tu_fixture_tensor(const ic_safetensors *st, const char *name);

/* Op fixtures hold numbered cases: tensors "c<i>.<field>" (tests/golden/gen_ops.py and its
 * kin). tu_case_tensor fails the test if c<i>.<field> is absent; tu_has_case tells whether
 * case i exists (it has an input "c<i>.x"). */
const ic_st_tensor *tu_case_tensor(const ic_safetensors *st, int i, const char *field);
int tu_has_case(const ic_safetensors *st, int i);
/* A 4-D fixture tensor as an ic_tensor: tu_view4 reads the fixture's memory in place (for
 * inputs that are only read); tu_copy4 is a malloc'd copy the test may write and free()s.
 * Both fail the test unless the tensor is 4-D. */
ic_tensor tu_view4(const ic_st_tensor *t);
ic_tensor tu_copy4(const ic_st_tensor *t);

/* The network input of a whole-model fixture: its uint8 "image" tensor
 * (N, 3, H, W), normalised per channel as (pixel - mean) / std, allocated
 * in `a`. Fails the test if the tensor is absent or not uint8. */
ic_tensor tu_fixture_image(const ic_safetensors *st, const float mean[3], const float std[3],
                           ic_arena *a);

/* Deterministic xorshift64* generator. */
uint64_t tu_rand_u64(uint64_t *state);
/* Uniform in [lo, hi). */
float tu_rand_uniform(uint64_t *state, float lo, float hi);
/* Integer in [lo, hi]. */
int tu_rand_int(uint64_t *state, int lo, int hi);
void tu_rand_fill(float *x, size_t n, uint64_t *state, float lo, float hi);

/* Compares got with want element-wise: |g - w| <= rtol * (|w| + scale), where
 * scale is the largest |want| times 1e-2 (so that values near zero are
 * judged against the tensor's magnitude, not their own). Prints the first
 * mismatches with `label` and returns the number of mismatches. Also reports
 * the largest relative error in *max_rel when not NULL. */
size_t tu_compare(const float *got, const float *want, size_t n, double rtol, const char *label,
                  double *max_rel);

/* Tensor-wise relative error: max |got - want| / max |want|. Used for whole
 * networks, where a value near zero after dozens of layers cannot be held to
 * an element-wise relative bound but the tensor as a whole can. Returns the
 * error; prints `label` and the worst element when it exceeds tol. */
double tu_max_rel_error(const float *got, const float *want, size_t n, double tol, const char *label);

#endif
