/* Synthetic street scene for the augmentation tests (see scene.h). */
#include "scene.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

typedef struct canvas {
    uint8_t *rgb;
    int32_t *lab;
    int w, h;
} canvas;

static void put(canvas *c, int x, int y, int r, int g, int b, int32_t id)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    uint8_t *p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3u;
    p[0] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
    p[1] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
    p[2] = (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
    if (c->lab)
        c->lab[(size_t)y * (size_t)c->w + (size_t)x] = id;
}

static void rect(canvas *c, int x0, int y0, int x1, int y1, int r, int g, int b, int32_t id)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            put(c, x, y, r, g, b, id);
}

static void car(canvas *c, int x, int y, int cw, int r, int g, int b, int32_t id)
{
    int ch = cw * 2 / 5;
    rect(c, x, y - ch * 6 / 10, x + cw, y, r, g, b, id);
    rect(c, x + cw / 5, y - ch, x + cw * 4 / 5, y - ch * 6 / 10, r * 9 / 10, g * 9 / 10, b * 9 / 10, id);
    rect(c, x + cw / 4, y - ch * 9 / 10, x + cw * 3 / 4, y - ch * 6 / 10 - 1, 40, 50, 60, id);
    rect(c, x + cw / 8, y - ch / 6, x + cw / 8 + cw / 6, y + 2, 20, 20, 20, id);
    rect(c, x + cw * 6 / 8, y - ch / 6, x + cw * 6 / 8 + cw / 6, y + 2, 20, 20, 20, id);
    rect(c, x + 1, y - ch * 4 / 10, x + cw / 12 + 1, y - ch * 3 / 10, 250, 240, 200, id);
}

static void person(canvas *c, int x, int y, int ph, int r, int g, int b, int32_t id)
{
    int pw = ph / 4;
    rect(c, x, y - ph * 5 / 10, x + pw, y, 50, 50, 70, id);             /* legs */
    rect(c, x - 1, y - ph * 85 / 100, x + pw + 1, y - ph * 5 / 10, r, g, b, id); /* torso */
    rect(c, x + pw / 4, y - ph, x + pw * 3 / 4 + 1, y - ph * 85 / 100, 220, 180, 150, id);
}

int test_scene_render(int w, int h, ic_image *img, int32_t **labels)
{
    int rc = ic_image_alloc(img, w, h, 3, 8);
    if (rc)
        return rc;
    canvas c = {img->data, NULL, w, h};
    if (labels) {
        c.lab = ic_malloc((size_t)w * (size_t)h * sizeof *c.lab);
        if (!c.lab) {
            ic_image_free(img);
            return IC_ENOMEM;
        }
        *labels = c.lab;
    }
    const int hz = h * 45 / 100;
    /* sky (id 6): gradient */
    for (int y = 0; y < hz; y++) {
        float t = (float)y / (float)hz;
        rect(&c, 0, y, w, y + 1, (int)(90 + 110 * t), (int)(140 + 80 * t), (int)(220 + 25 * t), 6);
    }
    /* buildings (id 3) with windows */
    static const int bcol[5][3] = {{170, 120, 90}, {200, 190, 170}, {120, 110, 130},
                                   {190, 150, 110}, {150, 160, 150}};
    int x = 0, k = 0;
    while (x < w) {
        int bw = w / 8 + (k * 37 % 5) * w / 40;
        int top = h / 10 + (k * 53 % 7) * h / 40;
        const int *col = bcol[k % 5];
        rect(&c, x, top, x + bw, hz + h / 10, col[0], col[1], col[2], 3);
        for (int wy = top + h / 40; wy < hz; wy += h / 16)
            for (int wx = x + bw / 10; wx < x + bw - bw / 8; wx += bw / 5)
                rect(&c, wx, wy, wx + bw / 10, wy + h / 32, 60, 80, 100, 3);
        x += bw;
        k++;
    }
    /* trees (id 4): round canopies and trunks */
    for (int t = 0; t < 4; t++) {
        int cx = w / 10 + t * w / 4, cy = hz - h / 20, rr = h / 10 + t % 2 * h / 40;
        rect(&c, cx - 2, cy, cx + 2, hz + h / 8, 90, 70, 40, 4);
        for (int y = cy - rr; y <= cy + rr; y++)
            for (int xx = cx - rr; xx <= cx + rr; xx++)
                if ((xx - cx) * (xx - cx) + (y - cy) * (y - cy) <= rr * rr) {
                    int v = (int)(30 * sinf((float)xx * 0.7f) * cosf((float)y * 0.9f));
                    put(&c, xx, y, 60 + v / 2, 130 + v, 50 + v / 3, 4);
                }
    }
    /* sidewalk (id 2) and road (id 1) with lane marks */
    rect(&c, 0, hz + h / 10, w, hz + h / 10 + h / 14, 175, 165, 160, 2);
    int ry = hz + h / 10 + h / 14;
    for (int y = ry; y < h; y++) {
        int v = 95 + (int)(10 * sinf((float)y * 1.3f));
        rect(&c, 0, y, w, y + 1, v, v, v + 5, 1);
    }
    for (int mx = 0; mx < w; mx += w / 6)
        rect(&c, mx, ry + (h - ry) / 2, mx + w / 12, ry + (h - ry) / 2 + h / 60 + 1, 235, 235, 225, 1);
    /* pole (id 5) */
    rect(&c, w * 6 / 10, h / 6, w * 6 / 10 + w / 120 + 1, hz + h / 8, 70, 70, 75, 5);
    /* cars (class 13) and people (class 11): things */
    car(&c, w / 20, h * 88 / 100, w / 4, 180, 30, 30, 13001);
    car(&c, w * 55 / 100, h * 80 / 100, w / 6, 30, 60, 170, 13002);
    car(&c, w * 78 / 100, h * 93 / 100, w / 5, 230, 230, 235, 13003);
    person(&c, w * 38 / 100, hz + h / 10 + h / 16, h / 4, 200, 150, 40, 11001);
    person(&c, w * 45 / 100, hz + h / 10 + h / 12, h / 5, 60, 140, 90, 11002);
    return 0;
}
