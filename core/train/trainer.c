/* The training loop: micro-batches, losses, backward, Adam, projection,
 * progress, checkpoints and validation (see trainer.h). */
#include "train/trainer.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "ops/loss.h"
#include "train/checkpoint.h"
#include "train/validate.h"

struct ic_trainer {
    ic_pdl *net;
    ic_dataset *data;
    ic_loader_opts lo;
    ic_trainer_opts o;
    ic_adam adam;
    ic_batch batch;
    ic_arena arena;
    ic_param *params;
    int n_params;
    float clamp_eps;
    int64_t iter;
    uint64_t samples;
    /* throughput of this process */
    int64_t images_done;
    double seconds;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

ic_train_config ic_train_config_default(void)
{
    return (ic_train_config){.sem_top_k = 0.2,
                             .sem_weight = 1.0f,
                             .center_weight = IC_LOSS_CENTER_WEIGHT,
                             .offset_weight = IC_LOSS_OFFSET_WEIGHT,
                             .sigma = 10,
                             .small_instance_area = 4096,
                             .small_instance_weight = 3.0f};
}

static int get_num(json_t *o, const char *key, double lo, double hi, double *v)
{
    json_t *j = json_object_get(o, key);
    if (!j)
        return 0;
    if (!json_is_number(j) || json_number_value(j) < lo || json_number_value(j) > hi)
        return ic_error_set(IC_EFORMAT, "training.%s: expected a number in [%g, %g]", key, lo, hi);
    *v = json_number_value(j);
    return 0;
}

int ic_train_config_parse(ic_train_config *tc, const char *config_json)
{
    *tc = ic_train_config_default();
    if (!config_json)
        return 0;
    json_error_t jerr;
    json_t *root = json_loads(config_json, 0, &jerr);
    if (!root)
        return ic_error_set(IC_EFORMAT, "config: %s (line %d)", jerr.text, jerr.line);
    json_t *t = json_object_get(root, "training");
    int rc = 0;
    if (t) {
        double k = tc->sem_top_k, sw = tc->sem_weight, cw = tc->center_weight,
               ow = tc->offset_weight, sg = tc->sigma, a = (double)tc->small_instance_area,
               siw = tc->small_instance_weight;
        rc = get_num(t, "sem_loss_top_k", 1e-6, 1, &k);
        if (!rc)
            rc = get_num(t, "sem_loss_weight", 0, 1e6, &sw);
        if (!rc)
            rc = get_num(t, "center_loss_weight", 0, 1e6, &cw);
        if (!rc)
            rc = get_num(t, "offset_loss_weight", 0, 1e6, &ow);
        if (!rc)
            rc = get_num(t, "gaussian_sigma", 1, 1000, &sg);
        if (!rc)
            rc = get_num(t, "small_instance_area", 0, 1e12, &a);
        if (!rc)
            rc = get_num(t, "small_instance_weight", 0, 1e6, &siw);
        *tc = (ic_train_config){k, (float)sw, (float)cw, (float)ow, (int)sg, (long)a, (float)siw};
    }
    json_decref(root);
    return rc;
}

ic_trainer_opts ic_trainer_opts_default(int64_t iters)
{
    ic_trainer_opts o;
    memset(&o, 0, sizeof o);
    o.batch = 8;
    o.accum = 1;
    o.iters = iters;
    o.sched = ic_lr_schedule_default(1e-3, iters);
    o.grads = IC_PARAM_WEIGHT | IC_PARAM_BN_AFFINE;
    o.fwd.bn = IC_PDL_BN_TRAIN;
    o.fwd.momentum = 0.1f;
    o.fwd.grads = o.grads;
    o.loss = ic_train_config_default();
    o.adam = ic_adam_opts_default();
    o.log_every = 20;
    return o;
}

/* The official InstCal-U clamp of the strengths' .data (InstCal-G's too). */
static void project_strengths(ic_trainer *t)
{
    float lo = t->clamp_eps, hi = 1.0f - t->clamp_eps;
    for (int i = 0; i < t->n_params; i++) {
        ic_param *p = &t->params[i];
        if (p->kind != IC_PARAM_CALIB_U && p->kind != IC_PARAM_CALIB_G)
            continue;
        for (size_t j = 0; j < p->n; j++)
            p->data[j] = p->data[j] < lo ? lo : p->data[j] > hi ? hi : p->data[j];
    }
}

int ic_trainer_create(ic_trainer **ret, ic_pdl *net, ic_dataset *data, const ic_loader_opts *lo,
                      const ic_trainer_opts *o)
{
    *ret = NULL;
    if (o->batch < 1 || o->accum < 1 || o->iters < 1 || o->log_every < 0 ||
        !(o->sched.base_lr >= 0) || lo->crop_h % 16 || lo->crop_w % 16 || lo->crop_h < 16 ||
        lo->crop_w < 16)
        return ic_error_set(IC_EINVAL, "trainer: batch, accum and iters must be >= 1, lr >= 0, "
                                       "the crop a positive multiple of 16");
    int rc = ic_pdl_make_trainable(net);
    if (rc)
        return rc;
    ic_trainer *t = ic_calloc(1, sizeof *t);
    if (!t)
        return ic_error_set(IC_ENOMEM, "trainer: no memory");
    t->net = net;
    t->data = data;
    t->lo = *lo;
    t->o = *o;
    t->o.sched.max_iters = o->iters;
    t->o.fwd.grads = o->grads;
    t->clamp_eps = ic_pdl_get_config(net)->clamp_eps;
    ic_arena_init(&t->arena, (size_t)16 << 20, 0);
    rc = ic_pdl_params(net, &t->params, &t->n_params);
    if (!rc)
        rc = ic_adam_init(&t->adam, t->params, t->n_params, o->grads, &o->adam);
    if (!rc)
        rc = ic_batch_init(&t->batch, o->batch, lo->crop_h, lo->crop_w);
    if (rc) {
        ic_trainer_free(&t);
        return rc;
    }
    project_strengths(t);
    *ret = t;
    return 0;
}

void ic_trainer_free(ic_trainer **pt)
{
    ic_trainer *t = pt ? *pt : NULL;
    if (!t)
        return;
    ic_adam_deinit(&t->adam);
    ic_batch_deinit(&t->batch);
    ic_arena_deinit(&t->arena);
    ic_free(t);
    *pt = NULL;
}

int ic_trainer_resume(ic_trainer *t, const char *dir)
{
    char model[4096];
    int64_t iter;
    int rc = ic_checkpoint_latest(dir, &iter, model, sizeof model);
    ic_checkpoint_state st;
    if (!rc)
        rc = ic_checkpoint_load_state(dir, iter, &t->adam, &st);
    if (rc)
        return rc;
    if (st.seed != t->o.seed)
        return ic_error_set(IC_EINVAL, "checkpoint of %s was made with seed %llu, not %llu", dir,
                            (unsigned long long)st.seed, (unsigned long long)t->o.seed);
    t->iter = st.iter;
    t->samples = st.samples;
    return 0;
}

int ic_trainer_checkpoint(ic_trainer *t)
{
    if (!t->o.checkpoint_dir)
        return ic_error_set(IC_EINVAL, "no checkpoint directory");
    ic_checkpoint_state st = {.iter = t->iter, .samples = t->samples, .seed = t->o.seed};
    return ic_checkpoint_save(t->o.checkpoint_dir, t->net, &t->adam, &st);
}

/* Forward, losses and backward of one micro-batch; adds the weighted losses
 * (divided by accum) to *acc. */
static int micro_batch(ic_trainer *t, ic_train_losses *acc)
{
    ic_batch *b = &t->batch;
    int rc = ic_loader_fill(b, t->data, &t->lo, t->o.seed, t->samples);
    if (rc)
        return rc;
    t->samples += (uint64_t)b->n;
    ic_arena_reset(&t->arena);
    ic_pdl_tape *tape = NULL;
    ic_pdl_outputs out;
    rc = ic_pdl_forward_train(t->net, &b->image, &t->o.fwd, &t->arena, &tape, &out);
    if (rc)
        return rc;
    size_t px = (size_t)b->n * b->h * b->w;
    float *coef = ic_arena_floats(&t->arena, px), *work = ic_arena_floats(&t->arena, px);
    ic_tensor dsem, dcenter, doffset;
    if (!coef || !work || ic_tensor_alloc(&dsem, &t->arena, out.sem.n, out.sem.c, out.sem.h, out.sem.w) ||
        ic_tensor_alloc(&dcenter, &t->arena, b->n, 1, b->h, b->w) ||
        ic_tensor_alloc(&doffset, &t->arena, b->n, 2, b->h, b->w))
        return ic_error_prefix(IC_ENOMEM, "trainer: loss gradients");
    memset(dsem.data, 0, ic_tensor_numel(&dsem) * sizeof(float));
    memset(dcenter.data, 0, ic_tensor_numel(&dcenter) * sizeof(float));
    memset(doffset.data, 0, ic_tensor_numel(&doffset) * sizeof(float));
    const ic_train_config *lc = &t->o.loss;
    float ls = 0, lcen = 0, loff = 0, inv = 1.0f / (float)t->o.accum;
    rc = ic_loss_deeplab_ce_forward(&ls, coef, work, &out.sem, b->sem, b->sem_w, lc->sem_top_k,
                                    IC_LOSS_IGNORE);
    if (!rc)
        rc = ic_loss_center_mse_forward(&lcen, &out.center, &b->center, &b->center_w);
    if (!rc)
        rc = ic_loss_offset_l1_forward(&loff, &out.offset, &b->offset, &b->offset_w);
    if (!rc)
        rc = ic_loss_deeplab_ce_backward(&dsem, lc->sem_weight * inv, coef, &out.sem, b->sem,
                                         IC_LOSS_IGNORE);
    if (!rc)
        rc = ic_loss_center_mse_backward(&dcenter, lc->center_weight * inv, &out.center, &b->center,
                                         &b->center_w);
    if (!rc)
        rc = ic_loss_offset_l1_backward(&doffset, lc->offset_weight * inv, &out.offset, &b->offset,
                                        &b->offset_w);
    if (rc)
        return rc;
    double s = (double)lc->sem_weight * ls, c = (double)lc->center_weight * lcen,
           f = (double)lc->offset_weight * loff;
    if (!isfinite(s + c + f))
        return ic_error_set(IC_ESTATE, "loss is not finite at iteration %lld (sem %g center %g "
                            "offset %g)", (long long)t->iter, s, c, f);
    acc->sem += s * inv;
    acc->center += c * inv;
    acc->offset += f * inv;
    return ic_pdl_backward(t->net, tape, &dsem, &dcenter, &doffset, &t->arena);
}

int ic_trainer_step(ic_trainer *t, ic_train_losses *out)
{
    double t0 = now_s();
    ic_train_losses L = {0};
    ic_pdl_zero_grad(t->net);
    for (int a = 0; a < t->o.accum; a++) {
        int rc = micro_batch(t, &L);
        if (rc)
            return rc;
    }
    float lr = (float)ic_lr_at(&t->o.sched, t->iter);
    ic_adam_step(&t->adam, lr, t->o.adam.clip_norm > 0 ? &L.grad_norm : NULL);
    project_strengths(t);
    t->iter++;
    L.total = L.sem + L.center + L.offset;
    if (out)
        *out = L;
    t->images_done += (int64_t)t->o.batch * t->o.accum;
    t->seconds += now_s() - t0;
    return 0;
}

static void fmt_eta(char *buf, size_t cap, double s)
{
    long v = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    snprintf(buf, cap, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
}

int ic_trainer_run(ic_trainer *t, int64_t until)
{
    if (until <= 0 || until > t->o.iters)
        until = t->o.iters;
    ic_train_losses win = {0};
    int nwin = 0;
    double wt0 = t->seconds;
    int64_t wimg0 = t->images_done;
    while (t->iter < until) {
        ic_train_losses L;
        int rc = ic_trainer_step(t, &L);
        if (rc)
            return rc;
        win.total += L.total;
        win.sem += L.sem;
        win.center += L.center;
        win.offset += L.offset;
        nwin++;
        int last = t->iter == until;
        if (t->o.log && t->o.log_every > 0 && (t->iter % t->o.log_every == 0 || last)) {
            double dt = t->seconds - wt0, ips = dt > 0 ? (t->images_done - wimg0) / dt : 0;
            double per_it = dt / nwin;
            char eta[32];
            fmt_eta(eta, sizeof eta, per_it * (double)(t->o.iters - t->iter));
            fprintf(t->o.log,
                    "iter %lld/%lld  lr %.3e  loss %.4f  sem %.4f  center %.4f  offset %.4f  "
                    "%.2f img/s  eta %s\n",
                    (long long)t->iter, (long long)t->o.iters, ic_lr_at(&t->o.sched, t->iter - 1),
                    win.total / nwin, win.sem / nwin, win.center / nwin, win.offset / nwin, ips,
                    eta);
            fflush(t->o.log);
            memset(&win, 0, sizeof win);
            nwin = 0;
            wt0 = t->seconds;
            wimg0 = t->images_done;
        }
        if (t->o.checkpoint_dir && t->o.checkpoint_every > 0 &&
            (t->iter % t->o.checkpoint_every == 0 || last)) {
            if ((rc = ic_trainer_checkpoint(t)))
                return rc;
        }
        if (t->o.val_dir && t->o.val_every > 0 && t->iter % t->o.val_every == 0) {
            ic_val_summary s;
            if ((rc = ic_train_validate(t->net, t->o.val_dir, &t->o.val_calib, t->o.val_limit, &s)))
                return rc;
            if (t->o.log) {
                char what[64];
                snprintf(what, sizeof what, "val @%lld", (long long)t->iter);
                ic_val_summary_print(t->o.log, what, &s);
            }
        }
    }
    return 0;
}

int64_t ic_trainer_iter(const ic_trainer *t)
{
    return t->iter;
}

double ic_trainer_images_per_second(const ic_trainer *t)
{
    return t->seconds > 0 ? (double)t->images_done / t->seconds : 0;
}
