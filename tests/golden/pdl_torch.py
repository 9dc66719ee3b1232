#!/usr/bin/python3
"""Independent PyTorch reference of Panoptic-DeepLab (detectron2 layout) + InstCal calibration.

Built from a model config JSON (docs/model-config.md). Module attribute names reproduce
detectron2's state_dict names exactly (docs/network.md, State_dict names), so a
detectron2 checkpoint loads with load_state_dict(strict=True).

Two layers:
  * pure Python (no torch needed): load_config / validate_config / stage_plan /
    expected_tensors / bn_layers / calib_tensor_specs. tools/convert_detectron2.py uses these.
  * torch (only if importable): build_model(cfg) -> PanopticDeepLab nn.Module, with per-BN
    calibration modes none | manual | tbn | instcal-u | instcal-c | instcal-g (forward only).

Self-test:  /usr/bin/python3 tests/golden/pdl_torch.py --self-test
"""
import argparse
import collections
import json
import os
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # the converter works without torch
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..', '..'))
CONFIG_DIR = os.path.join(REPO, 'models', 'configs')

CALIB_MODES = ('none', 'manual', 'tbn', 'instcal-u', 'instcal-c', 'instcal-g')


class ConfigError(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# config

def load_config(src):
    """src: path, JSON string, or dict. Returns a validated dict (defaults filled in)."""
    if isinstance(src, dict):
        cfg = json.loads(json.dumps(src))
    elif isinstance(src, str) and src.lstrip().startswith('{'):
        cfg = json.loads(src)
    else:
        with open(src) as f:
            cfg = json.load(f)
    validate_config(cfg)
    return cfg


def _req(d, key, where, typ=None):
    if key not in d:
        raise ConfigError('config: missing key %s.%s' % (where, key))
    v = d[key]
    if typ is not None and not isinstance(v, typ):
        raise ConfigError('config: %s.%s has wrong type %s' % (where, key, type(v).__name__))
    return v


def _pos_int_list(v, n, name):
    if not (isinstance(v, list) and (n is None or len(v) == n) and
            all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)):
        raise ConfigError('config: %s must be a list of %s positive integers, got %r'
                          % (name, n if n is not None else 'n', v))


def validate_config(cfg):
    if cfg.get('format') != 'instcal-pdl':
        raise ConfigError('config: "format" must be "instcal-pdl"')
    if cfg.get('version') != 1:
        raise ConfigError('config: unsupported version %r' % cfg.get('version'))
    _req(cfg, 'name', '', str)
    inp = _req(cfg, 'input', '', dict)
    for k in ('pixel_mean', 'pixel_std'):
        v = _req(inp, k, 'input', list)
        if len(v) != 3 or any(not isinstance(x, (int, float)) for x in v):
            raise ConfigError('config: input.%s must be 3 numbers' % k)
    if any(x <= 0 for x in inp['pixel_std']):
        raise ConfigError('config: input.pixel_std must be > 0')
    inp.setdefault('format', 'RGB')
    inp.setdefault('size_divisibility', 0)
    norm = cfg.setdefault('norm', {'type': 'BN', 'eps': 1e-5})
    norm.setdefault('type', 'BN')
    norm.setdefault('eps', 1e-5)
    if norm['type'] != 'BN':
        raise ConfigError('config: norm.type must be "BN"')
    bb = _req(cfg, 'backbone', '', dict)
    _pos_int_list(_req(bb, 'stem_channels', 'backbone'), 3, 'backbone.stem_channels')
    if bb.setdefault('stem_out_channels', bb['stem_channels'][-1]) != bb['stem_channels'][-1]:
        raise ConfigError('config: backbone.stem_out_channels must equal stem_channels[-1]')
    for k in ('res2_out_channels', 'width_per_group'):
        _pos_int_list([_req(bb, k, 'backbone')], 1, 'backbone.' + k)
    if bb.setdefault('num_groups', 1) != 1:
        raise ConfigError('config: backbone.num_groups must be 1')
    if bb.setdefault('stride_in_1x1', False):
        raise ConfigError('config: backbone.stride_in_1x1 must be false (detectron2 DeepLab)')
    _pos_int_list(_req(bb, 'blocks_per_stage', 'backbone'), 4, 'backbone.blocks_per_stage')
    _pos_int_list([bb.setdefault('res4_dilation', 1), bb.setdefault('res5_dilation', 2)], 2,
                  'backbone.res4/res5_dilation')
    if bb['res4_dilation'] != 1:
        raise ConfigError('config: backbone.res4_dilation other than 1 is not supported')
    mg = bb.setdefault('res5_multi_grid', [1] * bb['blocks_per_stage'][3])
    _pos_int_list(mg, bb['blocks_per_stage'][3], 'backbone.res5_multi_grid (one per res5 block)')
    if bb.setdefault('out_features', ['res2', 'res3', 'res5']) != ['res2', 'res3', 'res5']:
        raise ConfigError('config: backbone.out_features must be ["res2","res3","res5"]')
    for hname in ('sem_seg_head', 'ins_embed_head'):
        h = _req(cfg, hname, '', dict)
        if h.setdefault('in_features', ['res2', 'res3', 'res5']) != ['res2', 'res3', 'res5']:
            raise ConfigError('config: %s.in_features must be ["res2","res3","res5"]' % hname)
        _pos_int_list(_req(h, 'project_channels', hname), 2, hname + '.project_channels')
        _pos_int_list([_req(h, 'aspp_channels', hname)], 1, hname + '.aspp_channels')
        _pos_int_list(_req(h, 'aspp_dilations', hname), 3, hname + '.aspp_dilations')
        _pos_int_list(_req(h, 'decoder_channels', hname), 3, hname + '.decoder_channels')
        if h['decoder_channels'][2] != h['aspp_channels']:
            raise ConfigError('config: %s.decoder_channels[2] must equal aspp_channels' % hname)
        pool = _req(h, 'aspp_pooling', hname, dict)
        if pool.get('type') == 'avg':
            _pos_int_list(pool.get('kernel'), 2, hname + '.aspp_pooling.kernel')
        elif pool.get('type') != 'global':
            raise ConfigError('config: %s.aspp_pooling.type must be "global" or "avg"' % hname)
        h.setdefault('aspp_dropout', 0.1)
        if not isinstance(_req(h, 'use_depthwise_separable_conv', hname), bool):
            raise ConfigError('config: %s.use_depthwise_separable_conv must be a boolean' % hname)
        if h.setdefault('common_stride', 4) != 4:
            raise ConfigError('config: %s.common_stride must be 4' % hname)
    sem, ins = cfg['sem_seg_head'], cfg['ins_embed_head']
    _pos_int_list([_req(sem, 'head_channels', 'sem_seg_head')], 1, 'sem_seg_head.head_channels')
    _pos_int_list([_req(sem, 'num_classes', 'sem_seg_head')], 1, 'sem_seg_head.num_classes')
    _pos_int_list([_req(ins, 'center_head_channels', 'ins_embed_head'),
                   _req(ins, 'offset_head_channels', 'ins_embed_head')], 2,
                  'ins_embed_head.center/offset_head_channels')
    pp = cfg.setdefault('post_processing', {})
    for k, v in (('center_threshold', 0.1), ('nms_kernel', 7), ('top_k', 200), ('stuff_area', 2048),
                 ('label_divisor', 1000), ('void_label', -1)):
        pp.setdefault(k, v)
    if pp['nms_kernel'] % 2 != 1:
        raise ConfigError('config: post_processing.nms_kernel must be odd')
    cl = _req(cfg, 'classes', '', dict)
    nc = sem['num_classes']
    names = _req(cl, 'names', 'classes', list)
    colors = _req(cl, 'colors', 'classes', list)
    if len(names) != nc or len(colors) != nc:
        raise ConfigError('config: classes.names/colors must have num_classes (%d) entries' % nc)
    for c in colors:
        if not (isinstance(c, list) and len(c) == 3 and all(isinstance(x, int) and 0 <= x <= 255 for x in c)):
            raise ConfigError('config: classes.colors entries must be [r,g,b] in 0..255, got %r' % (c,))
    things = _req(cl, 'thing_ids', 'classes', list)
    if any(not isinstance(t, int) or t < 0 or t >= nc for t in things) or len(set(things)) != len(things):
        raise ConfigError('config: classes.thing_ids must be distinct ids in 0..num_classes-1')
    if nc * pp['label_divisor'] > 2 ** 31 or pp['label_divisor'] < 1:
        raise ConfigError('config: post_processing.label_divisor out of range')
    cal = cfg.setdefault('calibration', {})
    cal.setdefault('clamp_eps', norm['eps'])
    cal.setdefault('instcal_u', {}).setdefault('init', 0.1)
    c = cal.setdefault('instcal_c', {})
    c.setdefault('num_basis', 8)
    c.setdefault('hidden', 256)
    c.setdefault('prior', 0.1)
    _pos_int_list([c['num_basis'], c['hidden']], 2, 'calibration.instcal_c.num_basis/hidden')
    return cfg


def stage_plan(cfg):
    """[(name, blocks, cin, bottleneck, cout, first_stride, [dilation per block])] for res2..res5."""
    bb = cfg['backbone']
    cin = bb['stem_channels'][-1]
    out = bb['res2_out_channels']
    width = bb['num_groups'] * bb['width_per_group']
    plan = []
    for i, name in enumerate(('res2', 'res3', 'res4', 'res5')):
        n = bb['blocks_per_stage'][i]
        if name == 'res5':
            dil = [bb['res5_dilation'] * m for m in bb['res5_multi_grid']]
        elif name == 'res4':
            dil = [bb['res4_dilation']] * n
        else:
            dil = [1] * n
        stride = 1 if (i == 0 or dil[0] > 1) else 2
        plan.append((name, n, cin, width, out, stride, dil))
        cin = out
        out *= 2
        width *= 2
    return plan


def feature_channels(cfg):
    p = {s[0]: s[4] for s in stage_plan(cfg)}
    return {'res2': p['res2'], 'res3': p['res3'], 'res5': p['res5']}


def _conv_bn(spec, p, cout, cin_per_group, k):
    spec[p + '.weight'] = (cout, cin_per_group, k, k)
    spec[p + '.norm.weight'] = (cout,)
    spec[p + '.norm.bias'] = (cout,)
    spec[p + '.norm.running_mean'] = (cout,)
    spec[p + '.norm.running_var'] = (cout,)
    spec[p + '.norm.num_batches_tracked'] = ()


def _dsconv(spec, p, cin, cout, k):
    _conv_bn(spec, p + '.depthwise', cin, 1, k)
    _conv_bn(spec, p + '.pointwise', cout, cin, 1)


def expected_tensors(cfg, include_num_batches_tracked=True):
    """OrderedDict detectron2 state_dict name -> shape tuple (num_batches_tracked has shape ())."""
    s = collections.OrderedDict()
    bb = cfg['backbone']
    prev = 3
    for i, c in enumerate(bb['stem_channels']):
        _conv_bn(s, 'backbone.stem.conv%d' % (i + 1), c, prev, 3)
        prev = c
    for name, n, cin, b, cout, _, _ in stage_plan(cfg):
        for j in range(n):
            p = 'backbone.%s.%d' % (name, j)
            ci = cin if j == 0 else cout
            if ci != cout:
                _conv_bn(s, p + '.shortcut', cout, ci, 1)
            _conv_bn(s, p + '.conv1', b, ci, 1)
            _conv_bn(s, p + '.conv2', b, b, 3)
            _conv_bn(s, p + '.conv3', cout, b, 1)
    fc = feature_channels(cfg)
    for hname in ('sem_seg_head', 'ins_embed_head'):
        h = cfg[hname]
        ds = h['use_depthwise_separable_conv']
        dc, pc, a = h['decoder_channels'], h['project_channels'], h['aspp_channels']
        # detectron2 builds decoder stages in in_features order: res2, res3, then res5 (ASPP)
        for idx, f in ((0, 'res2'), (1, 'res3')):
            p = '%s.decoder.%s' % (hname, f)
            _conv_bn(s, p + '.project_conv', pc[idx], fc[f], 1)
            cin = pc[idx] + dc[idx + 1]
            if ds:
                _dsconv(s, p + '.fuse_conv', cin, dc[idx], 5)
            else:
                _conv_bn(s, p + '.fuse_conv.0', dc[idx], cin, 3)
                _conv_bn(s, p + '.fuse_conv.1', dc[idx], dc[idx], 3)
        p = hname + '.decoder.res5.project_conv'
        c5 = fc['res5']
        _conv_bn(s, p + '.convs.0', a, c5, 1)
        for k in (1, 2, 3):
            if ds:
                _dsconv(s, p + '.convs.%d' % k, c5, a, 3)
            else:
                _conv_bn(s, p + '.convs.%d' % k, a, c5, 3)
        s[p + '.convs.4.1.weight'] = (a, c5, 1, 1)
        s[p + '.convs.4.1.bias'] = (a,)
        _conv_bn(s, p + '.project', a, 5 * a, 1)
        if hname == 'sem_seg_head':
            heads = [('head', h['head_channels'], ds, 'predictor', h['num_classes'])]
        else:
            heads = [('center_head', h['center_head_channels'], False, 'center_predictor', 1),
                     ('offset_head', h['offset_head_channels'], ds, 'offset_predictor', 2)]
        for hn, hc, hds, pn, pcount in heads:
            if hds:
                _dsconv(s, '%s.%s' % (hname, hn), dc[0], hc, 5)
            else:
                _conv_bn(s, '%s.%s.0' % (hname, hn), dc[0], dc[0], 3)
                _conv_bn(s, '%s.%s.1' % (hname, hn), hc, dc[0], 3)
            s['%s.%s.weight' % (hname, pn)] = (pcount, hc, 1, 1)
            s['%s.%s.bias' % (hname, pn)] = (pcount,)
    if not include_num_batches_tracked:
        s = collections.OrderedDict((k, v) for k, v in s.items() if not k.endswith('.num_batches_tracked'))
    return s


def bn_layers(cfg):
    """[(bn_name, channels)] e.g. ('backbone.stem.conv1.norm', 64), in state_dict order."""
    return [(k[:-len('.running_mean')], v[0]) for k, v in expected_tensors(cfg).items()
            if k.endswith('.norm.running_mean')]


def calib_tensor_specs(cfg, kind):
    """Calibration tensor names/shapes. kind: 'instcal-u' or 'instcal-c'."""
    s = collections.OrderedDict()
    cc = cfg['calibration']['instcal_c']
    K, Hd = cc['num_basis'], cc['hidden']
    for bn, c in bn_layers(cfg):
        if kind == 'instcal-u':
            s[bn + '.calib_mean'] = (c,)
            s[bn + '.calib_var'] = (c,)
        elif kind == 'instcal-c':
            p = bn + '.instcal_c'
            s[p + '.basis_mean'] = (K, c)
            s[p + '.basis_var'] = (K, c)
            for net in ('mean_net', 'var_net'):
                s['%s.%s.fc1.weight' % (p, net)] = (Hd, 2 * c)
                s['%s.%s.fc1.bias' % (p, net)] = (Hd,)
                s['%s.%s.fc2.weight' % (p, net)] = (K, Hd)
                s['%s.%s.fc2.bias' % (p, net)] = (K,)
        else:
            raise ValueError('calibration kind must be instcal-u or instcal-c, got %r' % kind)
    return s


def aspp_pool_kernel(pool_cfg, h, w, strict=False):
    """Effective AvgPool kernel for a res5 map of h x w, or None for global pooling.

    detectron2 raises unless h % kh == 0 and w % kw == 0 (strict=True reproduces that). Our
    relaxed rule (strict=False, what the C engine does): any size is accepted; each kernel
    dimension is clamped to the feature size, so a map smaller than the kernel pools globally
    along that dimension. For maps >= kernel this is exactly PyTorch's AvgPool2d(k, stride 1)."""
    if pool_cfg['type'] == 'global':
        return None
    kh, kw = pool_cfg['kernel']
    if strict and (h % kh or w % kw):
        raise ValueError('ASPP pooling: feature %dx%d not divisible by pool kernel %dx%d' % (h, w, kh, kw))
    return (min(kh, h), min(kw, w))


# --------------------------------------------------------------------------------------------
# torch model

if torch is not None:

    # Instance statistics are stop-gradient. A finite-difference check of the gradients must
    # therefore hold them fixed too: STATS_TAPE['mode'] = 'record' keeps every call's result in
    # order, 'replay' hands them back in the same order (see gen_model_grad.py --check-fd).
    STATS_TAPE = {'mode': None, 'list': [], 'i': 0}

    def instance_stats(x):
        """Per-image, per-channel mean and variance over HxW (unbiased; biased if HW < 2)."""
        tape = STATS_TAPE
        if tape['mode'] == 'replay':
            mu, var = tape['list'][tape['i']]
            tape['i'] += 1
            return mu, var
        with torch.no_grad():
            x = x.detach()
            mu = x.mean(dim=(2, 3))
            unbiased = x.shape[2] * x.shape[3] >= 2
            var = x.var(dim=(2, 3), unbiased=unbiased)
        if tape['mode'] == 'record':
            tape['list'].append((mu, var))
        return mu, var

    class MLP(nn.Module):
        def __init__(self, cin, hidden, cout):
            super().__init__()
            self.fc1 = nn.Linear(cin, hidden)
            self.fc2 = nn.Linear(hidden, cout)

        def forward(self, x):
            return torch.softmax(self.fc2(F.relu(self.fc1(x))), dim=1)

    class InstCalCParams(nn.Module):
        """<bn>.instcal_c.{basis_mean [K,C], basis_var [K,C], mean_net.fc1/fc2, var_net.fc1/fc2}."""

        def __init__(self, c, num_basis, hidden):
            super().__init__()
            self.basis_mean = nn.Parameter(torch.zeros(num_basis, c))
            self.basis_var = nn.Parameter(torch.zeros(num_basis, c))
            self.mean_net = MLP(2 * c, hidden, num_basis)
            self.var_net = MLP(2 * c, hidden, num_basis)

        def reset_parameters(self):  # InstCal-Pano initialisation
            nn.init.normal_(self.basis_mean, 0.0, 0.05)
            nn.init.normal_(self.basis_var, 0.0, 0.05)
            for net in (self.mean_net, self.var_net):
                for fc in (net.fc1, net.fc2):
                    nn.init.normal_(fc.weight, 0.0, 0.01)
                    nn.init.zeros_(fc.bias)

    class InstCalGParams(nn.Module):
        """<bn>.instcal_g.{mean [C], var [C], gate [2] = (slope, threshold)} (core/calib/gate.h)."""

        def __init__(self, c, init):
            super().__init__()
            self.mean = nn.Parameter(torch.full((c,), float(init)))
            self.var = nn.Parameter(torch.full((c,), float(init)))
            self.gate = nn.Parameter(torch.tensor([1.0, 0.0]))

    def drift_log(mu_t, var_t, mu_s, var_s):
        """InstCal-G's z: log of the channel mean of the squared Hellinger distance."""
        a, b = var_s + 1e-5, var_t + 1e-5
        bc = torch.sqrt(2 * torch.sqrt(a * b) / (a + b)) * torch.exp(-(mu_t - mu_s) ** 2 / (4 * (a + b)))
        return torch.log((1 - bc).mean(dim=1).clamp_min(1e-12))

    class CalibBN(nn.Module):
        """BatchNorm2d with detectron2's state_dict names plus calibration modes (forward only).

        mode 'none'     : eval BN with running stats
        mode 'manual'   : m_mu = m_var = clamp(m, 0, 1) (scalar, every layer)
        mode 'tbn'      : m = 1 exactly (pure instance statistics)
        mode 'instcal-u': m = clamp(calib_mean / calib_var, eps, 1-eps) per channel
        mode 'instcal-c': m = clamp(prior + softmax(MLP([stat_t; stat_s])) @ basis, eps, 1-eps)
        mode 'instcal-g': m = sigmoid(k (log drift - t)) * clamp(u, eps, 1-eps), mixture variance
        mode 'collect'  : (tests only) batch statistics over N,H,W are used AND stored as running stats
        """

        def __init__(self, c, eps=1e-5):
            super().__init__()
            self.num_features = c
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(c))
            self.bias = nn.Parameter(torch.zeros(c))
            self.register_buffer('running_mean', torch.zeros(c))
            self.register_buffer('running_var', torch.ones(c))
            self.register_buffer('num_batches_tracked', torch.tensor(0, dtype=torch.long))
            self.mode = 'none'
            self.m = None
            self.clamp_eps = eps
            self.prior = 0.1

        def attach_instcal_u(self, init=0.1):
            dt = self.running_mean.dtype
            self.calib_mean = nn.Parameter(torch.full((self.num_features,), float(init), dtype=dt))
            self.calib_var = nn.Parameter(torch.full((self.num_features,), float(init), dtype=dt))

        def attach_instcal_c(self, num_basis=8, hidden=256, prior=0.1):
            self.instcal_c = InstCalCParams(self.num_features, num_basis, hidden)
            self.instcal_c.reset_parameters()
            self.instcal_c.to(self.running_mean.dtype)
            self.prior = prior

        def attach_instcal_g(self, init=0.9):
            self.instcal_g = InstCalGParams(self.num_features, init).to(self.running_mean.dtype)

        def forward(self, x):
            mode = self.mode
            if mode == 'none':
                return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                    False, 0.0, self.eps)
            if mode == 'train':
                # BatchNorm2d.train() with momentum 0: batch statistics, differentiated through,
                # running statistics left as they are (gradient checks probe the same function).
                return F.batch_norm(x, self.running_mean.clone(), self.running_var.clone(), self.weight,
                                    self.bias, True, 0.0, self.eps)
            if mode == 'collect':
                with torch.no_grad():
                    self.running_mean.copy_(x.mean(dim=(0, 2, 3)))
                    self.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=x.numel() > x.shape[1]))
                return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
            mu_t, var_t = instance_stats(x)
            mu_s = self.running_mean.unsqueeze(0)
            var_s = self.running_var.unsqueeze(0)
            e = self.clamp_eps
            if mode == 'manual':
                m_mu = m_var = x.new_tensor(min(max(float(self.m), 0.0), 1.0))
            elif mode == 'tbn':
                m_mu = m_var = x.new_tensor(1.0)
            elif mode == 'instcal-u':
                m_mu = self.calib_mean.clamp(e, 1.0 - e).unsqueeze(0)
                m_var = self.calib_var.clamp(e, 1.0 - e).unsqueeze(0)
            elif mode == 'instcal-c':
                p = self.instcal_c
                a_mu = p.mean_net(torch.cat([mu_t, mu_s.expand_as(mu_t)], dim=1))      # [N,K]
                a_var = p.var_net(torch.cat([var_t, var_s.expand_as(var_t)], dim=1))   # [N,K]
                m_mu = torch.clamp(self.prior + a_mu @ p.basis_mean, e, 1.0 - e)       # [N,C]
                m_var = torch.clamp(self.prior + a_var @ p.basis_var, e, 1.0 - e)
            elif mode == 'instcal-g':
                p = self.instcal_g
                with torch.no_grad():
                    z = drift_log(mu_t, var_t, mu_s, var_s)                              # [N]
                g = torch.sigmoid(p.gate[0] * (z - p.gate[1])).unsqueeze(1)              # [N,1]
                m_mu = g * p.mean.clamp(e, 1.0 - e).unsqueeze(0)
                m_var = g * p.var.clamp(e, 1.0 - e).unsqueeze(0)
            else:
                raise ValueError('unknown calibration mode %r' % mode)
            mu = (1 - m_mu) * mu_s + m_mu * mu_t
            var = (1 - m_var) * var_s + m_var * var_t
            if mode == 'instcal-g':  # the mixture's variance (ops/bn.h, bn.mixture)
                var = var + m_var * (1 - m_var) * (mu_t - mu_s) ** 2
            scale = self.weight * torch.rsqrt(var + self.eps)
            shift = self.bias - mu * scale
            return x * scale[:, :, None, None] + shift[:, :, None, None]

    class Conv2d(nn.Conv2d):
        """detectron2.layers.Conv2d: conv -> optional .norm -> optional activation."""

        def __init__(self, *args, norm=None, activation=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.norm = norm
            self.activation = activation

        def forward(self, x):
            x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
            if self.norm is not None:
                x = self.norm(x)
            if self.activation is not None:
                x = self.activation(x)
            return x

    def conv_bn(cin, cout, k, eps, stride=1, padding=0, dilation=1, groups=1, relu=True):
        return Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                      bias=False, norm=CalibBN(cout, eps), activation=F.relu if relu else None)

    class DepthwiseSeparableConv2d(nn.Module):
        def __init__(self, cin, cout, k, padding, dilation, eps):
            super().__init__()
            self.depthwise = conv_bn(cin, cin, k, eps, padding=padding, dilation=dilation, groups=cin)
            self.pointwise = conv_bn(cin, cout, 1, eps)

        def forward(self, x):
            return self.pointwise(self.depthwise(x))

    class DeepLabStem(nn.Module):
        def __init__(self, widths, eps):
            super().__init__()
            self.conv1 = conv_bn(3, widths[0], 3, eps, stride=2, padding=1)
            self.conv2 = conv_bn(widths[0], widths[1], 3, eps, padding=1)
            self.conv3 = conv_bn(widths[1], widths[2], 3, eps, padding=1)

        def forward(self, x):
            x = self.conv3(self.conv2(self.conv1(x)))
            return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)

    class BottleneckBlock(nn.Module):
        def __init__(self, cin, b, cout, stride, dilation, eps):
            super().__init__()
            if cin != cout:
                self.shortcut = conv_bn(cin, cout, 1, eps, stride=stride, relu=False)
            else:
                self.shortcut = None
            self.conv1 = conv_bn(cin, b, 1, eps)
            self.conv2 = conv_bn(b, b, 3, eps, stride=stride, padding=dilation, dilation=dilation)
            self.conv3 = conv_bn(b, cout, 1, eps, relu=False)

        def forward(self, x):
            out = self.conv3(self.conv2(self.conv1(x)))
            sc = self.shortcut(x) if self.shortcut is not None else x
            return F.relu(out + sc)

    class ResNetDeepLab(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            eps = cfg['norm']['eps']
            self.stem = DeepLabStem(cfg['backbone']['stem_channels'], eps)
            self.stage_names = []
            for name, n, cin, b, cout, stride, dil in stage_plan(cfg):
                blocks = [BottleneckBlock(cin if j == 0 else cout, b, cout, stride if j == 0 else 1, dil[j], eps)
                          for j in range(n)]
                self.add_module(name, nn.Sequential(*blocks))
                self.stage_names.append(name)

        def forward(self, x):
            out = {}
            x = self.stem(x)
            for name in self.stage_names:
                x = getattr(self, name)(x)
                out[name] = x
            return {k: out[k] for k in ('res2', 'res3', 'res5')}

    class ASPPPool(nn.Module):
        def __init__(self, pool_cfg):
            super().__init__()
            self.pool_cfg = pool_cfg
            self.strict = False

        def forward(self, x):
            k = aspp_pool_kernel(self.pool_cfg, x.shape[2], x.shape[3], self.strict)
            if k is None:
                return F.adaptive_avg_pool2d(x, 1)
            return F.avg_pool2d(x, kernel_size=k, stride=1, padding=0)

    class ASPP(nn.Module):
        def __init__(self, cin, cout, dilations, pool_cfg, ds, dropout, eps):
            super().__init__()
            self.dropout = dropout
            convs = [conv_bn(cin, cout, 1, eps)]
            for d in dilations:
                if ds:
                    convs.append(DepthwiseSeparableConv2d(cin, cout, 3, d, d, eps))
                else:
                    convs.append(conv_bn(cin, cout, 3, eps, padding=d, dilation=d))
            convs.append(nn.Sequential(ASPPPool(pool_cfg),
                                       Conv2d(cin, cout, 1, bias=True, activation=F.relu)))
            self.convs = nn.ModuleList(convs)
            self.project = conv_bn(5 * cout, cout, 1, eps)

        def forward(self, x):
            res = [c(x) for c in self.convs]
            res[-1] = F.interpolate(res[-1], size=x.shape[-2:], mode='bilinear', align_corners=False)
            y = self.project(torch.cat(res, dim=1))
            return F.dropout(y, self.dropout, training=self.training) if self.dropout > 0 else y

    class DeepLabV3PlusDecoder(nn.Module):
        """The decoder part of detectron2's DeepLabV3PlusHead (decoder_only=True)."""

        def __init__(self, h, fc, eps):
            super().__init__()
            ds = h['use_depthwise_separable_conv']
            dc, pc = h['decoder_channels'], h['project_channels']
            self.in_features = ['res2', 'res3', 'res5']
            self.decoder = nn.ModuleDict()
            for idx, f in enumerate(self.in_features):
                st = nn.ModuleDict()
                if f == 'res5':
                    st['project_conv'] = ASPP(fc[f], h['aspp_channels'], h['aspp_dilations'], h['aspp_pooling'],
                                              ds, h['aspp_dropout'], eps)
                    st['fuse_conv'] = None
                else:
                    st['project_conv'] = conv_bn(fc[f], pc[idx], 1, eps)
                    cin = pc[idx] + dc[idx + 1]
                    if ds:
                        st['fuse_conv'] = DepthwiseSeparableConv2d(cin, dc[idx], 5, 2, 1, eps)
                    else:
                        st['fuse_conv'] = nn.Sequential(conv_bn(cin, dc[idx], 3, eps, padding=1),
                                                        conv_bn(dc[idx], dc[idx], 3, eps, padding=1))
                self.decoder[f] = st

        def layers(self, features):
            y = None
            for f in self.in_features[::-1]:
                proj = self.decoder[f]['project_conv'](features[f])
                if self.decoder[f]['fuse_conv'] is None:
                    y = proj
                else:
                    y = F.interpolate(y, size=proj.shape[2:], mode='bilinear', align_corners=False)
                    y = self.decoder[f]['fuse_conv'](torch.cat([proj, y], dim=1))
            return y

    def _head(cin, hc, ds, eps):
        if ds:
            return DepthwiseSeparableConv2d(cin, hc, 5, 2, 1, eps)
        return nn.Sequential(conv_bn(cin, cin, 3, eps, padding=1), conv_bn(cin, hc, 3, eps, padding=1))

    class SemSegHead(DeepLabV3PlusDecoder):
        def __init__(self, h, fc, eps):
            super().__init__(h, fc, eps)
            self.head = _head(h['decoder_channels'][0], h['head_channels'], h['use_depthwise_separable_conv'], eps)
            self.predictor = Conv2d(h['head_channels'], h['num_classes'], 1)

        def forward(self, features):
            return self.predictor(self.head(self.layers(features)))

    class InsEmbedHead(DeepLabV3PlusDecoder):
        def __init__(self, h, fc, eps):
            super().__init__(h, fc, eps)
            d0 = h['decoder_channels'][0]
            self.center_head = _head(d0, h['center_head_channels'], False, eps)  # always regular
            self.center_predictor = Conv2d(h['center_head_channels'], 1, 1)
            self.offset_head = _head(d0, h['offset_head_channels'], h['use_depthwise_separable_conv'], eps)
            self.offset_predictor = Conv2d(h['offset_head_channels'], 2, 1)

        def forward(self, features):
            y = self.layers(features)
            return self.center_predictor(self.center_head(y)), self.offset_predictor(self.offset_head(y))

    class PanopticDeepLab(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.cfg = cfg
            eps = cfg['norm']['eps']
            fc = feature_channels(cfg)
            self.backbone = ResNetDeepLab(cfg)
            self.sem_seg_head = SemSegHead(cfg['sem_seg_head'], fc, eps)
            self.ins_embed_head = InsEmbedHead(cfg['ins_embed_head'], fc, eps)

        def normalize(self, img):
            """img: [N,3,H,W] RGB 0..255 -> normalised network input."""
            mean = img.new_tensor(self.cfg['input']['pixel_mean']).view(1, 3, 1, 1)
            std = img.new_tensor(self.cfg['input']['pixel_std']).view(1, 3, 1, 1)
            return (img - mean) / std

        def forward(self, x):
            """x: normalised [N,3,H,W]. Returns dict with stride-4 outputs (*_s4, offset in stride-4
            units) and full-resolution outputs (x4 bilinear, offset x4) cropped to [H,W]."""
            feats = self.backbone(x)
            sem = self.sem_seg_head(feats)
            center, offset = self.ins_embed_head(feats)
            H, W = x.shape[2:]

            def up(t):
                return F.interpolate(t, scale_factor=4, mode='bilinear', align_corners=False)[:, :, :H, :W]
            return {'sem_logits_s4': sem, 'center_s4': center, 'offset_s4': offset,
                    'sem_logits': up(sem), 'center': up(center), 'offset': up(offset) * 4}

        # ---- calibration plumbing
        def bns(self):
            return [(n, m) for n, m in self.named_modules() if isinstance(m, CalibBN)]

        def attach_calibration(self, kinds=('instcal-u', 'instcal-c')):
            cal = self.cfg['calibration']
            for _, m in self.bns():
                m.clamp_eps = cal['clamp_eps']
                if 'instcal-u' in kinds:
                    m.attach_instcal_u(cal['instcal_u']['init'])
                if 'instcal-c' in kinds:
                    c = cal['instcal_c']
                    m.attach_instcal_c(c['num_basis'], c['hidden'], c['prior'])
                if 'instcal-g' in kinds:
                    m.attach_instcal_g()

        def set_calibration(self, mode, m=None):
            if mode not in CALIB_MODES + ('collect', 'train'):
                raise ValueError('unknown calibration mode %r' % mode)
            if mode == 'manual' and m is None:
                raise ValueError('manual calibration needs m')
            for _, bn in self.bns():
                bn.mode = mode
                bn.m = m

        def set_strict_pool(self, strict):
            for mod in self.modules():
                if isinstance(mod, ASPPPool):
                    mod.strict = strict

        def base_state_dict(self):
            """detectron2 names only (no calibration tensors)."""
            calib = set(calib_tensor_specs(self.cfg, 'instcal-u')) | set(calib_tensor_specs(self.cfg, 'instcal-c'))
            return collections.OrderedDict((k, v) for k, v in self.state_dict().items() if k not in calib)

    def build_model(cfg):
        if not isinstance(cfg, dict) or 'backbone' not in cfg:
            cfg = load_config(cfg)
        return PanopticDeepLab(cfg).eval()

    def load_weights(model, tensors, strict=True):
        """tensors: name -> numpy/torch array (e.g. from stio.load). Calibration tensors are
        attached automatically when present. num_batches_tracked may be absent."""
        names = set(tensors)
        kinds = []
        if any(n.endswith('.calib_mean') for n in names):
            kinds.append('instcal-u')
        if any('.instcal_c.' in n for n in names):
            kinds.append('instcal-c')
        if kinds:
            model.attach_calibration(kinds)
        sd = model.state_dict()
        missing = [k for k in sd if k not in names and not k.endswith('num_batches_tracked')]
        unexpected = [k for k in names if k not in sd]
        if strict and (missing or unexpected):
            raise KeyError('load_weights: missing %s unexpected %s' % (missing[:5], unexpected[:5]))
        with torch.no_grad():
            for k, v in tensors.items():
                if k in sd:
                    t = torch.as_tensor(v.copy() if hasattr(v, 'copy') else v)
                    if tuple(t.shape) != tuple(sd[k].shape):
                        raise ValueError('load_weights: %s shape %s, expected %s'
                                         % (k, tuple(t.shape), tuple(sd[k].shape)))
                    sd[k].copy_(t.to(sd[k].dtype))
        return model


# --------------------------------------------------------------------------------------------
# self-test

def _self_test():
    n_checks = 0
    for name, nkeys in (('cityscapes-r52', 508), ('cityscapes-r52-dsconv', 544)):
        cfg = load_config(os.path.join(CONFIG_DIR, name + '.json'))
        spec = expected_tensors(cfg)
        assert len(spec) == nkeys, (name, len(spec))
        assert len([k for k in spec if k.startswith('backbone.')]) == 330
        for k, shp in (('backbone.stem.conv1.weight', (64, 3, 3, 3)), ('backbone.stem.conv3.weight', (128, 64, 3, 3)),
                       ('backbone.res2.0.shortcut.weight', (256, 128, 1, 1)),
                       ('backbone.res5.2.conv2.weight', (512, 512, 3, 3)),
                       ('backbone.res5.0.shortcut.weight', (2048, 1024, 1, 1)),
                       ('sem_seg_head.decoder.res5.project_conv.convs.4.1.weight', (256, 2048, 1, 1)),
                       ('sem_seg_head.decoder.res5.project_conv.project.weight', (256, 1280, 1, 1)),
                       ('ins_embed_head.decoder.res2.project_conv.weight', (32, 256, 1, 1)),
                       ('sem_seg_head.predictor.weight', (19, 256, 1, 1)),
                       ('ins_embed_head.center_predictor.bias', (1,)),
                       ('ins_embed_head.center_head.1.weight', (32, 128, 3, 3)),
                       ('backbone.stem.conv1.norm.running_mean', (64,))):
            assert spec[k] == shp, (k, spec[k])
        if name.endswith('dsconv'):
            assert spec['sem_seg_head.decoder.res5.project_conv.convs.1.depthwise.weight'] == (2048, 1, 3, 3)
            assert spec['ins_embed_head.decoder.res2.fuse_conv.depthwise.weight'] == (160, 1, 5, 5)
            assert spec['ins_embed_head.offset_head.pointwise.weight'] == (32, 128, 1, 1)
        else:
            assert spec['sem_seg_head.decoder.res3.fuse_conv.0.weight'] == (256, 320, 3, 3)
            assert spec['ins_embed_head.decoder.res2.fuse_conv.0.weight'] == (128, 160, 3, 3)
        plan = stage_plan(cfg)
        assert [p[6] for p in plan] == [[1] * 3, [1] * 4, [1] * 6, [2, 4, 8]] and [p[5] for p in plan] == [1, 2, 2, 1]
        # InstCal-C parameter count from docs/calibration.md §2: 1040*C + 4624 per layer (K=8, hidden 256)
        cs = calib_tensor_specs(cfg, 'instcal-c')
        tot = sum(_numel(v) for k, v in cs.items() if k.startswith('backbone.stem.conv1.norm.'))
        assert tot == 1040 * 64 + 4624, tot
        n_checks += 1
        if torch is not None:
            with torch.device('meta') if hasattr(torch, 'device') and hasattr(torch.device, '__enter__') else _null():
                model = build_model(cfg)
            sd = model.state_dict()
            assert list(sd.keys()) == list(spec.keys()), set(sd) ^ set(spec)
            for k, v in sd.items():
                assert tuple(v.shape) == spec[k], (k, tuple(v.shape), spec[k])
            model.attach_calibration()
            sd = model.state_dict()
            calib = dict(calib_tensor_specs(cfg, 'instcal-u'))
            calib.update(calib_tensor_specs(cfg, 'instcal-c'))
            assert set(sd) == set(spec) | set(calib)
            for k in calib:
                assert tuple(sd[k].shape) == calib[k], k
            n_checks += 1
            print('%s: %d keys (+%d calibration) OK' % (name, len(spec), len(calib)))
    if torch is not None:
        cfg = load_config(os.path.join(CONFIG_DIR, 'tiny-test.json'))
        torch.manual_seed(0)
        model = build_model(cfg).double()
        assert list(model.state_dict()) == list(expected_tensors(cfg))
        x = torch.randn(2, 3, 64, 128, dtype=torch.float64)
        model.attach_calibration()
        with torch.no_grad():
            out = model(x)
            assert out['sem_logits'].shape == (2, 4, 64, 128) and out['offset'].shape == (2, 2, 64, 128)
            assert out['center_s4'].shape == (2, 1, 16, 32)
            # manual m=0 == none; tbn per-image (batch independent); instcal-u at m == manual m
            model.set_calibration('manual', 0.0)
            a = model(x)['sem_logits']
            model.set_calibration('none')
            b = model(x)['sem_logits']
            assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)
            model.set_calibration('tbn')
            a = model(x)['sem_logits']
            b = model(x[1:])['sem_logits']
            assert torch.allclose(a[1:], b, atol=1e-9, rtol=1e-9)
            for _, bn in model.bns():
                bn.calib_mean.fill_(0.3)
                bn.calib_var.fill_(0.3)
            model.set_calibration('instcal-u')
            a = model(x)['sem_logits']
            model.set_calibration('manual', 0.3)
            b = model(x)['sem_logits']
            assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)
            # instcal-c with zero basis == manual(prior)
            for _, bn in model.bns():
                bn.instcal_c.basis_mean.zero_()
                bn.instcal_c.basis_var.zero_()
            model.set_calibration('instcal-c')
            a = model(x)['sem_logits']
            model.set_calibration('manual', cfg['calibration']['instcal_c']['prior'])
            b = model(x)['sem_logits']
            assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)
            # strict pooling reproduces detectron2's divisibility check
            model.set_strict_pool(True)
            try:
                model(torch.randn(1, 3, 64, 128, dtype=torch.float64))
                raise AssertionError('strict pool did not raise')
            except ValueError:
                pass
            model.set_strict_pool(False)
            model(torch.randn(1, 3, 32, 80, dtype=torch.float64))  # res5 2x5 < kernel 3: clamped
        n_checks += 1
        print('tiny-test: forward/calibration identities OK')
    print('self-test passed (%d groups)%s' % (n_checks, '' if torch is not None else ' [torch not available: spec only]'))


class _null(object):
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--self-test', action='store_true', help='check key counts/shapes and calibration identities')
    ap.add_argument('--list', metavar='CONFIG', help='print expected tensor names and shapes for a config')
    ap.add_argument('--calib', choices=('instcal-u', 'instcal-c'), help='with --list: calibration tensors too')
    args = ap.parse_args(argv)
    if args.list:
        cfg = load_config(args.list)
        spec = expected_tensors(cfg)
        if args.calib:
            spec.update(calib_tensor_specs(cfg, args.calib))
        for k, v in spec.items():
            print(k, list(v))
        return 0
    if args.self_test:
        _self_test()
        return 0
    ap.print_help()
    return 2


if __name__ == '__main__':
    sys.exit(main())
