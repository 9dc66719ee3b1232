"""Golden fixture for InstCal-G (core/calib/gate.h): the shift-gated strengths,
the mixture-variance BN (core/ops/bn.h, bn.mixture) and their gradients.

Run with Debian's python3 (torch, numpy):
    /usr/bin/python3 tests/golden/gen_calib_g.py
Writes tests/golden/fixtures/calib_g.safetensors, read by
tests/core/calib/test_gate.c.

One BN layer of C channels on N images: image 0 drawn near the source
statistics (the gate should stay nearly closed), the others shifted by
growing amounts. Everything in float64, instance statistics under no_grad
(stop-gradient, as InstCal-Pano):
  h_c  = 1 - sqrt(2 sqrt(a b) / (a + b)) exp(-(mu_t - mu_s)^2 / (4 (a + b))),
         a = var_s + 1e-5, b = var_t + 1e-5 (squared Hellinger distance)
  z    = log(mean_c h_c),  g = sigmoid(k (z - t))
  m    = g * clamp(u, eps, 1 - eps)               (mean and variance)
  mu   = (1 - m_mu) mu_s + m_mu mu_t
  var  = (1 - m_var) var_s + m_var var_t + m_var (1 - m_var) (mu_t - mu_s)^2
  y    = relu(gamma (x - mu) / sqrt(var + eps) + beta),  L = sum(y * r)
Gradients of L: x, gamma, beta, u_mu, u_var, gate (k, t).
"""
import os

import torch

from stio import save

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')


def main():
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(15)
    n, c, h, w = 3, 5, 6, 7
    eps, clamp_eps = 1e-5, 1e-5
    mean_s = torch.randn(c, generator=g) * 0.5
    var_s = torch.rand(c, generator=g) * 1.5 + 0.5
    shift = torch.tensor([0.0, 0.8, 2.0]).view(n, 1, 1, 1)
    scale = torch.tensor([1.0, 0.6, 2.5]).view(n, 1, 1, 1)
    x0 = (mean_s.view(1, c, 1, 1) + shift * torch.randn(n, c, 1, 1, generator=g)
          + scale * var_s.sqrt().view(1, c, 1, 1) * torch.randn(n, c, h, w, generator=g))
    gamma0 = torch.rand(c, generator=g) + 0.5
    beta0 = torch.randn(c, generator=g) * 0.3
    u_mu0 = torch.rand(c, generator=g) * 0.8 + 0.15
    u_var0 = torch.rand(c, generator=g) * 0.8 + 0.15
    u_var0[1] = 1.5  # one strength outside [eps, 1 - eps]: clamped, gradient passes
    gate0 = torch.tensor([1.7, -2.0])
    r = torch.randn(n, c, h, w, generator=g)

    x = x0.clone().requires_grad_()
    gamma, beta = gamma0.clone().requires_grad_(), beta0.clone().requires_grad_()
    u_mu, u_var = u_mu0.clone().requires_grad_(), u_var0.clone().requires_grad_()
    gate = gate0.clone().requires_grad_()
    with torch.no_grad():
        mu_t = x.mean(dim=(2, 3))
        var_t = x.var(dim=(2, 3), unbiased=True)
        a, b = var_s + 1e-5, var_t + 1e-5
        bc = torch.sqrt(2 * torch.sqrt(a * b) / (a + b)) * torch.exp(-(mu_t - mean_s) ** 2 / (4 * (a + b)))
        drift = (1 - bc).mean(dim=1)
        z = torch.log(drift.clamp_min(1e-12))
    gt = torch.sigmoid(gate[0] * (z - gate[1]))  # (n)

    def clamp_pass(u):  # clamp in value, identity in gradient (a projection)
        return u + (u.clamp(clamp_eps, 1 - clamp_eps) - u).detach()

    m_mu = gt[:, None] * clamp_pass(u_mu)[None, :]
    m_var = gt[:, None] * clamp_pass(u_var)[None, :]
    mu = (1 - m_mu) * mean_s + m_mu * mu_t
    var = (1 - m_var) * var_s + m_var * var_t + m_var * (1 - m_var) * (mu_t - mean_s) ** 2
    y = torch.relu(gamma[None, :, None, None] * (x - mu[:, :, None, None])
                   / torch.sqrt(var[:, :, None, None] + eps) + beta[None, :, None, None])
    loss = (y * r).sum()
    loss.backward()
    t = {'x': x0, 'r': r, 'gamma': gamma0, 'beta': beta0, 'mean_s': mean_s, 'var_s': var_s,
         'u_mu': u_mu0, 'u_var': u_var0, 'gate': gate0,
         'mean_t': mu_t, 'var_t': var_t, 'drift': drift, 'g': gt.detach(),
         'm_mu': m_mu.detach(), 'm_var': m_var.detach(), 'y': y.detach(),
         'd_x': x.grad, 'd_gamma': gamma.grad, 'd_beta': beta.grad,
         'd_u_mu': u_mu.grad, 'd_u_var': u_var.grad, 'd_gate': gate.grad}
    save(os.path.join(OUT, 'calib_g.safetensors'), t)
    print('gates', gt.detach().numpy(), 'drift', drift.numpy())


if __name__ == '__main__':
    main()
