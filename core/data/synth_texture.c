/* SynthCity surface appearance: procedural textures in world coordinates.
 *
 * Textures are functions of world position (metres), so they shrink with
 * distance like real ones. Patterns finer than a pixel's footprint fade to
 * their mean colour instead of aliasing into noise. Each function draws the
 * source city (look 0: asphalt, concrete tiles, plain/brick/banded/panelled
 * walls with rectangular windows) or the style city (look 1: terracotta
 * brick paving, slate sidewalks, striped and half-timbered walls with arched
 * windows); the style city's patterns and palettes never appear in the
 * source, which is what makes it a domain shift. */
#include "data/synth_internal.h"

static void mix3(float out[3], const float a[3], const float b[3], float t)
{
    for (int i = 0; i < 3; i++)
        out[i] = a[i] + (b[i] - a[i]) * t;
}

static void scale3(float out[3], const float a[3], float k)
{
    for (int i = 0; i < 3; i++)
        out[i] = synth_clampf(a[i] * k, 0.0f, 1.0f);
}

static float fract(float x)
{
    return x - floorf(x);
}

/* How much of a pattern of period `size` survives at footprint fp. */
static float visible(float size, float fp)
{
    return synth_clampf(1.5f - 1.5f * fp / size, 0.0f, 1.0f);
}

/* ---------------------------------------------------------------- ground */

static float road_marking(const synth_scene *sc, float x, float z)
{
    float lane_w = (sc->road_r - sc->road_l) / (float)(2 * sc->lanes_per_dir);
    float period = sc->dash_len + sc->dash_gap;
    int dashed = fract(z / period) * period < sc->dash_len;
    float c = x - sc->centre_x;
    if (sc->lanes_per_dir == 2) {
        if (fabsf(fabsf(c) - 0.12f) < 0.06f)
            return 1.0f; /* double centre line */
        if (dashed && fabsf(fabsf(c) - lane_w) < 0.07f)
            return 1.0f;
    } else if (dashed && fabsf(c) < 0.07f) {
        return 1.0f;
    }
    float dl = x - sc->road_l, dr = sc->road_r - x;
    if ((dl > 0.25f && dl < 0.38f) || (dr > 0.25f && dr < 0.38f))
        return 1.0f;
    if (z > sc->cross_z0 && z < sc->cross_z1 && dl > 0.5f && dr > 0.5f && fract(dl / 1.0f) < 0.5f)
        return 1.0f;
    return 0.0f;
}

int synth_tex_ground(const synth_scene *sc, int look, float x, float z, float fp, float out[3])
{
    uint32_t seed = sc->seed;
    if (x >= sc->road_l && x <= sc->road_r) {
        const float *base = sc->road_col[look];
        float k;
        if (look == SYNTH_LOOK_SOURCE) {
            k = 0.85f + 0.25f * synth_fbm(x * 0.7f, z * 0.7f, seed);
            float patch = synth_noise(x * 0.12f, z * 0.12f, seed + 3u); /* repaired patches */
            k *= 1.0f - 0.14f * synth_clampf((patch - 0.66f) / 0.1f, 0.0f, 1.0f);
            k += 0.12f * visible(0.05f, fp) * (synth_hashf((int32_t)floorf(x * 20.0f), (int32_t)floorf(z * 20.0f), seed) - 0.5f);
            scale3(out, base, k);
        } else {
            float row = floorf(z / 0.14f), u = x / 0.28f + 0.5f * fract(row * 0.5f) * 2.0f;
            float joint = (fract(z / 0.14f) < 0.14f || fract(u) < 0.07f) ? 1.0f : 0.0f;
            k = 0.85f + 0.3f * synth_hashf((int32_t)floorf(u), (int32_t)row, seed);
            scale3(out, base, 1.0f + (k - 1.0f) * visible(0.14f, fp));
            float mortar[3] = {0.78f, 0.66f, 0.55f};
            mix3(out, out, mortar, 0.7f * joint * visible(0.14f, fp));
        }
        float m = road_marking(sc, x, z);
        if (m > 0.0f)
            mix3(out, out, sc->line_col[look], m * synth_clampf(0.45f + 0.1f / fp, 0.0f, 0.95f));
        return IC_SYNTH_ROAD;
    }
    int side = x < sc->road_l ? 0 : 1;
    float d = side == 0 ? sc->road_l - x : x - sc->road_r; /* distance from the curb */
    if (sc->side[side] == SIDE_VERGE) {
        float k = 0.75f + 0.45f * synth_fbm(x * 1.5f, z * 1.5f, seed + 11u);
        scale3(out, sc->verge_col[look], k);
        return IC_SYNTH_VEGETATION;
    }
    const float *base = sc->walk_col[look];
    float t = sc->tile;
    if (d < 0.25f) { /* the kerb */
        scale3(out, base, look == SYNTH_LOOK_SOURCE ? 1.15f : 0.6f);
        return IC_SYNTH_SIDEWALK;
    }
    float k = 1.0f + 0.1f * (synth_hashf((int32_t)floorf(d / t), (int32_t)floorf(z / t), seed + 5u) - 0.5f);
    float joint;
    if (look == SYNTH_LOOK_SOURCE)
        joint = (fract(d / t) < 0.05f || fract(z / t) < 0.05f) ? 1.0f : 0.0f;
    else
        joint = fract((d + z) / (0.7f * t)) < 0.12f || fract((d - z) / (0.7f * t)) < 0.12f ? 1.0f : 0.0f;
    k *= 1.0f - 0.22f * joint * visible(t * 0.5f, fp);
    k *= 0.92f + 0.16f * synth_noise(x * 0.4f, z * 0.4f, seed + 9u);
    scale3(out, base, k);
    return IC_SYNTH_SIDEWALK;
}

/* ---------------------------------------------------------------- facades */

static void wall(const synth_facade *f, const synth_facade_look *l, float s, float y, float fp,
                 float out[3])
{
    float acc = 0.0f; /* how much of the accent colour */
    float k = 0.9f + 0.2f * synth_fbm(s * 0.3f, y * 0.3f, f->seed);
    switch (l->tex) {
    case TEX_BRICK: {
        float row = floorf(y / 0.3f), u = (s + 0.3f * fract(row * 0.5f) * 2.0f) / 0.6f;
        acc = (fract(y / 0.3f) < 0.1f || fract(u) < 0.05f) ? 0.8f : 0.0f;
        k += 0.16f * (synth_hashf((int32_t)floorf(u), (int32_t)row, f->seed) - 0.5f) * visible(0.3f, fp);
        acc *= visible(0.3f, fp);
        break;
    }
    case TEX_BANDS:
        acc = fract(y / f->floor_h) * f->floor_h < 0.35f ? 1.0f : 0.0f;
        break;
    case TEX_PANELS:
        acc = (fract(y / f->floor_h) * f->floor_h < 0.06f || fract(s / f->win_dx) * f->win_dx < 0.06f)
                  ? 0.7f * visible(0.5f, fp)
                  : 0.0f;
        break;
    case TEX_STRIPES:
        acc = fract(s / f->win_dx + 0.25f) < 0.5f ? 1.0f : 0.0f;
        break;
    case TEX_TIMBER: {
        float u = fract(s / f->win_dx), v = fract(y / f->floor_h);
        float beam = 0.09f / f->win_dx;
        acc = (u < beam || v < 0.08f || fabsf(u - v) < beam || fabsf(1.0f - u - v) < beam) ? 1.0f : 0.0f;
        acc *= visible(0.4f, fp);
        break;
    }
    default:
        break;
    }
    mix3(out, l->base, l->accent, acc);
    scale3(out, out, k);
}

int synth_tex_facade(const synth_scene *sc, const synth_facade *f, int look, float s, float y,
                     float fp, float out[3])
{
    if (f->kind == 1) { /* tree line */
        static const float leaves[SYNTH_N_LOOKS][3] = {{0.16f, 0.29f, 0.11f}, {0.72f, 0.36f, 0.12f}};
        float k = 0.6f + 0.6f * synth_fbm(s * 0.8f, y * 0.8f, f->seed);
        scale3(out, leaves[look], k);
        return EMIT_NONE;
    }
    const synth_facade_look *l = &f->look[look];
    float len = f->a1 - f->a0;
    if (y > f->height - 0.5f) { /* cornice */
        scale3(out, l->accent, 0.9f);
        return EMIT_NONE;
    }
    int floor_i = (int)floorf(y / f->floor_h);
    float fy = y - (float)floor_i * f->floor_h;
    int in = 0, col = 0;
    float wx = 0.0f, wy = 0.0f, ww = f->win_w, wh = f->win_h; /* position inside the window */
    if (s > 0.6f && s < len - 0.6f && y < f->height - 1.0f) {
        if (floor_i == 0 && f->shop) {
            float p = 2.0f * f->win_dx;
            col = (int)floorf(s / p);
            wx = s - (float)col * p - 0.25f;
            ww = p - 0.5f;
            wy = fy - 0.35f;
            wh = f->floor_h - 0.75f;
        } else {
            col = (int)floorf(s / f->win_dx);
            wx = s - (float)col * f->win_dx - 0.5f * (f->win_dx - f->win_w);
            wy = fy - f->sill;
        }
        in = wx >= 0.0f && wx <= ww && wy >= 0.0f && wy <= wh;
        if (in && l->arched && wy > wh - 0.5f * ww) {
            float cx = wx - 0.5f * ww, cy = wy - (wh - 0.5f * ww);
            in = cx * cx + cy * cy <= 0.25f * ww * ww;
        }
    }
    if (!in) {
        wall(f, l, s, y, fp, out);
        return EMIT_NONE;
    }
    float frame = fminf(fminf(wx, ww - wx), fminf(wy, wh - wy));
    if (frame < 0.07f && fp < 0.12f) {
        static const float white[3] = {0.82f, 0.82f, 0.8f};
        if (look == SYNTH_LOOK_SOURCE)
            scale3(out, white, 1.0f);
        else
            scale3(out, l->accent, 0.7f);
        return EMIT_NONE;
    }
    uint32_t hsh = synth_hash3(col, floor_i, f->seed);
    float refl = 0.6f + 0.7f * wy / wh; /* the sky reflected in the upper panes */
    scale3(out, l->glass, refl);
    if ((hsh & 7u) == 0u && wy > 0.6f * wh) { /* a drawn blind */
        static const float blind[3] = {0.62f, 0.6f, 0.55f};
        mix3(out, out, blind, 0.8f);
    }
    return (float)(hsh >> 8) * (1.0f / 16777216.0f) < f->lit ? EMIT_WIN_LIT : EMIT_WIN_DARK;
}

/* ---------------------------------------------------------------- sky */

void synth_tex_sky(const synth_scene *sc, int look, float dx, float dy, float out[3])
{
    float a = synth_clampf(dy * 2.2f, 0.0f, 1.0f);
    mix3(out, sc->sky_hor[look], sc->sky_top[look], sqrtf(a));
    if (dy > 0.01f && sc->clouds > 0.0f) {
        float t = 1000.0f / dy;
        float n = synth_fbm(dx * t / 350.0f, t / 350.0f, sc->seed + 17u);
        float lo = 1.0f - sc->clouds;
        float c = synth_clampf((n - lo) / 0.25f, 0.0f, 1.0f) * synth_clampf(dy * 12.0f, 0.0f, 1.0f);
        static const float cloud[SYNTH_N_LOOKS][3] = {{0.94f, 0.94f, 0.96f}, {1.0f, 0.72f, 0.68f}};
        float shade = 0.85f + 0.15f * synth_noise(dx * t / 120.0f, t / 120.0f, sc->seed + 19u);
        float cc[3];
        scale3(cc, cloud[look], shade);
        mix3(out, out, cc, 0.85f * c);
    }
}

/* ---------------------------------------------------------------- objects */

static const float glass_col[3] = {0.10f, 0.12f, 0.15f};

static int car_face(const synth_object *o, const synth_box *b, int look, int normal, const float p[3],
                    float out[3])
{
    const float *body = o->col[look];
    float bw = b->x1 - b->x0;
    if (normal == N_UP) {
        scale3(out, body, 1.08f);
        return EMIT_NONE;
    }
    if (normal == N_NZ) { /* the face towards the camera */
        float lx = (p[0] - b->x0) / bw, y = p[1];
        if (b->part == PART_CABIN) {
            float top = b->y1 - 0.07f, bot = b->y0 + 0.06f;
            if (lx > 0.07f && lx < 0.93f && y > bot && y < top) {
                scale3(out, glass_col, 0.8f + 1.2f * (y - bot) / (top - bot));
                return EMIT_NONE;
            }
            scale3(out, body, 1.0f);
            return EMIT_NONE;
        }
        float top = b->y1;
        if (y > top - 0.3f && y < top - 0.1f && (lx < 0.2f || lx > 0.8f) && lx > 0.04f && lx < 0.96f) {
            static const float tail[3] = {0.62f, 0.06f, 0.05f}, head[3] = {0.85f, 0.85f, 0.8f};
            scale3(out, o->facing > 0 ? tail : head, 1.0f);
            if (o->pose) /* parked: lights off */
                return EMIT_NONE;
            return o->facing > 0 ? EMIT_TAIL : EMIT_HEAD;
        }
        if (lx > 0.38f && lx < 0.62f && y > 0.36f && y < 0.5f) {
            static const float plate[3] = {0.85f, 0.85f, 0.82f};
            scale3(out, plate, 1.0f);
            return EMIT_NONE;
        }
        if (o->facing < 0 && lx > 0.3f && lx < 0.7f && y > top - 0.3f && y < top - 0.08f) {
            scale3(out, glass_col, 0.6f); /* grille */
            return EMIT_NONE;
        }
        if (y < 0.38f) {
            static const float bumper[3] = {0.15f, 0.15f, 0.16f};
            mix3(out, body, bumper, 0.6f);
            return EMIT_NONE;
        }
        scale3(out, body, 1.0f);
        return EMIT_NONE;
    }
    /* A side face: door gaps, sill, side windows. */
    float len = b->z1 - b->z0, s = (p[2] - b->z0) / len, y = p[1];
    if (b->part == PART_CABIN) {
        float top = b->y1 - 0.07f, bot = b->y0 + 0.05f;
        if (s > 0.06f && s < 0.94f && y > bot && y < top && fabsf(s - 0.5f) > 0.03f) {
            scale3(out, glass_col, 0.9f + 0.8f * (y - bot) / (top - bot));
            return EMIT_NONE;
        }
        scale3(out, body, 0.95f);
        return EMIT_NONE;
    }
    if (y < 0.32f) {
        scale3(out, body, 0.55f);
        return EMIT_NONE;
    }
    int gap = fabsf(s - 0.5f) < 0.006f || fabsf(s - 0.27f) < 0.006f;
    scale3(out, body, gap ? 0.6f : 0.95f);
    return EMIT_NONE;
}

int synth_tex_box(const synth_object *o, const synth_box *b, int look, int normal, const float p[3],
                  float out[3])
{
    switch (b->part) {
    case PART_BODY:
    case PART_CABIN:
        return car_face(o, b, look, normal, p, out);
    case PART_WHEEL: {
        static const float tyre[3] = {0.05f, 0.05f, 0.06f}, hub[3] = {0.55f, 0.55f, 0.57f};
        float cz = 0.5f * (b->z0 + b->z1), cy = 0.31f;
        float r2 = (p[2] - cz) * (p[2] - cz) + (p[1] - cy) * (p[1] - cy);
        scale3(out, (normal == N_PX || normal == N_NX) && r2 < 0.03f ? hub : tyre, 1.0f);
        return EMIT_NONE;
    }
    case PART_LAMP: {
        static const float lamp[3] = {0.85f, 0.85f, 0.78f};
        scale3(out, lamp, 1.0f);
        return EMIT_LAMP;
    }
    case PART_HEDGE: {
        float k = 0.6f + 0.6f * synth_fbm((p[0] + p[2]) * 2.0f, p[1] * 2.0f, o->seed);
        scale3(out, o->col[look], k);
        return EMIT_NONE;
    }
    default: /* pole and arm */
        scale3(out, o->col[look], 0.9f + 0.15f * p[1] / (o->height + 0.01f));
        return EMIT_NONE;
    }
}

int synth_tex_person(const synth_object *o, int look, float a, float y, float out[3])
{
    float h = o->height;
    if (y < 0.0f || y > h)
        return 0;
    static const float stride_k[4] = {0.0f, 0.05f, 0.1f, -0.07f};
    float stride = stride_k[o->pose] * h;
    /* head */
    float hx = a / (0.055f * h), hy = (y - 0.93f * h) / (0.07f * h);
    if (hx * hx + hy * hy <= 1.0f) {
        static const float hair[3] = {0.12f, 0.08f, 0.06f};
        scale3(out, hy > 0.35f ? hair : o->skin, 1.0f);
        return 1;
    }
    /* torso, narrowing from the shoulders to the waist */
    if (y >= 0.5f * h && y <= 0.85f * h) {
        float half = (0.10f + 0.03f * (y - 0.5f * h) / (0.35f * h)) * h;
        if (fabsf(a) <= half) {
            scale3(out, o->col[look], 0.9f + 0.2f * (y - 0.5f * h) / (0.35f * h));
            return 1;
        }
    }
    /* arms swing against the legs */
    if (y >= 0.44f * h && y <= 0.83f * h) {
        float along = (0.83f * h - y) / (0.39f * h);
        for (int side = -1; side <= 1; side += 2) {
            float cx = (float)side * 0.14f * h - 0.5f * stride * along * (float)side;
            if (fabsf(a - cx) <= 0.028f * h) {
                scale3(out, y < 0.5f * h ? o->skin : o->col[look], 0.85f);
                return 1;
            }
        }
    }
    /* legs */
    if (y < 0.52f * h) {
        float along = (0.52f * h - y) / (0.52f * h);
        for (int side = -1; side <= 1; side += 2) {
            float cx = (float)side * (0.05f * h + stride * along);
            if (fabsf(a - cx) <= 0.036f * h) {
                static const float shoe[3] = {0.08f, 0.07f, 0.07f};
                scale3(out, y < 0.03f * h ? shoe : o->col2[look], 0.9f);
                return 1;
            }
        }
    }
    return 0;
}

int synth_tex_tree(const synth_object *o, int look, float a, float y, float out[3])
{
    float r = o->crown_r;
    float dy = y - o->crown_y;
    /* A crown of a few overlapping blobs with a leafy, noisy edge. */
    float edge = 0.8f + 0.35f * synth_noise(a * 2.5f, y * 2.5f, o->seed);
    float best = (a * a + dy * dy) / (r * r);
    for (int i = 0; i < 3; i++) {
        float ox = (synth_hashf(i, 1, o->seed) - 0.5f) * 1.2f * r;
        float oy = (synth_hashf(i, 2, o->seed) - 0.6f) * 0.8f * r;
        float rr = 0.65f * r;
        float d = ((a - ox) * (a - ox) + (dy - oy) * (dy - oy)) / (rr * rr);
        best = d < best ? d : best;
    }
    if (best <= edge) {
        float k = (0.65f + 0.55f * synth_fbm(a * 3.0f, y * 3.0f, o->seed + 1u)) *
                  (0.8f + 0.25f * synth_clampf(dy / r + 0.5f, 0.0f, 1.0f));
        scale3(out, o->col[look], k);
        return 1;
    }
    if (y >= 0.0f && y < o->crown_y && fabsf(a) <= 0.5f * o->width * (1.0f + 0.3f * (1.0f - y / o->crown_y))) {
        scale3(out, o->col2[look], 0.8f + 0.3f * synth_noise(a * 20.0f, y * 3.0f, o->seed));
        return 1;
    }
    return 0;
}
