"""``lrpredict suggest``: a thin client of the Python API (parse → call → render)."""

from __future__ import annotations

from typing import Any

import click

from lrpredict import render
from lrpredict.cli.common import (
    CONTEXT,
    BadInput,
    check_plot,
    handles_errors,
    refuse_empty_plot,
    refuse_together,
    with_flags,
)
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.suggest import compare, suggest
from lrpredict.units import parse_size


def _size_or_none(value: str | None, field: str) -> float | None:
    return None if value is None else parse_size(value, field)


@click.command(
    name="suggest",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict suggest --params 1B --tokens 20B --explain\n  lrpredict suggest --hf-config config.json --tokens 2T --compare\n  lrpredict suggest --hf-config config.json --tokens 2T --batch-tokens 4M --world-size 256 --micro-batch-size 4 --format torchtitan",
)
@click.option("--arch", type=click.Choice(["dense", "moe"]), default="dense", show_default=True)
@click.option(
    "--hf-config",
    type=click.Path(dir_okay=True),
    help="a Hugging Face config.json (or its folder): N, N_active, shape and MoE fields from it, not --params",
)
@click.option("--params", help="non-embedding parameters (MoE: total), e.g. 7B  [required unless --hf-config]")
@click.option("--active-params", help="MoE: active non-embedding parameters, e.g. 1.3B")
@click.option("--tokens", help="training tokens D, e.g. 2T  [required]")
@click.option("--layers", "n_layers", type=int, help="transformer blocks (needed by compute laws)")
@click.option("--d-model", type=int, help="hidden width (needed by compute laws)")
@click.option("--seq-len", type=int, help="sequence length (needed by compute laws)")
@click.option("--batch-tokens", help="the batch you will use, in tokens, e.g. 4M")
@click.option("--n-experts", type=int, help="MoE: routed experts per layer")
@click.option("--top-k", type=int, help="MoE: experts active per token")
@click.option("--vocab-size", type=int)
@click.option(
    "--schedule", type=click.Choice(["wsd", "cosine", "linear", "multistep", "constant"]), help="your schedule"
)
@click.option("--law", help="law id or path of a law file (default: best-scoring law for the arch)")
@click.option("--weight-decay-law", help="weight-decay law id or path (default: powerlines-2025)")
@click.option("--tolerance", type=float, default=0.0025, show_default=True, help="relative loss for the LR band")
@click.option("--reference-lr", type=float, help="relative laws: LR tuned at --reference-tokens")
@click.option("--reference-tokens", help="relative laws: horizon of the reference LR")
@click.option("--compare", "compare_", is_flag=True, help="every applicable law side by side")
@click.option(
    "--paradigm",
    type=click.Choice(["fitting", "transfer"]),
    default="fitting",
    show_default=True,
    help="transfer: also carry a tuned proxy's LR to this run (needs --proxy-*), side by side with the law",
)
@click.option("--proxy-params", help="transfer: proxy's non-embedding parameters, e.g. 50M")
@click.option("--proxy-tokens", help="transfer: proxy's training tokens")
@click.option("--proxy-d-model", type=int, help="transfer: proxy's width")
@click.option("--proxy-layers", type=int, help="transfer: proxy's depth")
@click.option("--proxy-lr", type=float, help="transfer: LR tuned on the proxy")
@click.option("--proxy-wd", type=float, help="transfer: proxy's weight decay on matrices (0 if none)")
@click.option(
    "--plot", "plot_file", type=click.Path(dir_okay=False), help="with --compare: LR vs N per law, to FILE.png"
)
@click.option("--force", is_flag=True, help="with --plot: replace an existing file")
@click.option("--world-size", type=int, help="exports: data-parallel ranks; the global batch is rounded to divide")
@click.option("--micro-batch-size", type=int, help="exports: sequences per rank per forward pass")
@click.option("--explain", is_flag=True, help="print the derivation, factor by factor")
@click.option("json_", "--json", is_flag=True, help="machine output only, on stdout (same as --format json)")
@click.option(
    "output_format",
    "--format",
    type=click.Choice(["text", "json", "hf", "torchtitan", "megatron"]),
    default="text",
    show_default=True,
    help="hf: TrainingArguments kwargs (JSON); torchtitan: TOML; megatron: command-line flags",
)
@handles_errors
def suggest_command(
    arch: str,
    params: str | None,
    active_params: str | None,
    tokens: str | None,
    law: str | None,
    weight_decay_law: str | None,
    tolerance: float,
    reference_lr: float | None,
    reference_tokens: str | None,
    compare_: bool,
    paradigm: str,
    proxy_params: str | None,
    proxy_tokens: str | None,
    proxy_d_model: int | None,
    proxy_layers: int | None,
    proxy_lr: float | None,
    proxy_wd: float | None,
    explain: bool,
    json_: bool,
    output_format: str,
    hf_config: str | None = None,
    plot_file: str | None = None,
    world_size: int | None = None,
    micro_batch_size: int | None = None,
    force: bool = False,
    **shape: Any,
) -> None:
    """Suggest peak LR, weight decay and batch size for one run."""
    _refuse_conflicts(
        compare_,
        law,
        explain,
        json_,
        output_format,
        paradigm,
        plot_file,
        world_size,
        micro_batch_size,
        proxy_given=any(v is not None for v in (proxy_params, proxy_tokens, proxy_d_model, proxy_layers, proxy_lr)),
        force=force,
    )
    config, notes = _run_config(hf_config, arch, params, active_params, tokens, shape)
    json_ = json_ or output_format == "json"
    extra: dict[str, Any] = {"tolerance": tolerance}
    if reference_lr is not None or reference_tokens is not None:
        extra["reference_lr"] = reference_lr  # type: ignore[assignment]
        extra["reference_tokens"] = _size_or_none(reference_tokens, "reference_tokens")  # type: ignore[assignment]
    if compare_:
        _compare(config, extra, json_, plot_file, force)
        return
    result = suggest(config, law, weight_decay_law=weight_decay_law, **extra)
    if notes:
        result = result.model_copy(update={"warnings": [*notes, *result.warnings]})
    if paradigm == "transfer":
        _side_by_side(
            config, result, proxy_params, proxy_tokens, proxy_d_model, proxy_layers, proxy_lr, proxy_wd, json_
        )
        return
    if output_format in ("hf", "torchtitan", "megatron"):
        _export(config, result, output_format, world_size, micro_batch_size, notes, law, weight_decay_law, extra)
    elif json_:
        click.echo(result.to_json())
    else:
        click.echo(render.render_suggestion(config, result, explain=explain))


def _refuse_conflicts(
    compare_: bool,
    law: str | None,
    explain: bool,
    json_: bool,
    output_format: str,
    paradigm: str,
    plot_file: str | None,
    world_size: int | None,
    micro_batch_size: int | None,
    *,
    proxy_given: bool,
    force: bool = False,
) -> None:
    """Refuse options that contradict each other or that the command would ignore, naming both (issue 15)."""
    exporting = output_format in ("hf", "torchtitan", "megatron")
    given = {
        "--compare": compare_,
        "--law": law is not None,
        "--explain": explain,
        "--format hf/torchtitan/megatron": exporting,
        "--json": json_,
        "--paradigm transfer": paradigm == "transfer",
        "--proxy-*": proxy_given,
        "--paradigm fitting": paradigm != "transfer",
    }
    refuse_together(  # an option the command would ignore is an error naming both (issue 15)
        given,
        [
            ("--compare", "--law", "--compare runs every law; drop one"),
            ("--compare", "--format hf/torchtitan/megatron", "an export holds one law's numbers"),
            ("--compare", "--explain", "--explain derives one law's numbers"),
            ("--compare", "--paradigm transfer", "transfer sits beside one law"),
            ("--json", "--format hf/torchtitan/megatron", "give one output format"),
            ("--explain", "--json", "--explain is for the text output"),
            ("--explain", "--format hf/torchtitan/megatron", "--explain is for the text output"),
            ("--paradigm transfer", "--format hf/torchtitan/megatron", "the side-by-side output is text or JSON"),
            ("--paradigm transfer", "--explain", "the side-by-side output has no derivation"),
            ("--proxy-*", "--paradigm fitting", "proxy options are read only with --paradigm transfer"),
        ],
    )
    if explain and output_format == "json":
        raise BadInput("--explain cannot be combined with --format json: --explain is for the text output")
    refuse_empty_plot(plot_file)
    if plot_file and not compare_:
        raise BadInput("--plot draws the --compare table: add --compare (show-law ID --plot draws one law)")
    check_plot(plot_file, force)
    if (world_size is not None or micro_batch_size is not None) and not exporting:
        raise BadInput("--world-size and --micro-batch-size shape an export: add --format hf, torchtitan or megatron")


def _run_config(
    hf_config: str | None, arch: str, params, active_params, tokens, shape: dict[str, Any]
) -> tuple[ModelConfig, list[str]]:
    """The run from --hf-config or from the size options, and the notes to print with it (what was guessed)."""
    notes: list[str] = []
    if hf_config is not None:
        config, notes = _hf_run(hf_config, arch, params, active_params, tokens, shape)
    else:
        for name, value, example in (("--params", params, "7B"), ("--tokens", tokens, "2T")):
            if value is None:  # a config.json gives the shape, never the token count (issue 23)
                alternative = " (or --hf-config config.json)" if name == "--params" else ""
                raise BadInput(f"{name} is required, e.g. {name} {example}{alternative}")
        config = ModelConfig(
            arch=arch,
            params=params,
            tokens=tokens,
            active_params=active_params,
            **{k: v for k, v in shape.items() if v is not None},
        )
    return config, notes


def _compare(config: ModelConfig, extra: dict[str, Any], json_: bool, plot_file: str | None, force: bool) -> None:
    """--compare: every applicable law side by side (a table, or JSON; --plot draws it)."""
    rows = compare(config, **extra)
    if json_:
        import json  # only these two outputs need it: the plain suggest path starts without it (issue 21)

        payload = [
            {"law": law_.id, "error": str(r)} if isinstance(r, LrpredictError) else r.model_dump(mode="json")
            for law_, r in rows
        ]
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(with_flags(render.render_compare(config, rows, default=_default_choice(config))))
    if plot_file:
        from lrpredict.plot import plot_compare

        click.echo(f"plot written: {plot_compare(config, rows, plot_file, force=force)}", err=True)


def _export(
    config: ModelConfig,
    result: Any,
    output_format: str,
    world_size: int | None,
    micro_batch_size: int | None,
    notes: list[str],
    law: str | None,
    weight_decay_law: str | None,
    extra: dict[str, Any],
) -> None:
    """--format hf/torchtitan/megatron: the training config on stdout, its warnings on stderr."""
    from lrpredict.export import export_for_cluster

    def at_batch(batch_tokens: float) -> Any:  # the same suggestion at the batch the cluster can run
        moved = config.model_copy(update={"batch_tokens": batch_tokens})
        again = suggest(moved, law, weight_decay_law=weight_decay_law, **extra)
        return again.model_copy(update={"warnings": [*notes, *again.warnings]})

    text, messages = export_for_cluster(
        result,
        output_format,
        world_size=1 if world_size is None else world_size,  # 0 is refused, not read as 1
        micro_batch_size=micro_batch_size,
        schedule=config.schedule,
        rederive=at_batch,
    )
    for message in messages:  # stderr, one line each: stdout stays pasteable
        click.echo(f"warning: {message}", err=True)
    click.echo(text)


def _hf_run(path: str, arch: str, params, active_params, tokens, shape: dict[str, Any]) -> tuple[ModelConfig, list]:
    """The run from a Hugging Face config: the file gives the shape, so --params, --active-params, --arch,
    --layers, --d-model, --n-experts, --top-k and --vocab-size would contradict it."""
    from lrpredict.config import config_from_hf

    # --arch has a default: only one the user typed contradicts the file (--arch dense on an MoE config ran as MoE)
    typed_arch = click.get_current_context().get_parameter_source("arch") != click.core.ParameterSource.DEFAULT
    shape_options = {"--params": params, "--active-params": active_params, "--arch": arch if typed_arch else None}
    shape_options.update({f"--{k.replace('_', '-')}": v for k, v in shape.items() if k in SHAPE_FIELDS})
    clash = [name for name, value in shape_options.items() if value is not None]
    if clash:
        raise BadInput(f"{', '.join(clash)} cannot be combined with --hf-config: the config file gives the shape")
    if tokens is None:
        raise BadInput("--tokens is required, e.g. --tokens 2T")
    fields = {k: v for k, v in shape.items() if v is not None and k not in SHAPE_FIELDS and k != "seq_len"}
    return config_from_hf(path, tokens=tokens, seq_len=shape.get("seq_len"), **fields)


SHAPE_FIELDS = ("n_layers", "d_model", "n_experts", "top_k", "vocab_size")


def _side_by_side(config, result, proxy_params, proxy_tokens, proxy_d_model, proxy_layers, proxy_lr, proxy_wd, json_):
    """Fitting (the law) and Transfer (a tuned proxy carried over by CompleteP) for the same run."""
    from lrpredict.cli.transfer import named_config, render_plan
    from lrpredict.transfer import transfer

    for name, value in (
        ("--proxy-params", proxy_params),
        ("--proxy-tokens", proxy_tokens),
        ("--proxy-d-model", proxy_d_model),
        ("--proxy-layers", proxy_layers),
        ("--proxy-lr", proxy_lr),
        ("--proxy-wd", proxy_wd),
        ("--d-model", config.d_model),
        ("--layers", config.n_layers),
    ):
        if value is None:
            raise BadInput(f"{name} is required with --paradigm transfer")
    proxy = named_config(
        "proxy", params=proxy_params, tokens=proxy_tokens, d_model=proxy_d_model, n_layers=proxy_layers
    )
    plan = transfer(proxy, {"lr": proxy_lr, "weight_decay": proxy_wd}, config)
    from lrpredict.bounds import check_plan

    notes = check_plan(plan)
    if notes:
        plan = plan.model_copy(update={"warnings": [*plan.warnings, *notes]})
    if json_:
        import json

        click.echo(json.dumps({"fitting": result.model_dump(mode="json"), "transfer": plan.model_dump(mode="json")}))
        return
    hidden = plan.groups["attention"]
    click.echo(render.render_suggestion(config, result))
    click.echo("\n" + render_plan(plan))
    click.echo(
        f"\nside by side: hidden-matrix peak LR — Fitting ({result.law}) {result.lr:.3g} "
        f"[band {result.lr_range.low:.3g}–{result.lr_range.high:.3g}], Transfer ({plan.rule}) {hidden.lr:.3g} "
        f"({hidden.lr / result.lr:.2g}× the law). arXiv 2601.05049 finds Fitting scales better at large scale "
        "(docs/transfer.md)."
    )


def _default_choice(config: ModelConfig) -> Any:
    """What ``suggest`` takes for ``config`` without --law (a law or a blend, with weights; None when it cannot)."""
    from lrpredict.default_blend import choose
    from lrpredict.suggest import resolve_variables

    try:
        return choose(config, resolve_variables)
    except (LrpredictError, OverflowError, ZeroDivisionError):
        return None
