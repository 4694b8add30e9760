"""Coordinate checks on CPU with real tiny models: the μP/CompleteP plan keeps activation updates flat in width.

Tolerance.  We fit the slope of log(RMS of h_t − h_0) against log(width) over widths 64–256 after 2 AdamW steps.
Standard parametrisation (one LR for every tensor) predicts slope ≈ 1 for hidden and output layers (an Adam update
moves every weight by ~η, and a layer sums fan_in ∝ width of them coherently), compounding over steps; μP predicts
slope 0 in the infinite-width limit, with finite-width corrections that shrink as O(1/√width) (the incoherent part
of Adam's sign-like update, the random init against the update).  Such a correction alone gives a slope between 0
and −0.5, so we accept |slope| < 0.5 for μP — the update changes by less than 2× over the 4× in width — and ask
the standard parametrisation for > 0.75 on every hidden and output layer type.  Measured (seed 0): μP attention
−0.32, FFN −0.39, block −0.25, logits −0.20 (at widths 128–512 they shrink to −0.10, −0.17, −0.08, −0.27 over
three seeds); standard +2.2, +2.3, +2.1, +0.9.  Embeddings are flat under both (same rule in both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lrpredict.config import Architecture, ModelConfig  # noqa: E402
from lrpredict.coord_check import coord_check, plot_coord_check, update_scales, width_exponents  # noqa: E402
from lrpredict.torch import init_parameters, param_groups  # noqa: E402
from lrpredict.transfer import transfer  # noqa: E402

BASE_WIDTH, LR, STD, VOCAB, SEQ, BATCH = 64, 1e-2, 0.02, 128, 16, 8
WIDTHS = (64, 128, 256)


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and immune to a busy neighbour
    yield
    torch.set_num_threads(threads)


def plan_for(width: int, depth: int) -> Any:
    shape = {"params": 1e6, "tokens": 1e6, "n_layers": depth}
    return transfer(ModelConfig(d_model=BASE_WIDTH, **shape), {"lr": LR}, ModelConfig(d_model=width, **shape))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=torch.Generator().manual_seed(0))
    return tokens[:, :-1], tokens[:, 1:]  # the probe is the training batch, as in mup's coord check


class TinyLM(nn.Module):
    """Embedding → residual MLP blocks → norm → head, with μP's output multiplier as a plain attribute."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB, bias=False)
        self.output_multiplier = 1.0

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = h + block(h)
        logits = self.head(self.norm(h) * self.output_multiplier)
        return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))


def test_coord_check_records_and_summaries_on_a_tiny_mlp() -> None:
    def build(width: int, depth: int | None) -> nn.Module:
        return TinyLM(width, depth or 1)

    def groups(model: nn.Module, width: int, depth: int | None) -> list[dict[str, Any]]:
        return param_groups(model, plan_for(width, depth or 1))

    records = coord_check(build, groups, widths=(32, 64), depths=(1, 2), steps=2, batch_fn=batch)
    assert {r["width"] for r in records} == {32, 64} and {r["depth"] for r in records} == {1, 2}
    assert {r["step"] for r in records} == {1, 2}
    assert {"Embedding", "Linear", "Sequential", "LayerNorm", "GELU"} <= {r["layer_type"] for r in records}
    assert all(r["rms"] >= r["l1"] >= 0 for r in records)  # RMS ≥ mean |·|
    scales = update_scales(records, depth=1)
    assert set(scales["Linear"]) == {32, 64}
    assert set(width_exponents(records, depth=2)) == set(scales)


def llama_layer_type(name: str, module: nn.Module) -> str | None:
    if name == "head":
        return "logits"
    return {"Embedding": "embedding", "Attention": "attention", "SwiGLU": "ffn", "Block": "block"}.get(
        type(module).__name__
    )


def test_mup_plan_keeps_updates_flat_where_standard_parametrisation_drifts() -> None:
    model_mod = pytest.importorskip("lrpredict.calibrate.model")

    def arch(width: int, depth: int | None) -> Architecture:
        return Architecture(d_model=width, n_layers=depth or 2, d_ffn=2 * width, n_heads=width // 16, vocab_size=VOCAB)

    def build_mup(width: int, depth: int | None) -> nn.Module:
        model = model_mod.build_model(arch(width, depth), max_seq_len=SEQ)
        plan = plan_for(width, depth or 2)
        init_parameters(model, plan, STD)  # hidden σ/√m_d, router σ/m_d, embedding and head σ
        multiplier = plan.output_logit_multiplier  # the forward half of the plan: logits ×1/m_d
        model.head.register_forward_pre_hook(lambda _m, args: (args[0] * multiplier,))
        return model

    def build_sp(width: int, depth: int | None) -> nn.Module:
        return model_mod.build_model(arch(width, depth), max_seq_len=SEQ)  # GPT-2 init: σ = 0.02 everywhere

    def mup_groups(model: nn.Module, width: int, depth: int | None) -> list[dict[str, Any]]:
        return param_groups(model, plan_for(width, depth or 2))

    def sp_groups(model: nn.Module, width: int, depth: int | None) -> list[dict[str, Any]]:
        return [{"params": list(model.parameters()), "lr": LR, "weight_decay": 0.0}]

    kw: dict[str, Any] = {
        "widths": WIDTHS,
        "depths": (2,),
        "steps": 2,
        "batch_fn": batch,
        "layer_type": llama_layer_type,
    }
    mup = width_exponents(coord_check(build_mup, mup_groups, **kw))
    sp = width_exponents(coord_check(build_sp, sp_groups, **kw))
    assert set(mup) == set(sp) == {"embedding", "attention", "ffn", "block", "logits"}
    for kind in ("attention", "ffn", "block", "logits"):
        assert abs(mup[kind]) < 0.5, (kind, mup)
        assert sp[kind] > 0.75, (kind, sp)
    assert abs(mup["embedding"]) < 0.1 and abs(sp["embedding"]) < 0.1


def test_plot_coord_check(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    records = [
        {
            "width": w,
            "depth": 2,
            "step": s,
            "module": "m",
            "layer_type": "Linear",
            "l1": 0.1,
            "rms": 0.1 * s,
            "h0_rms": 1,
        }
        for w in (64, 128)
        for s in (1, 2)
    ]
    path = plot_coord_check(records, tmp_path / "coord.png", title="test")
    assert path.is_file() and path.stat().st_size > 0
