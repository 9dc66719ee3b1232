/* Sun shadows for SynthCity: which surface points see the sun.
 *
 * Every opaque part of the scene (buildings as deep boxes behind their
 * facades, car and pole boxes, hedges, tree crowns and trunks, people) is a
 * caster box. A point P is in shadow when the ray P + t * sun hits a caster.
 * Testing every caster at every pixel would cost most of the frame, so each
 * caster also gets the bounding box of its shadow volume (the box swept down
 * to the ground against the sun) and is filed in the Z buckets that volume
 * overlaps; a query then looks at a handful of casters only. */
#include <string.h>

#include "base/alloc.h"
#include "data/synth_internal.h"

#define MAX_CASTERS (SYNTH_MAX_FACADES + SYNTH_MAX_OBJECTS * SYNTH_MAX_BOXES)
#define BUCKET_Z0 (-20.0f)
#define BUCKET_DZ 4.0f
#define N_BUCKETS 100
#define MAX_LIST 24576

typedef struct caster {
    float b[6];  /* solid: x0, x1, y0, y1, z0, z1 */
    float v[6];  /* shadow volume bounds, same order */
    int owner;   /* object index, or -1 - facade index */
    int car;     /* a car body: darkens the road beneath it */
} caster;

struct synth_shadow {
    caster c[MAX_CASTERS];
    int n;
    int enabled;
    float sun[3];
    int start[N_BUCKETS + 1];
    uint16_t list[MAX_LIST];
};

synth_shadow *synth_shadow_alloc(void)
{
    synth_shadow *s = ic_malloc(sizeof *s);
    if (s)
        memset(s, 0, sizeof *s);
    return s;
}

void synth_shadow_free(synth_shadow *s)
{
    ic_free(s);
}

static void add_caster(synth_shadow *s, float x0, float x1, float y0, float y1, float z0, float z1,
                       int owner, int car)
{
    if (s->n >= MAX_CASTERS)
        return;
    caster *c = &s->c[s->n++];
    float b[6] = {x0, x1, y0, y1, z0, z1};
    memcpy(c->b, b, sizeof b);
    /* The shadow of a point Q reaches the ground at Q - (Q.y / sun.y) sun. */
    float k = y1 / s->sun[1];
    float sx = -k * s->sun[0], sz = -k * s->sun[2];
    c->v[0] = x0 + (sx < 0.0f ? sx : 0.0f);
    c->v[1] = x1 + (sx > 0.0f ? sx : 0.0f);
    c->v[2] = 0.0f;
    c->v[3] = y1;
    c->v[4] = z0 + (sz < 0.0f ? sz : 0.0f);
    c->v[5] = z1 + (sz > 0.0f ? sz : 0.0f);
    if (car) { /* the occlusion margin under the body */
        c->v[0] = c->v[0] < x0 - 0.3f ? c->v[0] : x0 - 0.3f;
        c->v[1] = c->v[1] > x1 + 0.3f ? c->v[1] : x1 + 0.3f;
        c->v[4] = c->v[4] < z0 - 0.3f ? c->v[4] : z0 - 0.3f;
        c->v[5] = c->v[5] > z1 + 0.3f ? c->v[5] : z1 + 0.3f;
    }
    c->owner = owner;
    c->car = car;
}

static int bucket_of(float z)
{
    int b = (int)floorf((z - BUCKET_Z0) / BUCKET_DZ);
    return b < 0 ? 0 : (b >= N_BUCKETS ? N_BUCKETS - 1 : b);
}

void synth_shadow_build(synth_shadow *s, const synth_scene *sc, int look)
{
    s->n = 0;
    memcpy(s->sun, sc->sun, sizeof s->sun);
    s->enabled = sc->sun_int[look] > 0.3f && sc->sun[1] > 0.05f;
    for (int i = 0; i < sc->n_facades; i++) {
        const synth_facade *f = &sc->facade[i];
        float h = f->kind == 1 ? 0.85f * f->height : f->height;
        if (f->axis == 0) { /* the building extends away from the street */
            float x0 = f->p < 0.0f ? f->p - 12.0f : f->p, x1 = f->p < 0.0f ? f->p : f->p + 12.0f;
            add_caster(s, x0, x1, 0.0f, h, f->a0, f->a1, -1 - i, 0);
        } else {
            add_caster(s, f->a0, f->a1, 0.0f, h, f->p, f->p + 12.0f, -1 - i, 0);
        }
    }
    for (int i = 0; i < sc->n_objects; i++) {
        const synth_object *o = &sc->obj[i];
        if (o->kind == OBJ_TREE) {
            float r = 0.8f * o->crown_r, t = 0.5f * o->width;
            add_caster(s, o->x - r, o->x + r, o->crown_y - r, o->crown_y + r, o->z - r, o->z + r, i, 0);
            add_caster(s, o->x - t, o->x + t, 0.0f, o->crown_y, o->z - t, o->z + t, i, 0);
        } else if (o->kind == OBJ_PERSON) {
            float t = 0.1f * o->height;
            add_caster(s, o->x - t, o->x + t, 0.0f, o->height, o->z, o->z + 0.3f, i, 0);
        } else {
            for (int b = 0; b < o->n_box; b++) {
                const synth_box *x = &o->box[b];
                add_caster(s, x->x0, x->x1, x->y0, x->y1, x->z0, x->z1, i,
                           o->kind == OBJ_CAR && x->part == PART_BODY);
            }
        }
    }
    /* Counting sort of caster ids into the buckets their volumes overlap. */
    int count[N_BUCKETS];
    memset(count, 0, sizeof count);
    for (int i = 0; i < s->n; i++)
        for (int b = bucket_of(s->c[i].v[4]); b <= bucket_of(s->c[i].v[5]); b++)
            count[b]++;
    s->start[0] = 0;
    for (int b = 0; b < N_BUCKETS; b++) {
        int next = s->start[b] + count[b];
        s->start[b + 1] = next < MAX_LIST ? next : MAX_LIST;
    }
    int fill[N_BUCKETS];
    memcpy(fill, s->start, sizeof fill);
    for (int i = 0; i < s->n; i++)
        for (int b = bucket_of(s->c[i].v[4]); b <= bucket_of(s->c[i].v[5]); b++)
            if (fill[b] < s->start[b + 1])
                s->list[fill[b]++] = (uint16_t)i;
}

/* Slab test of the ray o + t d (t > eps) against box b. */
static int ray_hits(const float b[6], const float o[3], const float d[3])
{
    float tn = 1e-3f, tf = 1e9f;
    for (int a = 0; a < 3; a++) {
        float lo = b[2 * a], hi = b[2 * a + 1];
        if (fabsf(d[a]) < 1e-9f) {
            if (o[a] < lo || o[a] > hi)
                return 0;
            continue;
        }
        float inv = 1.0f / d[a];
        float t0 = (lo - o[a]) * inv, t1 = (hi - o[a]) * inv;
        if (t0 > t1) {
            float t = t0;
            t0 = t1;
            t1 = t;
        }
        tn = t0 > tn ? t0 : tn;
        tf = t1 < tf ? t1 : tf;
        if (tn > tf)
            return 0;
    }
    return 1;
}

int synth_shadow_query(const synth_shadow *s, const float p[3], int skip_owner, float *ao)
{
    if (ao)
        *ao = 1.0f;
    if (p[2] < BUCKET_Z0 || p[2] >= BUCKET_Z0 + BUCKET_DZ * N_BUCKETS)
        return 0;
    int b = bucket_of(p[2]), shadow = 0;
    for (int k = s->start[b]; k < s->start[b + 1]; k++) {
        const caster *c = &s->c[s->list[k]];
        if (c->owner == skip_owner)
            continue;
        if (p[0] < c->v[0] || p[0] > c->v[1] || p[1] > c->v[3] || p[2] < c->v[4] || p[2] > c->v[5])
            continue;
        if (c->car && ao && p[1] < 0.05f) {
            /* Beneath a car the road sees little sky: darker towards the middle. */
            float dx = fminf(p[0] - c->b[0], c->b[1] - p[0]), dz = fminf(p[2] - c->b[4], c->b[5] - p[2]);
            float d = fminf(dx, dz);
            float occ = d > 0.0f ? 0.3f : 0.3f + 0.7f * synth_clampf(-d / 0.3f, 0.0f, 1.0f);
            *ao = fminf(*ao, occ);
        }
        if (!shadow && s->enabled && ray_hits(c->b, p, s->sun))
            shadow = 1;
        if (shadow && !ao)
            return 1;
    }
    return shadow;
}
