/* safetensors files: a memory-mapped, read-only reader and a writer.
 *
 * Format (https://huggingface.co/docs/safetensors): 8-byte little-endian
 * header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]},
 * "__metadata__": {str: str}}, then the data section; offsets are relative to
 * the start of the data section.
 *
 * The reader validates everything before handing out a pointer: the header
 * length against the file size and a cap, the JSON, each dtype, each shape
 * (and that its byte size equals the offset span), that offsets are in
 * bounds, that tensors do not overlap and cover the data section in order.
 * Errors name the offending tensor. F32 tensors are used in place when the
 * mapping is 4-byte aligned; F16 and BF16 (and misaligned F32) are converted
 * to F32 copies on open, so every tensor reads as float. */
#ifndef IC_IO_SAFETENSORS_H
#define IC_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define IC_ST_MAX_DIMS 8
/* Headers larger than this are refused (safetensors itself caps at 100 MB). */
#define IC_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef enum ic_st_dtype {
    IC_ST_F32 = 0,
    IC_ST_F16,
    IC_ST_BF16,
    IC_ST_I64, /* readable as raw bytes only (e.g. num_batches_tracked) */
    IC_ST_I32,
    IC_ST_U8,
} ic_st_dtype;

typedef struct ic_st_tensor {
    const char *name;
    ic_st_dtype dtype;           /* dtype in the file */
    int ndim;
    int64_t shape[IC_ST_MAX_DIMS];
    size_t numel;
    const void *raw;             /* bytes in the file (mapped) */
    size_t nbytes;               /* size in the file */
    const float *f32;            /* float view (for F32/F16/BF16), else NULL */
} ic_st_tensor;

typedef struct ic_safetensors ic_safetensors;

/* Maps `path` read-only and validates it. On success *ret owns the mapping;
 * release it with ic_st_close(). Errors: IC_EIO (cannot open/map),
 * IC_EFORMAT (bad header, JSON, offsets, shapes), IC_EUNSUPPORTED (dtype),
 * IC_ENOMEM. The message names the tensor at fault. */
int ic_st_open(ic_safetensors **ret, const char *path);

/* Same for a buffer in memory (not copied: `buf` must outlive *ret). */
int ic_st_open_memory(ic_safetensors **ret, const void *buf, size_t len);

/* Releases the mapping and conversions; sets *st to NULL. NULL is fine. */
void ic_st_close(ic_safetensors **st);

size_t ic_st_count(const ic_safetensors *st);
/* i-th tensor in file order (order of data offsets). */
const ic_st_tensor *ic_st_get(const ic_safetensors *st, size_t i);
/* Tensor by name, or NULL. */
const ic_st_tensor *ic_st_find(const ic_safetensors *st, const char *name);
/* "__metadata__" value for key, or NULL. */
const char *ic_st_metadata(const ic_safetensors *st, const char *key);

/* ---- writer ---- */

typedef struct ic_st_writer ic_st_writer;

int ic_st_writer_create(ic_st_writer **ret);
void ic_st_writer_destroy(ic_st_writer **w);

/* Adds a float32 tensor; data is copied. Names must be unique. */
int ic_st_writer_add_f32(ic_st_writer *w, const char *name, const float *data, int ndim,
                         const int64_t *shape);
/* Adds a tensor of any dtype from raw little-endian bytes (copied). */
int ic_st_writer_add_raw(ic_st_writer *w, const char *name, ic_st_dtype dtype, const void *data,
                         size_t nbytes, int ndim, const int64_t *shape);
/* Sets a "__metadata__" entry (copied; replaces an existing key). */
int ic_st_writer_set_metadata(ic_st_writer *w, const char *key, const char *value);

/* Writes the file atomically (temporary file + rename). */
int ic_st_writer_save(ic_st_writer *w, const char *path);

#endif
