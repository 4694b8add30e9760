"""Coordinate check: does the size of each layer's activation update stay flat as the model widens or deepens?

μP's diagnostic (Yang et al. arXiv 2203.03466, Sec. 5 and microsoft/mup ``coord_check.py``): train models of several
widths for a few AdamW steps and measure, per layer, how far its output on a fixed probe batch moved from step 0,
|h_t − h_0|.  Under a correct μP/CompleteP parametrisation that scale does not depend on width (a flat line on a
log-log plot of scale against width); under the standard parametrisation with one LR for every tensor it grows
about ∝ width in hidden and output layers.  The same check across depth (``depth_exponents``; CompleteP, Dey et al.
arXiv 2505.01618): with the residual multiplier m_L^-α and the plan's LRs the residual stream moves the same at
every depth, while without them it moves about ∝ depth.  A bug in the plan, the classification of a parameter or
the model's forward multipliers shows up as a sloped line.

Imported on its own (``from lrpredict.coord_check import coord_check``), never from ``lrpredict``: it needs torch,
and ``plot_coord_check`` needs matplotlib (``pip install 'lrpredict[plot]'``).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

BuildModel = Callable[[int, int | None], nn.Module]
PlanFn = Callable[[nn.Module, int, int | None], list[dict[str, Any]]]
BatchFn = Callable[[int], Any]
LayerType = Callable[[str, nn.Module], "str | None"]


def default_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """``model(*batch)`` (or ``model(batch)``) and its loss: the output itself when it is a scalar, its ``.loss``
    attribute, or the first scalar of a returned tuple."""
    out = model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
    if isinstance(out, torch.Tensor) and out.ndim == 0:
        return out
    loss = getattr(out, "loss", None)
    if isinstance(loss, torch.Tensor):
        return loss
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor) and item.ndim == 0:
                return item
    raise TypeError("coord_check: the model returned no scalar loss; pass loss_fn=")


def default_layer_type(name: str, module: nn.Module) -> str | None:
    """Every submodule, named by its class (``Linear``, ``Attention``, ``Block``…)."""
    return type(module).__name__ if name else None


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return getattr(output, "logits", None) if not isinstance(output, dict) else None


class _Recorder:
    """Forward hooks that keep each recorded module's output, only while ``probe`` runs."""

    def __init__(self, model: nn.Module, layer_type: LayerType, loss_fn: Callable[[nn.Module, Any], torch.Tensor]):
        self.model, self.loss_fn = model, loss_fn
        self.kinds: dict[str, str] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self.recording = False
        self.handles = []
        for name, module in model.named_modules():
            kind = layer_type(name, module)
            if kind is not None:
                self.kinds[name] = kind
                self.handles.append(module.register_forward_hook(functools.partial(self._keep, name)))

    def _keep(self, name: str, _module: nn.Module, _inputs: Any, output: Any) -> None:
        if self.recording:
            tensor = _first_tensor(output)
            if tensor is not None:
                self.outputs[name] = tensor.detach().float().clone()

    def probe(self, batch: Any) -> dict[str, torch.Tensor]:
        """Each module's output on ``batch`` in eval mode, without gradients."""
        self.outputs = {}
        was_training = self.model.training
        self.model.eval()
        self.recording = True
        try:
            with torch.no_grad():
                self.loss_fn(self.model, batch)
        finally:
            self.recording = False
            self.model.train(was_training)
        return self.outputs

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def coord_check(
    build_model: BuildModel,
    plan_fn: PlanFn,
    widths: Sequence[int],
    depths: Sequence[int | None] = (None,),
    steps: int = 3,
    batch_fn: BatchFn | None = None,
    *,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor] = default_loss,
    layer_type: LayerType = default_layer_type,
    seed: int = 0,
    optimizer_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per width, depth, step and module: the scale of the activation update on a fixed probe batch.

    ``build_model(width, depth)`` returns a fresh model (its init is part of the parametrisation under test);
    ``plan_fn(model, width, depth)`` returns its AdamW param groups (e.g. ``lrpredict.torch.param_groups`` of a
    plan) — it takes the model because param groups hold the model's own tensors.  ``batch_fn(step)`` returns a
    batch: ``batch_fn(0)`` is the probe, ``batch_fn(1..steps)`` the training batches (make it deterministic, so
    every width sees the same data).  ``layer_type(name, module)`` names the type a module's output is recorded
    under, or None to skip it.  Each record: width, depth, step (1..steps), module, layer_type, ``l1`` = mean
    |h_t − h_0|, ``rms`` = RMS of h_t − h_0, and ``h0_rms`` = RMS of h_0.

    Across depth: one width, several depths, and a model that applies the plan's residual multiplier itself (the
    probe decoder: ``build_model(arch, residual_multiplier=plan.residual_multiplier)``); read ``depth_exponents``.
    """
    if batch_fn is None:
        raise TypeError("coord_check needs batch_fn(step) -> batch")
    records: list[dict[str, Any]] = []
    for depth in depths:
        for width in widths:
            torch.manual_seed(seed)
            model = build_model(width, depth)
            optimizer = torch.optim.AdamW(plan_fn(model, width, depth), **(optimizer_kwargs or {}))
            recorder = _Recorder(model, layer_type, loss_fn)
            probe = batch_fn(0)
            try:
                model.train()
                h0 = recorder.probe(probe)
                for step in range(1, steps + 1):
                    optimizer.zero_grad(set_to_none=True)
                    loss_fn(model, batch_fn(step)).backward()
                    optimizer.step()
                    ht = recorder.probe(probe)
                    for name, tensor in ht.items():
                        if name not in h0 or h0[name].shape != tensor.shape:
                            continue
                        delta = tensor - h0[name]
                        records.append(
                            {
                                "width": width,
                                "depth": depth,
                                "step": step,
                                "module": name,
                                "layer_type": recorder.kinds[name],
                                "l1": delta.abs().mean().item(),
                                "rms": delta.pow(2).mean().sqrt().item(),
                                "h0_rms": h0[name].pow(2).mean().sqrt().item(),
                            }
                        )
            finally:
                recorder.close()
    return records


def update_scales(
    records: Iterable[dict[str, Any]],
    stat: str = "rms",
    step: int | None = None,
    depth: int | None = None,
    *,
    width: int | None = None,
    over: str = "width",
) -> dict[str, dict[int, float]]:
    """Mean of ``stat`` over the modules of each layer type, per width (``over="depth"``: per depth), at ``step``
    (default: the last).  ``depth``/``width`` keep only the records of that depth/width."""
    if over not in ("width", "depth"):
        raise ValueError(f"over={over!r}: must be 'width' or 'depth'")
    rows = [r for r in records if (depth is None or r["depth"] == depth) and (width is None or r["width"] == width)]
    if step is None:
        step = max(r["step"] for r in rows)
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["step"] == step:
            sums[r["layer_type"]][r[over]].append(r[stat])
    return {kind: {x: sum(v) / len(v) for x, v in sorted(by_x.items())} for kind, by_x in sums.items()}


def _log_log_slopes(scales: dict[str, dict[int, float]]) -> dict[str, float]:
    """Least-squares slope of log(scale) against log(x) per layer type (types with fewer than 2 points left out)."""
    out: dict[str, float] = {}
    for kind, by_x in scales.items():
        points = [(math.log(x), math.log(v)) for x, v in by_x.items() if v > 0]
        if len(points) < 2:
            continue
        mx = sum(x for x, _ in points) / len(points)
        my = sum(y for _, y in points) / len(points)
        sxx = sum((x - mx) ** 2 for x, _ in points)
        out[kind] = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return out


def width_exponents(
    records: Iterable[dict[str, Any]], stat: str = "rms", step: int | None = None, depth: int | None = None
) -> dict[str, float]:
    """Least-squares slope of log(scale) against log(width) per layer type: ≈ 0 when flat (μP), ≈ 1 when the
    update grows ∝ width (standard parametrisation with Adam)."""
    return _log_log_slopes(update_scales(records, stat, step, depth))


def depth_exponents(
    records: Iterable[dict[str, Any]], stat: str = "rms", step: int | None = None, width: int | None = None
) -> dict[str, float]:
    """Least-squares slope of log(scale) against log(depth) per layer type: ≈ 0 when flat (CompleteP), > 0 when
    the update grows with depth (standard parametrisation: every block adds an update of the same size)."""
    return _log_log_slopes(update_scales(records, stat, step, width=width, over="depth"))


def plot_coord_check(
    records: Iterable[dict[str, Any]], path: str | Path, stat: str = "rms", title: str = "", *, over: str = "width"
) -> Path:
    """One panel per layer type: ``stat`` of the activation update against width (``over="depth"``: against
    depth; log-log), a line per step."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_coord_check needs matplotlib: pip install 'lrpredict[plot]'") from None
    rows = list(records)
    kinds = sorted({r["layer_type"] for r in rows})
    steps = sorted({r["step"] for r in rows})
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.0), squeeze=False)
    xs = sorted({r[over] for r in rows})
    for ax, kind in zip(axes[0], kinds, strict=True):
        values: list[float] = []
        for step in steps:
            scales = update_scales([r for r in rows if r["layer_type"] == kind], stat, step, over=over)[kind]
            ax.plot(list(scales), list(scales.values()), marker="o", label=f"step {step}")
            values += [v for v in scales.values() if v > 0]
        ax.set(xscale="log", yscale="log", title=kind, xlabel=over)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        if values:  # at least a decade of y-range, so that a flat line looks flat and not zoomed into noise
            lo, hi = min(values), max(values)
            if hi / lo < 10:
                mid = math.sqrt(lo * hi)
                lo, hi = mid / math.sqrt(10), mid * math.sqrt(10)
            ax.set_ylim(lo / 1.2, hi * 1.2)
    axes[0][0].set_ylabel(f"{stat} of h_t − h_0")
    axes[0][-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = [
    "coord_check",
    "default_layer_type",
    "default_loss",
    "depth_exponents",
    "plot_coord_check",
    "update_scales",
    "width_exponents",
]
