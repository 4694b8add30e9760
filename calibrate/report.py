"""A calibration's report: a Markdown page and, with matplotlib (the ``plot`` extra), PNG figures.

Figures: the fitted parabola of every (N, D, B) cell (Eq.2), loss vs horizon per LR (Eq.4), and the joint law
η*(N, D) with the probe optima (Eq.6).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from lrpredict.calibrate.fit import CalibrationFit, Observation


def write_report(
    out_dir: Path,
    fit: CalibrationFit,
    observations: list[Observation],
    *,
    title: str,
    law_id: str | None,
    summary: list[str],
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _plots(out_dir, fit, observations)
    lines = [f"# {title}", "", *summary, ""]
    if fit.lr_law is not None:
        law = fit.lr_law
        lines += [
            "## Joint law (Eq.6)",
            "",
            f"η*(N, D) = {law.c:.4g} · N^{law.alpha:.4f} · D^{law.beta:.4f}  "
            f"(cells {law.n_cells}, residual RMS in ln η {law.residual_rms:.3f})",
            "",
            "| coefficient | value | bootstrap 90% interval |",
            "|---|---|---|",
            f"| c | {law.c:.4g} | {law.intervals['c'][0]:.4g} – {law.intervals['c'][1]:.4g} |",
            f"| α (N) | {law.alpha:.4f} | {law.intervals['alpha'][0]:.4f} – {law.intervals['alpha'][1]:.4f} |",
            f"| β (D) | {law.beta:.4f} | {law.intervals['beta'][0]:.4f} – {law.intervals['beta'][1]:.4f} |",
            "",
        ]
    if law_id:
        lines += [f"Installed as law `{law_id}`: `lrpredict suggest ... --law {law_id}`.", ""]
    lines += [
        "## Cells (Eq.2)",
        "",
        "| N | D | B | LRs | best LR | min loss | bracketed |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in fit.cells:
        if cell.fit is None:
            lines.append(
                f"| {cell.n:.3g} | {cell.tokens:.3g} | {cell.batch_tokens:.3g} | {len(cell.lrs)} | – | – | – |"
            )
            continue
        mark = "" if cell.fit.bracketed else " (edge)"
        lines.append(
            f"| {cell.n:.3g} | {cell.tokens:.3g} | {cell.batch_tokens:.3g} | {len(cell.lrs)} | "
            f"{cell.fit.lr_opt:.3g}{mark} | {cell.fit.loss_min:.4f} | {cell.fit.bracketed} |"
        )
    if fit.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in fit.warnings]
    lines += [""] + ([f"![{name}]({name})" for name in figures] or ["(install lrpredict[plot] for figures)"])
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _colours(plt, count: int) -> list:
    """``count`` distinct colours from one perceptual colormap (viridis), so no two entries share a colour."""
    cmap = plt.get_cmap("viridis")
    return [cmap(i / max(count - 1, 1) * 0.9) for i in range(count)]  # stop short of the palest yellow


def _legend(ax, count: int) -> None:
    ax.legend(fontsize=6 if count > 8 else 7, ncol=1 if count <= 12 else 2, loc="center left",
              bbox_to_anchor=(1.01, 0.5), frameon=False)  # fmt: skip


def _plots(out_dir: Path, fit: CalibrationFit, observations: list[Observation]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []

    cells = [
        (cell, sorted((lr, loss) for lr, loss in zip(cell.lrs, cell.losses, strict=True) if loss is not None))
        for cell in fit.cells
        if cell.fit is not None
    ]
    cells = [(cell, points) for cell, points in cells if points]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for (cell, points), colour in zip(cells, _colours(plt, len(cells)), strict=True):
        label = f"N={cell.n:.3g}, D={cell.tokens:.3g}, B={cell.batch_tokens:.3g}"
        ax.plot(*zip(*points, strict=True), "o", ms=4, color=colour, label=label)  # probes and parabola: one colour
        if cell.fit.curvature > 0:
            xs = [cell.fit.log_lr_opt + t / 10 for t in range(-15, 16)]
            ax.plot(
                [math.exp(x) for x in xs],
                [cell.fit.loss_min + cell.fit.curvature * (x - cell.fit.log_lr_opt) ** 2 for x in xs],
                color=colour,
                lw=1.2,
            )
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate (AdamW)")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title("Eq.2: loss vs LR per (N, D, B) cell — dots: probes, lines: fitted parabolas", fontsize=10)
    if cells:
        _legend(ax, len(cells))
    names.append(_save(fig, out_dir / "parabolas.png"))

    from matplotlib import cm, colors

    fig, ax = plt.subplots(figsize=(9, 4.8))
    runs: dict[tuple[float, float], list[tuple[float, float]]] = {}
    for o in observations:
        if o.loss is not None:
            runs.setdefault((o.n, o.lr), []).append((o.tokens, o.loss))
    if runs:
        # colour = peak LR on one perceptual colormap (colorbar), marker = model size (legend): no two lines alike
        lr_norm = colors.LogNorm(vmin=min(lr for _, lr in runs), vmax=max(lr for _, lr in runs))
        sizes = sorted({n for n, _ in runs})
        markers = dict(zip(sizes, "osD^vP*Xph" * (len(sizes) // 10 + 1), strict=False))
        for (n, lr), points in sorted(runs.items()):
            ax.plot(*zip(*sorted(points), strict=True), marker=markers[n], ms=4, lw=1, color=cm.viridis(lr_norm(lr)))
        for n in sizes:
            ax.plot([], [], marker=markers[n], ls="", color="0.3", label=f"N={n:.3g}")
        ax.legend(fontsize=7, title="model size", title_fontsize=7, loc="upper right")
        fig.colorbar(cm.ScalarMappable(norm=lr_norm, cmap=cm.viridis), ax=ax, label="peak learning rate (AdamW)")
    ax.set_xscale("log")
    ax.set_xlabel("training tokens D")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title("Eq.4: loss vs horizon, one line per (N, peak LR)", fontsize=10)
    names.append(_save(fig, out_dir / "horizons.png"))

    if fit.lr_law is not None:
        fig, ax = plt.subplots(figsize=(8, 4.8))
        optima = [(c.n, c.tokens, c.fit.lr_opt) for c in fit.cells if c.fit is not None and c.fit.bracketed]
        if optima:
            d_norm = colors.LogNorm(vmin=min(d for _, d, _ in optima), vmax=max(d for _, d, _ in optima) * 1.0001)
            low, high = min(n for n, _, _ in optima), max(n for n, _, _ in optima)
            ns = [low * (high / low) ** (t / 20) for t in range(21)]
            for i, tokens in enumerate(sorted({d for _, d, _ in optima})):
                ax.plot(ns, [fit.lr_law.lr(n, tokens) for n in ns], color=cm.viridis(d_norm(tokens)), lw=1.2,
                        label="law η*(N, D), one line per D" if i == 0 else None)  # fmt: skip
            ax.scatter([o[0] for o in optima], [o[2] for o in optima], c=[o[1] for o in optima], cmap=cm.viridis,
                       norm=d_norm, edgecolors="k", linewidths=0.5, zorder=3, label="probe optima (bracketed)")  # fmt: skip
            fig.colorbar(cm.ScalarMappable(norm=d_norm, cmap=cm.viridis), ax=ax, label="training tokens D")
            ax.legend(fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (non-embedding parameters)")
        ax.set_ylabel("optimal peak learning rate (AdamW)")
        ax.set_title("Eq.6: joint law η*(N, D) with the probe optima", fontsize=10)
        names.append(_save(fig, out_dir / "joint_law.png"))
    return names


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    part = path.with_name(f".{path.name}.{os.getpid()}.part")  # a full disk leaves no truncated PNG (issue 23)
    try:
        fig.savefig(part, dpi=100, bbox_inches="tight", format="png")  # tight: the legends sit outside the axes
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
        plt.close(fig)
    return path.name
