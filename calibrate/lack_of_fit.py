"""Eq.2's lack of fit as a shared error of the optima (issue 20, interval coverage, third session).

Eq.2 reads each cell's optimum as the vertex of a parabola in ln η.  A loss basin that is not a parabola — steeper on
one side than the other, as LR curves usually are (the divergence side rises faster than the slow-learning side) —
moves every vertex the same way: toward the flatter side.  That error is *shared* by the cells (one training stack,
one basin shape), so it does not average out over cells and no residual of the Eq.6 fit can see it: it is a constant
offset of every row, and the calibrated law carries it to the target in full (benchmarks/calibrate_extrapolation.py
(a), asymmetric loss: coverage 79% of a 90% interval).

Measured per cell: the shift of the optimum when the quadratic on Eq.2's window is replaced by a cubic on the same
points (the next term of the expansion about the optimum).  A symmetric basin gives shifts that are noise about zero;
an asymmetric one gives shifts of one sign.  The shared part is the moment estimate b² = max(mean² − var/n, 0) of the
cells' shifts (the squared mean less its own sampling variance: zero when the shifts are noise).  The anchored fit adds
b² to the offset's posterior variance; it moves no point estimate.  The cubic corrects about half of a ×1.5/×0.5
asymmetry's vertex error (0.14 of 0.31 in ln η), so b is a lower bound on the shared error, not its value.
"""

from __future__ import annotations

import math

import numpy as np

# a shared vertex error at least this large (sd in ln η) is reported: the power law's own misfit at one cell
# (lrpredict.calibrate.prior.MISFIT_SD), the size of error the interval already budgets per row
REPORT_SD = 0.08


def cubic_shift(x: np.ndarray, y: np.ndarray, vertex: float) -> float | None:
    """The cubic's local minimum on the window's points (``x`` ln η, ``y`` loss) minus the quadratic's ``vertex``;
    None with fewer than 4 points or when the cubic has no local minimum inside the window."""
    if len(x) < 4:
        return None
    centre = float(np.mean(x))
    cubic = np.polyfit(x - centre, y, 3)
    slope, bend = np.polyder(cubic), np.polyder(cubic, 2)
    roots = [float(r.real) + centre for r in np.roots(slope) if abs(r.imag) < 1e-12]
    minima = [r for r in roots if np.polyval(bend, r - centre) > 0 and x.min() <= r <= x.max()]
    if not minima:
        return None
    return min(minima, key=lambda r: abs(r - vertex)) - vertex


def shared_vertex_sd(shifts: list[float | None]) -> float:
    """sd of the vertex error the cells share: sqrt(max(mean² − var/n, 0)) over the measured shifts; 0 with < 2."""
    values = np.array([s for s in shifts if s is not None and math.isfinite(s)], dtype=float)
    if len(values) < 2:
        return 0.0
    mean = float(values.mean())
    return math.sqrt(max(mean * mean - float(values.var(ddof=1)) / len(values), 0.0))
