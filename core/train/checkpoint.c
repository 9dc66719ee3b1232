/* Checkpoint files of the training loop (see checkpoint.h). */
#include "train/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "io/safetensors.h"

static int path_of(char *buf, size_t cap, const char *dir, const char *what, int64_t iter)
{
    int n = snprintf(buf, cap, "%s/%s_%07" PRId64 ".safetensors", dir, what, iter);
    if (n < 0 || (size_t)n >= cap)
        return ic_error_set(IC_ELIMIT, "checkpoint path too long under %s", dir);
    return 0;
}

static int put_meta_u64(ic_st_writer *w, const char *key, uint64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return ic_st_writer_set_metadata(w, key, s);
}

static int save_state(const char *path, const ic_adam *a, const ic_checkpoint_state *st)
{
    ic_st_writer *w = NULL;
    int rc = ic_st_writer_create(&w);
    size_t off = 0;
    char name[200];
    for (int i = 0; !rc && i < a->n; i++) {
        const ic_param *p = a->p[i];
        int64_t shape[1] = {(int64_t)p->n};
        snprintf(name, sizeof name, "adam.m.%s", p->name);
        rc = ic_st_writer_add_f32(w, name, a->m + off, 1, shape);
        snprintf(name, sizeof name, "adam.v.%s", p->name);
        if (!rc)
            rc = ic_st_writer_add_f32(w, name, a->v + off, 1, shape);
        off += p->n;
    }
    if (!rc)
        rc = put_meta_u64(w, "iter", (uint64_t)st->iter);
    if (!rc)
        rc = put_meta_u64(w, "samples", st->samples);
    if (!rc)
        rc = put_meta_u64(w, "seed", st->seed);
    if (!rc)
        rc = put_meta_u64(w, "adam_step", (uint64_t)a->step);
    if (!rc)
        rc = ic_st_writer_save(w, path);
    ic_st_writer_destroy(&w);
    return rc;
}

/* Writes `text` to path atomically. */
static int write_atomic(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return ic_error_set(IC_EIO, "cannot write %s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return ic_error_set(IC_EIO, "cannot write %s", path);
    }
    return 0;
}

/* Reads last_checkpoint: the latest iteration and the one before it
 * (-1 when absent). Returns 0 or IC_ENOTFOUND / IC_EFORMAT. */
static int read_pointer(const char *dir, int64_t *latest, int64_t *before)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/last_checkpoint", dir);
    FILE *f = fopen(p, "rb");
    if (!f)
        return ic_error_set(IC_ENOTFOUND, "no checkpoint in %s (no last_checkpoint)", dir);
    long long v = -1, b = -1;
    int ok = fscanf(f, "%lld", &v) == 1 && v >= 0;
    if (ok && fscanf(f, "%lld", &b) != 1)
        b = -1;
    fclose(f);
    if (!ok)
        return ic_error_set(IC_EFORMAT, "%s: not an iteration number", p);
    *latest = v;
    *before = b;
    return 0;
}

int ic_checkpoint_save(const char *dir, const ic_pdl *net, const ic_adam *adam,
                       const ic_checkpoint_state *st)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ic_error_set(IC_EIO, "cannot create %s: %s", dir, strerror(errno));
    int64_t prev = -1, prev2 = -1;
    if (read_pointer(dir, &prev, &prev2))
        prev = prev2 = -1;
    ic_error_clear();
    char model[4096], state[4096], p[4096], it[32], seed[32], ptr[64];
    int rc = path_of(model, sizeof model, dir, "model", st->iter);
    if (!rc)
        rc = path_of(state, sizeof state, dir, "state", st->iter);
    snprintf(it, sizeof it, "%" PRId64, st->iter);
    snprintf(seed, sizeof seed, "%" PRIu64, st->seed);
    const char *meta[] = {"train_iter", it, "train_seed", seed, NULL};
    if (!rc)
        rc = ic_pdl_save(net, model, meta);
    if (!rc)
        rc = save_state(state, adam, st);
    if (!rc) {
        /* the previous checkpoint is kept (and named here) in case this
         * one turns out to be unreadable */
        int64_t keep = prev != st->iter ? prev : prev2;
        snprintf(ptr, sizeof ptr, "%" PRId64 "\n%" PRId64 "\n", st->iter, keep);
        snprintf(p, sizeof p, "%s/last_checkpoint", dir);
        rc = write_atomic(p, ptr);
        if (!rc && prev2 >= 0 && prev2 != st->iter && prev2 != keep) {
            if (!path_of(p, sizeof p, dir, "model", prev2))
                remove(p);
            if (!path_of(p, sizeof p, dir, "state", prev2))
                remove(p);
        }
    }
    return rc;
}

int ic_checkpoint_latest(const char *dir, int64_t *iter, char *model_path, size_t cap)
{
    int64_t before;
    int rc = read_pointer(dir, iter, &before);
    return rc ? rc : path_of(model_path, cap, dir, "model", *iter);
}

static int meta_u64(const ic_safetensors *st, const char *path, const char *key, uint64_t *out)
{
    const char *s = ic_st_metadata(st, key);
    char *end;
    if (!s || !*s)
        return ic_error_set(IC_EFORMAT, "%s: metadata %s missing", path, key);
    *out = strtoull(s, &end, 10);
    if (*end)
        return ic_error_set(IC_EFORMAT, "%s: metadata %s is not a number", path, key);
    return 0;
}

int ic_checkpoint_load_state(const char *dir, int64_t iter, ic_adam *a, ic_checkpoint_state *out)
{
    char path[4096], name[200];
    int rc = path_of(path, sizeof path, dir, "state", iter);
    ic_safetensors *st = NULL;
    if (!rc)
        rc = ic_st_open(&st, path);
    if (rc)
        return rc;
    uint64_t it = 0, samples = 0, seed = 0, step = 0;
    rc = meta_u64(st, path, "iter", &it);
    if (!rc)
        rc = meta_u64(st, path, "samples", &samples);
    if (!rc)
        rc = meta_u64(st, path, "seed", &seed);
    if (!rc)
        rc = meta_u64(st, path, "adam_step", &step);
    size_t off = 0;
    for (int i = 0; !rc && i < a->n; i++) {
        const ic_param *p = a->p[i];
        for (int k = 0; !rc && k < 2; k++) {
            snprintf(name, sizeof name, "adam.%c.%s", k ? 'v' : 'm', p->name);
            const ic_st_tensor *t = ic_st_find(st, name);
            if (!t || !t->f32 || t->numel != p->n)
                rc = ic_error_set(IC_EFORMAT, "%s: %s missing or not %zu floats", path, name, p->n);
            else
                memcpy((k ? a->v : a->m) + off, t->f32, p->n * sizeof(float));
        }
        off += p->n;
    }
    ic_st_close(&st);
    if (rc)
        return rc;
    a->step = (int64_t)step;
    out->iter = (int64_t)it;
    out->samples = samples;
    out->seed = seed;
    return 0;
}
