"""A calibration's report: a Markdown page and, with matplotlib (the ``plot`` extra), PNG figures.

Figures: the fitted parabola of every (N, D, B) cell (Eq.2), loss vs horizon per LR (Eq.4), and the joint law
η*(N, D) with the probe optima (Eq.6).
"""

from __future__ import annotations

import math
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


def _plots(out_dir: Path, fit: CalibrationFit, observations: list[Observation]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cell in fit.cells:
        points = [(lr, loss) for lr, loss in zip(cell.lrs, cell.losses, strict=True) if loss is not None]
        if not points or cell.fit is None:
            continue
        line = ax.plot(*zip(*sorted(points), strict=True), "o", ms=3)[0]
        if cell.fit.curvature > 0:
            xs = [cell.fit.log_lr_opt + t / 10 for t in range(-15, 16)]
            ax.plot(
                [math.exp(x) for x in xs],
                [cell.fit.loss_min + cell.fit.curvature * (x - cell.fit.log_lr_opt) ** 2 for x in xs],
                color=line.get_color(),
                lw=1,
            )
    ax.set_xscale("log")
    ax.set_xlabel("peak LR")
    ax.set_ylabel("held-out loss")
    ax.set_title("Eq.2: loss vs LR per (N, D, B), fitted parabolas")
    names.append(_save(fig, out_dir / "parabolas.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    runs: dict[tuple[float, float], list[tuple[float, float]]] = {}
    for o in observations:
        if o.loss is not None:
            runs.setdefault((o.n, o.lr), []).append((o.tokens, o.loss))
    for (n, lr), points in sorted(runs.items()):
        ax.plot(*zip(*sorted(points), strict=True), "o-", ms=3, lw=1, label=f"N={n:.2g}, η={lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("tokens D")
    ax.set_ylabel("held-out loss")
    ax.set_title("Eq.4: loss vs horizon per LR")
    if len(runs) <= 16:
        ax.legend(fontsize=6)
    names.append(_save(fig, out_dir / "horizons.png"))

    if fit.lr_law is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        optima = [(c.n, c.tokens, c.fit.lr_opt) for c in fit.cells if c.fit is not None and c.fit.bracketed]
        for tokens in sorted({d for _, d, _ in optima}):
            pts = sorted((n, lr) for n, d, lr in optima if d == tokens)
            line = ax.plot(*zip(*pts, strict=True), "o", label=f"D={tokens:.2g}")[0]
            ns = [pts[0][0] * (pts[-1][0] / pts[0][0]) ** (t / 20) for t in range(21)]
            ax.plot(ns, [fit.lr_law.lr(n, tokens) for n in ns], color=line.get_color(), lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (non-embedding parameters)")
        ax.set_ylabel("optimal peak LR")
        ax.set_title("Eq.6: joint law with the probe optima")
        ax.legend(fontsize=7)
        names.append(_save(fig, out_dir / "joint_law.png"))
    return names


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name
