"""The explorer's charts as plotly figures (the ``explore`` extra): the laws against N with a horizon slider, and a
recorded sweep's loss over LR × batch.  Built here in Python; the page only moves the "your run" marker."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative

from lrpredict.explore.sources import HORIZONS, LawGrid
from lrpredict.units import format_size

KIND = {
    "lr": ("lr", "peak learning rate (AdamW)", "LR"),
    "batch": ("batch", "optimal batch (tokens per step)", "batch"),
    "weight_decay": ("weight_decay", "weight decay λ (powerlines-2025)", "λ"),
}
PALETTE = qualitative.D3
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}


def _split(curve: list[tuple[float, float | None, bool]]) -> tuple[list[Any], list[Any]]:
    """y for the solid (inside the fitted domain) and dashed (outside) traces; the dashed one takes the boundary
    points too, so the line is unbroken."""
    solid = [v if inside else None for _, v, inside in curve]
    dashed = []
    for k, (_, v, inside) in enumerate(curve):
        near_out = any(not curve[j][2] for j in (k - 1, k + 1) if 0 <= j < len(curve))
        dashed.append(v if (not inside or near_out) else None)
    return solid, dashed


def _law_traces(grid: LawGrid, colour: str, kind: str, ratio_index: int, h: int, visible: bool) -> list[go.Scatter]:
    q, _, short = KIND[kind]
    xs = grid.n
    curve = grid.curve(ratio_index, h, q)
    solid, dashed = _split(curve)
    name = f"{grid.law.id} [{grid.law.status}]"
    hover = f"{grid.law.id}<br>N=%{{x:.3s}}, D={format_size(HORIZONS[h])}<br>{short}=%{{y:.3g}}<extra></extra>"
    traces = []
    if kind == "lr":
        low = [v for _, v, _ in grid.curve(ratio_index, h, "lr_low")]
        high = [v for _, v, _ in grid.curve(ratio_index, h, "lr_high")]
        band = {"mode": "lines", "line": {"width": 0}, "legendgroup": grid.law.id, "showlegend": False,
                "hoverinfo": "skip", "visible": visible}  # fmt: skip
        traces.append(go.Scatter(x=xs, y=low, **band))
        traces.append(go.Scatter(x=xs, y=high, fill="tonexty", fillcolor=_alpha(colour, 0.12), **band))
    traces.append(go.Scatter(x=xs, y=solid, mode="lines", name=name, legendgroup=grid.law.id, visible=visible,
                             line={"color": colour, "width": 2.4}, hovertemplate=hover))  # fmt: skip
    traces.append(go.Scatter(x=xs, y=dashed, mode="lines", name=name, legendgroup=grid.law.id, showlegend=False,
                             visible=visible, line={"color": colour, "width": 1.3, "dash": "dash"},
                             hovertemplate=hover))  # fmt: skip
    return traces


def _alpha(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _runs_trace(runs: list[dict[str, Any]], kind: str) -> go.Scatter:
    key = {"lr": "lr", "batch": "batch", "weight_decay": "weight_decay"}[kind]
    rows = [r for r in runs if r[key]]
    text = [
        f"<b>{r['model']}</b> ({r['id']})<br>N={format_size(r['params'])}"
        + (f" ({format_size(r['active_params'])} active)" if r["active_params"] else "")
        + f", D={format_size(r['tokens'])}<br>peak LR {r['lr']:.3g}, batch {format_size(r['batch'])} tokens"
        + (f", λ {r['weight_decay']:.2g}" if r["weight_decay"] is not None else "")
        + f"<br>source ({r['status']}): {r['source'][:90]}"
        for r in rows
    ]
    return go.Scatter(
        x=[r["params"] for r in rows], y=[r[key] for r in rows], mode="markers", name="published runs (teams' choices)",
        marker={"symbol": "diamond", "size": 8, "color": "#444", "line": {"color": "white", "width": 1}},
        text=text, hovertemplate="%{text}<extra></extra>",
    )  # fmt: skip


def law_chart(kind: str, grids: list[LawGrid], runs: list[dict[str, Any]], arch: str, ratio_index: int) -> go.Figure:
    """``kind`` ("lr", "batch", "weight_decay") of every law against N, one horizon at a time (slider), solid inside
    each law's fitted domain and dashed outside, the LR band shaded; the published runs; "your run" (last trace)."""
    fig = go.Figure()
    groups: list[list[int]] = []
    start = len(HORIZONS) - 3  # 1e12 tokens: the scale of the runs people plan
    for h in range(len(HORIZONS)):
        first = len(fig.data)
        for i, grid in enumerate(grids):
            fig.add_traces(_law_traces(grid, PALETTE[i % len(PALETTE)], kind, ratio_index, h, h == start))
        groups.append(list(range(first, len(fig.data))))
    fig.add_trace(_runs_trace(runs, kind))
    fig.add_trace(go.Scatter(x=[], y=[], mode="markers", name="your run", hovertemplate="your run: %{y:.3g}<extra></extra>",
                             marker={"symbol": "star", "size": 16, "color": "#d62728", "line": {"color": "black", "width": 1}}))  # fmt: skip
    steps = []
    for h, members in enumerate(groups):
        visible = [True] * len(fig.data)
        for g in groups:
            for index in g:
                visible[index] = g is members
        steps.append({"method": "restyle", "label": format_size(HORIZONS[h]), "args": [{"visible": visible}]})
    _, ylabel, _ = KIND[kind]
    which = "total; curves at N_active = N/8" if arch == "moe" else "non-embedding parameters"
    fig.update_layout(
        sliders=[{"active": start, "steps": steps, "currentvalue": {"prefix": "law curves at horizon D = "},
                  "pad": {"t": 40}, "len": 0.9}],
        xaxis={"type": "log", "title": f"N ({which})", "exponentformat": "SI"},
        yaxis={"type": "log", "title": ylabel, "exponentformat": "power" if kind != "batch" else "SI"},
        template="plotly_white", font=FONT, height=460, margin={"l": 70, "r": 20, "t": 30, "b": 40},
        legend={"font": {"size": 10}, "bgcolor": "rgba(255,255,255,0.7)"}, showlegend=kind == "lr",
    )  # fmt: skip
    return fig


def _ticks(values: list[float]) -> tuple[list[float], list[str]]:
    return [math.log10(v) for v in values], [f"{v:.3g}" if v < 1 else format_size(v) for v in values]


def sweep_chart(cell: dict[str, Any], arch: str) -> go.Figure:
    """The recorded loss of one Step Law sweep cell over log LR × log batch, its optimum and each law's point."""
    xs = [math.log10(v) for v in cell["lrs"]]
    ys = [math.log10(v) for v in cell["batches"]]
    best = cell["best"]
    fig = go.Figure(
        go.Heatmap(
            x=xs,
            y=ys,
            z=cell["loss"],
            colorscale="Viridis_r",
            zmin=best["loss"],
            zmax=best["loss"] * 1.06,
            colorbar={"title": "final loss", "len": 0.9},
            hoverongaps=False,
            hovertemplate="LR %{customdata[0]:.3g}, batch %{customdata[1]:.3s}<br>loss %{z:.4f}<extra></extra>",
            customdata=[[[lr, b] for lr in cell["lrs"]] for b in cell["batches"]],
        )
    )
    fig.add_trace(go.Scatter(x=[math.log10(best["lr"])], y=[math.log10(best["batch"])], mode="markers",
                             name=f"recorded optimum (loss {best['loss']:.4f})",
                             marker={"symbol": "star", "size": 18, "color": "white", "line": {"color": "black", "width": 1.5}}))  # fmt: skip
    symbols = ("diamond", "circle", "square", "triangle-up", "cross", "x", "pentagon", "hexagon")
    for i, (name, lr, batch) in enumerate(cell["predictions"]):
        fig.add_trace(go.Scatter(x=[math.log10(lr)], y=[math.log10(batch)], mode="markers", name=name,
                                 marker={"symbol": symbols[i % len(symbols)], "size": 13 if i == 0 else 10,
                                         "color": "#d62728" if i == 0 else PALETTE[(i - 1) % len(PALETTE)],
                                         "line": {"color": "white", "width": 1}},
                                 hovertemplate=f"{name}: LR %{{customdata[0]:.3g}}, batch %{{customdata[1]:.3s}}<extra></extra>",
                                 customdata=[[lr, batch]]))  # fmt: skip
    n = format_size(cell["n"]) + (f" ({format_size(cell['n_active'])} active)" if arch == "moe" else "")
    lr_ticks = _ticks([v for v in (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2)])
    b_ticks = _ticks([2**k * 1024 for k in range(4, 16)])
    fig.update_layout(
        title={"text": f"Step Law sweep cell nearest your run: N = {n}, D = {format_size(cell['tokens'])}", "font": {"size": 13}},
        xaxis={"title": "peak learning rate (log scale)", "tickvals": lr_ticks[0], "ticktext": lr_ticks[1]},
        yaxis={"title": "batch (tokens per step, log scale)", "tickvals": b_ticks[0], "ticktext": b_ticks[1]},
        template="plotly_white", font=FONT, height=470, margin={"l": 70, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.18, "font": {"size": 10}},
    )  # fmt: skip
    return fig
