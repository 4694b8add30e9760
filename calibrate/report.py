"""A calibration's report: a Markdown page and, with matplotlib (the ``plot`` extra), PNG figures.

Figures: the fitted parabola of every (N, D, B) cell (Eq.2), loss vs horizon per LR (Eq.4), and the joint law
η*(N, D) with the probe optima (Eq.6).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from lrpredict.calibrate.fit import CalibrationFit, Cell, Observation
from lrpredict.calibrate.report_html import write_report_html
from lrpredict.calibrate.validation import ValidationResult


def write_report(
    out_dir: Path,
    fit: CalibrationFit,
    observations: list[Observation],
    *,
    title: str,
    law_id: str | None,
    summary: list[str],
    validation: ValidationResult | None = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _plots(out_dir, fit, observations, validation)
    lines = [f"# {title}", "", *summary, ""]
    if validation is not None:  # issue 19: the held-out cell's verdict on the law fitted without it
        lines += ["## Validation (held-out cell)", "", *validation.lines(), ""]
        lines += ["The law below is the refit with every cell, the validation cell included.", ""]
    if fit.noise is not None:
        lines += ["## Loss noise", "", fit.noise.describe(), "", NOISE_NOTE, ""]
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
        "| N | D | B | LRs | best LR | min loss | noise sd | in the fit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in fit.cells:
        sd = f"{cell.noise_sd:.2g}" if cell.noise_sd is not None else "–"
        if cell.fit is None:
            lines.append(
                f"| {cell.n:.3g} | {cell.tokens:.3g} | {cell.batch_tokens:.3g} | {len(cell.lrs)} | – | – | {sd} | "
                f"{role(cell, fit)} |"
            )
            continue
        mark = "" if cell.fit.bracketed else " (edge)"
        lines.append(
            f"| {cell.n:.3g} | {cell.tokens:.3g} | {cell.batch_tokens:.3g} | {len(cell.lrs)} | "
            f"{cell.fit.lr_opt:.3g}{mark} | {cell.fit.loss_min:.4f} | {sd} | {role(cell, fit)} |"
        )
    if fit.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in fit.warnings]
    lines += ["", write_report_html(out_dir, fit, observations, title=title)]
    lines += [""] + ([f"![{name}]({name})" for name in figures] or ["(install lrpredict[plot] for figures)"])
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


NOISE_NOTE = (
    "How to read it: the eval s.e. is sd/√n of the per-sequence held-out losses (every probe is evaluated on the same "
    "sequences, so it is largely common to a cell's LRs); the seed sd comes from replicate probes (same spec, seed + 1); "
    "they add in quadrature per cell (the cells table's noise sd).  A cell whose losses span ≤ 2 noise sds measured no "
    "optimum and is left out.  The Eq.2 misfit is the pooled residual of the windowed parabolas: larger than the noise "
    "means the loss is not a parabola there (docs/calibrate.md, noise)."
)


def role(cell: Cell, fit: CalibrationFit) -> str:
    """What the fit made of ``cell``: 'optimum', 'one-sided bound', or why it was left out."""
    if cell.fit is None:
        return "left out: < 3 LRs"
    if cell.flat:
        return "left out: flat (within the noise)"
    if cell.fit.bracketed:
        return "optimum"
    if fit.prior is None:
        return "left out: unbracketed (free fit)"
    return "one-sided bound (edge)" if cell.fit.edge else "best point (no convex vertex)"


def _colours(plt, count: int) -> list:
    """``count`` distinct colours from one perceptual colormap (viridis), so no two entries share a colour."""
    cmap = plt.get_cmap("viridis")
    return [cmap(i / max(count - 1, 1) * 0.9) for i in range(count)]  # stop short of the palest yellow


def _legend(ax, count: int) -> None:
    ax.legend(fontsize=6 if count > 8 else 7, ncol=1 if count <= 12 else 2, loc="center left",
              bbox_to_anchor=(1.01, 0.5), frameon=False)  # fmt: skip


def _plots(
    out_dir: Path, fit: CalibrationFit, observations: list[Observation], validation: ValidationResult | None = None
) -> list[str]:
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
        names.append(_joint_plot(plt, out_dir, fit, validation))
    return names


def _joint_plot(plt, out_dir: Path, fit: CalibrationFit, validation: ValidationResult | None) -> str:
    """Eq.6 with each cell marked by what the fit made of it (issue 19: dropped cells were drawn as optima)."""
    from matplotlib import cm, colors

    assert fit.lr_law is not None
    fig, ax = plt.subplots(figsize=(8, 4.8))
    used = [c for c in fit.cells if c.fit is not None]
    optima = [(c.n, c.tokens, c.fit.lr_opt) for c in used if role(c, fit) == "optimum"]  # type: ignore[union-attr]
    others = {
        "one-sided bounds (optimum at the grid's edge)": ([c for c in used if role(c, fit) == "one-sided bound (edge)"], "^"),
        "left out (flat within the noise, or unbracketed)": ([c for c in used if role(c, fit).startswith("left out")], "x"),
    }  # fmt: skip
    points = optima + [(c.n, c.tokens, c.fit.lr_opt) for group, _ in others.values() for c in group]  # type: ignore[union-attr]
    if points:
        d_norm = colors.LogNorm(vmin=min(d for _, d, _ in points), vmax=max(d for _, d, _ in points) * 1.0001)
        low, high = min(n for n, _, _ in points), max(n for n, _, _ in points)
        ns = [low * (high / low) ** (t / 20) for t in range(21)]
        for i, tokens in enumerate(sorted({d for _, d, _ in points})):
            ax.plot(ns, [fit.lr_law.lr(n, tokens) for n in ns], color=cm.viridis(d_norm(tokens)), lw=1.2,
                    label="law η*(N, D), one line per D" if i == 0 else None)  # fmt: skip
        if optima:
            ax.scatter([o[0] for o in optima], [o[2] for o in optima], c=[o[1] for o in optima], cmap=cm.viridis,
                       norm=d_norm, edgecolors="k", linewidths=0.5, zorder=3, label="probe optima (bracketed, fitted)")  # fmt: skip
        for label, (group, marker) in others.items():
            if group:
                ax.scatter([c.n for c in group], [c.fit.lr_opt for c in group], c=[c.tokens for c in group],  # type: ignore[union-attr]
                           cmap=cm.viridis, norm=d_norm, marker=marker, zorder=3, label=label)  # fmt: skip
        if validation is not None and validation.measured is not None:
            ax.scatter([validation.n], [validation.measured], marker="*", s=120, color="crimson", zorder=4,
                       label="validation cell, measured (held out of the first fit)")  # fmt: skip
            if validation.interval is not None:
                ax.errorbar([validation.n], [validation.predicted], fmt="none", ecolor="crimson", capsize=3,
                            yerr=[[validation.predicted - validation.interval[0]],
                                  [validation.interval[1] - validation.predicted]],
                            label="its prediction, 90% interval")  # fmt: skip
        fig.colorbar(cm.ScalarMappable(norm=d_norm, cmap=cm.viridis), ax=ax, label="training tokens D")
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (non-embedding parameters)")
    ax.set_ylabel("optimal peak learning rate (AdamW)")
    ax.set_title("Eq.6: joint law η*(N, D) with the cells as the fit used them", fontsize=10)
    return _save(fig, out_dir / "joint_law.png")


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
