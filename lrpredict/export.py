"""Exports of a ``Suggestion`` to training stacks: Hugging Face, torchtitan and Megatron-LM.

Every name below was read in the stack's own source (no stack is imported here):

- Hugging Face transformers, ``src/transformers/optimization.py`` (``get_wsd_schedule``, ``get_scheduler``) and
  ``training_args.py``; checked against transformers 5.17.0 installed and huggingface/transformers@ad1fc963.
  ``get_scheduler`` passes ``num_warmup_steps`` and ``num_training_steps`` (= ``max_steps``) itself, so
  ``lr_scheduler_kwargs`` carries only the decay: ``num_decay_steps``, ``decay_type`` in {linear, cosine, 1-sqrt},
  ``min_lr_ratio``, ``warmup_type``.  ``num_stable_steps`` is left out on purpose: given with
  ``num_training_steps`` it warns on every run, and without it the stable phase is max_steps − warmup − decay,
  which is lrpredict's.
- torchtitan, ``torchtitan/config/job_config.py`` @6404b932 (TOML job files): ``[optimizer]`` name, lr, beta1,
  beta2, eps, weight_decay; ``[lr_scheduler]`` warmup_steps, decay_ratio, decay_type in {linear, sqrt, cosine},
  min_lr_factor (``lr_min`` in older versions); ``[training]`` steps, seq_len, local_batch_size, global_batch_size.
  ``components/lr_scheduler.py`` takes ``round(steps × decay_ratio)`` decay steps.  Later torchtitan replaced TOML
  files with Python ``config_registry`` functions (``config/manager.py``); pass the same values as overrides there.
- Megatron-LM, ``megatron/training/arguments.py`` @000c4ac2 and ``megatron/core/optimizer_param_scheduler.py``:
  ``--lr-decay-style WSD`` with ``--lr-wsd-decay-style`` in {exponential, linear, cosine, minus_sqrt};
  the anneal starts at ``--lr-decay-iters`` − ``--lr-wsd-decay-iters``.

Weight decay: lrpredict's λ is for the weight matrices only, with none on embeddings, norms and biases
(``Suggestion.weight_decay_groups``).  No stack does exactly that by default: HF's Trainer and Megatron skip biases
and norms but decay embeddings; torchtitan decays every parameter.  The TOML export says so in a comment; the HF
kwargs and Megatron flags cannot carry one, so their docstrings do.
"""

from __future__ import annotations

import inspect
import json
import math
import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrpredict.errors import LrpredictError

if TYPE_CHECKING:
    from lrpredict.suggestion import Suggestion

FORMATS = ("json", "hf", "torchtitan", "megatron")

# The AdamW settings most LLM pre-training uses (GPT-3, Llama, DeepSeek LLM): lrpredict's assumption wherever the
# law behind the LR states none.  A stack's own default can differ (HF and Megatron: β2 = 0.999), so exports set them.
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.95
ADAM_EPS = 1e-8

# With no micro batch given, the largest one that divides the per-device sequences and holds at most this many
# tokens.  An assumption about memory (a 16K-token micro batch fits a ~1B model on one 80 GB GPU): set yours.
MICRO_BATCH_TOKENS = 16384

HF_DECAY = {"1-sqrt": "1-sqrt", "linear": "linear", "cosine": "cosine"}
TORCHTITAN_DECAY = {"1-sqrt": "sqrt", "linear": "linear", "cosine": "cosine"}
MEGATRON_DECAY = {"1-sqrt": "minus_sqrt", "linear": "linear", "cosine": "cosine"}


SCHEDULES = ("wsd", "cosine", "linear", "constant")  # what every exporter can express; multistep is refused


@dataclass(frozen=True)
class Phases:
    """The schedule an export writes, in optimizer steps: the suggestion's WSD or the one the user asked for."""

    kind: str  # wsd, cosine, linear or constant
    total: int
    warmup: int
    stable: int
    decay: int
    shape: str  # decay shape: 1-sqrt, linear or cosine
    final_ratio: float
    note: str


def phases(s: Suggestion, schedule: str | None = None) -> Phases:
    """The suggestion's WSD recipe, or ``schedule`` built from its steps, warmup and final LR.

    cosine / linear decay over every step after warmup (no stable phase); constant holds the peak after warmup.
    ``multistep`` is refused: no stock scheduler of these stacks steps the LR down in stages.
    """
    r = s.recommended_schedule
    if schedule in (None, "wsd"):
        note = (
            f"WSD: warmup {r.warmup_steps}, stable {r.stable_steps}, {r.decay_shape} decay {r.decay_steps} steps "
            f"to {r.final_lr_ratio:.3g}× peak."
        )
        return Phases("wsd", r.total_steps, r.warmup_steps, r.stable_steps, r.decay_steps, r.decay_shape,
                      r.final_lr_ratio, note)  # fmt: skip
    if schedule in ("cosine", "linear"):
        decay = r.total_steps - r.warmup_steps
        note = (
            f"{schedule} schedule as you asked: warmup {r.warmup_steps}, {schedule} decay over the other {decay} steps "
            f"to {r.final_lr_ratio:.3g}× peak (lrpredict recommends WSD; the peak LR is the law's either way)."
        )
        return Phases(schedule, r.total_steps, r.warmup_steps, 0, decay, schedule, r.final_lr_ratio, note)
    if schedule == "constant":
        note = f"constant schedule as you asked: warmup {r.warmup_steps}, then the peak LR to the end (no decay)."
        return Phases("constant", r.total_steps, r.warmup_steps, r.total_steps - r.warmup_steps, 0, "linear", 1.0, note)
    raise LrpredictError(
        "schedule",
        schedule,
        f"one of {list(SCHEDULES)} for an export: no stock scheduler of HF, torchtitan or Megatron-LM steps the LR "
        "down in stages; export wsd (same peak LR, Hägele et al. arXiv 2405.18392) and replace its scheduler",
    )


class ExportWarning(UserWarning):
    """An export had to change what the suggestion says (e.g. the batch rounded to whole sequences)."""


@dataclass(frozen=True)
class BatchLayout:
    """The suggestion's batch in whole sequences, split over devices and micro batches."""

    seq_len: int
    sequences: int  # global batch in sequences
    micro_batch: int  # sequences per device per forward pass
    accumulation: int  # micro batches per optimizer step
    world_size: int  # data-parallel ranks
    note: str | None  # set when the batch in tokens differs from the suggestion's

    @property
    def tokens(self) -> int:
        return self.sequences * self.seq_len


def _rounding_reason(world_size: int, micro_batch_size: int | None) -> str:
    """What the global batch was rounded to.  Without --micro-batch-size only world_size constrains it (the micro
    batch is chosen afterwards), so naming "micro batch = 1" would contradict the exported micro batch."""
    if micro_batch_size is None:
        return f"a multiple of world_size = {world_size} sequences" if world_size > 1 else "whole sequences"
    unit = world_size * micro_batch_size
    if unit == 1:
        return "whole sequences"
    return f"a multiple of world_size × micro batch = {world_size} × {micro_batch_size} = {unit} sequences"


def batch_layout(s: Suggestion, fmt: str, *, world_size: int = 1, micro_batch_size: int | None = None) -> BatchLayout:
    """Split ``s.batch_tokens`` into ``micro_batch × accumulation × world_size`` whole sequences.

    The batch is rounded to the nearest multiple of ``world_size × micro_batch_size`` sequences (at least one
    each); when that changes the batch in tokens the layout carries a note, and the exporters warn.
    """
    seq_len = _seq_len(s, fmt)
    _positive_int("world_size", world_size)
    if micro_batch_size is not None:
        _positive_int("micro_batch_size", micro_batch_size)
    wanted = s.batch_tokens / seq_len
    unit = world_size * (micro_batch_size or 1)
    sequences = max(unit, round(wanted / unit) * unit)
    total = s.inputs.get("D")
    if total is not None and sequences * seq_len > total:  # under one step: λ 28453 was exported (QA 2026-12-01)
        field, value = (
            ("micro_batch_size", micro_batch_size)
            if micro_batch_size and unit > world_size
            else ("world_size", world_size)
        )
        raise LrpredictError(
            field,
            value,
            f"a layout whose global batch ({sequences} sequences × {seq_len} = {sequences * seq_len:.4g} tokens) "
            f"fits in the run's {total:.4g} tokens",
        )
    per_rank = sequences // world_size
    micro = micro_batch_size or _default_micro_batch(per_rank, seq_len)
    note = None
    if sequences * seq_len != s.batch_tokens:
        change = sequences * seq_len / s.batch_tokens - 1
        why = _rounding_reason(world_size, micro_batch_size)
        note = (
            f"batch {s.batch_tokens:.6g} tokens exported as {sequences} sequences × {seq_len} = "
            f"{sequences * seq_len} tokens ({change:+.2%}: {why}); the LR was derived for {s.batch_tokens:.6g} "
            f"tokens, and with the step count unchanged the run trains on {abs(change):.2%} "
            f"{'more' if change > 0 else 'fewer'} tokens"
        )
    return BatchLayout(seq_len, sequences, micro, per_rank // micro, world_size, note)


def adam_settings(s: Suggestion) -> tuple[dict[str, float], str]:
    """AdamW β1, β2, ε: the law's where it states them, else lrpredict's defaults; and where they come from."""
    from lrpredict.registry import load_law

    try:
        optimizer = load_law(s.law).optimizer
    except LrpredictError:  # a law given by path: its id is not in the registry
        optimizer = None
    stated = {
        "beta1": getattr(optimizer, "beta1", None),
        "beta2": getattr(optimizer, "beta2", None),
        "eps": getattr(optimizer, "eps", None),
    }
    defaults = {"beta1": ADAM_BETA1, "beta2": ADAM_BETA2, "eps": ADAM_EPS}
    values = {k: v if v is not None else defaults[k] for k, v in stated.items()}
    from_law = [k for k, v in stated.items() if v is not None]
    if len(from_law) == 3:
        source = f"as {s.law} was fitted"
    elif from_law:
        source = f"{', '.join(from_law)} as {s.law} was fitted; the rest lrpredict defaults"
    else:
        source = f"lrpredict defaults ({s.law} states none)"
    return values, source


def to_hf(
    s: Suggestion, *, world_size: int = 1, micro_batch_size: int | None = None, schedule: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``transformers.TrainingArguments`` (add ``output_dir`` and the rest of your run).

    ``world_size`` is the number of data-parallel processes; the batch is
    ``per_device_train_batch_size × gradient_accumulation_steps × world_size`` sequences of ``s.seq_len``.
    AdamW β1, β2, ε are the law's where it states them, else 0.9, 0.95, 1e-8 (lrpredict's defaults; HF's own
    β2 default is 0.999).  Law id and weight-decay groups cannot ride in TrainingArguments: λ is meant for the weight
    matrices only, and HF's Trainer skips biases and norms but decays embeddings — override
    ``Trainer.get_decay_parameter_names`` to drop them too.  transformers ≥ 5 warms up from
    ``min_lr_ratio × peak`` rather than 0.  ``schedule`` (see :func:`phases`): cosine and linear are the same WSD
    scheduler with no stable phase, constant is ``constant_with_warmup``.  The suggestion's warnings cannot ride in
    TrainingArguments: ``render(s, "hf")`` adds them under ``_lrpredict_warnings`` (pop it before use).
    """
    layout = batch_layout(s, "hf", world_size=world_size, micro_batch_size=micro_batch_size)
    _warn(layout.note)
    r = phases(s, schedule)
    adam, _ = adam_settings(s)
    args: dict[str, Any] = {
        "learning_rate": s.lr,
        "weight_decay": s.weight_decay,
        "adam_beta1": adam["beta1"],
        "adam_beta2": adam["beta2"],
        "adam_epsilon": adam["eps"],
        "max_steps": r.total,
        "warmup_steps": r.warmup,
    }
    if r.kind == "constant":
        args["lr_scheduler_type"] = "constant_with_warmup"
    else:
        args["lr_scheduler_type"] = "warmup_stable_decay"
        args["lr_scheduler_kwargs"] = {
            "num_decay_steps": r.decay,
            "decay_type": HF_DECAY[r.shape],
            "min_lr_ratio": r.final_ratio,
            "warmup_type": "linear",
        }
    return {
        **args,
        "per_device_train_batch_size": layout.micro_batch,
        "gradient_accumulation_steps": layout.accumulation,
    }


def to_torchtitan(
    s: Suggestion, *, local_batch_size: int | None = None, world_size: int = 1, schedule: str | None = None
) -> str:
    """A torchtitan TOML job-file fragment: ``[optimizer]``, ``[lr_scheduler]`` and ``[training]``.

    ``world_size`` is the data-parallel degree (ranks / (TP·PP·CP)); torchtitan accumulates gradients over
    ``global_batch_size / (local_batch_size × data-parallel degree)`` micro batches.
    """
    layout = batch_layout(s, "torchtitan", world_size=world_size, micro_batch_size=local_batch_size)
    _warn(layout.note)
    r = phases(s, schedule)
    adam, adam_source = adam_settings(s)
    header = [
        f"lrpredict export for torchtitan: LR law {s.law} ({s.status}, {s.domain}), weight decay {s.weight_decay_law}",
        "Names checked against pytorch/torchtitan torchtitan/config/job_config.py @6404b932 (TOML job files);",
        "older versions call min_lr_factor lr_min; newer ones take these values as --section.key overrides.",
        "weight_decay is for the weight matrices only (0 on embeddings, norms, biases); torchtitan's",
        "build_optimizers applies it to every parameter: exclude those in your own to match.",
        r.note,
    ]
    if r.kind == "constant":
        header.append("constant: min_lr_factor = 1.0 makes the decay phase flat.")
    if layout.note:
        header.append(layout.note)
    header += [f"warning: {w}" for w in s.warnings]
    lines = [f"# {_one_line(h)}" for h in header]
    lines += [
        "",
        "[optimizer]",
        'name = "AdamW"',
        f"lr = {_toml_float(s.lr)}",
        f"beta1 = {_toml_float(adam['beta1'])}  # {adam_source}",
        f"beta2 = {_toml_float(adam['beta2'])}",
        f"eps = {_toml_float(adam['eps'])}",
        f"weight_decay = {_toml_float(s.weight_decay)}",
        "",
        "[lr_scheduler]",
        f"warmup_steps = {r.warmup}",
        f"decay_ratio = {_toml_float(_decay_ratio(max(r.decay, 1), r.total))}  # {max(r.decay, 1)} of {r.total} steps",
        f'decay_type = "{TORCHTITAN_DECAY[r.shape]}"  # {r.shape}',
        f"min_lr_factor = {_toml_float(r.final_ratio)}",
        "",
        "[training]",
        f"steps = {r.total}",
        f"seq_len = {layout.seq_len}",
        f"local_batch_size = {layout.micro_batch}",
        f"global_batch_size = {layout.sequences}  # sequences: {layout.tokens} tokens per step",
    ]
    return "\n".join(lines) + "\n"


def to_megatron(
    s: Suggestion, *, micro_batch_size: int = 1, data_parallel_size: int = 1, schedule: str | None = None
) -> list[str]:
    """Megatron-LM command-line arguments, one list item per token (``shlex.join`` makes a command line).

    ``--global-batch-size`` is in sequences, a multiple of ``micro_batch_size × data_parallel_size`` as Megatron
    requires.  Megatron skips biases and norms (1-D parameters) in weight decay but decays embeddings, while λ
    is meant for the weight matrices only; the flags cannot say so, nor carry the law id.
    """
    layout = batch_layout(s, "megatron", world_size=data_parallel_size, micro_batch_size=micro_batch_size)
    _warn(layout.note)
    r = phases(s, schedule)
    adam, _ = adam_settings(s)
    if r.kind == "wsd":
        style = [
            ("--lr-decay-style", "WSD"),
            ("--lr-wsd-decay-style", MEGATRON_DECAY[r.shape]),
            ("--lr-warmup-iters", str(r.warmup)),
            ("--lr-wsd-decay-iters", str(r.decay)),
        ]
    else:  # Megatron's own cosine, linear and constant styles decay from the end of warmup to --lr-decay-iters
        style = [("--lr-decay-style", r.kind), ("--lr-warmup-iters", str(r.warmup))]
    pairs = [
        ("--optimizer", "adam"),
        ("--lr", _num(s.lr)),
        ("--min-lr", _num(s.lr * r.final_ratio)),
        *style,
        ("--lr-decay-iters", str(r.total)),
        ("--train-iters", str(r.total)),
        ("--weight-decay", _num(s.weight_decay)),
        ("--adam-beta1", _num(adam["beta1"])),
        ("--adam-beta2", _num(adam["beta2"])),
        ("--adam-eps", _num(adam["eps"])),
        ("--global-batch-size", str(layout.sequences)),
        ("--micro-batch-size", str(layout.micro_batch)),
        ("--seq-length", str(layout.seq_len)),
    ]
    return [token for pair in pairs for token in pair]


def render(s: Suggestion, fmt: str, **options: Any) -> str:
    """``s`` as text for ``fmt``: json (the suggestion), hf (TrainingArguments kwargs as JSON), torchtitan (TOML),
    megatron (one shell-quoted line).  ``options`` go to the exporter (e.g. ``world_size``)."""
    if fmt == "json":
        options = {k: v for k, v in options.items() if not (k == "schedule" and v is None)}
        if options:
            raise LrpredictError("options", sorted(options), "none for the json format")
        return s.to_json()
    exporters = {"hf": to_hf, "torchtitan": to_torchtitan, "megatron": to_megatron}
    if fmt not in exporters:
        raise LrpredictError("format", fmt, f"one of {list(FORMATS)}")
    exporter = exporters[fmt]
    allowed = [p for p in inspect.signature(exporter).parameters if p != "s"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise LrpredictError("options", unknown, f"options of {fmt}: {', '.join(allowed)}")
    out = exporter(s, **options)
    if fmt == "hf":
        # TrainingArguments has no field for them: a key it would refuse, so nobody passes them on unread
        return json.dumps({**out, "_lrpredict_warnings": list(s.warnings)}, indent=2)
    if fmt == "megatron":
        return shlex.join(out)
    return str(out)


def _seq_len(s: Suggestion, fmt: str) -> int:
    if s.seq_len is None:
        raise LrpredictError("seq_len", None, f"give seq_len to export to {fmt}: its batch is counted in sequences")
    return s.seq_len


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LrpredictError(name, value, "a whole number ≥ 1")


def _default_micro_batch(per_rank: int, seq_len: int) -> int:
    cap = max(1, MICRO_BATCH_TOKENS // seq_len)
    return max(d for d in range(1, min(per_rank, cap) + 1) if per_rank % d == 0)


def _decay_ratio(decay_steps: int, total_steps: int) -> float:
    """The decay_ratio that gives back ``decay_steps`` under round() (torchtitan) and int() (its forks)."""
    ratio = decay_steps / total_steps
    while int(ratio * total_steps) < decay_steps:
        ratio = math.nextafter(ratio, 1.0)
    return ratio


def _toml_float(x: float) -> str:
    if not math.isfinite(x):
        raise LrpredictError("value", x, "a finite number")
    return repr(float(x))  # the shortest text that reads back as the same double; valid TOML


def _num(x: float) -> str:
    return repr(float(x))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _warn(note: str | None) -> None:
    if note:
        warnings.warn(note, ExportWarning, stacklevel=3)


def export_for_cluster(
    s: Suggestion,
    fmt: str,
    *,
    world_size: int = 1,
    micro_batch_size: int | None = None,
    schedule: str | None = None,
    rederive: Callable[[float], Suggestion] | None = None,
) -> tuple[str, list[str]]:
    """``s`` exported for ``world_size`` data-parallel ranks of ``micro_batch_size`` sequences each.

    The global batch must be a whole number of ``world_size × micro_batch_size`` sequences; when that rounds the
    batch, ``rederive(batch_tokens)`` gives the suggestion at the rounded batch (the CLI re-runs ``suggest``, so the LR
    moves by the conditional batch law) and the change is reported.  Returns the text and every warning, which
    the text also carries where its format can (TOML comments, the hf JSON's ``_lrpredict_warnings``).

    >>> import lrpredict
    >>> s = lrpredict.suggest(params="1B", tokens="20B", seq_len=4096, batch_tokens="4M")
    >>> text, notes = export_for_cluster(s, "megatron", world_size=24, micro_batch_size=4,
    ...     rederive=lambda b: lrpredict.suggest(params="1B", tokens="20B", seq_len=4096, batch_tokens=b))
    >>> "--global-batch-size 960" in text, notes[0].startswith("global batch 4M → 3.93M tokens")
    (True, True)
    """
    from lrpredict.units import format_size

    layout = batch_layout(s, fmt, world_size=world_size, micro_batch_size=micro_batch_size)
    notes: list[str] = []
    if layout.tokens != s.batch_tokens and rederive is not None:
        moved = rederive(float(layout.tokens))
        why = _rounding_reason(world_size, micro_batch_size)
        note = (
            f"global batch {format_size(s.batch_tokens)} → {format_size(layout.tokens)} tokens "
            f"({layout.tokens / s.batch_tokens - 1:+.2%}): {layout.sequences} sequences × {layout.seq_len}, {why}; peak LR "
            f"{s.lr:.4g} → {moved.lr:.4g} ({moved.lr / s.lr - 1:+.2%}) at that batch [{moved.batch_source}]"
        )
        notes.append(note)
        s = moved.model_copy(update={"warnings": [*moved.warnings, note]})
    options: dict[str, Any] = {"schedule": schedule}
    if fmt == "megatron":
        options.update(data_parallel_size=world_size, micro_batch_size=layout.micro_batch)
    elif fmt == "torchtitan":
        options.update(world_size=world_size, local_batch_size=micro_batch_size)
    elif fmt == "hf":
        options.update(world_size=world_size, micro_batch_size=micro_batch_size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = render(s, fmt, **options)
    law_warnings = [w for w in s.warnings if w not in notes]
    if fmt == "megatron":  # the flags cannot carry it, so say it next to them (torchtitan's TOML has it as a comment)
        notes.append(MEGATRON_EMBEDDING_CAVEAT)
    return text, notes + law_warnings + [str(w.message) for w in caught]


MEGATRON_EMBEDDING_CAVEAT = (
    "Megatron decays embeddings too (it skips only biases and norms), while this weight decay is meant for the "
    "weight matrices only: exclude the embeddings from decay, or expect them regularised more than the law assumed"
)
