/* safetensors reader (mmap, validated) and writer (see safetensors.h).
 *
 * The reader trusts nothing in the file: the header length is checked
 * against the file size and IC_ST_MAX_HEADER before it is read, the JSON is
 * parsed with jansson, every entry's dtype, shape and offsets are checked,
 * and the entries, sorted by offset, must tile the data section exactly
 * (no gap, no overlap, nothing past the end). */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"

struct ic_safetensors {
    void *map;          /* mmap'd file, or NULL for memory buffers */
    size_t map_len;
    const unsigned char *buf; /* whole file */
    size_t len;
    size_t n;
    ic_st_tensor *tensors; /* sorted by data offset */
    char **names;       /* owned copies */
    float **converted;  /* owned F32 copies (NULL when used in place) */
    json_t *metadata;   /* "__metadata__" object or NULL */
};

static const struct {
    const char *name;
    ic_st_dtype dtype;
    size_t size;
} dtype_table[] = {
    {"F32", IC_ST_F32, 4}, {"F16", IC_ST_F16, 2}, {"BF16", IC_ST_BF16, 2},
    {"I64", IC_ST_I64, 8}, {"I32", IC_ST_I32, 4}, {"U8", IC_ST_U8, 1},
};

static int dtype_lookup(const char *s, ic_st_dtype *dt, size_t *size)
{
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (!strcmp(s, dtype_table[i].name)) {
            *dt = dtype_table[i].dtype;
            *size = dtype_table[i].size;
            return 0;
        }
    return -1;
}

static const char *dtype_name(ic_st_dtype dt)
{
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (dtype_table[i].dtype == dt)
            return dtype_table[i].name;
    return "?";
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int cmp_offset(const void *a, const void *b)
{
    const ic_st_tensor *x = a, *y = b;
    const unsigned char *px = x->raw, *py = y->raw;
    if (px != py)
        return px < py ? -1 : 1;
    /* Zero-sized tensors may share an offset; order by size then. */
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Parses one header entry into t; the name must already be set. */
static int parse_entry(ic_st_tensor *t, json_t *v, const unsigned char *data, size_t data_len)
{
    const char *name = t->name;
    if (!json_is_object(v))
        return ic_error_set(IC_EFORMAT, "safetensors: entry '%s' is not an object", name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2)
        return ic_error_set(IC_EFORMAT,
                            "safetensors: tensor '%s' needs dtype, shape and data_offsets [begin, end]",
                            name);
    size_t esize;
    if (dtype_lookup(json_string_value(jd), &t->dtype, &esize) != 0)
        return ic_error_set(IC_EUNSUPPORTED, "safetensors: tensor '%s' has unsupported dtype '%s'",
                            name, json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > IC_ST_MAX_DIMS)
        return ic_error_set(IC_EFORMAT, "safetensors: tensor '%s' has %zu dimensions (max %d)", name,
                            nd, IC_ST_MAX_DIMS);
    t->ndim = (int)nd;
    size_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return ic_error_set(IC_EFORMAT, "safetensors: tensor '%s' has a bad shape entry", name);
        t->shape[i] = json_integer_value(d);
        if (ic_size_mul(&numel, numel, (size_t)t->shape[i]))
            return ic_error_set(IC_EFORMAT, "safetensors: tensor '%s' shape overflows", name);
    }
    t->numel = numel;
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 ||
        json_integer_value(je) < json_integer_value(jb))
        return ic_error_set(IC_EFORMAT, "safetensors: tensor '%s' has bad data_offsets", name);
    uint64_t b = (uint64_t)json_integer_value(jb), e = (uint64_t)json_integer_value(je);
    if (e > data_len)
        return ic_error_set(IC_EFORMAT,
                            "safetensors: tensor '%s' data [%llu, %llu) is past the end of the data "
                            "section (%zu bytes)",
                            name, (unsigned long long)b, (unsigned long long)e, data_len);
    size_t expect;
    if (ic_size_mul(&expect, numel, esize) || expect != e - b)
        return ic_error_set(IC_EFORMAT,
                            "safetensors: tensor '%s' spans %llu bytes but its shape and dtype need %zu",
                            name, (unsigned long long)(e - b), numel * esize);
    t->raw = data + b;
    t->nbytes = (size_t)(e - b);
    return 0;
}

static int convert_floats(ic_safetensors *st, size_t i)
{
    ic_st_tensor *t = &st->tensors[i];
    if (t->dtype != IC_ST_F32 && t->dtype != IC_ST_F16 && t->dtype != IC_ST_BF16)
        return 0;
    if (t->dtype == IC_ST_F32 && ((uintptr_t)t->raw % sizeof(float)) == 0) {
        t->f32 = (const float *)t->raw; /* little-endian host assumed (x86-64, arm64) */
        return 0;
    }
    float *out = ic_malloc(t->numel * sizeof(float));
    if (!out)
        return ic_error_set(IC_ENOMEM, "safetensors: no memory to convert tensor '%s'", t->name);
    const unsigned char *p = t->raw;
    for (size_t k = 0; k < t->numel; k++) {
        if (t->dtype == IC_ST_F32) {
            memcpy(&out[k], p + 4 * k, 4);
        } else {
            uint16_t h = (uint16_t)(p[2 * k] | (p[2 * k + 1] << 8));
            out[k] = t->dtype == IC_ST_F16 ? half_to_float(h) : bf16_to_float(h);
        }
    }
    st->converted[i] = out;
    t->f32 = out;
    return 0;
}

static int parse(ic_safetensors *st)
{
    if (st->len < 8)
        return ic_error_set(IC_EFORMAT, "safetensors: file of %zu bytes is too short", st->len);
    uint64_t hlen = read_le64(st->buf);
    if (hlen > IC_ST_MAX_HEADER)
        return ic_error_set(IC_EFORMAT, "safetensors: header length %llu exceeds the %llu byte limit",
                            (unsigned long long)hlen, (unsigned long long)IC_ST_MAX_HEADER);
    if (hlen > st->len - 8)
        return ic_error_set(IC_EFORMAT,
                            "safetensors: header length %llu is larger than the file (%zu bytes)",
                            (unsigned long long)hlen, st->len);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)st->buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ic_error_set(IC_EFORMAT, "safetensors: header is not valid JSON: %s (at byte %d)",
                            jerr.text, jerr.position);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = ic_error_set(IC_EFORMAT, "safetensors: header is not a JSON object");
        goto done;
    }
    const unsigned char *data = st->buf + 8 + hlen;
    size_t data_len = st->len - 8 - (size_t)hlen;
    size_t n = json_object_size(root);
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta) {
        if (!json_is_object(meta)) {
            rc = ic_error_set(IC_EFORMAT, "safetensors: __metadata__ is not an object");
            goto done;
        }
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v)
        {
            if (!json_is_string(v)) {
                rc = ic_error_set(IC_EFORMAT, "safetensors: __metadata__ value '%s' is not a string", k);
                goto done;
            }
        }
        st->metadata = json_incref(meta);
        n--;
    }
    st->tensors = ic_calloc(n ? n : 1, sizeof *st->tensors);
    st->names = ic_calloc(n ? n : 1, sizeof *st->names);
    st->converted = ic_calloc(n ? n : 1, sizeof *st->converted);
    if (!st->tensors || !st->names || !st->converted) {
        rc = ic_error_set(IC_ENOMEM, "safetensors: no memory for %zu tensor entries", n);
        goto done;
    }
    const char *key;
    json_t *val;
    size_t i = 0;
    json_object_foreach(root, key, val)
    {
        if (!strcmp(key, "__metadata__"))
            continue;
        size_t kl = strlen(key);
        st->names[i] = ic_malloc(kl + 1);
        if (!st->names[i]) {
            rc = ic_error_set(IC_ENOMEM, "safetensors: no memory");
            goto done;
        }
        memcpy(st->names[i], key, kl + 1);
        st->tensors[i].name = st->names[i];
        st->n = i + 1;
        if ((rc = parse_entry(&st->tensors[i], val, data, data_len)) != 0)
            goto done;
        i++;
    }
    qsort(st->tensors, st->n, sizeof *st->tensors, cmp_offset);
    const unsigned char *pos = data;
    for (i = 0; i < st->n; i++) {
        const ic_st_tensor *t = &st->tensors[i];
        if ((const unsigned char *)t->raw < pos) {
            rc = ic_error_set(IC_EFORMAT, "safetensors: tensor '%s' overlaps '%s'", t->name,
                              st->tensors[i - 1].name);
            goto done;
        }
        if ((const unsigned char *)t->raw > pos) {
            rc = ic_error_set(IC_EFORMAT, "safetensors: gap of %zu bytes before tensor '%s'",
                              (size_t)((const unsigned char *)t->raw - pos), t->name);
            goto done;
        }
        pos += t->nbytes;
    }
    if (pos != data + data_len) {
        rc = ic_error_set(IC_EFORMAT, "safetensors: %zu trailing bytes after the last tensor",
                          (size_t)(data + data_len - pos));
        goto done;
    }
    /* names[] and tensors[] were permuted differently by qsort; names[] only
     * owns the strings, so the order mismatch does not matter. */
    for (i = 0; i < st->n; i++)
        if ((rc = convert_floats(st, i)) != 0)
            goto done;
done:
    json_decref(root);
    return rc;
}

int ic_st_open_memory(ic_safetensors **ret, const void *buf, size_t len)
{
    ic_safetensors *st = ic_calloc(1, sizeof *st);
    if (!st)
        return ic_error_set(IC_ENOMEM, "safetensors: no memory");
    st->buf = buf;
    st->len = len;
    int rc = parse(st);
    if (rc) {
        ic_st_close(&st);
        return rc;
    }
    *ret = st;
    return 0;
}

int ic_st_open(ic_safetensors **ret, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ic_error_set(IC_EIO, "safetensors: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ic_error_set(IC_EIO, "safetensors: %s is not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ic_error_set(IC_EIO, "safetensors: cannot map %s: %s", path, strerror(e));
        }
    }
    close(fd);
    ic_safetensors *st = ic_calloc(1, sizeof *st);
    if (!st) {
        if (map)
            munmap(map, len);
        return ic_error_set(IC_ENOMEM, "safetensors: no memory");
    }
    st->map = map;
    st->map_len = len;
    st->buf = map;
    st->len = len;
    int rc = parse(st);
    if (rc) {
        ic_st_close(&st);
        return ic_error_prefix(rc, "%s", path);
    }
    *ret = st;
    return 0;
}

void ic_st_close(ic_safetensors **pst)
{
    if (!pst || !*pst)
        return;
    ic_safetensors *st = *pst;
    for (size_t i = 0; i < st->n; i++) {
        if (st->names)
            ic_free(st->names[i]);
        if (st->converted)
            ic_free(st->converted[i]);
    }
    ic_free(st->names);
    ic_free(st->converted);
    ic_free(st->tensors);
    json_decref(st->metadata);
    if (st->map)
        munmap(st->map, st->map_len);
    ic_free(st);
    *pst = NULL;
}

size_t ic_st_count(const ic_safetensors *st)
{
    return st->n;
}

const ic_st_tensor *ic_st_get(const ic_safetensors *st, size_t i)
{
    return i < st->n ? &st->tensors[i] : NULL;
}

const ic_st_tensor *ic_st_find(const ic_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *ic_st_metadata(const ic_safetensors *st, const char *key)
{
    if (!st->metadata)
        return NULL;
    return json_string_value(json_object_get(st->metadata, key));
}

/* ---- writer ---- */

typedef struct wtensor {
    char *name;
    ic_st_dtype dtype;
    int ndim;
    int64_t shape[IC_ST_MAX_DIMS];
    void *data;
    size_t nbytes;
} wtensor;

struct ic_st_writer {
    wtensor *t;
    size_t n, cap;
    json_t *meta;
};

int ic_st_writer_create(ic_st_writer **ret)
{
    ic_st_writer *w = ic_calloc(1, sizeof *w);
    if (!w)
        return ic_error_set(IC_ENOMEM, "safetensors writer: no memory");
    w->meta = json_object();
    if (!w->meta) {
        ic_free(w);
        return ic_error_set(IC_ENOMEM, "safetensors writer: no memory");
    }
    *ret = w;
    return 0;
}

void ic_st_writer_destroy(ic_st_writer **pw)
{
    if (!pw || !*pw)
        return;
    ic_st_writer *w = *pw;
    for (size_t i = 0; i < w->n; i++) {
        ic_free(w->t[i].name);
        ic_free(w->t[i].data);
    }
    ic_free(w->t);
    json_decref(w->meta);
    ic_free(w);
    *pw = NULL;
}

int ic_st_writer_add_raw(ic_st_writer *w, const char *name, ic_st_dtype dtype, const void *data,
                         size_t nbytes, int ndim, const int64_t *shape)
{
    if (!name || !*name || !strcmp(name, "__metadata__") || ndim < 0 || ndim > IC_ST_MAX_DIMS)
        return ic_error_set(IC_EINVAL, "safetensors writer: bad tensor name or rank");
    size_t esize = 0, numel = 1;
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (dtype_table[i].dtype == dtype)
            esize = dtype_table[i].size;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || ic_size_mul(&numel, numel, (size_t)shape[i]))
            return ic_error_set(IC_EINVAL, "safetensors writer: bad shape for '%s'", name);
    }
    if (!esize || numel * esize != nbytes)
        return ic_error_set(IC_EINVAL, "safetensors writer: '%s' has %zu bytes, shape needs %zu",
                            name, nbytes, numel * esize);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return ic_error_set(IC_EINVAL, "safetensors writer: duplicate tensor '%s'", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wtensor *nt = ic_realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return ic_error_set(IC_ENOMEM, "safetensors writer: no memory");
        w->t = nt;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = ic_malloc(strlen(name) + 1);
    t->data = ic_malloc(nbytes);
    if (!t->name || !t->data) {
        ic_free(t->name);
        ic_free(t->data);
        return ic_error_set(IC_ENOMEM, "safetensors writer: no memory for '%s'", name);
    }
    strcpy(t->name, name);
    if (nbytes)
        memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    w->n++;
    return 0;
}

int ic_st_writer_add_f32(ic_st_writer *w, const char *name, const float *data, int ndim,
                         const int64_t *shape)
{
    size_t numel = 1;
    for (int i = 0; i < ndim && i < IC_ST_MAX_DIMS; i++)
        if (shape[i] < 0 || ic_size_mul(&numel, numel, (size_t)shape[i]))
            return ic_error_set(IC_EINVAL, "safetensors writer: bad shape for '%s'", name);
    size_t nbytes;
    if (ic_size_mul(&nbytes, numel, sizeof(float)))
        return ic_error_set(IC_EINVAL, "safetensors writer: '%s' is too large", name);
    return ic_st_writer_add_raw(w, name, IC_ST_F32, data, nbytes, ndim, shape);
}

int ic_st_writer_set_metadata(ic_st_writer *w, const char *key, const char *value)
{
    json_t *s = json_string(value);
    if (!s || json_object_set_new(w->meta, key, s) != 0)
        return ic_error_set(IC_EINVAL, "safetensors writer: bad metadata '%s' (not UTF-8?)", key);
    return 0;
}

static char *build_header(ic_st_writer *w, size_t *len)
{
    json_t *root = json_object();
    size_t off = 0;
    if (!root)
        return NULL;
    if (json_object_size(w->meta))
        json_object_set(root, "__metadata__", w->meta);
    for (size_t i = 0; i < w->n; i++) {
        wtensor *t = &w->t[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", dtype_name(t->dtype), "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes));
        if (!e || json_object_set_new(root, t->name, e) != 0) {
            json_decref(root);
            return NULL;
        }
        off += t->nbytes;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (s)
        *len = strlen(s);
    return s;
}

int ic_st_writer_save(ic_st_writer *w, const char *path)
{
    size_t hlen = 0;
    char *hdr = build_header(w, &hlen);
    if (!hdr)
        return ic_error_set(IC_ENOMEM, "safetensors writer: cannot build header");
    size_t pad = (8 - hlen % 8) % 8; /* keeps the data section 8-byte aligned */
    size_t plen = strlen(path);
    char *tmp = ic_malloc(plen + 16);
    if (!tmp) {
        free(hdr);
        return ic_error_set(IC_ENOMEM, "safetensors writer: no memory");
    }
    snprintf(tmp, plen + 16, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    int rc = 0;
    if (!f) {
        rc = ic_error_set(IC_EIO, "safetensors writer: cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    unsigned char len8[8];
    uint64_t total = hlen + pad;
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(total >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = fwrite(w->t[i].data, 1, w->t[i].nbytes, f) == w->t[i].nbytes;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        unlink(tmp);
        rc = ic_error_set(IC_EIO, "safetensors writer: write to %s failed", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        rc = ic_error_set(IC_EIO, "safetensors writer: cannot rename to %s: %s", path, strerror(errno));
    }
out:
    ic_free(tmp);
    free(hdr);
    return rc;
}
