/* SynthCity: procedurally rendered street scenes with exact panoptic labels.
 *
 * The project cannot download Cityscapes or a pretrained model, so it makes
 * its own data. A scene (camera, road, sidewalks, facades, trees, poles,
 * cars, people, sun) is a pure function of (seed, index); the same scene can
 * be rendered in several domains (clear day, three fog densities, night,
 * rain, another city's style) that share every label, so comparisons across
 * domains are paired. Classes are a subset of the Cityscapes train ids with
 * their names and colours; cars and persons are things with instances.
 *
 * ic_synth_render() fills an ic_synth_sample in memory (training renders on
 * the fly with it); synth_writer.h writes COCO-panoptic datasets to disk.
 * Rendering is deterministic: the same seed, index, domain and size give the
 * same bytes in the same build. */
#ifndef IC_DATA_SYNTH_H
#define IC_DATA_SYNTH_H

#include <stdint.h>

/* Number of classes and the label of unlabeled pixels in the semantic map. */
#define IC_SYNTH_NUM_CLASSES 8
#define IC_SYNTH_VOID 255

/* Depth given to sky pixels (metres). */
#define IC_SYNTH_SKY_DEPTH 1000.0f

/* Accepted image sides (pixels), inclusive. */
#define IC_SYNTH_MIN_SIDE 32
#define IC_SYNTH_MAX_SIDE 4096

/* Default image size (H x W), the default model input. */
#define IC_SYNTH_DEFAULT_H 256
#define IC_SYNTH_DEFAULT_W 512

/* Most segments one image can have (stuff classes plus instances). */
#define IC_SYNTH_MAX_SEGMENTS 160

/* Cityscapes train ids of the classes SynthCity draws. */
enum {
    IC_SYNTH_ROAD = 0,
    IC_SYNTH_SIDEWALK = 1,
    IC_SYNTH_BUILDING = 2,
    IC_SYNTH_POLE = 5,
    IC_SYNTH_VEGETATION = 8,
    IC_SYNTH_SKY = 10,
    IC_SYNTH_PERSON = 11,
    IC_SYNTH_CAR = 13,
};

/* One class: Cityscapes train id, name, thing flag and label colour. */
typedef struct ic_synth_class {
    int train_id;
    const char *name;
    int isthing;
    uint8_t color[3];
} ic_synth_class;

/* The IC_SYNTH_NUM_CLASSES classes in train id order (static storage). */
const ic_synth_class *ic_synth_classes(void);

/* The class with this train id, or NULL when SynthCity does not draw it. */
const ic_synth_class *ic_synth_class_find(int train_id);

/* Rendering domains. All domains of one (seed, index) share the labels. */
typedef enum ic_synth_domain {
    IC_SYNTH_SOURCE = 0, /* clear day */
    IC_SYNTH_FOG1,       /* mild fog */
    IC_SYNTH_FOG2,       /* medium fog (twice fog1's density) */
    IC_SYNTH_FOG3,       /* dense fog (four times fog1's density) */
    IC_SYNTH_NIGHT,      /* low light, colour cast, noise, lamps and lit windows */
    IC_SYNTH_RAIN,       /* overcast, streaks, dimming, blur, wet road */
    IC_SYNTH_STYLE,      /* another city: palettes, textures, camera response */
    IC_SYNTH_NUM_DOMAINS
} ic_synth_domain;

/* Name of a domain ("source", "fog1", ...), "unknown" outside the enum. */
const char *ic_synth_domain_name(ic_synth_domain d);

/* Parses a domain name. Returns 0, or IC_EINVAL naming the accepted names. */
int ic_synth_domain_parse(const char *name, ic_synth_domain *out);

/* Fog extinction coefficient of a fog domain (per metre), 0 for others.
 * fog1 : fog2 : fog3 = 1 : 2 : 4, the ratio of Foggy Cityscapes' 0.005 /
 * 0.01 / 0.02, scaled up because SynthCity streets are shallower. */
float ic_synth_fog_beta(ic_synth_domain d);

/* One panoptic segment, as COCO-panoptic's segments_info lists it. */
typedef struct ic_synth_segment {
    int32_t id;      /* value in the id map; never 0 */
    int category_id; /* Cityscapes train id */
    int64_t area;    /* pixels */
    int bbox[4];     /* x, y, w, h of its pixels */
} ic_synth_segment;

typedef struct synth_gbuf synth_gbuf;

/* A rendered image with its labels. Allocate with ic_synth_sample_init()
 * and render into it as often as needed: rendering allocates nothing. */
typedef struct ic_synth_sample {
    int w, h;
    uint8_t *rgb;      /* (h, w, 3) */
    int32_t *ids;      /* (h, w) segment id per pixel, 0 = void */
    uint8_t *semantic; /* (h, w) train id, IC_SYNTH_VOID for void */
    float *depth;      /* (h, w) metres along the ray; sky IC_SYNTH_SKY_DEPTH */
    ic_synth_segment *segments; /* n_segments entries, ids ascending */
    int n_segments;
    synth_gbuf *gbuf; /* private scratch of the renderer */
} ic_synth_sample;

/* Allocates buffers for h x w renders. Sides must lie in
 * [IC_SYNTH_MIN_SIDE, IC_SYNTH_MAX_SIDE]. *s is only written on success.
 * Returns 0, IC_EINVAL (message names the bad size), IC_ENOMEM. */
int ic_synth_sample_init(ic_synth_sample *s, int h, int w);

/* Frees a sample's buffers and zeroes it. Accepts NULL and zeroed samples. */
void ic_synth_sample_deinit(ic_synth_sample *s);

/* Renders scene `index` of `seed` in `domain` into s (initialised with
 * ic_synth_sample_init; its size is the render size). Segment ids are
 * (train_id + 1) * 1000 for stuff and (train_id + 1) * 1000 + k for the k-th
 * instance (k >= 1). Instances with fewer visible pixels than
 * ic_synth_min_area() become void, so every segment is big enough to learn.
 * Returns 0 or IC_EINVAL (uninitialised sample, bad domain). */
int ic_synth_render(ic_synth_sample *s, uint64_t seed, uint64_t index, ic_synth_domain domain);

/* Smallest visible area (pixels) an instance keeps at this size: 16 pixels
 * at 256x512, scaled with the image area, at least 4. */
int ic_synth_min_area(int h, int w);

#endif
