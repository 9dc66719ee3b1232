/* Portable float vectors for the few hand-blocked kernels (GCC/Clang vector
 * extensions, no intrinsics).
 *
 * IC_VF is the widest float vector the target compiles to natively (16
 * with AVX-512, 8 with AVX, 4 otherwise), so no function passes a vector
 * that the ABI has no register for. Unaligned loads and stores go through
 * memcpy, which compiles to plain vector moves. */
#ifndef IC_BASE_VEC_H
#define IC_BASE_VEC_H

#include <string.h>

#if defined(__AVX512F__)
#define IC_VF 16
#elif defined(__AVX__)
#define IC_VF 8
#else
#define IC_VF 4
#endif

typedef float ic_vf __attribute__((vector_size(IC_VF * sizeof(float))));
typedef int ic_vi __attribute__((vector_size(IC_VF * sizeof(int))));

static inline ic_vf ic_vload(const float *p)
{
    ic_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void ic_vstore(float *p, ic_vf v)
{
    memcpy(p, &v, sizeof v);
}

/* max(v, 0) lane-wise */
static inline ic_vf ic_vrelu(ic_vf v)
{
    const ic_vf zero = {0};
    const ic_vi keep = v > zero; /* -1 where positive, 0 elsewhere */
    return (ic_vf)((ic_vi)v & keep);
}

#endif
