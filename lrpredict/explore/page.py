"""Assemble the explorer's one self-contained HTML file: plotly.js inline, the grids gzipped into the page, no
network at view time."""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from lrpredict.explore import charts
from lrpredict.explore.grid import (
    BATCH_RATIO_RANGE,
    D_RANGE,
    MOE_RATIOS,
    N_RANGE,
    QUANTITIES,
    SuggestionGrid,
    evaluate,
    make_axes,
    measure_error,
)
from lrpredict.explore.sources import (
    CHART_RATIO,
    CURVE_POINTS_PER_DECADE,
    HORIZONS,
    LawGrid,
    calibrated_data,
    chart_laws,
    find_sweeps,
    law_grid,
    runs_data,
    sweep_cells,
)

ERROR_POINTS = 300  # random off-node points at which the interpolation is checked against suggest
# The page states twice the worst error measured (at least 0.1%): the measurement samples the grid, it is no bound.
ERROR_MARGIN = 2.0
START = {"dense": {"n": "1B", "d": "100B"}, "moe": {"n": "12B", "active": "1.3B", "d": "500B"}}


def stated_errors(measured: dict[str, float]) -> dict[str, float]:
    """The tolerance the page states per quantity: ERROR_MARGIN × the measured worst, at least 0.1%, 2 digits."""
    out = {}
    for q, e in measured.items():
        value = max(ERROR_MARGIN * e, 1e-3)
        digits = 10 ** (math.floor(math.log10(value)) - 1)
        out[q] = math.ceil(value / digits) * digits
    return out


def _grid_payload(grid: SuggestionGrid) -> dict[str, Any]:
    axes = grid.axes
    return {
        "axes": {"ratio": axes.ratio, "n": axes.n, "d": axes.d, "batch": axes.batch},
        "shape": list(axes.shape()),
        "quantities": list(QUANTITIES),
        "values": {q: [round(v, 6) for v in vs] for q, vs in grid.values.items()},
        "labels": grid.labels,
        "label_table": grid.label_table,
        "warnings": grid.warnings,
        "warning_table": grid.warning_table,
    }


def _law_payload(grid: LawGrid) -> dict[str, Any]:
    return {
        "id": grid.law.id,
        "status": grid.law.status,
        "ratios": [math.log10(r) for r in grid.ratios],
        "n": [round(math.log10(n), 6) for n in grid.n],
        "values": grid.values,
        "inside": grid.inside,
    }


def _encode(payload: dict[str, Any]) -> str:
    """JSON, gzipped, base64: the page unpacks it with the browser's DecompressionStream (no library)."""
    raw = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode()


def _method(grid: SuggestionGrid, per_decade: int, measured: dict[str, float], stated: dict[str, float]) -> str:
    names = {"lr": "peak LR", "lr_low": "band low", "lr_high": "band high", "batch": "batch", "weight_decay": "λ"}
    errors = ", ".join(f"{names[q]} {measured[q]:.2g}" for q in measured)
    tolerance = ", ".join(f"{names[q]} {stated[q]:.2g}" for q in stated)
    shape = grid.axes.shape()
    moe = (
        f" × {shape[0]} values of N_active/N ({', '.join(f'{r:.3g}' for r in MOE_RATIOS)})"
        if grid.arch == "moe"
        else ""
    )
    return (
        f"Every number is <code>lrpredict.suggest</code>'s (the default law, as <code>lrpredict suggest</code> without "
        f"--law), computed on a grid and interpolated in log space here: N {N_RANGE[0]:.0e}–{N_RANGE[1]:.0e} and D "
        f"{D_RANGE[0]:.0e}–{D_RANGE[1]:.0e} at {per_decade} points a decade plus each default law's domain edges "
        f"and the two sides of its switch to the compute law ({shape[1]} × {shape[2]} nodes){moe}; a fixed batch as "
        f"B/B_opt from {BATCH_RATIO_RANGE[0]:g} to {BATCH_RATIO_RANGE[1]:g} ({shape[3] - 1} nodes, the conditional "
        f"batch law's hinge at 1), plus the optimal batch. The laws are power laws, so this is exact inside each "
        f"piece. Worst relative error measured against suggest at {ERROR_POINTS} random points: {errors}; "
        f"the page claims agreement within {tolerance} (×{ERROR_MARGIN:g} the measured worst, at least 0.1%). Law, "
        "domain and warnings are the nearest grid point's. The schedule's warmup and decay steps are interpolated "
        "and rounded; the sequence count is batch / sequence length."
    )


def _calibrated_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return (
            '<p class="note">No calibrated law is installed for this architecture. <code>lrpredict calibrate</code> '
            "fits one to your own probes; it then appears here and in the charts with its 90% predictive interval.</p>"
        )
    head = "<tr><th>law</th><th>status</th><th>prior</th><th>cells (one-sided)</th><th>probe batch</th><th>fitted domain</th><th>validation</th></tr>"
    body = []
    for r in rows:
        domain = ", ".join(f"{k} {lo:.3g}–{hi:.3g}" for k, (lo, hi) in r["domain"].items()) or "not stated"
        validation = (
            "; ".join(f"{k}: {v}" for k, v in r["validation"].items())
            if isinstance(r["validation"], dict)
            else "none recorded"
        )
        cells = f"{r['cells'] or '?'} ({r['unbracketed']})"
        batch = f"{r['probe_batch']:.3g}" if r["probe_batch"] else "–"
        cols = [r["id"], r["status"], r["prior"], cells, batch, domain, validation]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cols) + "</tr>")
    note = (
        '<p class="note">Their LR and 90% interval at your run are in the table above; their curves in the charts.</p>'
    )
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>{note}"


def _figure_html(fig: Any, div_id: str) -> str:
    import plotly.io as pio

    config = {"responsive": True, "displaylogo": False}
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=config)


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _asset(name: str) -> str:
    return resources.files("lrpredict.explore").joinpath(name).read_text(encoding="utf-8")


def build_page(
    arch: str = "dense",
    laws: tuple[str, ...] = (),
    *,
    sweeps: str | Path | None = None,
    per_decade: int = 3,
    progress: Callable[[str], None] | None = None,
) -> str:
    """The explorer page for ``arch`` as one HTML string (see ``lrpredict explore``)."""
    from lrpredict import __version__

    say = progress or (lambda _message: None)
    axes = make_axes(arch, per_decade)
    say(f"suggest on {math.prod(axes.shape())} grid points")
    grid = evaluate(arch, axes)
    measured = measure_error(grid, ERROR_POINTS)
    stated = stated_errors(measured)
    chosen = chart_laws(arch, laws)
    say(f"{len(chosen)} laws on N × {len(HORIZONS)} horizons")
    law_grids = [law_grid(arch, law) for law in chosen]
    runs = runs_data(arch)
    ratio_index = (
        min(range(len(law_grids[0].ratios)), key=lambda i: abs(math.log(law_grids[0].ratios[i] / CHART_RATIO)))
        if law_grids
        else 0
    )
    folder = find_sweeps(sweeps)
    cells = sweep_cells(folder, arch, chosen)
    for cell in cells:
        cell["figure"] = json.loads(charts.sweep_chart(cell, arch).to_json())
    payload = {
        "arch": arch,
        "grid": _grid_payload(grid),
        "errors": {"measured": measured, "stated": stated},
        "ranges": {"n": list(N_RANGE), "d": list(D_RANGE), "ratio": [MOE_RATIOS[0], MOE_RATIOS[-1]]},
        "horizons": list(HORIZONS),
        "laws": [_law_payload(g) for g in law_grids],
        "sweeps": [{k: c[k] for k in ("n", "n_active", "tokens", "figure")} for c in cells],
    }
    figs = {
        kind: charts.law_chart(kind, law_grids, runs, arch, ratio_index) for kind in ("lr", "batch", "weight_decay")
    }
    start = START[arch]
    fields = {
        "arch": arch,
        "arch_title": "MoE models" if arch == "moe" else "dense models",
        "version": __version__,
        "css": _asset("page.css"),
        "js": _asset("page.js"),
        "plotlyjs": _plotly_js(),
        "n_note": " (MoE: total)" if arch == "moe" else "",
        "n0": start["n"],
        "d0": start["d"],
        "active_input": (
            '<label for="in-active">N_active: active non-embedding parameters</label>'
            f'<input type="text" id="in-active" value="{start["active"]}">'
            if arch == "moe"
            else ""
        ),
        "method": _method(grid, per_decade, measured, stated),
        "chart_lr": _figure_html(figs["lr"], "chart-lr"),
        "chart_batch": _figure_html(figs["batch"], "chart-batch"),
        "chart_wd": _figure_html(figs["weight_decay"], "chart-weight_decay"),
        "law_grid_note": f"N at {CURVE_POINTS_PER_DECADE} points a decade × D at {', '.join(f'{h:.0e}' for h in HORIZONS)}"
        + (f", N_active/N at {', '.join(f'{r:.3g}' for r in MOE_RATIOS)}" if arch == "moe" else ""),
        "calibrated": _calibrated_html(calibrated_data(arch)),
        "sweep_note": (
            f'<p class="note">Loss over LR × batch of the recorded cell nearest your run (<span id="sweep-distance"></span>), '
            f"from steplaw_{arch}.csv (Step Law, arXiv 2503.04715; --sweeps); ★ the recorded optimum, the other marks "
            "each law's LR and optimal batch there.</p>"
            if cells
            else '<p class="note">No Step Law sweeps available: <code>lrpredict explore --sweeps DIR</code> with a folder '
            f"holding steplaw_{arch}.csv (the Step Law LR × batch sweeps) draws the recorded cell nearest your run.</p>"
        ),
        "data": _encode(payload),
    }
    return Template(_asset("page.html")).substitute(fields)
