"""Golden fixtures for the backward passes, the losses and the training targets.

Run with Debian's python3 (torch 1.13, numpy):
    /usr/bin/python3 tests/golden/gen_grad.py
Writes tests/golden/fixtures/grad_{block,loss,targets}.safetensors, read by
tests/core/ops/test_block_grad.c, tests/core/ops/test_loss.c and
tests/core/train/test_targets.c.

grad_block: a small Panoptic-DeepLab-like block, differentiated by torch
autograd. conv (torch only: its output `a` is stored and is the C side's
input) -> calibrated BN (InstCal rule of InstCal-Pano's batch_norm.py, instance
statistics computed under no_grad, i.e. stop-gradient) -> ReLU -> bilinear x2
(scale_factor) -> concat with a skip tensor -> bilinear to an odd size -> split
into semantic logits / center / offset -> DeepLabCE (top_k 0.2, weights) +
200 * center MSE + 0.01 * offset L1, exactly detectron2's formulas
(docs/network.md §Losses). Two cases: strengths per channel
(InstCal-U, prefix u.) and per image and channel (InstCal-C's output, prefix c.).
Gradients: d a, d gamma, d beta, d m_mu, d m_var, d skip.

grad_loss: the three losses alone on random inputs, DeepLabCE with
top_k 0.2 and 1.0, values and gradients.

grad_targets: a Python port of detectron2's PanopticDeepLabTargetGenerator
(panoptic_deeplab/target_generator.py), run on a synthetic panoptic map with
stuff, void, four things (one crowd, one cut by the border, one small) and one
listed segment that is absent from the map.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from stio import save

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')


def deeplab_ce(logits, labels, weights, top_k):
    """detectron2 DeepLabCE with ignore_label 255 and per-pixel weights."""
    pl = F.cross_entropy(logits, labels, ignore_index=255, reduction='none')
    pl = (pl * weights).contiguous().view(-1)
    if top_k == 1.0:
        return pl.mean()
    k = int(top_k * pl.numel())
    return torch.topk(pl, k).values.mean()


def center_mse(pred, tgt, w):
    loss = ((pred - tgt) ** 2) * w
    return loss.sum() / w.sum() if w.sum() > 0 else loss.sum() * 0


def offset_l1(pred, tgt, w):
    loss = torch.abs(pred - tgt) * w
    return loss.sum() / w.sum() if w.sum() > 0 else loss.sum() * 0


def dense_targets(g, n, h, w, k):
    labels = torch.randint(0, k, (n, h, w), generator=g)
    labels[torch.rand(n, h, w, generator=g) < 0.15] = 255
    sem_w = torch.where(torch.rand(n, h, w, generator=g) < 0.3, 3.0, 1.0)
    ct = torch.rand(n, 1, h, w, generator=g)
    cw = (torch.rand(n, 1, h, w, generator=g) < 0.7).float()
    ot = torch.randn(n, 2, h, w, generator=g) * 3
    ow = (torch.rand(n, 1, h, w, generator=g) < 0.5).float()
    return labels, sem_w, ct, cw, ot, ow


def gen_block():
    g = torch.Generator().manual_seed(42)
    n, cin, c, h, w, cs, k, oh, ow_ = 2, 3, 4, 5, 6, 4, 5, 13, 15
    x_in = torch.randn(n, cin, h, w, generator=g)
    wconv = torch.randn(c, cin, 3, 3, generator=g) * 0.3
    a0 = F.conv2d(x_in, wconv, padding=1)
    gamma0 = torch.rand(c, generator=g) + 0.5
    beta0 = torch.randn(c, generator=g) * 0.3
    mean_s = torch.randn(c, generator=g) * 0.5
    var_s = torch.rand(c, generator=g) * 2 + 0.3
    eps = 1e-5
    skip0 = torch.randn(n, cs, 2 * h, 2 * w, generator=g)
    labels, sem_w, ct, cw, ot, ow = dense_targets(g, n, oh, ow_, k)
    t = {'a': a0, 'gamma': gamma0, 'beta': beta0, 'mean_s': mean_s, 'var_s': var_s,
         'eps': torch.tensor([eps]), 'skip': skip0, 'labels': labels.to(torch.int32),
         'sem_w': sem_w, 'ct': ct, 'cw': cw, 'ot': ot, 'ow': ow,
         'dims': torch.tensor([k, oh, ow_], dtype=torch.float32)}
    for tag, mshape in (('u', (c,)), ('c', (n, c))):
        m_mu0 = torch.rand(*mshape, generator=g) * 0.8 + 0.1
        m_var0 = torch.rand(*mshape, generator=g) * 0.8 + 0.1
        a = a0.clone().requires_grad_()
        gamma = gamma0.clone().requires_grad_()
        beta = beta0.clone().requires_grad_()
        m_mu = m_mu0.clone().requires_grad_()
        m_var = m_var0.clone().requires_grad_()
        skip = skip0.clone().requires_grad_()
        with torch.no_grad():  # InstCal-Pano: instance statistics are stop-gradient
            mu_t = a.mean(dim=(2, 3))
            var_t = a.var(dim=(2, 3), unbiased=True)
        mu = (1 - m_mu) * mean_s + m_mu * mu_t
        var = (1 - m_var) * var_s + m_var * var_t
        scale = gamma * torch.rsqrt(var + eps)
        bias = beta - mu * scale
        b = torch.relu(a * scale[:, :, None, None] + bias[:, :, None, None])
        u = F.interpolate(b, scale_factor=2, mode='bilinear', align_corners=False)
        f = F.interpolate(torch.cat([u, skip], 1), size=(oh, ow_), mode='bilinear',
                          align_corners=False)
        ce = deeplab_ce(f[:, :k], labels, sem_w, 0.2)
        mse = center_mse(f[:, k:k + 1], ct, cw)
        l1 = offset_l1(f[:, k + 1:k + 3], ot, ow)
        total = ce + 200 * mse + 0.01 * l1
        total.backward()
        p = tag + '.'
        t.update({p + 'm_mu': m_mu0, p + 'm_var': m_var0,
                  p + 'losses': torch.stack([ce, mse, l1, total]).detach(),
                  p + 'd_a': a.grad, p + 'd_gamma': gamma.grad, p + 'd_beta': beta.grad,
                  p + 'd_m_mu': m_mu.grad, p + 'd_m_var': m_var.grad, p + 'd_skip': skip.grad})
    save(os.path.join(OUT, 'grad_block.safetensors'), t)


def gen_loss():
    g = torch.Generator().manual_seed(7)
    n, k, h, w = 2, 6, 7, 9
    logits0 = torch.randn(n, k, h, w, generator=g) * 2
    labels, sem_w, _, _, _, _ = dense_targets(g, n, h, w, k)
    cp0 = torch.rand(n, 1, h, w, generator=g)
    ct = torch.rand(n, 1, h, w, generator=g)
    cw = (torch.rand(n, 1, h, w, generator=g) < 0.6).float()
    op0 = torch.randn(n, 2, h, w, generator=g) * 3
    ot = torch.randn(n, 2, h, w, generator=g) * 3
    ot[0, 0, 0, :3] = op0[0, 0, 0, :3]  # exact zeros of |pred - tgt|: sign(0) = 0
    ow = (torch.rand(n, 1, h, w, generator=g) < 0.5).float()
    t = {'logits': logits0, 'labels': labels.to(torch.int32), 'sem_w': sem_w, 'cp': cp0,
         'ct': ct, 'cw': cw, 'op': op0, 'ot': ot, 'ow': ow}
    for tag, top_k in (('k20', 0.2), ('k100', 1.0)):
        logits = logits0.clone().requires_grad_()
        loss = deeplab_ce(logits, labels, sem_w, top_k)
        loss.backward()
        t[tag + '.loss'] = loss.detach().reshape(1)
        t[tag + '.d_logits'] = logits.grad
    cp = cp0.clone().requires_grad_()
    loss = center_mse(cp, ct, cw)
    loss.backward()
    t['mse.loss'] = loss.detach().reshape(1)
    t['mse.d_pred'] = cp.grad
    op = op0.clone().requires_grad_()
    loss = offset_l1(op, ot, ow)
    loss.backward()
    t['l1.loss'] = loss.detach().reshape(1)
    t['l1.d_pred'] = op.grad
    save(os.path.join(OUT, 'grad_loss.safetensors'), t)


# ---- detectron2's PanopticDeepLabTargetGenerator, ported line by line ----

class TargetGenerator:
    def __init__(self, ignore_label, thing_ids, sigma=8, ignore_stuff_in_offset=True,
                 small_instance_area=4096, small_instance_weight=3,
                 ignore_crowd_in_semantic=False):
        self.ignore_label = ignore_label
        self.thing_ids = set(thing_ids)
        self.ignore_stuff_in_offset = ignore_stuff_in_offset
        self.small_instance_area = small_instance_area
        self.small_instance_weight = small_instance_weight
        self.ignore_crowd_in_semantic = ignore_crowd_in_semantic
        self.sigma = sigma
        size = 6 * sigma + 3
        x = np.arange(0, size, 1, float)
        y = x[:, np.newaxis]
        x0, y0 = 3 * sigma + 1, 3 * sigma + 1
        self.g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))

    def __call__(self, panoptic, segments_info):
        height, width = panoptic.shape[0], panoptic.shape[1]
        semantic = np.zeros_like(panoptic, dtype=np.uint8) + self.ignore_label
        center = np.zeros((height, width), dtype=np.float32)
        offset = np.zeros((2, height, width), dtype=np.float32)
        y_coord, x_coord = np.meshgrid(np.arange(height, dtype=np.float32),
                                       np.arange(width, dtype=np.float32), indexing="ij")
        semantic_weights = np.ones_like(panoptic, dtype=np.uint8)
        center_weights = np.zeros_like(panoptic, dtype=np.uint8)
        offset_weights = np.zeros_like(panoptic, dtype=np.uint8)
        for seg in segments_info:
            cat_id = seg["category_id"]
            if not (self.ignore_crowd_in_semantic and seg["iscrowd"]):
                semantic[panoptic == seg["id"]] = cat_id
            if not seg["iscrowd"]:
                center_weights[panoptic == seg["id"]] = 1
                if not self.ignore_stuff_in_offset or cat_id in self.thing_ids:
                    offset_weights[panoptic == seg["id"]] = 1
            if cat_id in self.thing_ids:
                mask_index = np.where(panoptic == seg["id"])
                if len(mask_index[0]) == 0:
                    continue
                ins_area = len(mask_index[0])
                if ins_area < self.small_instance_area:
                    semantic_weights[panoptic == seg["id"]] = self.small_instance_weight
                center_y, center_x = np.mean(mask_index[0]), np.mean(mask_index[1])
                y, x = int(round(center_y)), int(round(center_x))
                sigma = self.sigma
                ul = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
                br = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
                gaussian_x0, gaussian_x1 = max(0, -ul[0]), min(br[0], width) - ul[0]
                gaussian_y0, gaussian_y1 = max(0, -ul[1]), min(br[1], height) - ul[1]
                center_x0, center_x1 = max(0, ul[0]), min(br[0], width)
                center_y0, center_y1 = max(0, ul[1]), min(br[1], height)
                center[center_y0:center_y1, center_x0:center_x1] = np.maximum(
                    center[center_y0:center_y1, center_x0:center_x1],
                    self.g[gaussian_y0:gaussian_y1, gaussian_x0:gaussian_x1])
                offset[0][mask_index] = center_y - y_coord[mask_index]
                offset[1][mask_index] = center_x - x_coord[mask_index]
        return dict(sem_seg=semantic.astype("int32"), center=center, offset=offset,
                    sem_seg_weights=semantic_weights.astype(np.float32),
                    center_weights=center_weights[None].astype(np.float32),
                    offset_weights=offset_weights[None].astype(np.float32))


def gen_targets():
    h, w = 40, 48
    yy, xx = np.mgrid[0:h, 0:w]
    pan = np.zeros((h, w), dtype=np.int32)          # 0: void, not listed
    pan[:15] = 1                                    # sky (stuff, cat 1)
    pan[15:] = 2                                    # road (stuff, cat 0)
    pan[18:30, 5:22] = 1001                         # car (cat 5), large
    pan[((yy - 24) ** 2 / 16 + (xx - 33) ** 2 / 9) <= 1] = 1002   # person (cat 6), small
    pan[30:40, 38:48] = 1003                        # crowd cars at the border (cat 5)
    pan[0:7, 0:10] = 1004                           # car cut by the top-left border
    pan[8:12, 20:26] = 0                            # void hole
    pan[33:36, 10:13] = 1006                        # tiny person: 9 px
    segs = [(1, 1, 0, 0), (2, 0, 0, 0), (1001, 5, 0, 1), (1002, 6, 0, 1), (1003, 5, 1, 1),
            (1004, 5, 0, 1), (1005, 6, 0, 1), (1006, 6, 0, 1)]
    sigma, area = 3, 150
    gen = TargetGenerator(255, thing_ids=[5, 6], sigma=sigma, small_instance_area=area,
                          small_instance_weight=3)
    out = gen(pan, [{'id': s[0], 'category_id': s[1], 'iscrowd': s[2]} for s in segs])
    t = {'pan': pan, 'segs': np.array(segs, dtype=np.int32),
         'params': np.array([sigma, area, 3, 255], dtype=np.int32)}
    t.update(out)
    save(os.path.join(OUT, 'grad_targets.safetensors'), t)


if __name__ == '__main__':
    gen_block()
    gen_loss()
    gen_targets()
