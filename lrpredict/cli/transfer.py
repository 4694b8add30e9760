"""``lrpredict transfer``: per-group hyperparameters for a target from those tuned on a proxy (``lrpredict.transfer``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from lrpredict.bounds import check_plan
from lrpredict.cli.common import CONTEXT, BadInput
from lrpredict.cli.common import handles_errors as common_handles_errors
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.render import describe_config
from lrpredict.transfer import RULES, TransferPlan, transfer

# error field -> the option the user typed
OPTION_OF_FIELD = {
    "proxy.params": "--proxy-params",
    "proxy.active_params": "--proxy-active-params",
    "proxy.tokens": "--proxy-tokens",
    "proxy.n_layers": "--proxy-layers",
    "proxy.d_model": "--proxy-d-model",
    "proxy.arch": "--proxy-arch",
    "proxy.batch_tokens": "--proxy-batch-tokens",
    "batch_tokens": "--batch-tokens",
    "proxy_hparams.lr": "--proxy-lr",
    "proxy_hparams.weight_decay": "--proxy-wd",
    "proxy_hparams.adam_eps": "--proxy-eps",
    "params": "--params",
    "active_params": "--active-params",
    "tokens": "--tokens",
    "arch": "--arch",
    "n_experts": "--n-experts",
    "top_k": "--top-k",
    "target.n_layers": "--layers",
    "target.d_model": "--d-model",
    "rule": "--rule",
    "base_width": "--base-width",
    "target.params": "--params",
    "target.active_params": "--active-params",
    "target.tokens": "--tokens",
    "target.batch_tokens": "--batch-tokens",
    "horizon_rule": "--horizon-rule",
    "law": "--horizon-rule",
}


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """``cli.common.handles_errors`` with the errors of ``transfer`` named by the option the user typed."""

    @functools.wraps(command)
    def renamed(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LrpredictError as exc:
            option = OPTION_OF_FIELD.get(exc.field)
            if option is None:
                raise
            raise LrpredictError(option, exc.value, exc.allowed) from None

    return common_handles_errors(renamed)


def named_config(prefix: str, **fields: Any) -> ModelConfig:
    try:
        return ModelConfig(**{k: v for k, v in fields.items() if v is not None})
    except LrpredictError as exc:
        if prefix:
            raise LrpredictError(f"{prefix}.{exc.field}", exc.value, exc.allowed) from None
        raise


MOE_GROUPS = ("expert_ffn", "router")


def render_plan(plan: TransferPlan) -> str:
    def shape(c: ModelConfig) -> str:
        return f"d_model {c.d_model}, {c.n_layers if c.n_layers is not None else '?'} layers"

    alpha = "width only" if plan.alpha is None else f"α = {plan.alpha:g}"
    lines = [
        f"lrpredict transfer — rule {plan.rule} ({alpha}) [status: {plan.status}]",
        f"  proxy   {describe_config(plan.proxy)}; {shape(plan.proxy)}",
        f"  target  {describe_config(plan.target)}; {shape(plan.target)}",
        f"  tuned on the proxy: lr {plan.proxy_lr:.4g}, λ {plan.proxy_weight_decay:.4g}, ε {plan.proxy_adam_eps:.3g}",
        "",
        "derivation:",
    ]
    lines += [f"  {f.name:<38} = {f.value:<10.4g} {f.source}" for f in plan.derivation]
    header = f"{'group':<17} {'lr':>10} {'×lr':>8} {'λ':>10} {'×λ':>8} {'init ×':>8} {'ε ×':>8}  status"
    lines += ["", header, "-" * len(header)]
    moe = plan.target.arch == "moe" or plan.proxy.arch == "moe"
    for g in plan.groups.values():
        if not moe and g.group in MOE_GROUPS:  # a dense model has no experts or router (issue 23)
            continue
        wd = f"{g.weight_decay:>10.3g}" if g.decays else f"{'0':>10}"
        wd_mult = f"{g.weight_decay_multiplier:>8.4g}" if g.decays else f"{'-':>8}"
        lines.append(
            f"{g.group:<17} {g.lr:>10.3g} {g.lr_multiplier:>8.4g} {wd} {wd_mult} "
            f"{g.init_std_multiplier:>8.4g} {g.adam_eps_multiplier:>8.4g}  {g.status}"
        )
    lines += ["", "forward multipliers (in the target model's code):"]
    for f in plan.forward:
        value = f"×{f.multiplier:.4g}" if f.multiplier is not None else "formula"
        lines.append(f"  {f.name:<27} {value:<9} {f.formula}  [{f.status}]")
    lines += ["", "sources:"]
    lines += sorted({f"  {g.group}: {g.source}" for g in plan.groups.values() if moe or g.group not in MOE_GROUPS})
    if plan.warnings:
        lines += ["", "warnings:"] + [f"  ! {w}" for w in plan.warnings]
    return "\n".join(lines)


@click.command(
    name="transfer",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict transfer --proxy-params 50M --proxy-tokens 1B --proxy-d-model 512 --proxy-layers 8 --proxy-lr 3e-3 --proxy-wd 0.1 --params 1B --tokens 20B --d-model 2048 --layers 16\n  lrpredict transfer ... --weight-decay-rule constant-tau --json",
)
@click.option("--proxy-params", help="proxy's non-embedding parameters, e.g. 50M  [required]")
@click.option("--proxy-active-params", help="proxy (MoE): active non-embedding parameters")
@click.option("--proxy-arch", type=click.Choice(["dense", "moe"]), default="dense", show_default=True)
@click.option("--proxy-tokens", help="proxy's training tokens, e.g. 1B  [required]")
@click.option("--proxy-layers", type=int, help="proxy's transformer blocks")
@click.option("--proxy-d-model", type=int, help="proxy's hidden width  [required]")
@click.option("--proxy-lr", type=float, help="peak LR tuned on the proxy  [required]")
@click.option("--proxy-wd", type=float, help="proxy's λ on hidden matrices (0 if it used none)  [required]")
@click.option("--proxy-batch-tokens", help="proxy's batch in tokens (with --batch-tokens: λ ∝ B)")
@click.option("--proxy-eps", type=float, default=1e-8, show_default=True, help="proxy's AdamW ε")
@click.option("--arch", type=click.Choice(["dense", "moe"]), default="dense", show_default=True)
@click.option("--params", help="target's non-embedding parameters (MoE: total), e.g. 7B  [required]")
@click.option("--active-params", help="target (MoE): active non-embedding parameters")
@click.option("--tokens", help="target's training tokens, e.g. 100B  [required]")
@click.option("--layers", "n_layers", type=int, help="target's transformer blocks")
@click.option("--d-model", type=int, help="target's hidden width  [required]")
@click.option("--batch-tokens", help="target's batch in tokens (default: the proxy's)")
@click.option("--n-experts", type=int, help="target (MoE): routed experts per layer")
@click.option("--top-k", type=int, help="target (MoE): experts active per token")
@click.option("--rule", type=click.Choice(list(RULES)), default="completep", show_default=True)
@click.option("--base-width", type=float, help="width at which every group runs at the proxy's LR (default: proxy's)")
@click.option(
    "--horizon-rule", default="bjorck-2024", show_default=True, help="law moving the LR with D; 'none' to keep it"
)
@click.option(
    "--weight-decay-rule",
    type=click.Choice(["powerlines", "constant-tau"]),
    default="powerlines",
    show_default=True,
    help="λ across horizons: as suggest's Power Lines law, or the AdamW timescale held fixed",
)
@click.option("json_", "--json", is_flag=True, help="machine output only, on stdout")
@handles_errors
def transfer_command(
    proxy_params: str | None,
    proxy_active_params: str | None,
    proxy_arch: str,
    proxy_tokens: str | None,
    proxy_layers: int | None,
    proxy_d_model: int | None,
    proxy_lr: float | None,
    proxy_wd: float | None,
    proxy_batch_tokens: str | None,
    proxy_eps: float,
    arch: str,
    params: str | None,
    active_params: str | None,
    tokens: str | None,
    n_layers: int | None,
    d_model: int | None,
    batch_tokens: str | None,
    n_experts: int | None,
    top_k: int | None,
    rule: str,
    base_width: float | None,
    horizon_rule: str,
    weight_decay_rule: str,
    json_: bool,
) -> None:
    """Move hyperparameters tuned on a small proxy to a target (μP / CompleteP / depth-μP, MoE per Complete-muE).

    Prints the target's LR, weight decay, init and ε per parameter group, and the forward multipliers its model
    must apply.  See docs/transfer.md; `lrpredict suggest` gives the Fitting paradigm's answer to compare.
    """
    for name, value, example in (
        ("--proxy-params", proxy_params, "50M"),
        ("--proxy-tokens", proxy_tokens, "1B"),
        ("--proxy-lr", proxy_lr, "3e-3"),
        ("--proxy-wd", proxy_wd, "0.1 (0 if the proxy used no weight decay)"),
        ("--params", params, "7B"),
        ("--tokens", tokens, "100B"),
    ):
        if value is None:
            raise BadInput(f"{name} is required, e.g. {name} {example}")
    proxy = named_config(
        "proxy",
        arch=proxy_arch,
        params=proxy_params,
        active_params=proxy_active_params,
        tokens=proxy_tokens,
        n_layers=proxy_layers,
        d_model=proxy_d_model,
        batch_tokens=proxy_batch_tokens,
    )
    target = named_config(
        "",
        arch=arch,
        params=params,
        active_params=active_params,
        tokens=tokens,
        n_layers=n_layers,
        d_model=d_model,
        batch_tokens=batch_tokens,
        n_experts=n_experts,
        top_k=top_k,
    )
    plan = transfer(
        proxy,
        {"lr": proxy_lr, "weight_decay": proxy_wd, "adam_eps": proxy_eps},
        target,
        rule,
        base_width=base_width,
        horizon_rule=None if horizon_rule.lower() == "none" else horizon_rule,
        weight_decay_rule=weight_decay_rule,
    )
    notes = check_plan(plan)  # an out-of-bounds LR or λ is refused, an unusual one warned (issue 23)
    if notes:
        plan = plan.model_copy(update={"warnings": [*plan.warnings, *notes]})
    click.echo(plan.to_json() if json_ else render_plan(plan))
