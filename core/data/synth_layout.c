/* SynthCity layouts: draws a street scene from (seed, index).
 *
 * World frame: X right, Y up, Z forward, metres; the camera sits at
 * (0, height, 0) and looks along +Z. The street runs along Z: a road with
 * lane markings, a sidewalk or a grass verge on each side, rows of facades
 * (with gaps that show a taller back row, and a wall, a tree line or open
 * road at the far end), trees, street lamps and sign poles, hedges, parked
 * and moving cars, and people walking, standing in groups or crossing.
 * Every object also gets its style-city appearance, drawn from a separate
 * stream so that the geometry never depends on which domain is rendered. */
#include <string.h>

#include "data/synth_internal.h"

/* ---------------------------------------------------------------- palettes */

typedef struct rgb {
    float c[3];
} rgb;

static const rgb src_walls[] = {
    {{0.62f, 0.62f, 0.60f}}, {{0.72f, 0.65f, 0.52f}}, {{0.45f, 0.34f, 0.26f}},
    {{0.55f, 0.29f, 0.21f}}, {{0.80f, 0.78f, 0.74f}}, {{0.36f, 0.36f, 0.38f}},
    {{0.76f, 0.68f, 0.50f}}, {{0.52f, 0.50f, 0.46f}}, {{0.66f, 0.56f, 0.46f}},
};
static const rgb style_walls[] = {
    {{0.95f, 0.55f, 0.72f}}, {{0.22f, 0.80f, 0.76f}}, {{0.97f, 0.88f, 0.28f}},
    {{0.66f, 0.54f, 0.93f}}, {{0.99f, 0.55f, 0.18f}}, {{0.52f, 0.96f, 0.62f}},
    {{0.38f, 0.64f, 0.99f}}, {{0.99f, 0.42f, 0.40f}},
};
static const rgb src_cars[] = {
    {{0.86f, 0.86f, 0.86f}}, {{0.64f, 0.65f, 0.67f}}, {{0.07f, 0.07f, 0.08f}},
    {{0.25f, 0.26f, 0.28f}}, {{0.10f, 0.14f, 0.38f}}, {{0.48f, 0.07f, 0.07f}},
    {{0.16f, 0.30f, 0.64f}}, {{0.60f, 0.55f, 0.45f}}, {{0.10f, 0.25f, 0.15f}},
};
static const rgb style_cars[] = {
    {{0.60f, 0.96f, 0.10f}}, {{0.96f, 0.20f, 0.76f}}, {{0.10f, 0.90f, 0.95f}},
    {{1.00f, 0.50f, 0.05f}}, {{1.00f, 0.90f, 0.10f}}, {{0.56f, 0.20f, 0.92f}},
};
static const rgb src_clothes[] = {
    {{0.12f, 0.12f, 0.14f}}, {{0.20f, 0.27f, 0.45f}}, {{0.45f, 0.45f, 0.47f}},
    {{0.62f, 0.55f, 0.42f}}, {{0.60f, 0.12f, 0.12f}}, {{0.85f, 0.85f, 0.82f}},
    {{0.18f, 0.35f, 0.20f}}, {{0.35f, 0.22f, 0.15f}},
};
static const rgb style_clothes[] = {
    {{1.00f, 0.30f, 0.80f}}, {{0.20f, 1.00f, 0.55f}}, {{1.00f, 0.85f, 0.00f}},
    {{0.00f, 0.75f, 1.00f}}, {{0.70f, 0.30f, 1.00f}}, {{1.00f, 0.45f, 0.10f}},
};
static const rgb skins[] = {
    {{0.92f, 0.76f, 0.64f}}, {{0.80f, 0.60f, 0.45f}}, {{0.55f, 0.38f, 0.26f}},
    {{0.36f, 0.24f, 0.17f}},
};
static const rgb src_leaves[] = {
    {{0.20f, 0.38f, 0.10f}}, {{0.30f, 0.46f, 0.14f}}, {{0.13f, 0.27f, 0.10f}},
    {{0.24f, 0.40f, 0.20f}},
};
static const rgb style_leaves[] = {
    {{0.86f, 0.45f, 0.10f}}, {{0.76f, 0.20f, 0.10f}}, {{0.92f, 0.70f, 0.15f}},
    {{0.52f, 0.20f, 0.46f}},
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A palette entry with a small multiplicative jitter. */
static void pick(float out[3], synth_rng *r, const rgb *pal, int n, float jitter)
{
    const rgb *p = &pal[synth_int(r, 0, n - 1)];
    float k = synth_uniform(r, 1.0f - jitter, 1.0f + jitter);
    for (int i = 0; i < 3; i++)
        out[i] = synth_clampf(p->c[i] * k * synth_uniform(r, 0.97f, 1.03f), 0.0f, 1.0f);
}

static void set3(float out[3], float a, float b, float c)
{
    out[0] = a;
    out[1] = b;
    out[2] = c;
}

/* ---------------------------------------------------------------- builders */

static synth_object *add_object(synth_scene *sc, int kind, int cls)
{
    if (sc->n_objects >= SYNTH_MAX_OBJECTS)
        return NULL;
    synth_object *o = &sc->obj[sc->n_objects++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->cls = cls;
    return o;
}

static void add_box(synth_object *o, float x0, float x1, float y0, float y1, float z0, float z1,
                    int part)
{
    if (o->n_box >= SYNTH_MAX_BOXES)
        return;
    synth_box *b = &o->box[o->n_box++];
    b->x0 = x0 < x1 ? x0 : x1;
    b->x1 = x0 < x1 ? x1 : x0;
    b->y0 = y0;
    b->y1 = y1;
    b->z0 = z0;
    b->z1 = z1;
    b->part = part;
}

static void facade_look(synth_facade *f, synth_rng *r, synth_rng *rs)
{
    synth_facade_look *l = &f->look[SYNTH_LOOK_SOURCE];
    pick(l->base, r, src_walls, NELEM(src_walls), 0.12f);
    for (int i = 0; i < 3; i++)
        l->accent[i] = l->base[i] * synth_uniform(r, 0.6f, 0.85f);
    float g = synth_uniform(r, 0.12f, 0.3f);
    set3(l->glass, g, g * 1.08f, g * 1.2f);
    l->tex = synth_int(r, TEX_PLAIN, TEX_PANELS);
    l->arched = 0;

    synth_facade_look *s = &f->look[SYNTH_LOOK_STYLE];
    pick(s->base, rs, style_walls, NELEM(style_walls), 0.08f);
    pick(s->accent, rs, style_walls, NELEM(style_walls), 0.08f);
    for (int i = 0; i < 3; i++)
        s->accent[i] = 0.5f * s->accent[i] + 0.25f;
    float sg = synth_uniform(rs, 0.2f, 0.4f);
    set3(s->glass, sg * 1.2f, sg * 0.9f, sg * 0.7f);
    s->tex = synth_int(rs, TEX_STRIPES, TEX_TIMBER);
    s->arched = synth_chance(rs, 0.7f);
}

static synth_facade *add_facade(synth_scene *sc, synth_rng *r, synth_rng *rs, int axis, float p,
                                float a0, float a1, float height)
{
    if (sc->n_facades >= SYNTH_MAX_FACADES)
        return NULL;
    synth_facade *f = &sc->facade[sc->n_facades++];
    memset(f, 0, sizeof *f);
    f->axis = axis;
    f->p = p;
    f->a0 = a0;
    f->a1 = a1;
    f->height = height;
    f->floor_h = synth_uniform(r, 2.8f, 3.8f);
    f->win_dx = synth_uniform(r, 1.6f, 3.2f);
    f->win_w = f->win_dx * synth_uniform(r, 0.35f, 0.65f);
    f->win_h = f->floor_h * synth_uniform(r, 0.4f, 0.62f);
    f->sill = f->floor_h * synth_uniform(r, 0.15f, 0.3f);
    f->shop = synth_chance(r, 0.4f);
    f->lit = synth_uniform(r, 0.15f, 0.6f);
    f->seed = (uint32_t)synth_next(r);
    facade_look(f, r, rs);
    return f;
}

/* Footprints of cars and people placed so far, to keep them apart. */
typedef struct footprints {
    float b[SYNTH_MAX_OBJECTS][4]; /* x0, x1, z0, z1 */
    int n;
} footprints;

static int fp_free(const footprints *fp, float x0, float x1, float z0, float z1, float margin)
{
    for (int i = 0; i < fp->n; i++)
        if (x0 < fp->b[i][1] + margin && x1 > fp->b[i][0] - margin && z0 < fp->b[i][3] + margin &&
            z1 > fp->b[i][2] - margin)
            return 0;
    return 1;
}

static void fp_add(footprints *fp, float x0, float x1, float z0, float z1)
{
    if (fp->n >= SYNTH_MAX_OBJECTS)
        return;
    float *b = fp->b[fp->n++];
    b[0] = x0;
    b[1] = x1;
    b[2] = z0;
    b[3] = z1;
}

/* A car with its rear (facing +1) or front (facing -1) towards the camera,
 * near end at z0, centred on x. Returns 0 when it does not fit. */
static int add_car(synth_scene *sc, footprints *fp, synth_rng *r, synth_rng *rs, float x, float z0,
                   int facing, int parked)
{
    float w, len, body, roof, hood, trunk;
    float type = synth_uniform(r, 0.0f, 1.0f);
    if (type < 0.55f) { /* saloon */
        w = synth_uniform(r, 1.7f, 1.85f);
        len = synth_uniform(r, 4.2f, 4.8f);
        body = synth_uniform(r, 0.82f, 0.98f);
        roof = synth_uniform(r, 1.38f, 1.5f);
        hood = synth_uniform(r, 1.1f, 1.5f);
        trunk = synth_uniform(r, 0.6f, 1.0f);
    } else if (type < 0.8f) { /* hatchback */
        w = synth_uniform(r, 1.65f, 1.8f);
        len = synth_uniform(r, 3.6f, 4.1f);
        body = synth_uniform(r, 0.85f, 1.0f);
        roof = synth_uniform(r, 1.45f, 1.6f);
        hood = synth_uniform(r, 0.9f, 1.2f);
        trunk = synth_uniform(r, 0.15f, 0.3f);
    } else { /* van or SUV */
        w = synth_uniform(r, 1.85f, 2.0f);
        len = synth_uniform(r, 4.5f, 5.2f);
        body = synth_uniform(r, 1.0f, 1.15f);
        roof = synth_uniform(r, 1.75f, 2.1f);
        hood = synth_uniform(r, 0.6f, 1.1f);
        trunk = synth_uniform(r, 0.1f, 0.25f);
    }
    float x0 = x - 0.5f * w, x1 = x + 0.5f * w, z1 = z0 + len;
    int ego_lane = x0 < 1.1f && x1 > -1.1f;
    if (z0 < (ego_lane ? 5.0f : 2.5f) || !fp_free(fp, x0, x1, z0, z1, 0.6f))
        return 0;
    synth_object *o = add_object(sc, OBJ_CAR, IC_SYNTH_CAR);
    if (!o)
        return 0;
    fp_add(fp, x0, x1, z0, z1);
    o->x = x;
    o->z = z0;
    o->width = w;
    o->height = roof;
    o->facing = facing;
    o->pose = parked;
    o->seed = (uint32_t)synth_next(r);
    pick(o->col[SYNTH_LOOK_SOURCE], r, src_cars, NELEM(src_cars), 0.1f);
    pick(o->col[SYNTH_LOOK_STYLE], rs, style_cars, NELEM(style_cars), 0.1f);
    float near = facing > 0 ? trunk : hood, far = facing > 0 ? hood : trunk;
    add_box(o, x0, x1, 0.2f, body, z0, z1, PART_BODY);
    add_box(o, x0 + 0.09f, x1 - 0.09f, body, roof, z0 + near, z1 - far, PART_CABIN);
    float wz[2] = {z0 + 0.55f + 0.1f * len / 4.5f, z1 - 0.55f - 0.1f * len / 4.5f};
    for (int i = 0; i < 2; i++) {
        add_box(o, x0 - 0.01f, x0 + 0.24f, 0.0f, 0.62f, wz[i] - 0.32f, wz[i] + 0.32f, PART_WHEEL);
        add_box(o, x1 - 0.24f, x1 + 0.01f, 0.0f, 0.62f, wz[i] - 0.32f, wz[i] + 0.32f, PART_WHEEL);
    }
    return 1;
}

static void add_person(synth_scene *sc, footprints *fp, synth_rng *r, synth_rng *rs, float x, float z)
{
    float h = synth_chance(r, 0.1f) ? synth_uniform(r, 1.0f, 1.35f) : synth_uniform(r, 1.55f, 1.92f);
    float w = 0.3f * h;
    if (z < 2.5f || !fp_free(fp, x - 0.5f * w, x + 0.5f * w, z, z + 0.3f, 0.1f))
        return;
    synth_object *o = add_object(sc, OBJ_PERSON, IC_SYNTH_PERSON);
    if (!o)
        return;
    fp_add(fp, x - 0.5f * w, x + 0.5f * w, z, z + 0.3f);
    o->x = x;
    o->z = z;
    o->width = w;
    o->height = h;
    o->pose = synth_int(r, 0, 3);
    o->seed = (uint32_t)synth_next(r);
    pick(o->col[SYNTH_LOOK_SOURCE], r, src_clothes, NELEM(src_clothes), 0.15f);
    pick(o->col2[SYNTH_LOOK_SOURCE], r, src_clothes, NELEM(src_clothes), 0.15f);
    pick(o->skin, r, skins, NELEM(skins), 0.08f);
    pick(o->col[SYNTH_LOOK_STYLE], rs, style_clothes, NELEM(style_clothes), 0.1f);
    pick(o->col2[SYNTH_LOOK_STYLE], rs, style_clothes, NELEM(style_clothes), 0.1f);
}

static void add_tree(synth_scene *sc, synth_rng *r, synth_rng *rs, float x, float z, float max_r)
{
    synth_object *o = add_object(sc, OBJ_TREE, IC_SYNTH_VEGETATION);
    if (!o)
        return;
    o->x = x;
    o->z = z;
    o->height = synth_uniform(r, 4.0f, 9.0f);
    o->crown_r = synth_clampf(synth_uniform(r, 1.2f, 3.0f), 0.8f, max_r);
    o->crown_y = o->height - 0.9f * o->crown_r;
    o->width = synth_uniform(r, 0.2f, 0.4f); /* trunk */
    o->seed = (uint32_t)synth_next(r);
    pick(o->col[SYNTH_LOOK_SOURCE], r, src_leaves, NELEM(src_leaves), 0.15f);
    set3(o->col2[SYNTH_LOOK_SOURCE], 0.30f, 0.22f, 0.15f);
    pick(o->col[SYNTH_LOOK_STYLE], rs, style_leaves, NELEM(style_leaves), 0.1f);
    set3(o->col2[SYNTH_LOOK_STYLE], 0.12f, 0.08f, 0.10f);
}

static void add_pole(synth_scene *sc, synth_rng *r, synth_rng *rs, float x, float z, float sign,
                     int lamp)
{
    synth_object *o = add_object(sc, OBJ_POLE, IC_SYNTH_POLE);
    if (!o)
        return;
    float h = lamp ? synth_uniform(r, 5.0f, 9.0f) : synth_uniform(r, 2.6f, 3.8f);
    float t = lamp ? synth_uniform(r, 0.16f, 0.26f) : synth_uniform(r, 0.08f, 0.12f);
    o->x = x;
    o->z = z;
    o->height = h;
    o->seed = (uint32_t)synth_next(r);
    float g = synth_uniform(r, 0.45f, 0.65f);
    set3(o->col[SYNTH_LOOK_SOURCE], g, g, g * 1.02f);
    set3(o->col[SYNTH_LOOK_STYLE], 0.08f, synth_uniform(rs, 0.2f, 0.35f), 0.15f);
    add_box(o, x - 0.5f * t, x + 0.5f * t, 0.0f, h, z, z + t, PART_POLE);
    if (lamp) {
        float arm = synth_uniform(r, 0.8f, 2.2f);
        float xe = x - sign * arm;
        add_box(o, x, xe, h - 0.12f, h - 0.02f, z + 0.5f * t - 0.05f, z + 0.5f * t + 0.05f, PART_ARM);
        add_box(o, xe - 0.3f, xe + 0.3f, h - 0.28f, h - 0.06f, z + 0.5f * t - 0.14f,
                z + 0.5f * t + 0.14f, PART_LAMP);
        if (sc->n_lamps < SYNTH_MAX_LAMPS) {
            set3(sc->lamp[sc->n_lamps], xe, h - 0.35f, z + 0.5f * t);
            sc->n_lamps++;
        }
    }
}

static void add_hedge(synth_scene *sc, synth_rng *r, synth_rng *rs, float x0, float x1, float z0,
                      float z1)
{
    synth_object *o = add_object(sc, OBJ_HEDGE, IC_SYNTH_VEGETATION);
    if (!o)
        return;
    o->x = 0.5f * (x0 + x1);
    o->z = z0;
    o->seed = (uint32_t)synth_next(r);
    pick(o->col[SYNTH_LOOK_SOURCE], r, src_leaves, NELEM(src_leaves), 0.15f);
    pick(o->col[SYNTH_LOOK_STYLE], rs, style_leaves, NELEM(style_leaves), 0.1f);
    add_box(o, x0, x1, 0.0f, synth_uniform(r, 0.6f, 1.4f), z0, z1, PART_HEDGE);
}

/* ---------------------------------------------------------------- scene */

static void scene_looks(synth_scene *sc, synth_rng *r, synth_rng *rs)
{
    float elev = synth_uniform(r, 0.35f, 1.2f), azim = synth_uniform(r, 0.0f, 6.2831853f);
    set3(sc->sun, cosf(elev) * cosf(azim), sinf(elev), cosf(elev) * sinf(azim));
    int overcast = synth_chance(r, 0.2f);
    sc->sun_int[0] = overcast ? synth_uniform(r, 0.1f, 0.25f) : synth_uniform(r, 0.55f, 0.85f);
    sc->ambient[0] = overcast ? synth_uniform(r, 0.7f, 0.85f) : synth_uniform(r, 0.38f, 0.55f);
    set3(sc->sun_col[0], 1.0f, synth_uniform(r, 0.95f, 1.0f), synth_uniform(r, 0.88f, 0.97f));
    float a = synth_uniform(r, 0.26f, 0.46f);
    set3(sc->road_col[0], a, a, a * synth_uniform(r, 1.0f, 1.06f));
    float s = synth_uniform(r, 0.55f, 0.74f);
    set3(sc->walk_col[0], s * synth_uniform(r, 1.0f, 1.06f), s, s * synth_uniform(r, 0.92f, 1.0f));
    pick(sc->verge_col[0], r, src_leaves, NELEM(src_leaves), 0.1f);
    set3(sc->line_col[0], 0.88f, 0.88f, 0.86f);
    float top = synth_uniform(r, 0.0f, 1.0f);
    if (overcast)
        set3(sc->sky_top[0], 0.62f, 0.65f, 0.70f);
    else
        set3(sc->sky_top[0], 0.18f + 0.25f * top, 0.38f + 0.2f * top, 0.75f + 0.08f * top);
    set3(sc->sky_hor[0], 0.72f, 0.80f, 0.88f);
    sc->clouds = overcast ? 0.9f : synth_uniform(r, 0.0f, 0.6f);
    sc->tile = synth_uniform(r, 0.4f, 1.0f);

    /* The style city: sunset light, terracotta paving, slate sidewalks,
     * dry grass, yellow markings, purple-orange sky. */
    sc->sun_int[1] = synth_uniform(rs, 0.6f, 0.8f);
    sc->ambient[1] = synth_uniform(rs, 0.35f, 0.45f);
    set3(sc->sun_col[1], 1.0f, synth_uniform(rs, 0.7f, 0.8f), synth_uniform(rs, 0.45f, 0.55f));
    static const rgb pavings[] = {{{0.60f, 0.30f, 0.22f}}, {{0.66f, 0.52f, 0.30f}}, {{0.30f, 0.44f, 0.44f}}};
    pick(sc->road_col[1], rs, pavings, NELEM(pavings), 0.08f);
    set3(sc->walk_col[1], 0.30f, synth_uniform(rs, 0.33f, 0.38f), synth_uniform(rs, 0.45f, 0.52f));
    set3(sc->verge_col[1], 0.70f, 0.60f, 0.22f);
    set3(sc->line_col[1], 0.95f, 0.80f, 0.10f);
    set3(sc->sky_top[1], 0.30f, 0.16f, synth_uniform(rs, 0.42f, 0.55f));
    set3(sc->sky_hor[1], 1.0f, synth_uniform(rs, 0.55f, 0.7f), 0.35f);
}

/* Facades of one side (sign -1 left, +1 right) from z_start to z_end. */
static void street_side(synth_scene *sc, synth_rng *r, synth_rng *rs, float edge, float sign,
                        float walk, float z_end)
{
    float z = synth_uniform(r, -12.0f, 4.0f);
    while (z < z_end) {
        if (synth_chance(r, 0.22f)) {
            z += synth_uniform(r, 2.5f, 9.0f); /* an alley */
            continue;
        }
        float len = synth_uniform(r, 6.0f, 26.0f);
        float x = edge + sign * (walk + synth_uniform(r, 0.0f, 2.5f));
        float h = synth_chance(r, 0.15f) ? synth_uniform(r, 4.0f, 7.0f) : synth_uniform(r, 8.0f, 28.0f);
        if (!add_facade(sc, r, rs, 0, x, z, z + len, h))
            return;
        z += len;
    }
    if (synth_chance(r, 0.75f)) { /* a taller back row, seen through alleys and over roofs */
        float x = edge + sign * (walk + synth_uniform(r, 9.0f, 18.0f));
        for (z = 0.0f; z < z_end;) {
            float len = synth_uniform(r, 15.0f, 40.0f);
            if (!add_facade(sc, r, rs, 0, x, z, z + len, synth_uniform(r, 14.0f, 40.0f)))
                return;
            z += len;
        }
    }
}

void synth_scene_generate(synth_scene *sc, uint64_t seed, uint64_t index, int h, int w)
{
    memset(sc, 0, sizeof *sc);
    synth_rng r = synth_rng_make(seed, index, 1);  /* geometry and source looks */
    synth_rng rs = synth_rng_make(seed, index, 2); /* style looks */
    sc->seed = (uint32_t)synth_next(&r);

    synth_camera *c = &sc->cam;
    c->w = w;
    c->h = h;
    c->f = (float)w * synth_uniform(&r, 0.8f, 1.05f);
    c->cx = (float)w * synth_uniform(&r, 0.47f, 0.53f);
    c->vh = (float)h * synth_uniform(&r, 0.36f, 0.5f);
    c->height = synth_uniform(&r, 1.2f, 2.3f);
    scene_looks(sc, &r, &rs);

    float road_w = synth_uniform(&r, 7.0f, 16.0f);
    sc->lanes_per_dir = road_w > 12.0f ? 2 : 1;
    sc->road_l = -synth_uniform(&r, 0.35f, 0.8f) * road_w;
    sc->road_r = sc->road_l + road_w;
    sc->centre_x = sc->road_l + 0.5f * road_w;
    sc->dash_len = synth_uniform(&r, 2.0f, 4.0f);
    sc->dash_gap = synth_uniform(&r, 3.0f, 7.0f);
    if (synth_chance(&r, 0.35f)) {
        sc->cross_z0 = synth_uniform(&r, 8.0f, 30.0f);
        sc->cross_z1 = sc->cross_z0 + synth_uniform(&r, 3.0f, 5.0f);
    }
    int verge = synth_int(&r, -3, 1); /* side with a grass verge, if 0 or 1 */
    sc->side[0] = verge == 0 ? SIDE_VERGE : SIDE_SIDEWALK;
    sc->side[1] = verge == 1 ? SIDE_VERGE : SIDE_SIDEWALK;

    float z_end = synth_uniform(&r, 60.0f, 160.0f);
    float edge[2] = {sc->road_l, sc->road_r}, sign[2] = {-1.0f, 1.0f}, walk[2];
    for (int s = 0; s < 2; s++) {
        walk[s] = sc->side[s] == SIDE_VERGE ? synth_uniform(&r, 1.5f, 4.0f)
                                            : synth_uniform(&r, 2.0f, 5.5f);
        street_side(sc, &r, &rs, edge[s], sign[s], walk[s], z_end);
    }
    float end = synth_uniform(&r, 0.0f, 1.0f);
    if (end < 0.45f) {
        add_facade(sc, &r, &rs, 1, z_end + synth_uniform(&r, 2.0f, 20.0f), -90.0f, 90.0f,
                   synth_uniform(&r, 8.0f, 25.0f));
    } else if (end < 0.8f) {
        synth_facade *f = add_facade(sc, &r, &rs, 1, z_end + synth_uniform(&r, 5.0f, 30.0f), -150.0f,
                                     150.0f, synth_uniform(&r, 6.0f, 14.0f));
        if (f)
            f->kind = 1;
    }

    /* Street furniture and vegetation along each curb. */
    for (int s = 0; s < 2; s++) {
        float e = edge[s], sg = sign[s];
        float max_r = walk[s] + 1.0f;
        if (synth_chance(&r, 0.55f)) {
            float x = sc->side[s] == SIDE_VERGE ? e + sg * 0.5f * walk[s]
                                                : e + sg * synth_uniform(&r, 0.7f, 1.3f);
            float step = synth_uniform(&r, 7.0f, 18.0f);
            for (float z = synth_uniform(&r, 2.0f, 12.0f); z < z_end; z += step * synth_uniform(&r, 0.8f, 1.2f))
                if (!synth_chance(&r, 0.2f))
                    add_tree(sc, &r, &rs, x + synth_uniform(&r, -0.2f, 0.2f), z, max_r);
        }
        /* street lamps on at least one side: the night domain needs them */
        if (s == 0 ? synth_chance(&r, 0.7f) : (sc->n_lamps == 0 || synth_chance(&r, 0.7f))) {
            float step = synth_uniform(&r, 14.0f, 30.0f);
            for (float z = synth_uniform(&r, 3.0f, 15.0f); z < z_end; z += step)
                add_pole(sc, &r, &rs, e + sg * synth_uniform(&r, 0.3f, 0.6f), z, sg, 1);
        }
        int n_signs = synth_int(&r, 0, 3);
        for (int i = 0; i < n_signs; i++)
            add_pole(sc, &r, &rs, e + sg * synth_uniform(&r, 0.3f, 0.8f),
                     synth_uniform(&r, 3.0f, 40.0f), sg, 0);
        if (sc->side[s] == SIDE_VERGE ? synth_chance(&r, 0.6f) : synth_chance(&r, 0.2f)) {
            float x0 = sc->side[s] == SIDE_VERGE ? e + sg * 0.3f : e + sg * (walk[s] - 1.2f);
            float x1 = x0 + sg * synth_uniform(&r, 0.7f, 1.2f);
            for (float z = synth_uniform(&r, 2.0f, 10.0f); z < z_end;) {
                float len = synth_uniform(&r, 4.0f, 15.0f);
                add_hedge(sc, &r, &rs, x0, x1, z, z + len);
                z += len + synth_uniform(&r, 1.0f, 10.0f);
            }
        }
    }

    /* Cars: parked along curbs, then moving in lanes (more near ones). */
    footprints fp;
    fp.n = 0;
    for (int s = 0; s < 2; s++) {
        if (!synth_chance(&r, 0.5f))
            continue;
        float x = edge[s] - sign[s] * synth_uniform(&r, 1.05f, 1.25f);
        for (float z = synth_uniform(&r, 3.0f, 10.0f); z < 0.8f * z_end;) {
            if (!synth_chance(&r, 0.3f))
                add_car(sc, &fp, &r, &rs, x, z, s == 0 ? -1 : 1, 1);
            z += synth_uniform(&r, 5.0f, 12.0f);
        }
    }
    int lanes = 2 * sc->lanes_per_dir;
    float lane_w = road_w / (float)lanes;
    int n_moving = synth_int(&r, 1, 8);
    for (int i = 0; i < 2 * n_moving; i++) {
        int lane = synth_int(&r, 0, lanes - 1);
        float u = synth_uniform(&r, 0.0f, 1.0f);
        float x = sc->road_l + ((float)lane + 0.5f) * lane_w + synth_uniform(&r, -0.3f, 0.3f);
        add_car(sc, &fp, &r, &rs, x, 4.0f + 70.0f * u * u, lane < sc->lanes_per_dir ? -1 : 1, 0);
    }

    /* People: on sidewalks (some in groups), on the crossing, a jaywalker. */
    for (int s = 0; s < 2; s++) {
        if (sc->side[s] != SIDE_SIDEWALK)
            continue;
        int n = synth_int(&r, 1, 9);
        for (int i = 0; i < n; i++) {
            float u = synth_uniform(&r, 0.0f, 1.0f);
            float x = edge[s] + sign[s] * synth_uniform(&r, 0.5f, walk[s] - 0.3f);
            float z = 3.0f + 55.0f * u * u;
            add_person(sc, &fp, &r, &rs, x, z);
            int group = synth_chance(&r, 0.3f) ? synth_int(&r, 1, 2) : 0;
            for (int g = 0; g < group; g++)
                add_person(sc, &fp, &r, &rs, x + synth_uniform(&r, -0.9f, 0.9f),
                           z + synth_uniform(&r, -1.5f, 1.5f));
        }
    }
    if (sc->cross_z1 > 0.0f) {
        int n = synth_int(&r, 1, 5);
        for (int i = 0; i < n; i++)
            add_person(sc, &fp, &r, &rs, synth_uniform(&r, sc->road_l + 0.5f, sc->road_r - 0.5f),
                       synth_uniform(&r, sc->cross_z0, sc->cross_z1 - 0.5f));
    }
    if (synth_chance(&r, 0.3f))
        add_person(sc, &fp, &r, &rs, synth_uniform(&r, sc->road_l + 0.5f, sc->road_r - 0.5f),
                   synth_uniform(&r, 4.0f, 30.0f));

    for (int i = 0; i < sc->n_objects; i++)
        if (sc->obj[i].kind == OBJ_CAR || sc->obj[i].kind == OBJ_PERSON)
            sc->obj[i].inst = ++sc->n_instances;
}
