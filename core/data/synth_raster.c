/* SynthCity rasteriser: ray-casts a scene into the G-buffer.
 *
 * Every pixel is one ray through its centre, so labels, depth and colour
 * describe the same point and occlusion is exact. Stuff (ground, facades,
 * tree lines, sky) is cast column by column: a facade plane meets a column
 * at one distance, so each column first collects the facades it crosses,
 * sorted near to far, and each row then takes the ground or the first
 * facade whose height range holds the ray. Objects (car, pole and hedge
 * boxes; person and tree billboards) are then drawn over their screen
 * bounding boxes with a depth test against what is already there. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "data/synth_internal.h"

int synth_gbuf_alloc(synth_gbuf **out, int h, int w)
{
    size_t n = (size_t)h * (size_t)w;
    synth_gbuf *g = ic_calloc(1, sizeof *g);
    if (!g)
        return ic_error_set(IC_ENOMEM, "synth: out of memory for a %dx%d G-buffer", h, w);
    g->w = w;
    g->h = h;
    g->cls = ic_malloc(n);
    g->obj = ic_malloc(n * sizeof *g->obj);
    g->z = ic_malloc(n * sizeof *g->z);
    g->albedo = ic_malloc(3 * n * sizeof *g->albedo);
    g->normal = ic_malloc(n);
    g->shadow = ic_malloc(n);
    g->emit = ic_malloc(n);
    g->wet = ic_malloc(n);
    g->work = ic_malloc(3 * n * sizeof *g->work);
    g->work2 = ic_malloc(3 * n * sizeof *g->work2);
    g->work3 = ic_malloc(3 * n * sizeof *g->work3);
    g->shadow_index = synth_shadow_alloc();
    g->scene = ic_malloc(sizeof *g->scene);
    g->inst_area = ic_malloc((SYNTH_MAX_OBJECTS + 1) * sizeof *g->inst_area);
    if (!g->cls || !g->obj || !g->z || !g->albedo || !g->normal || !g->shadow || !g->emit ||
        !g->wet || !g->work || !g->work2 || !g->work3 || !g->shadow_index ||
        !g->scene || !g->inst_area) {
        synth_gbuf_free(g);
        return ic_error_set(IC_ENOMEM, "synth: out of memory for a %dx%d G-buffer", h, w);
    }
    *out = g;
    return 0;
}

void synth_gbuf_free(synth_gbuf *g)
{
    if (!g)
        return;
    ic_free(g->cls);
    ic_free(g->obj);
    ic_free(g->z);
    ic_free(g->albedo);
    ic_free(g->normal);
    ic_free(g->shadow);
    ic_free(g->emit);
    ic_free(g->wet);
    ic_free(g->work);
    ic_free(g->work2);
    ic_free(g->work3);
    synth_shadow_free(g->shadow_index);
    ic_free(g->scene);
    ic_free(g->inst_area);
    ic_free(g);
}

/* Unit-free direction of a normal code, for the "faces the sun" test. */
static float facing_sun(const synth_scene *sc, int normal)
{
    switch (normal) {
    case N_UP:
        return sc->sun[1];
    case N_PX:
        return sc->sun[0];
    case N_NX:
        return -sc->sun[0];
    case N_NZ:
    case N_CAM:
        return -sc->sun[2] + 0.3f; /* billboards are lit from the side too */
    default:
        return 0.0f;
    }
}

static void normal_vec(int normal, float n[3])
{
    n[0] = normal == N_PX ? 1.0f : (normal == N_NX ? -1.0f : 0.0f);
    n[1] = normal == N_UP ? 1.0f : 0.0f;
    n[2] = normal == N_NZ || normal == N_CAM ? -1.0f : 0.0f;
}

/* Sun shadow (0 or 255) of a surface point, ambient occlusion in *ao. */
static uint8_t shade_point(const synth_gbuf *g, const synth_scene *sc, const float p[3], int normal,
                           int owner, float *ao)
{
    if (facing_sun(sc, normal) <= 0.0f) {
        if (ao)
            synth_shadow_query(g->shadow_index, p, owner, ao);
        return 255;
    }
    float n[3], q[3];
    normal_vec(normal, n);
    for (int i = 0; i < 3; i++)
        q[i] = p[i] + 0.03f * n[i];
    return synth_shadow_query(g->shadow_index, q, owner, ao) ? 255 : 0;
}

/* ---------------------------------------------------------------- stuff */

typedef struct column_hit {
    float t;      /* forward distance where the facade meets this column */
    float s;      /* metres along the facade */
    float height; /* top of the facade at this column */
    int idx;
} column_hit;

static void stuff_pass(synth_gbuf *g, const synth_scene *sc, int look)
{
    const synth_camera *c = &sc->cam;
    column_hit hits[SYNTH_MAX_FACADES];
    for (int u = 0; u < g->w; u++) {
        float dx = ((float)u + 0.5f - c->cx) / c->f;
        int n = 0;
        for (int i = 0; i < sc->n_facades; i++) {
            const synth_facade *f = &sc->facade[i];
            column_hit h;
            if (f->axis == 0) {
                if (f->p * dx <= 0.0f)
                    continue;
                h.t = f->p / dx;
                if (h.t < f->a0 || h.t > f->a1 || h.t < 0.3f)
                    continue;
                h.s = h.t - f->a0;
            } else {
                h.t = f->p;
                float x = dx * h.t;
                if (x < f->a0 || x > f->a1)
                    continue;
                h.s = x - f->a0;
            }
            h.height = f->height;
            if (f->kind == 1) /* crowns along the tree line */
                h.height *= 0.7f + 0.45f * synth_fbm(h.s * 0.25f, 0.5f, f->seed);
            h.idx = i;
            int k = n++;
            while (k > 0 && hits[k - 1].t > h.t) {
                hits[k] = hits[k - 1];
                k--;
            }
            hits[k] = h;
        }
        for (int v = 0; v < g->h; v++) {
            float dy = (c->vh - ((float)v + 0.5f)) / c->f;
            size_t px = (size_t)v * (size_t)g->w + (size_t)u;
            float best = SYNTH_SKY_Z;
            int ground = 0;
            const column_hit *hit = NULL;
            if (dy < -1e-5f) {
                float tg = c->height / -dy;
                if (tg < 2000.0f) {
                    best = tg;
                    ground = 1;
                }
            }
            for (int k = 0; k < n && hits[k].t < best; k++) {
                float y = c->height + dy * hits[k].t;
                if (y >= 0.0f && y <= hits[k].height) {
                    best = hits[k].t;
                    hit = &hits[k];
                    ground = 0;
                    break;
                }
            }
            float *alb = g->albedo + 3 * px;
            g->obj[px] = 0;
            g->emit[px] = EMIT_NONE;
            g->wet[px] = 0;
            g->shadow[px] = 0;
            g->z[px] = best;
            if (ground) {
                float x = dx * best, fp = best / c->f * sqrtf(best / c->height);
                int cls = synth_tex_ground(sc, look, x, best, fp, alb);
                float p[3] = {x, 0.01f, best}, ao;
                g->shadow[px] = shade_point(g, sc, p, N_UP, -1000000, &ao);
                for (int i = 0; i < 3; i++)
                    alb[i] *= ao;
                g->cls[px] = (uint8_t)cls;
                g->normal[px] = N_UP;
                g->wet[px] = cls != IC_SYNTH_VEGETATION;
            } else if (hit) {
                const synth_facade *f = &sc->facade[hit->idx];
                float y = c->height + dy * best;
                g->emit[px] = (uint8_t)synth_tex_facade(sc, f, look, hit->s, y, best / c->f, alb);
                g->cls[px] = f->kind == 1 ? IC_SYNTH_VEGETATION : IC_SYNTH_BUILDING;
                int nrm = f->axis == 1 ? N_NZ : (f->p < 0.0f ? N_PX : N_NX);
                g->normal[px] = (uint8_t)nrm;
                float p[3] = {dx * best, y, best};
                g->shadow[px] = shade_point(g, sc, p, nrm, -1 - hit->idx, NULL);
            } else {
                synth_tex_sky(sc, look, dx, dy, alb);
                g->cls[px] = IC_SYNTH_SKY;
                g->normal[px] = N_SKY;
                g->z[px] = SYNTH_SKY_Z;
            }
        }
    }
}

/* ---------------------------------------------------------------- objects */

/* Ray (0, hc, 0) + t (dx, dy, 1) against a box: entry distance and the
 * normal code of the entry face. */
static int ray_box(const synth_box *b, float hc, float dx, float dy, float *t_out, int *normal)
{
    float tn = 0.0f, tf = 1e9f;
    int nrm = N_NZ;
    if (fabsf(dx) < 1e-9f) {
        if (b->x0 > 0.0f || b->x1 < 0.0f)
            return 0;
    } else {
        float t0 = b->x0 / dx, t1 = b->x1 / dx;
        int n = dx > 0.0f ? N_NX : N_PX;
        if (t0 > t1) {
            float t = t0;
            t0 = t1;
            t1 = t;
        }
        if (t0 > tn) {
            tn = t0;
            nrm = n;
        }
        tf = t1 < tf ? t1 : tf;
    }
    if (fabsf(dy) < 1e-9f) {
        if (hc < b->y0 || hc > b->y1)
            return 0;
    } else {
        float t0 = (b->y0 - hc) / dy, t1 = (b->y1 - hc) / dy;
        int n = dy < 0.0f ? N_UP : N_CAM;
        if (t0 > t1) {
            float t = t0;
            t0 = t1;
            t1 = t;
        }
        if (t0 > tn) {
            tn = t0;
            nrm = n;
        }
        tf = t1 < tf ? t1 : tf;
    }
    if (b->z0 > tn) {
        tn = b->z0;
        nrm = N_NZ;
    }
    tf = b->z1 < tf ? b->z1 : tf;
    if (tn > tf || tn <= 0.0f)
        return 0;
    *t_out = tn;
    *normal = nrm;
    return 1;
}

typedef struct rect {
    int u0, u1, v0, v1;
} rect;

/* Screen rectangle covering world box [x0,x1] x [y0,y1] x [z0,z1]; 0 when
 * it is behind the camera or off screen. */
static int project_box(const synth_camera *c, float x0, float x1, float y0, float y1, float z0,
                       float z1, rect *r)
{
    if (z0 < 0.3f)
        return 0;
    float umin = 1e9f, umax = -1e9f, vmin = 1e9f, vmax = -1e9f;
    for (int i = 0; i < 8; i++) {
        float x = i & 1 ? x1 : x0, y = i & 2 ? y1 : y0, z = i & 4 ? z1 : z0;
        float u = c->cx + c->f * x / z, v = c->vh + c->f * (c->height - y) / z;
        umin = fminf(umin, u);
        umax = fmaxf(umax, u);
        vmin = fminf(vmin, v);
        vmax = fmaxf(vmax, v);
    }
    r->u0 = (int)fmaxf(0.0f, floorf(umin));
    r->u1 = (int)fminf((float)c->w - 1.0f, ceilf(umax));
    r->v0 = (int)fmaxf(0.0f, floorf(vmin));
    r->v1 = (int)fminf((float)c->h - 1.0f, ceilf(vmax));
    return r->u0 <= r->u1 && r->v0 <= r->v1;
}

static void put_object_pixel(synth_gbuf *g, const synth_scene *sc, size_t px, int idx, float t,
                             const float alb[3], int normal, int emit, const float p[3])
{
    g->cls[px] = (uint8_t)sc->obj[idx].cls;
    g->obj[px] = (uint16_t)(idx + 1);
    g->z[px] = t;
    memcpy(g->albedo + 3 * px, alb, 3 * sizeof(float));
    g->normal[px] = (uint8_t)normal;
    g->emit[px] = (uint8_t)emit;
    g->wet[px] = 0;
    g->shadow[px] = shade_point(g, sc, p, normal, idx, NULL);
}

static void draw_boxes(synth_gbuf *g, const synth_scene *sc, int look, int idx)
{
    const synth_camera *c = &sc->cam;
    const synth_object *o = &sc->obj[idx];
    float x0 = 1e9f, x1 = -1e9f, y0 = 1e9f, y1 = -1e9f, z0 = 1e9f, z1 = -1e9f;
    for (int b = 0; b < o->n_box; b++) {
        x0 = fminf(x0, o->box[b].x0);
        x1 = fmaxf(x1, o->box[b].x1);
        y0 = fminf(y0, o->box[b].y0);
        y1 = fmaxf(y1, o->box[b].y1);
        z0 = fminf(z0, o->box[b].z0);
        z1 = fmaxf(z1, o->box[b].z1);
    }
    rect r;
    if (!project_box(c, x0, x1, y0, y1, z0, z1, &r))
        return;
    for (int v = r.v0; v <= r.v1; v++) {
        float dy = (c->vh - ((float)v + 0.5f)) / c->f;
        for (int u = r.u0; u <= r.u1; u++) {
            float dx = ((float)u + 0.5f - c->cx) / c->f;
            size_t px = (size_t)v * (size_t)g->w + (size_t)u;
            float best = g->z[px];
            int nb = -1, nrm = N_NZ;
            for (int b = 0; b < o->n_box; b++) {
                float t;
                int n;
                if (ray_box(&o->box[b], c->height, dx, dy, &t, &n) && t < best) {
                    best = t;
                    nb = b;
                    nrm = n;
                }
            }
            if (nb < 0)
                continue;
            float p[3] = {dx * best, c->height + dy * best, best}, alb[3];
            int emit = synth_tex_box(o, &o->box[nb], look, nrm, p, alb);
            put_object_pixel(g, sc, px, idx, best, alb, nrm, emit, p);
        }
    }
}

static void draw_billboard(synth_gbuf *g, const synth_scene *sc, int look, int idx)
{
    const synth_camera *c = &sc->cam;
    const synth_object *o = &sc->obj[idx];
    float half, top;
    if (o->kind == OBJ_PERSON) {
        half = 0.2f * o->height;
        top = o->height;
    } else {
        half = fmaxf(1.5f * o->crown_r, o->width);
        top = o->crown_y + 1.5f * o->crown_r;
    }
    rect r;
    if (!project_box(c, o->x - half, o->x + half, 0.0f, top, o->z, o->z, &r))
        return;
    float t = o->z;
    for (int v = r.v0; v <= r.v1; v++) {
        float dy = (c->vh - ((float)v + 0.5f)) / c->f;
        float y = c->height + dy * t;
        for (int u = r.u0; u <= r.u1; u++) {
            size_t px = (size_t)v * (size_t)g->w + (size_t)u;
            if (t >= g->z[px])
                continue;
            float dx = ((float)u + 0.5f - c->cx) / c->f;
            float a = dx * t - o->x, alb[3];
            int in = o->kind == OBJ_PERSON ? synth_tex_person(o, look, a, y, alb)
                                           : synth_tex_tree(o, look, a, y, alb);
            if (!in)
                continue;
            float p[3] = {dx * t, y, t};
            put_object_pixel(g, sc, px, idx, t, alb, N_CAM, EMIT_NONE, p);
        }
    }
}

void synth_raster(synth_gbuf *g, const synth_scene *sc, int look)
{
    synth_shadow_build(g->shadow_index, sc, look);
    stuff_pass(g, sc, look);
    for (int i = 0; i < sc->n_objects; i++) {
        if (sc->obj[i].kind == OBJ_PERSON || sc->obj[i].kind == OBJ_TREE)
            draw_billboard(g, sc, look, i);
        else
            draw_boxes(g, sc, look, i);
    }
}
