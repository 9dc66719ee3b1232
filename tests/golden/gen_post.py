"""Golden fixtures for core/post/panoptic.c.

Implements detectron2's Panoptic-DeepLab post-processing in torch with the
same operations as projects/Panoptic-DeepLab/panoptic_deeplab/post_processing.py
(find_instance_center, group_pixels, merge_semantic_and_instance) and the
instance score of panoptic_deeplab.py, runs it on structured random raw
outputs (stuff bands, thing blobs with a gaussian center each and offsets
pointing at it) and stores inputs plus expected outputs.

Ties are avoided on purpose where torch's behaviour is unspecified
(torch.mode): blobs are single-class apart from a minority of noise pixels.
One center plateau (two equal maxima in one NMS window) is included, since
detectron2 keeps both.

Run: /usr/bin/python3 tests/golden/gen_post.py  (writes fixtures/post_*.safetensors)
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')


# ---- detectron2 post-processing (same tensor operations) ----

def find_instance_center(center_heatmap, threshold, nms_kernel, top_k):
    center_heatmap = F.threshold(center_heatmap, threshold, -1)
    nms_padding = (nms_kernel - 1) // 2
    pooled = F.max_pool2d(center_heatmap, kernel_size=nms_kernel, stride=1, padding=nms_padding)
    center_heatmap[center_heatmap != pooled] = -1
    center_heatmap = center_heatmap.squeeze()
    top_k_scores, _ = torch.topk(torch.flatten(center_heatmap), top_k)
    return torch.nonzero(center_heatmap > top_k_scores[-1].clamp_(min=0))


def group_pixels(center_points, offsets):
    height, width = offsets.size()[1:]
    y_coord, x_coord = torch.meshgrid(torch.arange(height, dtype=offsets.dtype),
                                      torch.arange(width, dtype=offsets.dtype), indexing='ij')
    coord = torch.cat((y_coord.unsqueeze(0), x_coord.unsqueeze(0)), dim=0)
    center_loc = coord + offsets
    center_loc = center_loc.flatten(1).T.unsqueeze_(0)
    center_points = center_points.unsqueeze(1)
    distance = torch.norm(center_points - center_loc, dim=-1)
    return torch.argmin(distance, dim=0).reshape((1, height, width)) + 1, distance


def merge_semantic_and_instance(sem_seg, ins_seg, thing_seg, label_divisor, thing_ids, stuff_area,
                                void_label):
    pan_seg = torch.zeros_like(sem_seg) + void_label
    is_thing = (ins_seg > 0) & (thing_seg > 0)
    tracker = {}
    for ins_id in torch.unique(ins_seg):
        if ins_id == 0:
            continue
        thing_mask = (ins_seg == ins_id) & is_thing
        if torch.nonzero(thing_mask).size(0) == 0:
            continue
        vals = sem_seg[thing_mask].view(-1)
        counts = torch.bincount(vals)
        assert (counts == counts.max()).sum() == 1, 'torch.mode tie in the generator'
        class_id, _ = torch.mode(vals)
        tracker[class_id.item()] = tracker.get(class_id.item(), 0) + 1
        pan_seg[thing_mask] = class_id * label_divisor + tracker[class_id.item()]
    for class_id in torch.unique(sem_seg):
        if class_id.item() in thing_ids:
            continue
        stuff_mask = (sem_seg == class_id) & (ins_seg == 0)
        if stuff_mask.sum().item() >= stuff_area:
            pan_seg[stuff_mask] = class_id * label_divisor
    return pan_seg


def get_panoptic_segmentation(sem_seg, center, offsets, thing_ids, label_divisor, stuff_area,
                              void_label, threshold, nms_kernel, top_k):
    thing_seg = torch.zeros_like(sem_seg)
    for t in thing_ids:
        thing_seg[sem_seg == t] = 1
    centers = find_instance_center(center.clone(), threshold, nms_kernel, top_k)
    if centers.size(0) == 0:
        ins = torch.zeros_like(sem_seg)
        dist = None
    else:
        ins, dist = group_pixels(centers, offsets)
        ins = thing_seg * ins
    pan = merge_semantic_and_instance(sem_seg, ins, thing_seg, label_divisor, thing_ids,
                                      stuff_area, void_label)
    return pan, centers, dist


def instance_scores(pan, logits, center, label_divisor, thing_ids):
    """detectron2 PanopticDeepLab.forward: one score per thing segment."""
    prob = F.softmax(logits, dim=0)
    ids, scores = [], []
    for label in torch.unique(pan):
        if label == -1:
            continue
        cls = label.item() // label_divisor
        if cls not in thing_ids:
            continue
        mask = pan[0] == label
        sem_score = torch.mean(prob[cls][mask])
        idx = torch.nonzero(mask).float()
        cy, cx = torch.mean(idx[:, 0]), torch.mean(idx[:, 1])
        ids.append(label.item())
        scores.append((sem_score * center[0, int(cy.item()), int(cx.item())]).item())
    return np.array(ids, np.int32), np.array(scores, np.float32)


# ---- structured random raw outputs ----

def make_case(rng, h, w, n_classes, thing_ids, n_inst, plateau):
    stuff = [c for c in range(n_classes) if c not in thing_ids]
    logits = rng.normal(0, 0.5, (n_classes, h, w)).astype(np.float32)
    # stuff: horizontal bands, the last one thin so that stuff_area drops it
    bounds = np.sort(rng.choice(np.arange(4, h - 4), len(stuff) - 2, replace=False))
    band = np.searchsorted(bounds, np.arange(h), side='right')
    for y in range(h):
        logits[stuff[band[y]], y, :] += 3.0
    thin = stuff[-1]
    logits[thin, :, :] -= 3.0
    logits[thin, h // 2:h // 2 + 2, 2:9] += 12.0  # tiny region below stuff_area -> void

    center = rng.uniform(0, 0.05, (h, w)).astype(np.float32)
    offset = np.zeros((2, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    owner = -np.ones((h, w), np.int64)
    best = np.full((h, w), np.inf)
    cents = []
    for k in range(n_inst):
        while True:
            cy, cx = rng.integers(5, h - 5), rng.integers(5, w - 5)
            if all(abs(cy - a) + abs(cx - b) > 12 for a, b in cents):
                break
        cents.append((cy, cx))
        ry, rx = rng.uniform(3, 7), rng.uniform(3, 8)
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        inside = (d < 1) & (d < best)
        owner[inside] = k
        best[inside] = d[inside]
        peak = 0.5 + 0.4 * rng.random()
        center = np.maximum(center, (peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0))
                            .astype(np.float32))
    for k, (cy, cx) in enumerate(cents):
        m = owner == k
        cls = thing_ids[k % len(thing_ids)]
        logits[cls][m] += 6.0
        # minority noise: a few pixels voting for another thing class
        noise = m & (rng.random((h, w)) < 0.1)
        other = thing_ids[(k + 1) % len(thing_ids)]
        logits[other][noise] += 12.0
        offset[0][m] = cy - yy[m] + rng.normal(0, 0.6, m.sum())
        offset[1][m] = cx - xx[m] + rng.normal(0, 0.6, m.sum())
    # offsets of non-owned pixels: random (their class may still be a thing)
    free = owner < 0
    offset[0][free] = rng.normal(0, 4, free.sum())
    offset[1][free] = rng.normal(0, 4, free.sum())
    if plateau:
        cy, cx = cents[0]
        v = center[cy, cx]
        center[cy, cx + 1] = v  # equal maxima in one window: both survive
    return logits, center, offset


def run_case(name, seed, h, w, n_classes, thing_ids, n_inst, top_k, stuff_area, plateau):
    rng = np.random.default_rng(seed)
    logits, center, offset = make_case(rng, h, w, n_classes, thing_ids, n_inst, plateau)
    lt = torch.from_numpy(logits)
    sem = lt.argmax(0, keepdim=True)
    ct = torch.from_numpy(center)[None]
    ot = torch.from_numpy(offset)
    params = dict(thing_ids=set(thing_ids), label_divisor=1000, stuff_area=stuff_area,
                  void_label=-1, threshold=0.1, nms_kernel=7, top_k=top_k)
    pan, centers, dist = get_panoptic_segmentation(sem, ct, ot, **params)
    if dist is not None and dist.size(0) > 1:
        # ties in argmin would make the expected map depend on sqrt rounding
        top2 = torch.topk(dist, 2, dim=0, largest=False).values
        gap = (top2[1] - top2[0]).min().item()
        assert gap > 1e-4, 'near tie in grouping (%g); change the seed' % gap
    ids, scores = instance_scores(pan, lt, ct, 1000, set(thing_ids))
    segs = torch.unique(pan)
    print('%s: %dx%d, %d centers, segments %s' % (name, h, w, centers.size(0),
                                                  segs.tolist()))
    stio.save(os.path.join(OUT, name + '.safetensors'), {
        'logits': logits,
        'sem': sem[0].numpy().astype(np.int32),
        'center': center,
        'offset': offset,
        'thing_ids': np.array(thing_ids, np.int32),
        'params': np.array([n_classes, 1000, stuff_area, 7, top_k], np.int32),
        'centers': centers.numpy().astype(np.int32),
        'pan': pan[0].numpy().astype(np.int32),
        'inst_ids': ids,
        'inst_scores': scores,
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    # 6 classes: stuff 0, 1, 2; things 3, 4, 5
    run_case('post_pano_a', 1, 48, 64, 6, [3, 4, 5], 5, 200, 100, True)
    # top_k smaller than the number of peaks: the cut drops the weakest
    run_case('post_pano_b', 7, 32, 48, 6, [3, 4, 5], 4, 3, 60, False)


if __name__ == '__main__':
    main()
