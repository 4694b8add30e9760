"""A calibration's interactive report, ``report.html`` next to report.md (plotly, the ``explore`` extra): every
cell's loss against LR with its fitted parabola (Eq.2), the cells' optima against the fitted law η*(N, D) and its
prior (Eq.6), and the prior against the posterior of (offset, α, β).  One self-contained file, plotly.js inline.
Without plotly it writes nothing and says so in one line: the calibration never fails for want of a picture."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from lrpredict.calibrate.fit import CalibrationFit, Observation, Optimum

FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}


def write_report_html(out_dir: Path, fit: CalibrationFit, observations: list[Observation], *, title: str) -> str:
    """Write ``out_dir/report.html``; returns the line report.md shows about it."""
    try:
        import plotly.graph_objects as go
        import plotly.io as pio
    except ImportError:
        return "(report.html skipped: plotly is not installed; pip install 'lrpredict[explore]')"
    del observations  # the cells carry every probe's (LR, loss); kept in the signature to match write_report
    figures = [("Loss against LR per cell (Eq.2)", _parabolas(go, fit))]
    if fit.lr_law is not None:
        figures.append(("Cell optima against the law η*(N, D) (Eq.6)", _optima(go, fit)))
        if fit.lr_law.posterior is not None:
            figures.append(("Prior and posterior of the law's parameters", _prior_posterior(go, fit)))
    parts = [
        f"<h2>{html.escape(name)}</h2>"
        + pio.to_html(
            fig, include_plotlyjs="inline" if i == 0 else False, full_html=False, config={"displaylogo": False}
        )
        for i, (name, fig) in enumerate(figures)
    ]
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>body{{font:14px system-ui,sans-serif;margin:24px 32px;color:#1d2433}}h2{{font-size:16px}}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>"
    )
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    return "[report.html](report.html): the figures below, interactive (hover for each probe)."


def _parabolas(go: Any, fit: CalibrationFit) -> Any:
    """Each cell's probes and, where it has one, its fitted parabola in ln LR, one colour per cell."""
    from plotly.colors import sample_colorscale

    cells = [c for c in fit.cells if any(loss is not None for loss in c.losses)]
    colours = sample_colorscale("Viridis", [i / max(len(cells) - 1, 1) * 0.9 for i in range(len(cells))])
    fig = go.Figure()
    for cell, colour in zip(cells, colours, strict=True):
        name = f"N={cell.n:.3g}, D={cell.tokens:.3g}, B={cell.batch_tokens:.3g}"
        points = sorted((lr, loss) for lr, loss in zip(cell.lrs, cell.losses, strict=True) if loss is not None)
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="markers", name=name,
                                 legendgroup=name, marker={"color": colour, "size": 7}))  # fmt: skip
        if cell.fit is not None and cell.fit.curvature > 0:
            xs = [cell.fit.log_lr_opt + t / 10 for t in range(-15, 16)]
            edge = "" if cell.fit.bracketed else " (optimum at the grid's edge)"
            fig.add_trace(go.Scatter(x=[math.exp(x) for x in xs], mode="lines", legendgroup=name, showlegend=False,
                                     y=[cell.fit.loss_min + cell.fit.curvature * (x - cell.fit.log_lr_opt) ** 2 for x in xs],
                                     line={"color": colour, "width": 1.5}, name=f"fit: LR* {cell.fit.lr_opt:.3g}{edge}"))  # fmt: skip
    fig.update_layout(xaxis={"type": "log", "title": "peak learning rate (AdamW)"},
                      yaxis={"title": "held-out loss (nats/token)"}, template="plotly_white", font=FONT, height=480)  # fmt: skip
    return fig


def _optima(go: Any, fit: CalibrationFit) -> Any:
    """The Eq.6 rows (each (N, D)'s optimum, moved to B_opt when the fit is anchored, ± its se; a triangle: a
    one-sided bound at the grid's edge) against the fitted law (solid) and its prior (dashed), one colour per D."""
    from plotly.colors import qualitative

    law = fit.lr_law
    assert law is not None
    rows = fit.optima or [
        Optimum(c.n, c.tokens, c.fit.log_lr_opt, 0.0, None if c.fit.bracketed else "edge")
        for c in fit.cells
        if c.fit is not None
    ]
    if not rows:
        return go.Figure()
    low, high = min(r.n for r in rows) / 2, max(r.n for r in rows) * 2
    ns = [low * (high / low) ** (t / 30) for t in range(31)]
    fig = go.Figure()
    for i, tokens in enumerate(sorted({r.tokens for r in rows})):
        colour = qualitative.D3[i % len(qualitative.D3)]
        fig.add_trace(go.Scatter(x=ns, y=[law.lr(n, tokens) for n in ns], mode="lines", line={"color": colour},
                                 name=f"fitted law, D={tokens:.3g}"))  # fmt: skip
        if fit.prior is not None:
            fig.add_trace(go.Scatter(x=ns, y=[math.exp(fit.prior.ln_value(n, tokens)) for n in ns], mode="lines",
                                     line={"dash": "dash", "color": colour}, name=f"prior {fit.prior.law_id}, D={tokens:.3g}"))  # fmt: skip
        at = [r for r in rows if r.tokens == tokens]
        fig.add_trace(go.Scatter(
            x=[r.n for r in at], y=[math.exp(r.ln_y) for r in at], mode="markers", name=f"optima, D={tokens:.3g}",
            marker={"color": colour, "size": 10, "symbol": ["triangle-up" if r.bound else "circle" for r in at],
                    "line": {"color": "white", "width": 1}},
            error_y={"type": "data", "symmetric": False, "array": [math.exp(r.ln_y) * math.expm1(r.se) for r in at],
                     "arrayminus": [math.exp(r.ln_y) * -math.expm1(-r.se) for r in at]},
        ))  # fmt: skip
    fig.update_layout(xaxis={"type": "log", "title": "N (non-embedding parameters)"},
                      yaxis={"type": "log", "title": "optimal peak LR" + (" (at B_opt)" if fit.prior else "")},
                      template="plotly_white", font=FONT, height=480)  # fmt: skip
    return fig


def _prior_posterior(go: Any, fit: CalibrationFit) -> Any:
    """(offset at the reference, α, β): prior mean ± 1 sd against posterior mean ± 1 sd, one axis each (their
    scales differ tenfold)."""
    from plotly.subplots import make_subplots

    assert fit.lr_law is not None and fit.lr_law.posterior is not None
    p = fit.lr_law.posterior
    names = ["offset: ln η at the reference N, D", "α: N exponent", "β: D exponent"]
    sd = [math.sqrt(max(p.covariance[i][i], 0.0)) for i in range(3)]
    fig = make_subplots(rows=3, cols=1, subplot_titles=names, vertical_spacing=0.16)
    for i in range(3):
        if p.prior_mean is not None and p.prior_sd is not None:
            fig.add_trace(go.Scatter(x=[p.prior_mean[i]], y=["prior"], mode="markers", showlegend=i == 0,
                                     name=f"prior ({p.prior}) ± 1 sd", error_x={"array": [p.prior_sd[i]]},
                                     marker={"size": 10, "color": "#888"}), row=i + 1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=[p.mean[i]], y=["posterior"], mode="markers", showlegend=i == 0,
                                 name="posterior ± 1 sd", error_x={"array": [sd[i]]},
                                 marker={"size": 10, "color": "#d62728"}), row=i + 1, col=1)  # fmt: skip
    fig.update_layout(template="plotly_white", font=FONT, height=460)
    return fig
