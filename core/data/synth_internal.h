/* SynthCity internals shared by the layout, raster and shading files: the
 * scene description, the per-pixel G-buffer, the PRNG and value noise.
 *
 * A render has three stages. synth_scene_generate() draws a scene from
 * (seed, index): geometry plus two appearances, the source city's and the
 * style city's, so that the style domain changes looks but never labels.
 * synth_raster() ray-casts the scene into a G-buffer (class, owner object,
 * forward distance, albedo, normal, sun shadow, emitter kind) with exact
 * per-pixel-centre occlusion. synth_shade() lights the G-buffer for one
 * domain and adds the domain's weather and camera effects. */
#ifndef IC_DATA_SYNTH_INTERNAL_H
#define IC_DATA_SYNTH_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "data/synth.h"

/* ---------------------------------------------------------------- PRNG */

/* splitmix64: tiny, fast and good enough for layout decisions. */
typedef struct synth_rng {
    uint64_t s;
} synth_rng;

static inline uint64_t synth_next(synth_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A stream keyed by several words, so that layout, appearance and each
 * domain's noise never share draws. */
static inline synth_rng synth_rng_make(uint64_t seed, uint64_t index, uint64_t stream)
{
    synth_rng r = {seed * 0xD1B54A32D192ED03ull ^ 0x8CB92BA72F3D8DD7ull};
    r.s ^= synth_next(&r) + index * 0x9E3779B97F4A7C15ull;
    r.s ^= synth_next(&r) + stream * 0xC2B2AE3D27D4EB4Full;
    synth_next(&r);
    return r;
}

/* Uniform in [lo, hi). */
static inline float synth_uniform(synth_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(synth_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Integer in [lo, hi]. */
static inline int synth_int(synth_rng *r, int lo, int hi)
{
    return lo + (int)(synth_next(r) % (uint64_t)(hi - lo + 1));
}

static inline int synth_chance(synth_rng *r, float p)
{
    return synth_uniform(r, 0.0f, 1.0f) < p;
}

/* Approximately standard normal (Irwin-Hall with 4 terms): cheap and bounded. */
static inline float synth_gauss(synth_rng *r)
{
    float s = 0.0f;
    for (int i = 0; i < 4; i++)
        s += synth_uniform(r, 0.0f, 1.0f);
    return (s - 2.0f) * 1.7320508f;
}

/* ---------------------------------------------------------------- noise */

static inline uint32_t synth_hash3(int32_t x, int32_t y, uint32_t seed)
{
    uint32_t h = seed * 0x27D4EB2Du ^ (uint32_t)x * 0x85EBCA6Bu ^ (uint32_t)y * 0xC2B2AE35u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    return h;
}

/* Hash to [0, 1). */
static inline float synth_hashf(int32_t x, int32_t y, uint32_t seed)
{
    return (float)(synth_hash3(x, y, seed) >> 8) * (1.0f / 16777216.0f);
}

/* Smooth value noise in [0, 1) on a unit lattice. */
static inline float synth_noise(float x, float y, uint32_t seed)
{
    float fx = floorf(x), fy = floorf(y);
    int32_t ix = (int32_t)fx, iy = (int32_t)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.0f - 2.0f * tx);
    ty = ty * ty * (3.0f - 2.0f * ty);
    float a = synth_hashf(ix, iy, seed), b = synth_hashf(ix + 1, iy, seed);
    float c = synth_hashf(ix, iy + 1, seed), d = synth_hashf(ix + 1, iy + 1, seed);
    return a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty;
}

/* Two octaves, in [0, 1). */
static inline float synth_fbm(float x, float y, uint32_t seed)
{
    return 0.65f * synth_noise(x, y, seed) + 0.35f * synth_noise(2.03f * x, 2.03f * y, seed + 7u);
}

static inline float synth_clampf(float x, float lo, float hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* ---------------------------------------------------------------- scene */

/* Appearances: index 0 is the source city, 1 the style city. */
enum { SYNTH_LOOK_SOURCE = 0, SYNTH_LOOK_STYLE = 1, SYNTH_N_LOOKS = 2 };

#define SYNTH_MAX_FACADES 64
#define SYNTH_MAX_OBJECTS 128
#define SYNTH_MAX_BOXES 6
#define SYNTH_MAX_LAMPS 16

/* Forward distance stored for sky pixels (metres). */
#define SYNTH_SKY_Z 1.0e4f

typedef struct synth_camera {
    float f;      /* focal length, pixels */
    float cx;     /* principal column */
    float vh;     /* horizon row (the camera looks level) */
    float height; /* metres above the road */
    int w, h;
} synth_camera;

/* Facade wall textures. Source cities use the first four; the style city
 * uses the last two, which the source never shows. */
enum { TEX_PLAIN, TEX_BRICK, TEX_BANDS, TEX_PANELS, TEX_STRIPES, TEX_TIMBER };

typedef struct synth_facade_look {
    float base[3];   /* wall colour */
    float accent[3]; /* bands, mortar, frames */
    float glass[3];  /* window colour */
    int tex;
    int arched;      /* arched window tops */
} synth_facade_look;

/* A wall rectangle. axis 0: the plane X = p spanning Z in [a0, a1] (street
 * facades); axis 1: the plane Z = p spanning X in [a0, a1] (the far end).
 * kind 1 marks a tree line (vegetation with a noisy top) instead of a wall. */
typedef struct synth_facade {
    int axis;
    int kind;
    float p, a0, a1;
    float height;
    float floor_h, win_dx, win_w, win_h, sill; /* window grid (metres) */
    int shop;                                  /* ground floor shop windows */
    float lit;                                 /* fraction of windows lit at night */
    uint32_t seed;
    synth_facade_look look[SYNTH_N_LOOKS];
} synth_facade;

enum { OBJ_CAR, OBJ_PERSON, OBJ_TREE, OBJ_POLE, OBJ_HEDGE };

/* Parts of box objects, for texturing. */
enum { PART_BODY, PART_CABIN, PART_WHEEL, PART_POLE, PART_ARM, PART_LAMP, PART_HEDGE };

typedef struct synth_box {
    float x0, x1, y0, y1, z0, z1;
    int part;
} synth_box;

typedef struct synth_object {
    int kind;
    int cls;     /* train id */
    int inst;    /* 1-based instance number for things, 0 for stuff */
    float x, z;  /* ground anchor: centre X, near Z */
    float width, height;   /* billboards (persons, trees) */
    float crown_r, crown_y; /* trees */
    int facing;  /* cars: +1 drives away (rear visible), -1 oncoming */
    int pose;    /* persons: gait phase 0..3; cars: 1 when parked (lights off) */
    synth_box box[SYNTH_MAX_BOXES];
    int n_box;
    float col[SYNTH_N_LOOKS][3];  /* main colour (body, shirt, leaves) */
    float col2[SYNTH_N_LOOKS][3]; /* second colour (trousers, trunk) */
    float skin[3];
    uint32_t seed;
} synth_object;

/* What a ground pixel is beyond the road edge on one side. */
enum { SIDE_SIDEWALK, SIDE_VERGE };

typedef struct synth_scene {
    synth_camera cam;
    float road_l, road_r;  /* road edges (X) */
    int side[2];           /* 0 left, 1 right: SIDE_* */
    float centre_x;        /* centre line X */
    int lanes_per_dir;
    float cross_z0, cross_z1; /* zebra crossing (0, 0 if none) */
    float dash_len, dash_gap;
    synth_facade facade[SYNTH_MAX_FACADES];
    int n_facades;
    synth_object obj[SYNTH_MAX_OBJECTS];
    int n_objects;
    int n_instances;
    float lamp[SYNTH_MAX_LAMPS][3]; /* street lamp heads (world) */
    int n_lamps;
    float sun[3];          /* unit vector towards the sun */
    float sun_int[SYNTH_N_LOOKS];
    float ambient[SYNTH_N_LOOKS];
    float sun_col[SYNTH_N_LOOKS][3];
    float road_col[SYNTH_N_LOOKS][3];
    float walk_col[SYNTH_N_LOOKS][3];
    float verge_col[SYNTH_N_LOOKS][3];
    float line_col[SYNTH_N_LOOKS][3];
    float sky_top[SYNTH_N_LOOKS][3];
    float sky_hor[SYNTH_N_LOOKS][3];
    float clouds;          /* cloud cover 0..1 */
    float tile;            /* sidewalk tile size (metres) */
    uint32_t seed;         /* texture noise seed */
} synth_scene;

/* Draws scene `index` of `seed` for an h x w camera. Never fails. */
void synth_scene_generate(synth_scene *sc, uint64_t seed, uint64_t index, int h, int w);

/* Surface normals, coded. N_CAM: billboards, which face the camera. */
enum { N_SKY, N_UP, N_PX, N_NX, N_NZ, N_CAM };

/* Emitters, used by the night domain. */
enum { EMIT_NONE, EMIT_WIN_DARK, EMIT_WIN_LIT, EMIT_HEAD, EMIT_TAIL, EMIT_LAMP };

/* ---------------------------------------------------------------- shadows */

typedef struct synth_shadow synth_shadow;

synth_shadow *synth_shadow_alloc(void);
void synth_shadow_free(synth_shadow *s);

/* Files the scene's casters (with the sun of `look`) for queries. */
void synth_shadow_build(synth_shadow *s, const synth_scene *sc, int look);

/* 1 when point p is in sun shadow (casters owned by skip_owner are
 * ignored: an object index, or -1 - facade index). With ao non-NULL also
 * returns the ambient occlusion factor under cars (1 = open sky). */
int synth_shadow_query(const synth_shadow *s, const float p[3], int skip_owner, float *ao);

/* ---------------------------------------------------------------- textures */

/* Ground at (x, z): writes the albedo and returns the train id. fp is the
 * pixel footprint (metres), used to fade patterns finer than a pixel. */
int synth_tex_ground(const synth_scene *sc, int look, float x, float z, float fp, float out[3]);

/* Facade f at (s metres along it, y metres up): albedo, returns EMIT_*. */
int synth_tex_facade(const synth_scene *sc, const synth_facade *f, int look, float s, float y,
                     float fp, float out[3]);

/* Sky colour for the ray direction (dx, dy, 1). */
void synth_tex_sky(const synth_scene *sc, int look, float dx, float dy, float out[3]);

/* Box part b of object o hit at world point p on a face with normal code
 * `normal`: albedo, returns EMIT_*. */
int synth_tex_box(const synth_object *o, const synth_box *b, int look, int normal, const float p[3],
                  float out[3]);

/* Billboards at local (a metres right of the anchor, y metres up): return
 * 1 and the albedo when the point is on the person / tree, else 0. */
int synth_tex_person(const synth_object *o, int look, float a, float y, float out[3]);
int synth_tex_tree(const synth_object *o, int look, float a, float y, float out[3]);

/* ---------------------------------------------------------------- G-buffer */

struct synth_gbuf {
    int w, h;
    uint8_t *cls;     /* (h, w) train id */
    uint16_t *obj;    /* (h, w) owner object index + 1, 0 for stuff surfaces */
    float *z;         /* (h, w) forward distance (metres), SYNTH_SKY_Z for sky */
    float *albedo;    /* (h, w, 3) in [0, 1] */
    uint8_t *normal;  /* (h, w) N_* */
    uint8_t *shadow;  /* (h, w) 0 sunlit .. 255 in shadow */
    uint8_t *emit;    /* (h, w) EMIT_* */
    uint8_t *wet;     /* (h, w) 1 on road and sidewalk (rain reflections) */
    float *work;      /* (h, w, 3) scratch for the shading stage */
    float *work2;     /* (h, w, 3) scratch for the shading stage */
    float *work3;     /* (h, w, 3) scratch for the shading stage */
    synth_shadow *shadow_index; /* sun-shadow casters, rebuilt per render */
    synth_scene *scene;         /* the scene being rendered */
    int32_t *inst_area;         /* (SYNTH_MAX_OBJECTS + 1) pixels per instance */
};

/* Allocates / frees a G-buffer. */
int synth_gbuf_alloc(synth_gbuf **out, int h, int w);
void synth_gbuf_free(synth_gbuf *g);

/* Ray-casts the scene with appearance `look` into g. */
void synth_raster(synth_gbuf *g, const synth_scene *sc, int look);

/* Lights g for `domain` and writes 8-bit RGB (h, w, 3) into rgb. */
void synth_shade(uint8_t *rgb, synth_gbuf *g, const synth_scene *sc, ic_synth_domain domain,
                 uint64_t seed, uint64_t index);

#endif
