"""The anchored Eq.6 posterior with censored rows: an unbracketed optimum enters as an inequality (issue 20).

A cell whose best LR is the grid's edge says only that its optimum lies beyond the midpoint of the edge LR and its
inner neighbour (loss convex in ln η, Eq.2).  It used to enter as a guessed point one grid step past the edge; it now
enters as a probit (Tobit) term, P(ln η* beyond the bound) = Φ(s·(xᵀθ − b)/σ), σ² = the bound's blur (half a step:
noise and a non-parabolic curve) plus the power law's misfit.  Gaussian prior + Gaussian rows + probit terms: the
log-posterior is concave, so Newton's method (with step halving) finds the mode in a few iterations, and the
covariance is the inverse Hessian there (Laplace).  With no censored row it is the closed form it replaces.
"""

from __future__ import annotations

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
    """Posterior mode and covariance over (offset, α, β): Gaussian prior (m0, cov0), Gaussian rows (design, y, var)
    and probit ``bounds``."""
    precision = np.linalg.inv(cov0) + design.T @ (design / var[:, None])
    linear = np.linalg.solve(cov0, m0) + design.T @ (y / var)
    theta = np.linalg.solve(precision, linear)
    if not bounds:
        return theta, np.linalg.inv(precision)
    xb = np.array([b.x for b in bounds])
    value = np.array([b.value for b in bounds])
    sign = np.array([b.sign for b in bounds])
    sd = np.array([b.sd for b in bounds])

    def objective(t: np.ndarray) -> float:
        z = sign * (xb @ t - value) / sd
        return float(-0.5 * t @ precision @ t + linear @ t + np.sum(log_ndtr(z)))

    def derivatives(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = sign * (xb @ t - value) / sd
        mills = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_ndtr(z))  # φ(z)/Φ(z), stable for z ≪ 0
        gradient = linear - precision @ t + xb.T @ (sign * mills / sd)
        hessian = precision + xb.T @ (xb * (mills * (z + mills) / sd**2)[:, None])  # minus the Hessian
        return gradient, hessian

    for _ in range(100):
        gradient, hessian = derivatives(theta)
        step = np.linalg.solve(hessian, gradient)
        current = objective(theta)
        size = 1.0
        while objective(theta + size * step) < current - 1e-12 and size > 1e-6:
            size /= 2
        theta = theta + size * step
        if np.max(np.abs(size * step)) < 1e-10:
            break
    _, hessian = derivatives(theta)
    return theta, np.linalg.inv(hessian)
