"""The band of LRs within a loss tolerance of the optimum, from the curvature of loss vs log LR.

Eq.2 of arXiv 2601.05049: at fixed (N, D), L(η) = L_min + C·(ln η − μ)².  Written relative to L_min,
L/L_min − 1 = k·(ln η − μ)², so the LRs within a tolerance t satisfy |ln η − μ| ≤ √(t/k).  No law publishes k;
ours is the median of quadratic fits around the best LR of every (N, D, batch) curve of the Step Law sweeps
(docs/log.md, 2026-11-24): dense 0.0099 (quartiles 0.0066–0.0155, 142 curves), MoE 0.0143 (0.0106–0.0190, 59).
"""

from __future__ import annotations

import math

CURVATURE = {"dense": 0.0099, "moe": 0.0143}
CURVATURE_SOURCE = "lrpredict fit of Eq.2 (arXiv 2601.05049) on the Step Law sweeps, docs/log.md 2026-11-24"
DEFAULT_TOLERANCE = 0.0025  # 0.25% of loss: the README of the sweeps notes several LRs often fall within it


def lr_band(lr: float, arch: str, tolerance: float = DEFAULT_TOLERANCE) -> tuple[float, float]:
    """(low, high) LRs expected within ``tolerance`` (relative loss) of the optimum at ``lr``."""
    half_width = math.sqrt(tolerance / CURVATURE[arch])
    return lr * math.exp(-half_width), lr * math.exp(half_width)
