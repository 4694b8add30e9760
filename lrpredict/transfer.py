"""The Transfer paradigm: move hyperparameters tuned on a small proxy to a wider, deeper (MoE) target.

``transfer(proxy, proxy_hparams, target)`` returns a ``TransferPlan``: per parameter group the target's AdamW LR,
weight decay, ε and init-std multiplier, plus the forward-pass multipliers (residual branches, output logits) the
target model must apply.  Pure Python: ``lrpredict.torch.param_groups`` turns a plan into optimizer groups.

Sources, each rule carries its status (confirmed / secondary / open, as in the law files):

* CompleteP, Dey et al. arXiv 2505.01618, official code EleutherAI/nanoGPT-mup ``model.py`` (confirmed; see the
  shared laws reference, "Transfer rules"): with m_d = width/base_width, m_L = depth/base_depth, α = 1 (CompleteP)
  or 0.5 (depth-μP): residual h ← h + m_L^-α·F(h); hidden init σ/√m_d; hidden Adam LR η·m_d^-1·m_L^(α-1);
  hidden λ·m_d; norms and biases η·m_L^(α-1), λ = 0; embedding η, λ; logits ×α_output/m_d; attention 1/d_head;
  ε·m_d^-1·m_L^-α on hidden tensors and ε·m_d^-1 on the embedding and unembedding (the code's January fix, its
  Eq. 40).  μP (Yang et al. arXiv 2203.03466) is the same without the depth terms.
* MoE: Complete-muE, Peng et al. arXiv 2605.23893 (authors' blog): experts are hidden matrices with no LR/WD
  multiplier for the number of experts, top-k or granularity; the down-projection/route-scale forward multipliers
  are given as formulas.  The router follows μP as an output-like matrix (fan-out = n_experts stays finite):
  init and LR ∝ 1/width, arXiv 2601.20205 and 2508.09752 (both secondary).
* Token horizon: Bjorck et al. arXiv 2409.19913, η ∝ D^-0.32 at a fixed batch (secondary), and the AdamW
  timescale τ = B/(η·λ·D) held constant (Wang & Aitchison arXiv 2405.13698; Power Lines arXiv 2505.13738).

The seed paper of this project (Zhou et al. arXiv 2601.05049) finds Transfer scales worse than Fitting at large
scale; every plan says so in its warnings.  See docs/transfer.md.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lrpredict.bounds import check_transfer_inputs
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.law_checks import checked_plan, require_config
from lrpredict.laws import HorizonRatio, Status, weakest
from lrpredict.registry import DEFAULT_WEIGHT_DECAY_LAW, load_law
from lrpredict.suggestion import Factor, Suggestion

Rule = Literal["mup", "completep", "depth-mup"]
RULES: dict[str, float | None] = {"mup": None, "completep": 1.0, "depth-mup": 0.5}  # rule -> depth exponent α
GROUPS = (
    "embedding",
    "attention",
    "dense_ffn",
    "expert_ffn",
    "router",
    "output_head",
    "norms_and_biases",
    "other",
)
# Groups that hold hidden matrices (both dimensions grow with width): LR 1/m_d, init 1/√m_d, λ·m_d.
HIDDEN = ("attention", "dense_ffn", "expert_ffn", "other")
# How λ follows the token horizon: as suggest's default law (Power Lines) or with the timescale held fixed.
WEIGHT_DECAY_RULES = ("powerlines", "constant-tau")
DEFAULT_ADAM_EPS = 1e-8  # torch.optim.AdamW's default, used when the proxy's ε is not given
WIDTH_EXTRAPOLATION_WARN = 32.0  # μTransfer is usually shown over ≤ 32× in width (e.g. arXiv 2203.03466 Fig. 1)

COMPLETEP = "CompleteP, Dey et al. arXiv 2505.01618 (official code EleutherAI/nanoGPT-mup)"
MUP = "μP, Yang et al. arXiv 2203.03466"
COMPLETE_MUE = "Complete-muE, Peng et al. arXiv 2605.23893 (authors' blog)"
ROUTER_SOURCES = "arXiv 2601.20205 (router init and LR Θ(1/n_embd)); arXiv 2508.09752 (router as output weight)"
SEED_PAPER = "Zhou et al. arXiv 2601.05049"
HYPERPARAMETER_KEYS = ("lr", "weight_decay", "adam_eps", "eps", "init_std", "embedding_weight_decay")


class GroupRule(BaseModel):
    """One parameter group of the target: its AdamW values and their multipliers over the proxy's.

    Multipliers are relative to the proxy's value for the same group (the base model; see ``base_width``), so a
    transfer to an identical target has every multiplier exactly 1.0.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str
    lr: float = Field(description="target peak LR of this group")
    lr_multiplier: float = Field(description="target LR / proxy LR")
    weight_decay: float = Field(description="target AdamW λ (PyTorch convention); 0 when the group never decays")
    weight_decay_multiplier: float = Field(description="target λ / the proxy's λ for this group")
    decays: bool = Field(description="whether the group takes weight decay at all (norms and biases do not)")
    init_std_multiplier: float = Field(description="target init std / the proxy's init std for this group")
    init_std: float | None = Field(default=None, description="target init std, when the proxy's init_std is given")
    adam_eps: float = Field(description="target AdamW ε")
    adam_eps_multiplier: float
    status: Status
    source: str
    notes: str = ""


class ForwardRule(BaseModel):
    """A multiplier the target model applies in its forward pass (not an optimizer setting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    formula: str
    multiplier: float | None = Field(description="its value for the target relative to the proxy; None: see formula")
    status: Status
    source: str


class TransferPlan(BaseModel):
    """Hyperparameters for ``target`` derived from those tuned on ``proxy``, per parameter group."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Rule
    alpha: float | None = Field(description="depth exponent α (None: width-only μP)")
    status: Status = Field(description="the weakest status among the rules this target uses")
    proxy: ModelConfig
    target: ModelConfig
    proxy_lr: float
    proxy_weight_decay: float
    proxy_adam_eps: float
    base_width: float = Field(description="width at which every group runs at proxy_lr (default: the proxy's)")
    base_depth: float = Field(description="depth at which the residual multiplier is 1 (default: the proxy's)")
    width_multiplier: float = Field(description="m_d = target d_model / base_width")
    depth_multiplier: float = Field(description="m_L = target n_layers / base_depth (1 for mup)")
    width_ratio: float = Field(description="target d_model / proxy d_model (extrapolation)")
    depth_ratio: float
    horizon_ratio: float = Field(description="target tokens / proxy tokens")
    horizon_lr_factor: float = Field(description="LR factor for the token horizon (every group)")
    horizon_weight_decay_factor: float = Field(
        description="λ factor for the horizon: τ = B/(η·λ·D) constant, times Power Lines' τ(D/N) move by default"
    )
    weight_decay_rule: str = Field(default="powerlines", description="powerlines (as suggest) or constant-tau")
    residual_multiplier: float = Field(description="m_L^-α: branch multiplier, h ← h + m_L^-α·F(h)")
    output_logit_multiplier: float = Field(description="1/m_d: logits ← α_output/m_d · W_out·h")
    groups: dict[str, GroupRule]
    forward: list[ForwardRule]
    warnings: list[str]
    derivation: list[Factor]

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def multipliers(self) -> dict[str, float]:
        """Every multiplier of the plan by name (all exactly 1.0 for an identical target)."""
        out = {"residual_multiplier": self.residual_multiplier, "output_logit_multiplier": self.output_logit_multiplier}
        for name, g in self.groups.items():
            for kind in ("lr", "weight_decay", "init_std", "adam_eps"):
                out[f"{name}.{kind}"] = getattr(g, f"{kind}_multiplier")
        out.update({f"forward.{f.name}": f.multiplier for f in self.forward if f.multiplier is not None})
        return out


def _positive(name: str, value: Any, *, zero_ok: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LrpredictError(name, value, "a number") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        raise LrpredictError(name, value, "a finite number >= 0" if zero_ok else "a finite number > 0")
    return number


def _hyperparameters(proxy_hparams: Mapping[str, Any] | Suggestion) -> dict[str, float | None]:
    if isinstance(proxy_hparams, Suggestion):
        return {
            "lr": proxy_hparams.lr,
            "weight_decay": proxy_hparams.weight_decay_groups.get("matrices", proxy_hparams.weight_decay),
            "embedding_weight_decay": proxy_hparams.weight_decay_groups.get("embeddings", 0.0),
            "adam_eps": DEFAULT_ADAM_EPS,
            "init_std": None,
        }
    if not isinstance(proxy_hparams, Mapping):
        raise LrpredictError("proxy_hparams", type(proxy_hparams).__name__, "a mapping with 'lr' or a Suggestion")
    unknown = sorted(set(proxy_hparams) - set(HYPERPARAMETER_KEYS))
    if unknown:
        raise LrpredictError(f"proxy_hparams.{unknown[0]}", proxy_hparams[unknown[0]], f"one of {HYPERPARAMETER_KEYS}")
    if "lr" not in proxy_hparams:
        raise LrpredictError("proxy_hparams.lr", None, "the proxy's tuned peak LR is required")
    wd = _positive("proxy_hparams.weight_decay", proxy_hparams.get("weight_decay", 0.0), zero_ok=True)
    eps = proxy_hparams.get("adam_eps", proxy_hparams.get("eps", DEFAULT_ADAM_EPS))
    std = proxy_hparams.get("init_std")
    # CompleteP decays the embedding with the same λ as the hidden matrices (nanoGPT-mup configure_optimizers)
    emb_wd = _positive(
        "proxy_hparams.embedding_weight_decay", proxy_hparams.get("embedding_weight_decay", wd), zero_ok=True
    )
    return {
        "lr": _positive("proxy_hparams.lr", proxy_hparams["lr"]),
        "weight_decay": wd,
        "embedding_weight_decay": emb_wd,
        "adam_eps": _positive("proxy_hparams.adam_eps", eps),
        "init_std": None if std is None else _positive("proxy_hparams.init_std", std),
    }


def _shape(config: ModelConfig, which: str, field: str, rule: str) -> int:
    value = getattr(config, field)
    if value is None:
        raise LrpredictError(f"{which}.{field}", None, f"the {rule} rule needs the {which}'s {field}")
    return int(value)


@checked_plan  # every group's numbers finite, LR > 0 (issue 15 fuzzing)
def transfer(
    proxy: ModelConfig,
    proxy_hparams: Mapping[str, Any] | Suggestion,
    target: ModelConfig,
    rule: str = "completep",
    *,
    base_width: float | None = None,
    base_depth: float | None = None,
    horizon_rule: str | None = "bjorck-2024",
    weight_decay_rule: str = "powerlines",
) -> TransferPlan:
    """Per-group AdamW hyperparameters for ``target`` from ``proxy_hparams`` tuned on ``proxy``.

    ``proxy_hparams``: a ``Suggestion`` or a mapping with ``lr`` (required), ``weight_decay`` (hidden matrices,
    default 0), ``adam_eps`` (default 1e-8), ``init_std`` and ``embedding_weight_decay`` (default: weight_decay,
    as CompleteP does).  ``rule``: "mup" (width only), "completep" (α = 1) or "depth-mup" (α = 0.5).
    ``base_width``/``base_depth``: the shape at which the μP model equals the standard one and every group runs at
    ``lr``; by default the proxy's own, so the multipliers are target-over-proxy.  ``horizon_rule``: a relative
    law id that moves the LR with the token horizon (default Bjorck's D^-0.32), or None to keep it.
    ``weight_decay_rule``: how λ follows the horizon — "powerlines" (default, the law ``suggest`` uses: the AdamW
    timescale τ = B/(η·λ·D) moves with tokens per parameter, τ ∝ (D/N)^-0.527, arXiv 2505.13738) or "constant-tau"
    (τ held fixed, Wang & Aitchison arXiv 2405.13698).  A mapping without ``weight_decay`` trains every group without
    decay, and the plan warns so.

    >>> from lrpredict import ModelConfig
    >>> proxy = ModelConfig(params="50M", tokens="1B", d_model=512, n_layers=8)
    >>> target = ModelConfig(params="1B", tokens="20B", d_model=2048, n_layers=16)
    >>> plan = transfer(proxy, {"lr": 3e-3, "weight_decay": 0.1}, target)
    >>> f"{plan.groups['attention'].lr:.3g}", plan.weight_decay_rule
    ('0.000288', 'powerlines')
    """
    check_transfer_inputs(proxy, proxy_hparams, target, base_width=base_width, base_depth=base_depth)  # issue 23
    if weight_decay_rule not in WEIGHT_DECAY_RULES:
        raise LrpredictError("weight_decay_rule", weight_decay_rule, f"one of {list(WEIGHT_DECAY_RULES)}")
    require_config("proxy", proxy)  # None gave an AttributeError (issue 15)
    require_config("target", target)
    if rule not in RULES:
        raise LrpredictError("rule", rule, f"one of {list(RULES)}")
    hp = _hyperparameters(proxy_hparams)
    warnings = _input_warnings(proxy_hparams)
    derivation: list[Factor] = []
    # the rule steps (arXiv 2601.05049 §Transfer): width and depth, horizon LR, weight decay, groups (MoE), forward
    shape = _width_and_depth(proxy, target, rule, base_width, base_depth, warnings, derivation)
    horizon = target.tokens / proxy.tokens
    horizon_lr, horizon_status = _horizon_lr(proxy, target, horizon_rule, warnings, derivation)
    horizon_wd = _horizon_weight_decay(proxy, target, horizon_lr, weight_decay_rule, warnings, derivation)
    steps = _Steps(alpha=RULES[rule], m_d=shape.m_d, m_L=shape.m_L, horizon_lr=horizon_lr, horizon_wd=horizon_wd)
    groups = _group_rules(hp, steps)
    moe = target.arch == "moe" or proxy.arch == "moe"
    forward = _forward_rules(steps, moe)
    warnings += _scale_warnings(proxy, target, shape)
    # the groups this target has ("other" is a fallback, not a rule); the horizon's status when it moved the LR
    used = [groups[g] for g in GROUPS if g != "other" and (moe or g not in ("expert_ffn", "router"))]
    statuses = [g.status for g in used] + ([horizon_status] if horizon != 1.0 and horizon_rule is not None else [])
    warnings += _sanity(hp["lr"], hp["weight_decay"], used)  # type: ignore[arg-type]
    return TransferPlan(
        rule=rule,  # type: ignore[arg-type]
        alpha=steps.alpha,
        status=weakest(statuses),
        proxy=proxy,
        target=target,
        proxy_lr=hp["lr"],
        proxy_weight_decay=hp["weight_decay"],
        proxy_adam_eps=hp["adam_eps"],
        **shape.plan_fields(),
        horizon_ratio=horizon,
        horizon_lr_factor=horizon_lr,
        horizon_weight_decay_factor=horizon_wd,
        weight_decay_rule=weight_decay_rule,
        residual_multiplier=forward[0].multiplier,  # type: ignore[arg-type]
        output_logit_multiplier=forward[1].multiplier,  # type: ignore[arg-type]
        groups=groups,
        forward=forward,
        warnings=warnings,
        derivation=derivation,
    )


def _input_warnings(proxy_hparams: Mapping[str, Any] | Suggestion) -> list[str]:
    if isinstance(proxy_hparams, Mapping) and "weight_decay" not in proxy_hparams:
        return [
            "proxy weight decay not given: 0 assumed, so every group trains without weight decay; pass the λ tuned "
            "on the proxy (weight_decay, --proxy-wd; 0 if it used none)"
        ]
    return []


@dataclass(frozen=True)
class _Shape:
    """What the width and depth steps give: the multipliers over the base model and the ratios over the proxy."""

    width0: float
    m_d: float
    width_ratio: float
    depth0: float
    m_L: float
    depth_ratio: float

    def plan_fields(self) -> dict[str, float]:
        """The ``TransferPlan`` fields the width and depth steps fill."""
        return {
            "base_width": self.width0,
            "base_depth": self.depth0,
            "width_multiplier": self.m_d,
            "depth_multiplier": self.m_L,
            "width_ratio": self.width_ratio,
            "depth_ratio": self.depth_ratio,
        }


def _width_and_depth(
    proxy: ModelConfig,
    target: ModelConfig,
    rule: str,
    base_width: float | None,
    base_depth: float | None,
    warnings: list[str],
    derivation: list[Factor],
) -> _Shape:
    """Width step (μP, Yang et al. arXiv 2203.03466): m_d = d_model / base_width.  Depth step (CompleteP, Dey et
    al. arXiv 2505.01618, α = 1; depth-μP α = 0.5): m_L = n_layers / base_depth; width-only μP keeps m_L = 1."""
    alpha = RULES[rule]
    d_proxy = _shape(proxy, "proxy", "d_model", rule)
    d_target = _shape(target, "target", "d_model", rule)
    width0 = float(d_proxy) if base_width is None else _positive("base_width", base_width)
    m_d = d_target / width0
    if alpha is None:  # width-only μP: depth is not transferred
        m_L, depth0 = 1.0, float(proxy.n_layers or target.n_layers or 1)
        if proxy.n_layers and target.n_layers and proxy.n_layers != target.n_layers:
            warnings.append(
                f"rule 'mup' transfers across width only; depth changes {proxy.n_layers} → {target.n_layers} "
                "layers: use rule 'completep' (CompleteP, arXiv 2505.01618)"
            )
    else:
        l_proxy = _shape(proxy, "proxy", "n_layers", rule)
        l_target = _shape(target, "target", "n_layers", rule)
        depth0 = float(l_proxy) if base_depth is None else _positive("base_depth", base_depth)
        m_L = l_target / depth0
    derivation += [
        Factor(name="m_d = d_model / base_width", value=m_d, source=f"{d_target} / {width0:g}"),
        Factor(
            name="m_L = n_layers / base_depth",
            value=m_L,
            source="rule 'mup': depth not transferred" if alpha is None else f"{target.n_layers} / {depth0:g}",
        ),
    ]
    depth_ratio = (target.n_layers / proxy.n_layers) if (target.n_layers and proxy.n_layers) else 1.0
    return _Shape(width0, m_d, d_target / d_proxy, depth0, m_L, depth_ratio)


def _horizon_lr(
    proxy: ModelConfig,
    target: ModelConfig,
    horizon_rule: str | None,
    warnings: list[str],
    derivation: list[Factor],
) -> tuple[float, Status]:
    """Horizon step, LR: η moves by a relative law at a fixed batch (default Bjorck et al. arXiv 2409.19913,
    η ∝ D^-0.32, secondary); returns the LR factor and the status of the exponent used."""
    horizon = target.tokens / proxy.tokens
    if horizon == 1.0:
        return 1.0, "confirmed"
    if horizon_rule is None:
        warnings.append(f"target trains {horizon:.3g}× the proxy's tokens and horizon_rule=None: LR not moved")
        return 1.0, "confirmed"
    law = load_law(horizon_rule)
    if not isinstance(law.lr, HorizonRatio):
        raise LrpredictError("horizon_rule", horizon_rule, "a relative law that moves the LR with D, e.g. bjorck-2024")
    horizon_lr = law.lr.evaluate_relative(1.0, proxy.tokens, target.tokens)
    status = law.lr.exponent.status
    derivation.append(
        Factor(
            name=f"(D/D_proxy)^{law.lr.exponent.value:g}",
            value=horizon_lr,
            source=f"{law.id} ({status}): D {proxy.tokens:.3g} → {target.tokens:.3g}, fixed batch",
        )
    )
    if target.arch not in law.architectures:
        warnings.append(
            f"{law.id} (horizon) was fitted on {'/'.join(law.architectures)} models; target is {target.arch}"
        )
    warnings += law.domain_status({"N": target.params, "D": target.tokens})
    return horizon_lr, status


def _horizon_weight_decay(
    proxy: ModelConfig,
    target: ModelConfig,
    horizon_lr: float,
    weight_decay_rule: str,
    warnings: list[str],
    derivation: list[Factor],
) -> float:
    """Weight-decay step: λ keeps the AdamW timescale as a fraction of training, τ = B/(η·λ·D) constant, so
    λ ∝ B/(η·D) (Wang & Aitchison arXiv 2405.13698); with "powerlines" τ also moves with tokens per parameter as
    suggest's default law has it, τ ∝ (D/N)^-0.527 (Power Lines arXiv 2505.13738).  Returns the λ factor."""
    horizon = target.tokens / proxy.tokens
    batch_factor = 1.0
    if proxy.batch_tokens and target.batch_tokens and proxy.batch_tokens != target.batch_tokens:
        batch_factor = target.batch_tokens / proxy.batch_tokens
        warnings.append(
            f"batch changes {proxy.batch_tokens:.3g} → {target.batch_tokens:.3g} tokens: the LR is not moved for it "
            "(the horizon rule assumes a fixed batch); λ ∝ B keeps the AdamW timescale"
        )
    horizon_wd = batch_factor / (horizon_lr * horizon)
    if horizon_wd != 1.0:
        derivation.append(
            Factor(
                name="λ factor = (B/B_p)/((η/η_p)·(D/D_p))",
                value=horizon_wd,
                source="τ = B/(η·λ·D) held constant (Wang & Aitchison arXiv 2405.13698)",
            )
        )
    if weight_decay_rule == "powerlines":
        # suggest's default weight-decay law: τ_opt = c·(D/N)^e, so λ ∝ 1/τ gains (TPP_target/TPP_proxy)^-e
        powerlines = load_law(DEFAULT_WEIGHT_DECAY_LAW)
        assert powerlines.weight_decay is not None
        e = powerlines.weight_decay.tpp_exponent
        tpp_ratio = (target.tokens / target.params) / (proxy.tokens / proxy.params)
        tau_factor = tpp_ratio ** (-e.value)
        horizon_wd *= tau_factor
        derivation.append(
            Factor(
                name=f"(TPP/TPP_p)^{-e.value:g}",
                value=tau_factor,
                source=f"{powerlines.id} ({e.status}): τ ∝ (D/N)^{e.value:g}, tokens per parameter "
                f"{proxy.tokens / proxy.params:.3g} → {target.tokens / target.params:.3g} (N as given, non-embedding)",
            )
        )
    return horizon_wd


@dataclass(frozen=True)
class _Steps:
    """The factors every group shares: width and depth multipliers, and the horizon's LR and λ factors."""

    alpha: float | None
    m_d: float
    m_L: float
    horizon_lr: float
    horizon_wd: float

    @property
    def depth_lr(self) -> float:  # CompleteP: hidden Adam LR × m_L^(α-1)
        return 1.0 if self.alpha is None else self.m_L ** (self.alpha - 1.0)

    @property
    def depth_eps(self) -> float:  # CompleteP: hidden ε × m_L^-α
        return 1.0 if self.alpha is None else self.m_L ** (-self.alpha)

    @property
    def source(self) -> str:
        return MUP if self.alpha is None else COMPLETEP


def _group_rule(
    name: str,
    multipliers: tuple[float, float, float, float],
    hp: dict[str, float | None],
    steps: _Steps,
    status: Status,
    source: str,
    notes: str,
    *,
    embedding: bool = False,
    decays: bool = True,
) -> GroupRule:
    """One group: the proxy's values × the group's (LR, λ, init std, ε) multipliers × the horizon factors."""
    lr_mult, wd_mult, std_mult, eps_mult = multipliers
    lr_mult *= steps.horizon_lr
    wd_mult *= steps.horizon_wd
    base_wd, std0, eps0 = hp["embedding_weight_decay" if embedding else "weight_decay"], hp["init_std"], hp["adam_eps"]
    assert hp["lr"] is not None and base_wd is not None and eps0 is not None
    return GroupRule(
        group=name,
        lr=hp["lr"] * lr_mult,
        lr_multiplier=lr_mult,
        weight_decay=base_wd * wd_mult if decays else 0.0,
        weight_decay_multiplier=wd_mult,
        decays=decays,
        init_std_multiplier=std_mult,
        init_std=None if std0 is None else std0 * std_mult,
        adam_eps=eps0 * eps_mult,
        adam_eps_multiplier=eps_mult,
        status=status,
        source=source,
        notes=notes,
    )


def _hidden_notes(steps: _Steps) -> str:
    notes = "init σ/√m_d; Adam LR η·m_d^-1·m_L^(α-1); λ·m_d (η·λ width-invariant); ε·m_d^-1·m_L^-α"
    if steps.alpha is None:
        notes += "; λ·m_d is lrpredict's choice for 'mup' (CompleteP's rule; nanoGPT-mup's width-only branch keeps λ)"
    return notes


def _hidden_multipliers(steps: _Steps) -> tuple[float, float, float, float]:
    """Hidden matrices (μP / CompleteP): LR η·m_d^-1·m_L^(α-1), λ·m_d, init σ/√m_d, ε·m_d^-1·m_L^-α."""
    m_d = steps.m_d
    return (1.0 / m_d * steps.depth_lr, m_d, 1.0 / math.sqrt(m_d), 1.0 / m_d * steps.depth_eps)


def _group_rules(hp: dict[str, float | None], steps: _Steps) -> dict[str, GroupRule]:
    """Every group of the target, in ``GROUPS`` order: the hidden matrices, the MoE groups, and the groups at the
    model's edges (embedding, output head, norms and biases)."""
    notes, hidden = _hidden_notes(steps), _hidden_multipliers(steps)
    made = {
        "attention": _group_rule(
            "attention", hidden, hp, steps, "confirmed", steps.source, notes + "; logits scaled 1/d_head"
        ),
        "dense_ffn": _group_rule(
            "dense_ffn", hidden, hp, steps, "confirmed", steps.source, notes + "; shared experts too"
        ),
        "other": _group_rule(
            "other",
            hidden,
            hp,
            steps,
            "open",
            "lrpredict default",
            "parameters no pattern recognises are treated as hidden matrices: an assumption; classify them",
        ),
        **_moe_groups(hp, steps),
        **_edge_groups(hp, steps),
    }
    return {name: made[name] for name in GROUPS}


def _moe_groups(hp: dict[str, float | None], steps: _Steps) -> dict[str, GroupRule]:
    """MoE step (Complete-muE, Peng et al. arXiv 2605.23893): experts are hidden matrices with no multiplier for
    n_experts, top_k or granularity; the router follows μP as an output-like matrix (arXiv 2601.20205, 2508.09752)."""
    m_d = steps.m_d
    return {
        "expert_ffn": _group_rule(
            "expert_ffn",
            _hidden_multipliers(steps),
            hp,
            steps,
            "confirmed",
            f"{COMPLETE_MUE} + {steps.source}",
            "experts are hidden matrices: no LR/WD multiplier for n_experts, top_k or granularity (Complete-muE); "
            "assumes the expert width grows with d_model; " + _hidden_notes(steps),
        ),
        "router": _group_rule(
            "router",
            (1.0 / m_d * steps.depth_lr, m_d, 1.0 / m_d, 1.0 / m_d * steps.depth_eps),
            hp,
            steps,
            "secondary",
            ROUTER_SOURCES,
            "μP output-like matrix (fan-out n_experts is finite): init and Adam LR ∝ 1/d_model; λ·m_d keeps η·λ "
            "width-invariant (lrpredict's choice: open); depth factors as for hidden tensors (open)",
        ),
    }


def _edge_groups(hp: dict[str, float | None], steps: _Steps) -> dict[str, GroupRule]:
    """Embedding, output head, norms and biases (μP / CompleteP, nanoGPT-mup): LR, λ and init unchanged but for
    the depth factor on norms; ε·m_d^-1 on all three (the code's Eq. 40 fix)."""
    eps = 1.0 / steps.m_d
    assert hp["embedding_weight_decay"] is not None
    return {
        "embedding": _group_rule(
            "embedding",
            (1.0, 1.0, 1.0, eps),
            hp,
            steps,
            "confirmed",
            steps.source,
            "LR η, λ, init unchanged; forward ×α_input; ε·m_d^-1 (emb/unemb ε, nanoGPT-mup's Eq. 40 fix)",
            embedding=True,
            decays=hp["embedding_weight_decay"] > 0,
        ),
        "output_head": _group_rule(
            "output_head",
            (1.0, 1.0, 1.0, eps),
            hp,
            steps,
            "confirmed",
            steps.source,
            "LR η, λ and init unchanged; forward ×α_output/m_d; ε·m_d^-1 (in the code the head is tied to wte)",
        ),
        "norms_and_biases": _group_rule(
            "norms_and_biases",
            (steps.depth_lr, 1.0, 1.0, 1.0 / steps.m_d * steps.depth_eps),
            hp,
            steps,
            "confirmed",
            steps.source,
            "LR η·m_L^(α-1), λ = 0; the code keeps the final norm at LR η and ε·m_d^-1 (differs only for α < 1)",
            decays=False,
        ),
    }


def _forward_rules(steps: _Steps, moe: bool) -> list[ForwardRule]:
    """Forward multipliers (CompleteP / μP): residual branches m_L^-α first, output logits 1/m_d second (the plan
    reads them from there), input embedding and attention logits; MoE adds Complete-muE's A and R (secondary)."""
    alpha, source = steps.alpha, steps.source
    forward = [
        ForwardRule(
            name="residual_branch",
            formula="h ← h + m_L^-α·F(h)" if alpha is not None else "h ← h + F(h) (no depth scaling)",
            multiplier=1.0 if alpha is None else steps.m_L ** (-alpha),
            status="confirmed",
            source=source,
        ),
        ForwardRule(
            name="output_logits",
            formula="logits = (α_output/m_d)·W_out·h",
            multiplier=1.0 / steps.m_d,
            status="confirmed",
            source=source,
        ),
        ForwardRule(
            name="input_embedding",
            formula="h_0 = α_input·W_emb[x] (α_input tuned on the proxy, unchanged)",
            multiplier=1.0,
            status="confirmed",
            source=source,
        ),
        ForwardRule(
            name="attention_logits",
            formula="q·k/d_head instead of q·k/√d_head (unchanged when d_head is fixed)",
            multiplier=None,
            status="confirmed",
            source=source,
        ),
    ]
    return forward + _moe_forward_rules() if moe else forward


def _moe_forward_rules() -> list[ForwardRule]:
    """Complete-muE's forward multipliers for experts (arXiv 2605.23893, secondary): as formulas, not values."""
    return [
        ForwardRule(
            name="moe_expert_down_projection",
            formula="output ×A = d/H_act, init σ_down·√(H_act/d); H_act = top_k·d_expert (active width), "
            "d = the dense reference FFN width",
            multiplier=None,
            status="secondary",
            source=f"{COMPLETE_MUE}; the reading of d and of top_k in H_act is lrpredict's",
        ),
        ForwardRule(
            name="moe_route_scale",
            formula="routed sum with normalised top-k weights, ×R = top_k",
            multiplier=None,
            status="secondary",
            source=f"{COMPLETE_MUE}; whether R counts experts or the activated fraction: open",
        ),
    ]


def _scale_warnings(proxy: ModelConfig, target: ModelConfig, shape: _Shape) -> list[str]:
    """How far the plan reaches: the seed paper's finding (arXiv 2601.05049 §Transfer), extrapolation in width,
    transfer downwards, and Complete-muE's bridges between dense and MoE."""
    warnings = [
        f"{SEED_PAPER} (secondary) finds the Transfer paradigm scales worse than Fitting at large scale, which it "
        "explains by training stability and feature learning: check the transferred LR against `lrpredict suggest`"
    ]
    if shape.width_ratio > WIDTH_EXTRAPOLATION_WARN:
        warnings.append(
            f"width extrapolation {shape.width_ratio:.3g}× exceeds {WIDTH_EXTRAPOLATION_WARN:g}×: transfer is rarely "
            "verified that far; tune an intermediate proxy"
        )
    if shape.width_ratio < 1 or shape.depth_ratio < 1:
        warnings.append("target is narrower or shallower than the proxy: transfer downwards is unusual")
    if target.arch == "moe" and proxy.arch == "dense":
        warnings.append(
            "dense proxy → MoE target: Complete-muE's Bridge I needs the forward multipliers A, R and the "
            "down-projection init in the target model (see plan.forward); the router rule is secondary"
        )
    elif target.arch == "moe" and (proxy.top_k, proxy.n_experts) != (target.top_k, target.n_experts):
        warnings.append(
            "top_k or n_experts change: Complete-muE's Bridge II leaves no LR/WD correction but reports a small "
            "residual drift of the optimum (secondary)"
        )
    return warnings


def _sanity(lr0: float, wd0: float, groups: list[GroupRule]) -> list[str]:
    """Warnings on numbers no published run used (QA 2026-12-01: proxy LR 100 → 38.3, λ 5e5 and a 1-token target
    passed without a word)."""
    from lrpredict.runs import LR_SANE, WEIGHT_DECAY_SANE

    out = []
    if not LR_SANE[0] <= lr0 <= LR_SANE[1]:
        out.append(f"proxy LR {lr0:.3g} is outside {LR_SANE[0]:g}–{LR_SANE[1]:g}, where every published run lies")
    if wd0 > WEIGHT_DECAY_SANE:
        out.append(f"proxy weight decay {wd0:.3g} is above {WEIGHT_DECAY_SANE:g} (the published runs use 0.01–0.1)")
    hot = sorted({g.group for g in groups if g.lr > LR_SANE[1] or g.weight_decay > WEIGHT_DECAY_SANE})
    if hot:
        out.append(
            f"transferred LR above {LR_SANE[1]:g} or weight decay above {WEIGHT_DECAY_SANE:g} in {', '.join(hot)}: "
            "check the proxy's numbers and the horizon before using them"
        )
    return out


__all__ = ["GROUPS", "RULES", "ForwardRule", "GroupRule", "TransferPlan", "transfer"]


class _CallableModule(types.ModuleType):
    """``lrpredict.transfer`` is this module and also callable as its main function, so both
    ``lrpredict.transfer(proxy, hparams, target)`` and ``from lrpredict.transfer import TransferPlan`` work (issue 14:
    a function of the package's namespace named like the module was overwritten by the module on first import)."""

    def __call__(self, *args: Any, **kwargs: Any) -> TransferPlan:
        return transfer(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
