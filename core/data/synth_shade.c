/* SynthCity shading and domains: from G-buffer to 8-bit RGB.
 *
 * All domains light the same G-buffer, so they differ only in appearance:
 * - source / style: sun (Lambert, cast shadows) plus sky ambient; style
 *   also passes through a camera response the source never shows.
 * - fog1..3: the source image under Koschmieder's law I = J t + A (1 - t),
 *   t = exp(-beta d) with d the per-pixel distance, as Foggy Cityscapes.
 * - night: faint moonlight, street lamps as point lights, lit windows, head
 *   and tail lights with bloom, a colour cast and sensor noise.
 * - rain: overcast light, wet road reflections, haze, dimming, blur and
 *   rain streaks.
 * Random choices of a domain come from a stream keyed by the domain, so
 * they never disturb the layout. */
#include <string.h>

#include "data/synth_internal.h"

float ic_synth_fog_beta(ic_synth_domain d)
{
    /* Foggy Cityscapes uses 0.005 / 0.01 / 0.02 per metre on streets whose
     * median depth is several tens of metres; SynthCity's non-sky median is
     * 15 m, so the same 1 : 2 : 4 ladder starts at 0.0125 (visibility
     * 2.996 / beta: 240, 120 and 60 m). */
    switch (d) {
    case IC_SYNTH_FOG1:
        return 0.0125f;
    case IC_SYNTH_FOG2:
        return 0.025f;
    case IC_SYNTH_FOG3:
        return 0.05f;
    default:
        return 0.0f;
    }
}

static float lum(const float c[3])
{
    return 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2];
}

/* Cosine between a normal code and a unit direction l. Billboards are
 * treated as rough vertical surfaces facing the camera. */
static float lambert(int normal, const float l[3])
{
    switch (normal) {
    case N_UP:
        return fmaxf(0.0f, l[1]);
    case N_PX:
        return fmaxf(0.0f, l[0]);
    case N_NX:
        return fmaxf(0.0f, -l[0]);
    case N_NZ:
        return fmaxf(0.0f, -l[2]);
    case N_CAM:
        return 0.35f + 0.4f * fmaxf(0.0f, -l[2]) + 0.25f * fabsf(l[0]);
    default:
        return 0.0f;
    }
}

/* Ray of pixel (u, v) scaled so that its z component is 1. */
static void pixel_ray(const synth_camera *c, int u, int v, float *dx, float *dy)
{
    *dx = ((float)u + 0.5f - c->cx) / c->f;
    *dy = (c->vh - ((float)v + 0.5f)) / c->f;
}

/* ---------------------------------------------------------------- day */

static void day_light(float *img, const synth_gbuf *g, const synth_scene *sc, int look, float sun_k,
                      float amb_k)
{
    size_t n = (size_t)g->w * (size_t)g->h;
    float amb = sc->ambient[look] * amb_k, sun = sc->sun_int[look] * sun_k;
    static const float sky_tint[3] = {0.95f, 0.98f, 1.05f};
    for (size_t i = 0; i < n; i++) {
        const float *a = g->albedo + 3 * i;
        float *o = img + 3 * i;
        int nrm = g->normal[i];
        if (nrm == N_SKY) {
            memcpy(o, a, 3 * sizeof(float));
            continue;
        }
        float direct = g->shadow[i] ? 0.0f : sun * lambert(nrm, sc->sun);
        float sky = amb * (nrm == N_UP ? 1.0f : 0.8f);
        for (int k = 0; k < 3; k++)
            o[k] = a[k] * (sky * sky_tint[k] + direct * sc->sun_col[look][k]);
    }
}

/* ---------------------------------------------------------------- fog */

static void fog(float *img, const synth_gbuf *g, const synth_scene *sc, float beta, synth_rng *r)
{
    float a = synth_uniform(r, 0.76f, 0.88f);
    float air[3] = {a, a * 1.01f, a * synth_uniform(r, 1.01f, 1.04f)};
    for (int v = 0; v < g->h; v++)
        for (int u = 0; u < g->w; u++) {
            size_t i = (size_t)v * (size_t)g->w + (size_t)u;
            float dx, dy;
            pixel_ray(&sc->cam, u, v, &dx, &dy);
            float d = g->normal[i] == N_SKY ? IC_SYNTH_SKY_DEPTH
                                            : g->z[i] * sqrtf(1.0f + dx * dx + dy * dy);
            float t = expf(-beta * d);
            for (int k = 0; k < 3; k++)
                img[3 * i + k] = img[3 * i + k] * t + air[k] * (1.0f - t);
        }
}

/* ---------------------------------------------------------------- blur */

/* One horizontal and one vertical box pass of radius rad over 3 channels
 * (src -> dst, tmp is scratch of the same size). */
static void box_blur(float *dst, const float *src, float *tmp, int w, int h, int rad)
{
    float inv = 1.0f / (float)(2 * rad + 1);
    for (int v = 0; v < h; v++) {
        const float *row = src + (size_t)v * (size_t)w * 3;
        float *out = tmp + (size_t)v * (size_t)w * 3;
        for (int k = 0; k < 3; k++) {
            float acc = 0.0f;
            for (int u = -rad; u <= rad; u++)
                acc += row[3 * (u < 0 ? 0 : (u >= w ? w - 1 : u)) + k];
            for (int u = 0; u < w; u++) {
                out[3 * u + k] = acc * inv;
                int add = u + rad + 1, sub = u - rad;
                acc += row[3 * (add >= w ? w - 1 : add) + k] - row[3 * (sub < 0 ? 0 : sub) + k];
            }
        }
    }
    for (int u = 0; u < w; u++)
        for (int k = 0; k < 3; k++) {
            float acc = 0.0f;
            for (int v = -rad; v <= rad; v++)
                acc += tmp[((size_t)(v < 0 ? 0 : (v >= h ? h - 1 : v)) * (size_t)w + (size_t)u) * 3 + k];
            for (int v = 0; v < h; v++) {
                dst[((size_t)v * (size_t)w + (size_t)u) * 3 + k] = acc * inv;
                int add = v + rad + 1, sub = v - rad;
                acc += tmp[((size_t)(add >= h ? h - 1 : add) * (size_t)w + (size_t)u) * 3 + k] -
                       tmp[((size_t)(sub < 0 ? 0 : sub) * (size_t)w + (size_t)u) * 3 + k];
            }
        }
}

/* ---------------------------------------------------------------- night */

static void night(float *img, synth_gbuf *g, const synth_scene *sc, synth_rng *r)
{
    const synth_camera *c = &sc->cam;
    float moon = synth_uniform(r, 0.03f, 0.06f);
    float amb[3] = {0.6f * moon, 0.7f * moon, 1.0f * moon};
    float lamp_col[3];
    if (synth_chance(r, 0.6f)) { /* sodium */
        lamp_col[0] = 1.0f;
        lamp_col[1] = 0.62f;
        lamp_col[2] = 0.28f;
    } else { /* LED */
        lamp_col[0] = 0.85f;
        lamp_col[1] = 0.9f;
        lamp_col[2] = 1.0f;
    }
    float power = synth_uniform(r, 5.0f, 11.0f);
    float win_col[3] = {1.0f, synth_uniform(r, 0.72f, 0.85f), synth_uniform(r, 0.4f, 0.55f)};
    float glow[3] = {synth_uniform(r, 0.05f, 0.1f), 0.05f, 0.04f};
    float *emit = g->work2;
    for (int v = 0; v < g->h; v++)
        for (int u = 0; u < g->w; u++) {
            size_t i = (size_t)v * (size_t)g->w + (size_t)u;
            const float *a = g->albedo + 3 * i;
            float *o = img + 3 * i, *e = emit + 3 * i;
            float dx, dy;
            pixel_ray(c, u, v, &dx, &dy);
            e[0] = e[1] = e[2] = 0.0f;
            if (g->normal[i] == N_SKY) {
                float t = synth_clampf(dy * 4.0f, 0.0f, 1.0f); /* city glow low, dark above */
                for (int k = 0; k < 3; k++)
                    o[k] = glow[k] * (1.0f - t) + 0.012f * (k == 2 ? 2.0f : 1.0f) * t;
                continue;
            }
            float z = g->z[i], p[3] = {dx * z, c->height + dy * z, z}, light[3];
            memcpy(light, amb, sizeof light);
            for (int l = 0; l < sc->n_lamps; l++) {
                float d[3] = {sc->lamp[l][0] - p[0], sc->lamp[l][1] - p[1], sc->lamp[l][2] - p[2]};
                float d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                if (d2 > 900.0f)
                    continue;
                float inv = 1.0f / sqrtf(d2 + 1e-6f);
                float dir[3] = {d[0] * inv, d[1] * inv, d[2] * inv};
                float k = power * lambert(g->normal[i], dir) / (d2 + 1.0f);
                for (int q = 0; q < 3; q++)
                    light[q] += k * lamp_col[q];
            }
            for (int k = 0; k < 3; k++)
                o[k] = a[k] * light[k];
            switch (g->emit[i]) {
            case EMIT_WIN_LIT: {
                float s = 0.25f + 1.0f * lum(a);
                for (int k = 0; k < 3; k++)
                    o[k] = e[k] = win_col[k] * s;
                break;
            }
            case EMIT_HEAD:
                o[0] = e[0] = 1.6f;
                o[1] = e[1] = 1.55f;
                o[2] = e[2] = 1.35f;
                break;
            case EMIT_TAIL:
                o[0] = e[0] = 1.4f;
                o[1] = e[1] = 0.1f;
                o[2] = e[2] = 0.06f;
                break;
            case EMIT_LAMP:
                for (int k = 0; k < 3; k++)
                    o[k] = e[k] = 1.8f * lamp_col[k];
                break;
            default:
                break;
            }
        }
    /* Bloom: lights glow into their surroundings (labels do not change). */
    int rad = g->w / 128 > 1 ? g->w / 128 : 1;
    float *tmp = g->work3;
    box_blur(emit, emit, tmp, g->w, g->h, rad);
    box_blur(emit, emit, tmp, g->w, g->h, 2 * rad);
    float gain = synth_uniform(r, 0.9f, 1.3f);
    float cast[3];
    if (synth_chance(r, 0.5f)) {
        cast[0] = 0.85f;
        cast[1] = 0.95f;
        cast[2] = 1.2f;
    } else {
        cast[0] = 1.15f;
        cast[1] = 0.95f;
        cast[2] = 0.75f;
    }
    float sigma = synth_uniform(r, 0.015f, 0.035f);
    size_t n = (size_t)g->w * (size_t)g->h;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = synth_next(r);
        for (int k = 0; k < 3; k++) {
            float x = (img[3 * i + k] + 0.6f * emit[3 * i + k]) * gain * cast[k];
            /* sum of two uniforms: a cheap bell-shaped noise, plus shot noise */
            float u1 = (float)((bits >> (21 * k)) & 0x3FF) / 1024.0f;
            float u2 = (float)((bits >> (21 * k + 10)) & 0x3FF) / 1024.0f;
            float noise = (u1 + u2 - 1.0f) * 2.45f;
            img[3 * i + k] = x + noise * (sigma + 0.04f * sqrtf(fmaxf(x, 0.0f)));
        }
    }
}

/* ---------------------------------------------------------------- rain */

static void rain(float *img, synth_gbuf *g, const synth_scene *sc, synth_rng *r)
{
    const synth_camera *c = &sc->cam;
    size_t n = (size_t)g->w * (size_t)g->h;
    float grey = synth_uniform(r, 0.5f, 0.68f);
    /* overcast: no sun, darker wet ground, grey sky */
    for (size_t i = 0; i < n; i++) {
        float *o = img + 3 * i;
        const float *a = g->albedo + 3 * i;
        if (g->normal[i] == N_SKY) {
            int v = (int)(i / (size_t)g->w);
            float t = synth_clampf(((float)v - c->vh) / c->vh + 1.0f, 0.0f, 1.0f);
            for (int k = 0; k < 3; k++)
                o[k] = grey * (0.85f + 0.2f * t) * (k == 2 ? 1.04f : 1.0f);
            continue;
        }
        float wet = g->wet[i] ? 0.6f : 0.85f;
        float l = 0.75f * (g->normal[i] == N_UP ? 1.0f : 0.85f) + 0.1f * lambert(g->normal[i], sc->sun);
        for (int k = 0; k < 3; k++)
            o[k] = a[k] * l * wet;
    }
    /* wet ground mirrors the scene about the horizon, smeared vertically */
    float *mirror = g->work2;
    box_blur(mirror, img, g->work3, g->w, g->h, 1);
    for (int v = 0; v < g->h; v++) {
        float vm = 2.0f * c->vh - (float)v;
        int mv = (int)vm;
        if (vm < 0.0f || mv >= g->h)
            continue;
        float k = 0.2f + 0.35f * (1.0f - synth_clampf(((float)v - c->vh) / ((float)g->h - c->vh), 0.0f, 1.0f));
        for (int u = 0; u < g->w; u++) {
            size_t i = (size_t)v * (size_t)g->w + (size_t)u;
            if (!g->wet[i])
                continue;
            const float *m = mirror + ((size_t)mv * (size_t)g->w + (size_t)u) * 3;
            for (int q = 0; q < 3; q++)
                img[3 * i + q] = img[3 * i + q] * (1.0f - 0.5f * k) + m[q] * 0.6f * k;
        }
    }
    /* haze and dimming */
    float dim = synth_uniform(r, 0.7f, 0.85f);
    for (int v = 0; v < g->h; v++)
        for (int u = 0; u < g->w; u++) {
            size_t i = (size_t)v * (size_t)g->w + (size_t)u;
            float dx, dy;
            pixel_ray(c, u, v, &dx, &dy);
            float d = g->normal[i] == N_SKY ? IC_SYNTH_SKY_DEPTH : g->z[i] * sqrtf(1.0f + dx * dx + dy * dy);
            float t = expf(-0.006f * d);
            for (int k = 0; k < 3; k++)
                img[3 * i + k] = (img[3 * i + k] * t + 0.6f * grey * (1.0f - t)) * dim;
        }
    box_blur(img, img, g->work3, g->w, g->h, 1);
    /* streaks: thin bright slanted lines, longer nearer the camera */
    float scale = (float)g->h / 256.0f;
    int n_streaks = (int)(synth_uniform(r, 350.0f, 700.0f) * (float)n / (256.0f * 512.0f));
    float angle = synth_uniform(r, -0.35f, 0.35f);
    for (int s = 0; s < n_streaks; s++) {
        float x = synth_uniform(r, 0.0f, (float)g->w), y = synth_uniform(r, -20.0f * scale, (float)g->h);
        float len = synth_uniform(r, 6.0f, 22.0f) * scale;
        float b = synth_uniform(r, 0.06f, 0.18f);
        float a = angle + synth_uniform(r, -0.05f, 0.05f), sx = sinf(a), sy = cosf(a);
        for (float t = 0.0f; t < len; t += 1.0f) {
            int u = (int)(x + t * sx), v = (int)(y + t * sy);
            if (u < 0 || u >= g->w || v < 0 || v >= g->h)
                continue;
            float *o = img + ((size_t)v * (size_t)g->w + (size_t)u) * 3;
            for (int k = 0; k < 3; k++)
                o[k] += b * (0.85f - o[k]);
        }
    }
}

/* ---------------------------------------------------------------- style */

/* A camera response the source never shows: warm highlights, lifted blue
 * shadows, more contrast and saturation. Tabulated: powf per pixel is slow. */
static void style_response(float *img, size_t n)
{
    enum { LUT = 1024 };
    float lut[3][LUT + 1];
    static const float gam[3] = {0.85f, 1.0f, 1.25f};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i <= LUT; i++) {
            float x = powf((float)i / LUT, gam[k]);
            if (k == 2)
                x = 0.08f + 0.9f * x;
            lut[k][i] = 0.6f * x + 0.4f * x * x * (3.0f - 2.0f * x);
        }
    for (size_t i = 0; i < n; i++) {
        float *o = img + 3 * i;
        for (int k = 0; k < 3; k++)
            o[k] = lut[k][(int)(synth_clampf(o[k], 0.0f, 1.0f) * LUT + 0.5f)];
        float y = lum(o);
        for (int k = 0; k < 3; k++)
            o[k] = y + 1.15f * (o[k] - y);
    }
}

/* ---------------------------------------------------------------- entry */

void synth_shade(uint8_t *rgb, synth_gbuf *g, const synth_scene *sc, ic_synth_domain domain,
                 uint64_t seed, uint64_t index)
{
    synth_rng r = synth_rng_make(seed, index, 100u + (uint64_t)domain);
    float *img = g->work;
    size_t n = (size_t)g->w * (size_t)g->h;
    switch (domain) {
    case IC_SYNTH_NIGHT:
        night(img, g, sc, &r);
        break;
    case IC_SYNTH_RAIN:
        rain(img, g, sc, &r);
        break;
    case IC_SYNTH_STYLE:
        day_light(img, g, sc, SYNTH_LOOK_STYLE, 1.0f, 1.0f);
        style_response(img, n);
        break;
    default:
        day_light(img, g, sc, SYNTH_LOOK_SOURCE, 1.0f, 1.0f);
        if (ic_synth_fog_beta(domain) > 0.0f)
            fog(img, g, sc, ic_synth_fog_beta(domain), &r);
        break;
    }
    /* exposure jitter and faint sensor grain, then 8 bits */
    float expo = domain == IC_SYNTH_NIGHT ? 1.0f : synth_uniform(&r, 0.92f, 1.1f);
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = synth_next(&r);
        for (int k = 0; k < 3; k++) {
            float grain = ((float)((bits >> (21 * k)) & 0xFFFF) / 65536.0f - 0.5f) * 0.02f;
            float x = img[3 * i + k] * expo + grain;
            rgb[3 * i + k] = (uint8_t)(synth_clampf(x, 0.0f, 1.0f) * 255.0f + 0.5f);
        }
    }
}
