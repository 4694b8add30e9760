"""The anchored Eq.6 posterior with censored rows: an unbracketed optimum enters as an inequality (issue 20).

A cell whose best LR is the grid's edge says only that its optimum lies beyond the midpoint of the edge LR and its
inner neighbour (loss convex in ln η, Eq.2).  It used to enter as a guessed point one grid step past the edge; it now
enters as a probit (Tobit) term, P(ln η* beyond the bound) = Φ(s·(xᵀθ − b)/σ), σ² = the bound's blur (half a step:
noise and a non-parabolic curve) plus the power law's misfit.  Gaussian prior + Gaussian rows + probit terms: no
closed form; expectation propagation gives the Gaussian with the posterior's mean and covariance in a few sweeps over
the bounds (3×3 algebra, milliseconds).  With no censored row it is the closed form it replaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class Bound:
    """ln η* ≥ value (sign +1, the optimum past the grid's top) or ≤ value (sign −1), blurred by ``sd``."""

    x: np.ndarray  # the design row (1, ln N − ref, ln D − ref)
    value: float
    sign: float
    sd: float


def solve_posterior(
    design: np.ndarray, y: np.ndarray, var: np.ndarray, m0: np.ndarray, cov0: np.ndarray, bounds: list[Bound]
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and covariance over (offset, α, β): Gaussian prior (m0, cov0), Gaussian rows (design, y, var)
    and probit ``bounds``, the probit terms by expectation propagation (moment matching, Rasmussen & Williams 2006,
    Alg. 3.5): a bound far from the Gaussian part leaves a one-sided posterior whose mode sits on the bound, so its
    moments, not the mode and curvature (Laplace), give an interval that covers."""
    precision = np.linalg.inv(cov0) + design.T @ (design / var[:, None])
    linear = np.linalg.solve(cov0, m0) + design.T @ (y / var)
    if not bounds:
        return np.linalg.solve(precision, linear), np.linalg.inv(precision)
    xb = np.array([b.x for b in bounds])
    tau, nu = np.zeros(len(bounds)), np.zeros(len(bounds))  # each site's Gaussian in u = xᵀθ, natural parameters
    for _ in range(MAX_SWEEPS):
        before = tau.copy()
        for i, bound in enumerate(bounds):
            cov = np.linalg.inv(precision + xb.T @ (xb * tau[:, None]))
            mean = cov @ (linear + xb.T @ nu)
            site = _tilted(bound, float(xb[i] @ cov @ xb[i]), float(xb[i] @ mean), tau[i], nu[i])
            if site is not None:
                tau[i], nu[i] = site
        if np.max(np.abs(tau - before)) < 1e-10 * max(1.0, float(np.max(tau))):
            break
    cov = np.linalg.inv(precision + xb.T @ (xb * tau[:, None]))
    return cov @ (linear + xb.T @ nu), cov


MAX_SWEEPS = 50


def _tilted(bound: Bound, var: float, mean: float, tau: float, nu: float) -> tuple[float, float] | None:
    """One EP site update: the cavity N(m, v) times Φ(s·(u − b)/σ), matched in mean and variance."""
    cavity_tau = 1 / var - tau
    if cavity_tau <= 0:
        return None
    v = 1 / cavity_tau
    m = (mean / var - nu) * v
    scale = math.sqrt(bound.sd**2 + v)
    z = bound.sign * (m - bound.value) / scale
    ratio = math.exp(-0.5 * z * z - _LOG_SQRT_2PI - float(log_ndtr(z)))  # φ(z)/Φ(z), stable for z ≪ 0
    mu_hat = m + bound.sign * v * ratio / scale
    var_hat = v - v * v * ratio * (z + ratio) / scale**2
    if var_hat <= 0:
        return None
    return 1 / var_hat - cavity_tau, mu_hat / var_hat - m * cavity_tau
