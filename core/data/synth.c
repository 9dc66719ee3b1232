/* SynthCity public API: class and domain tables, samples, and the render
 * pipeline (layout -> raster -> labels -> shading -> depth). See synth.h. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "data/synth_internal.h"

_Static_assert(IC_SYNTH_MAX_SEGMENTS >= SYNTH_MAX_OBJECTS + IC_SYNTH_NUM_CLASSES,
               "room for every instance and stuff class");

static const ic_synth_class classes[IC_SYNTH_NUM_CLASSES] = {
    {IC_SYNTH_ROAD, "road", 0, {128, 64, 128}},
    {IC_SYNTH_SIDEWALK, "sidewalk", 0, {244, 35, 232}},
    {IC_SYNTH_BUILDING, "building", 0, {70, 70, 70}},
    {IC_SYNTH_POLE, "pole", 0, {153, 153, 153}},
    {IC_SYNTH_VEGETATION, "vegetation", 0, {107, 142, 35}},
    {IC_SYNTH_SKY, "sky", 0, {70, 130, 180}},
    {IC_SYNTH_PERSON, "person", 1, {220, 20, 60}},
    {IC_SYNTH_CAR, "car", 1, {0, 0, 142}},
};

static const char *const domain_names[IC_SYNTH_NUM_DOMAINS] = {
    "source", "fog1", "fog2", "fog3", "night", "rain", "style",
};

const ic_synth_class *ic_synth_classes(void)
{
    return classes;
}

const ic_synth_class *ic_synth_class_find(int train_id)
{
    for (int i = 0; i < IC_SYNTH_NUM_CLASSES; i++)
        if (classes[i].train_id == train_id)
            return &classes[i];
    return NULL;
}

const char *ic_synth_domain_name(ic_synth_domain d)
{
    return (int)d >= 0 && d < IC_SYNTH_NUM_DOMAINS ? domain_names[d] : "unknown";
}

int ic_synth_domain_parse(const char *name, ic_synth_domain *out)
{
    for (int i = 0; name && i < IC_SYNTH_NUM_DOMAINS; i++)
        if (!strcmp(name, domain_names[i])) {
            *out = (ic_synth_domain)i;
            return 0;
        }
    return ic_error_set(IC_EINVAL,
                        "unknown domain '%s' (expected source, fog1, fog2, fog3, night, rain or style)",
                        name ? name : "(null)");
}

int ic_synth_min_area(int h, int w)
{
    double a = 16.0 * (double)h * (double)w / (256.0 * 512.0);
    return a < 4.0 ? 4 : (int)(a + 0.5);
}

int ic_synth_sample_init(ic_synth_sample *s, int h, int w)
{
    if (!s)
        return ic_error_set(IC_EINVAL, "synth: NULL sample");
    if (h < IC_SYNTH_MIN_SIDE || w < IC_SYNTH_MIN_SIDE || h > IC_SYNTH_MAX_SIDE || w > IC_SYNTH_MAX_SIDE)
        return ic_error_set(IC_EINVAL, "synth: image size %dx%d (HxW) outside %dx%d..%dx%d", h, w,
                            IC_SYNTH_MIN_SIDE, IC_SYNTH_MIN_SIDE, IC_SYNTH_MAX_SIDE, IC_SYNTH_MAX_SIDE);
    ic_synth_sample t;
    memset(&t, 0, sizeof t);
    size_t n = (size_t)h * (size_t)w;
    t.h = h;
    t.w = w;
    t.rgb = ic_malloc(3 * n);
    t.ids = ic_malloc(n * sizeof *t.ids);
    t.semantic = ic_malloc(n);
    t.depth = ic_malloc(n * sizeof *t.depth);
    t.segments = ic_malloc(IC_SYNTH_MAX_SEGMENTS * sizeof *t.segments);
    if (!t.rgb || !t.ids || !t.semantic || !t.depth || !t.segments) {
        ic_synth_sample_deinit(&t);
        return ic_error_set(IC_ENOMEM, "synth: out of memory for a %dx%d sample", h, w);
    }
    int rc = synth_gbuf_alloc(&t.gbuf, h, w);
    if (rc) {
        ic_synth_sample_deinit(&t);
        return rc;
    }
    *s = t;
    return 0;
}

void ic_synth_sample_deinit(ic_synth_sample *s)
{
    if (!s)
        return;
    ic_free(s->rgb);
    ic_free(s->ids);
    ic_free(s->semantic);
    ic_free(s->depth);
    ic_free(s->segments);
    synth_gbuf_free(s->gbuf);
    memset(s, 0, sizeof *s);
}

/* Panoptic ids, semantic map and segments from the G-buffer. Instances
 * too small to learn from become void. */
static void make_labels(ic_synth_sample *s, const synth_scene *sc)
{
    synth_gbuf *g = s->gbuf;
    size_t n = (size_t)s->w * (size_t)s->h;
    int32_t *area = g->inst_area;
    memset(area, 0, (SYNTH_MAX_OBJECTS + 1) * sizeof *area);
    for (size_t i = 0; i < n; i++)
        if (g->obj[i])
            area[sc->obj[g->obj[i] - 1].inst]++;
    int min_area = ic_synth_min_area(s->h, s->w);

    /* Segment slots: stuff by train id (0..18), then instances by number. */
    enum { STUFF_SLOTS = 19 };
    ic_synth_segment *seg = s->segments;
    int slot_of[STUFF_SLOTS + SYNTH_MAX_OBJECTS + 1];
    for (int i = 0; i < STUFF_SLOTS + SYNTH_MAX_OBJECTS + 1; i++)
        slot_of[i] = -1;
    int n_seg = 0;
    for (int v = 0; v < s->h; v++)
        for (int u = 0; u < s->w; u++) {
            size_t i = (size_t)v * (size_t)s->w + (size_t)u;
            int cls = g->cls[i];
            int inst = g->obj[i] ? sc->obj[g->obj[i] - 1].inst : 0;
            if (inst && area[inst] < min_area) {
                s->ids[i] = 0;
                s->semantic[i] = IC_SYNTH_VOID;
                continue;
            }
            int32_t id = (int32_t)(cls + 1) * 1000 + inst;
            s->ids[i] = id;
            s->semantic[i] = (uint8_t)cls;
            int key = inst ? STUFF_SLOTS + inst : cls;
            if (slot_of[key] < 0) {
                slot_of[key] = n_seg;
                ic_synth_segment *q = &seg[n_seg++];
                q->id = id;
                q->category_id = cls;
                q->area = 0;
                q->bbox[0] = u;
                q->bbox[1] = v;
                q->bbox[2] = u; /* max x, max y until the end */
                q->bbox[3] = v;
            }
            ic_synth_segment *q = &seg[slot_of[key]];
            q->area++;
            q->bbox[0] = u < q->bbox[0] ? u : q->bbox[0];
            q->bbox[2] = u > q->bbox[2] ? u : q->bbox[2];
            q->bbox[3] = v;
        }
    for (int k = 0; k < n_seg; k++) {
        seg[k].bbox[2] = seg[k].bbox[2] - seg[k].bbox[0] + 1;
        seg[k].bbox[3] = seg[k].bbox[3] - seg[k].bbox[1] + 1;
    }
    /* ascending ids: a stable order for the JSON */
    for (int a = 1; a < n_seg; a++) {
        ic_synth_segment t = seg[a];
        int b = a;
        while (b > 0 && seg[b - 1].id > t.id) {
            seg[b] = seg[b - 1];
            b--;
        }
        seg[b] = t;
    }
    s->n_segments = n_seg;
}

int ic_synth_render(ic_synth_sample *s, uint64_t seed, uint64_t index, ic_synth_domain domain)
{
    if (!s || !s->gbuf)
        return ic_error_set(IC_EINVAL, "synth: sample not initialised");
    if ((int)domain < 0 || domain >= IC_SYNTH_NUM_DOMAINS)
        return ic_error_set(IC_EINVAL, "synth: bad domain %d", (int)domain);
    synth_gbuf *g = s->gbuf;
    synth_scene *sc = g->scene;
    synth_scene_generate(sc, seed, index, s->h, s->w);
    synth_raster(g, sc, domain == IC_SYNTH_STYLE ? SYNTH_LOOK_STYLE : SYNTH_LOOK_SOURCE);
    make_labels(s, sc);
    synth_shade(s->rgb, g, sc, domain, seed, index);
    const synth_camera *c = &sc->cam;
    for (int v = 0; v < s->h; v++) {
        float dy = (c->vh - ((float)v + 0.5f)) / c->f;
        for (int u = 0; u < s->w; u++) {
            size_t i = (size_t)v * (size_t)s->w + (size_t)u;
            float dx = ((float)u + 0.5f - c->cx) / c->f;
            s->depth[i] = g->normal[i] == N_SKY ? IC_SYNTH_SKY_DEPTH
                                                : fminf(g->z[i] * sqrtf(1.0f + dx * dx + dy * dy),
                                                        IC_SYNTH_SKY_DEPTH);
        }
    }
    return 0;
}
