/* libFuzzer target: the safetensors header parser (ic_st_open_memory), which
 * reads model files on startup and on SIGHUP reload. Every tensor's name,
 * shape and data range is walked so that a header pointing outside the
 * buffer shows up under ASan. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ic_safetensors *st = NULL;
    if (ic_st_open_memory(&st, data, size) != 0)
        return 0;
    volatile size_t acc = 0;
    size_t n = ic_st_count(st);
    for (size_t i = 0; i < n; i++) {
        const ic_st_tensor *t = ic_st_get(st, i);
        acc += strlen(t->name);
        for (int d = 0; d < t->ndim; d++)
            acc += (size_t)t->shape[d];
        const uint8_t *p = t->raw;
        if (t->nbytes) {
            acc += p[0];
            acc += p[t->nbytes - 1];
        }
        if (t->f32 && t->numel) {
            acc += (size_t)(t->f32[0] != 0.0f);
            acc += (size_t)(t->f32[t->numel - 1] != 0.0f);
        }
        if (ic_st_find(st, t->name) == NULL)
            __builtin_trap(); /* a listed name must be found */
    }
    const char *m = ic_st_metadata(st, "config");
    if (m)
        acc += strlen(m);
    ic_st_close(&st);
    return 0;
}
