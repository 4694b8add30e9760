"""Pictures of the laws (matplotlib, the ``plot`` extra; imported only when a plot is asked for).

``plot_law``: a law's peak LR and optimal batch against N at several horizons D, solid where the law was fitted and
dashed where it extrapolates, its fitted N range shaded, with the Step Law sweep optima and the published runs as
points.  ``plot_compare``: every applicable law's LR against N at the user's D.  Colours for D come from one
perceptual colormap (viridis) on log D, shared by curves and points, so a point and the curve of its horizon match.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile, PowerLaw
from lrpredict.paths import checked_path, shown

if TYPE_CHECKING:
    from lrpredict.config import ModelConfig
    from lrpredict.suggestion import Suggestion

DEFAULT_TOKENS = (1e10, 1e11, 1e12, 1e13)
N_RANGE = (1e7, 1e12)  # non-embedding parameters shown by default: the smallest sweeps to beyond the largest runs


def footnote(law: LawFile) -> str:
    """The plot's key, naming only what this law's plot draws: the shading needs an N domain, the M ≈ 6·N
    approximation applies only to laws written in M or C (DeepSeek LLM's plot had no shading yet said so)."""
    text = "solid: inside the law's fitted domain; dashed: extrapolation"
    if "N" in law.domain:
        text += "; shaded: fitted N range"
    variables = {v for pred in (law.lr, law.batch) if isinstance(pred, PowerLaw) for v in pred.exponents}
    if variables & {"M", "C"}:
        text += ".  M ≈ 6·N (attention FLOPs omitted)"
    return text + "."


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LrpredictError("plot", "matplotlib", "installed: pip install 'lrpredict[plot]'") from None
    return plt


def _grid(low: float, high: float, points: int = 60) -> list[float]:
    return [low * (high / low) ** (i / (points - 1)) for i in range(points)]


def law_values(law: LawFile, n: float, tokens: float) -> dict[str, float]:
    """The law's variables at N (in the law's own convention) and D; M ≈ 6·N for laws written in compute."""
    m = 6.0 * n
    return {"N": n, "D": tokens, "M": m, "C": m * tokens}


def law_curve(law: LawFile, kind: str, ns: list[float], tokens: float) -> list[tuple[float, float, bool]]:
    """(N, value, inside the fitted domain) for ``kind`` in {"lr", "batch"} at horizon ``tokens``."""
    pred = law.lr if kind == "lr" else law.batch
    if not isinstance(pred, PowerLaw):
        return []
    out = []
    for n in ns:
        values = law_values(law, n, tokens)
        out.append((n, pred.evaluate(values), not law.domain_status(values)))
    return out


def _draw(ax: Any, curve: list[tuple[float, float, bool]], color: Any, label: str | None) -> None:
    """Solid inside the domain, dashed outside: one polyline per stretch, sharing its end point with the next so the
    line is unbroken."""
    stretches: list[list[tuple[float, float, bool]]] = []
    for point in curve:
        if stretches and stretches[-1][-1][2] == point[2]:
            stretches[-1].append(point)
        else:
            if stretches:
                stretches[-1].append(point)  # close the previous stretch at this point
            stretches.append([point])
    for i, stretch in enumerate(stretches):
        inside = stretch[0][2]
        ax.plot([p[0] for p in stretch], [p[1] for p in stretch], color=color, lw=2.2 if inside else 1.2,
                ls="-" if inside else (0, (5, 3)), label=label if i == 0 else None)  # fmt: skip


def _sweep_optima(sweeps: Path, arch: str) -> list[tuple[float, float, float, float]]:
    """(N, D, LR, batch) of the lowest-loss run of every (N, D) cell of the Step Law sweeps (N_active for MoE)."""
    from lrpredict.sweeps import group_cells, read_runs

    path = checked_path("sweeps", sweeps) / f"steplaw_{arch}.csv"
    if not path.is_file():
        raise LrpredictError("sweeps", str(sweeps), f"a folder holding steplaw_{arch}.csv (the Step Law sweeps)")
    out = []
    for cell in group_cells(read_runs(path)):
        best = cell.best()
        out.append((cell.n_active if arch == "moe" else cell.n, cell.tokens, best.lr, best.batch_tokens))
    return out


def plot_law(
    law: LawFile,
    path: str | Path,
    *,
    tokens: tuple[float, ...] = DEFAULT_TOKENS,
    params: tuple[float, float] = N_RANGE,
    sweeps: str | Path | None = None,
    runs: bool = True,
    force: bool = False,
) -> Path:
    """Write a PNG of ``law``: peak LR and optimal batch against N at each horizon in ``tokens``.

    ``sweeps``: a folder with the Step Law sweep CSVs, whose per-cell optima are drawn; ``runs``: draw the published
    runs of the bundled ledger (``lrpredict runs``) when there is one.  Relative laws and weight-decay laws have no
    LR(N) to draw and are refused.
    """
    if not isinstance(law.lr, PowerLaw):
        raise LrpredictError(
            "law", law.id, "a law that predicts the LR from N, D or compute (relative, batch and weight-decay laws "
            "move or complement another law's LR; plot that one)",
        )  # fmt: skip
    plt = _pyplot()
    from matplotlib import cm, colors

    arch = "moe" if law.architectures == ["moe"] else "dense"
    points = _sweep_optima(Path(sweeps), arch) if sweeps is not None else []
    ledger = _runs(arch) if runs else []
    all_d = list(tokens) + [p[1] for p in points] + [r.tokens for r in ledger]
    norm = colors.LogNorm(vmin=min(all_d), vmax=max(all_d))
    cmap = cm.viridis
    ns = _grid(*params)

    fig, (ax_lr, ax_b) = plt.subplots(1, 2, figsize=(12, 5))
    if "N" in law.domain:
        low, high = law.domain["N"]
        for ax in (ax_lr, ax_b):
            ax.axvspan(max(low, params[0]), high, color="0.9", zorder=0, label="fitted N range")
    for d in tokens:
        label = f"law, D = {d:.0e} tokens"
        _draw(ax_lr, law_curve(law, "lr", ns, d), cmap(norm(d)), label)
        _draw(ax_b, law_curve(law, "batch", ns, d), cmap(norm(d)), label)
    if points:
        kw = dict(c=[p[1] for p in points], cmap=cmap, norm=norm, s=28, edgecolors="k", linewidths=0.5, zorder=3)
        ax_lr.scatter([p[0] for p in points], [p[2] for p in points], marker="o", label="Step Law sweep optima", **kw)
        ax_b.scatter([p[0] for p in points], [p[3] for p in points], marker="o", label="Step Law sweep optima", **kw)
    if ledger:
        kw = dict(c=[r.tokens for r in ledger], cmap=cmap, norm=norm, s=40, edgecolors="r", linewidths=0.8, zorder=4)
        ns_runs = [r.n_active if law.conventions.n == "active" else r.params for r in ledger]
        ax_lr.scatter(ns_runs, [r.peak_lr for r in ledger], marker="D", label="published runs (teams' choices)", **kw)
        ax_b.scatter(ns_runs, [r.batch_tokens for r in ledger], marker="D", label="published runs (teams' choices)",
                     **kw)  # fmt: skip
    which = "active" if law.conventions.n == "active" else "total"
    for ax, ylabel in ((ax_lr, "peak learning rate (AdamW)"), (ax_b, "optimal batch (tokens per step)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"N: {which} non-embedding parameters")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    if law.batch is None:
        ax_b.text(0.5, 0.5, f"{law.id} predicts no batch", ha="center", va="center", transform=ax_b.transAxes)
    ax_lr.legend(fontsize=7, loc="best")
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=[ax_lr, ax_b], label="training tokens D", pad=0.01)
    fig.suptitle(f"{law.id}: {law.title}  [status: {law.status}]", fontsize=11)
    fig.text(0.01, -0.03, footnote(law), fontsize=7)
    return _save(fig, path, force)


def _runs(arch: str) -> list[Any]:
    from lrpredict.runs import published_runs

    return [r for r in published_runs() if r.arch == arch]


def plot_compare(
    config: ModelConfig,
    rows: list[tuple[LawFile, Suggestion | LrpredictError]],
    path: str | Path,
    *,
    force: bool = False,
) -> Path:
    """Write a PNG of every law that answered ``lrpredict suggest --compare``: its LR against N at the config's D
    (and batch, when given), with the config's N marked.  N is scaled around the config's (MoE: N_active with it);
    each law scales its own count of N (``conventions.count``), drawn at the config's exact N times the scale."""
    from lrpredict.suggest import suggest

    plt = _pyplot()
    from matplotlib import cm

    answered = [(law, s) for law, s in rows if not isinstance(s, LrpredictError)]
    if not answered:
        raise LrpredictError("compare", "no law", "at least one law that answers for this config to plot")
    fig, ax = plt.subplots(figsize=(8, 5))
    scales = _grid(1 / 30, 30, 31)
    palette = cm.tab10
    for i, (law, s) in enumerate(answered):
        color = palette(i % 10)
        curve = []
        total, active = config.params_for(law.conventions.count)  # the law's own N, then scaled (shape dropped)
        for k in scales:
            moved = config.model_copy(
                update={"params": total * k, "shape": None,
                        "active_params": None if config.active_params is None else (active or 0) * k}
            )  # fmt: skip
            try:
                at = suggest(moved, law)
            except LrpredictError:
                continue
            curve.append((config.params * k, at.lr, at.domain == "inside"))
        _draw(ax, curve, color, f"{law.id} [{s.status}]")
        ax.plot([config.params], [s.lr], "o", color=color, ms=7, mec="k")
    ax.axvline(config.params, color="0.5", lw=0.8, ls=":", label="your N")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N: non-embedding parameters (MoE: total; N_active scaled with it)")
    ax.set_ylabel("peak learning rate (AdamW)" + (" at your batch" if config.batch_tokens else " at each law's batch"))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"every applicable law at D = {config.tokens:.3g} tokens ({config.arch})", fontsize=11)
    fig.text(0.01, -0.03, "solid: inside the law's fitted domain; dashed: extrapolation; dots: your run", fontsize=7)
    return _save(fig, path, force)


def _save(fig: Any, path: str | Path, force: bool = False) -> Path:
    """Write the PNG to a temporary file in the same folder, then rename it over ``path``: never through a link,
    never a truncated PNG; an existing file or link is replaced only with ``force`` (issue 23)."""
    import matplotlib.pyplot as plt

    try:
        target = check_plot_path(path, force)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                fig.savefig(handle, dpi=110, bbox_inches="tight", format="png")
            os.chmod(part, 0o644)
            os.replace(part, target)  # replaces a link itself, never the file it points to
        finally:
            Path(part).unlink(missing_ok=True)
    except OSError as exc:  # a read-only folder, a file where a folder should be, a component over NAME_MAX
        raise LrpredictError("plot", shown(str(path)), f"a .png file this user can write ({exc.strerror})") from None
    finally:
        plt.close(fig)
    return target


def check_plot_path(path: str | Path, force: bool = False) -> Path:
    """``path`` as the PNG to write: ends in .png, and is new unless ``force`` (a link is refused even then: the
    plot would replace the link, the user meant its target)."""
    target = checked_path("plot", path)
    if target.suffix.lower() != ".png":
        raise LrpredictError("plot", str(path), "a file name ending in .png")
    if target.is_symlink():
        raise LrpredictError("plot", shown(str(path)), "a new file or a regular file, not a symbolic link")
    if os.path.lexists(target):
        if not target.is_file():
            raise LrpredictError("plot", shown(str(path)), "a regular file or a new name, not a folder or device")
        if not force:
            raise LrpredictError("plot", shown(str(path)), "a new file (it exists: --force replaces it)")
    return target


__all__ = ["law_curve", "law_values", "plot_compare", "plot_law"]
