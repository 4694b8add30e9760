"""Coordinate checks on CPU with real tiny models: the μP/CompleteP plan keeps activation updates flat in width and
in depth (the depth tolerance is argued in ``test_completep_plan_keeps_updates_flat_in_depth``).

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
from lrpredict.coord_check import (  # noqa: E402
    coord_check,
    depth_exponents,
    plot_coord_check,
    update_scales,
    width_exponents,
)
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


DEPTH_WIDTH, BASE_DEPTH, DEPTH_LR, DEPTH_STEPS = 64, 2, 3e-3, 5
DEPTHS = (2, 4, 8, 16)
DEPTH_TOLERANCE = 0.25


def depth_plan(depth: int, rule: str) -> Any:
    shape = {"params": 1e6, "tokens": 1e6, "d_model": DEPTH_WIDTH}
    proxy, target = ModelConfig(n_layers=BASE_DEPTH, **shape), ModelConfig(n_layers=depth, **shape)
    return transfer(proxy, {"lr": DEPTH_LR}, target, rule)


def depth_slopes(rule: str) -> dict[str, float]:
    """Slope of log(update RMS) against log(depth) per layer type, at a fixed width.

    "completep" (α = 1) and "depth-mup" (α = 0.5): the plan's residual multiplier m_L^-α in the model, its groups
    (hidden and norm LR η·m_L^(α-1), ε·m_L^-α) in AdamW and its init.  "standard": the same model, init and
    single LR with residual multiplier 1 — only the depth rules are missing.
    """
    model_mod = pytest.importorskip("lrpredict.calibrate.model")

    def build(width: int, depth: int | None) -> nn.Module:
        assert depth is not None
        arch = Architecture(d_model=width, n_layers=depth, d_ffn=2 * width, n_heads=width // 16, vocab_size=VOCAB)
        plan = depth_plan(depth, "completep" if rule == "standard" else rule)
        multiplier = 1.0 if rule == "standard" else plan.residual_multiplier
        model = model_mod.build_model(arch, max_seq_len=SEQ, residual_multiplier=multiplier)
        init_parameters(model, plan, STD)  # σ for every matrix at base width: no depth-dependent init
        return model

    def groups(model: nn.Module, width: int, depth: int | None) -> list[dict[str, Any]]:
        assert depth is not None
        if rule == "standard":
            return [{"params": list(model.parameters()), "lr": DEPTH_LR, "weight_decay": 0.0}]
        return param_groups(model, depth_plan(depth, rule))

    records = coord_check(
        build,
        groups,
        widths=(DEPTH_WIDTH,),
        depths=DEPTHS,
        steps=DEPTH_STEPS,
        batch_fn=batch,
        layer_type=llama_layer_type,
    )
    return depth_exponents(records)


def test_completep_plan_keeps_updates_flat_in_depth() -> None:
    """Depths 2–16 at width 64 (base depth 2), 5 AdamW steps at η = 3e-3 (5η < σ = 0.02: the update stays a
    perturbation of the init, the first-order regime the argument below describes; at η = 1e-2 it reaches 2.5σ,
    far from the init, and CompleteP's attention and block slopes fall to −0.18…−0.32 over seeds 0–2).

    CompleteP (α = 1, arXiv 2505.01618): every branch's own update is Θ(1) and enters the stream ×1/L, so the
    residual stream moves Θ(1) at any depth; the stream is an Euler discretisation of a depth-ODE, so finite depth
    adds an O(1/L) correction.  The block type averages the L blocks' outputs, and block l has moved about
    Δe + (l/L)·S (embedding Δe, all branches S): the average Δe + S·(1 + 1/L)/2 carries a 1 + 1/L factor, whose
    log-log slope over depths 2–16 is −0.16 when Δe = 0.  We accept |slope| < 0.25 for every layer type.
    Standard parametrisation (r = 1): each of the L blocks adds a Θ(1) update along the loss gradient, so the
    stream moves ∝ L (slope ≈ +1); we ask > 0.75.  Its attention output grows too (its input moves more); the
    logits hardly do, because the final RMSNorm divides the stream by its own growing scale.

    Measured (seed 0): CompleteP embedding +0.03, attention −0.01, FFN +0.02, block −0.17
    (pairwise −0.34, −0.13, −0.06: an O(1/L) term halving per doubling), logits +0.00 (each within ±0.03 of these
    over seeds 0–4); standard block +1.10 (seeds +1.10…+1.25), attention +0.52 (+0.52…+0.67), logits +0.14.
    """
    completep = depth_slopes("completep")
    standard = depth_slopes("standard")
    assert set(completep) == set(standard) == {"embedding", "attention", "ffn", "block", "logits"}
    for kind, slope in completep.items():
        assert abs(slope) < DEPTH_TOLERANCE, (kind, completep)
    assert standard["block"] > 0.75 and standard["attention"] > DEPTH_TOLERANCE, standard


def test_depth_mup_keeps_the_stream_flat_but_its_ffn_updates_vanish_with_depth() -> None:
    """Depth-μP (α = 0.5): hidden Adam LR η/√m_L, branches ×1/√m_L.  The stream (block, logits) moves Θ(1) as in
    CompleteP, but each branch's own weights move ∝ L^-1/2: the blocks turn lazy with depth, CompleteP's argument
    for α = 1.  Its FFN output shows it (measured −0.43, seeds 0–4 −0.46…−0.42; −0.5 is the own-weight term alone,
    diluted by the Θ(1) change of its input).  Attention does not (−0.04, seeds −0.04…+0.02): over half of its
    update comes through its input, the residual stream, which moves Θ(1) at any depth (with the attention weights
    frozen its output still moves 0.009–0.010 at every depth, against 0.017 trained, at depth 2), and that hides
    the own-weight term at these depths; the FFN's init output is too small for its input to move it much
    (0.003 of its 0.009 with its weights frozen).  Block −0.11, logits +0.01, embedding +0.01.
    """
    slopes = depth_slopes("depth-mup")
    for kind in ("embedding", "attention", "block", "logits"):
        assert abs(slopes[kind]) < DEPTH_TOLERANCE, (kind, slopes)
    assert slopes["ffn"] < -DEPTH_TOLERANCE, slopes


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
