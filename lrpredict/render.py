"""Plain-text rendering of suggestions and laws for the CLI (the API returns objects; this only formats)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lrpredict.config import M_APPROXIMATION_WARNING, ModelConfig, describe_config
from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile, PowerLaw
from lrpredict.runs import LR_SANE
from lrpredict.units import format_size

if TYPE_CHECKING:  # annotations only: Suggestion.__str__ calls render, so render must not import it back
    from lrpredict.default_blend import DefaultChoice
    from lrpredict.suggestion import Suggestion

SYMBOL = {"lr": "η", "batch": "B", "weight_decay": "λ", "lr_batch": "η"}


def formulas(law: LawFile) -> str:
    return "; ".join(pred.formula(SYMBOL[kind]) for kind, pred in law.predictions().items())


def domain_text(law: LawFile) -> str:
    parts = [f"{var} {lo:.3g}–{hi:.3g}" for var, (lo, hi) in law.domain.items()]
    return ", ".join(parts) or "not stated"


def render_suggestion(config: ModelConfig | None, s: Suggestion, explain: bool = False) -> str:
    """The CLI's summary of ``s`` (also ``str(s)``); ``config`` only overrides the header ``s.run``."""
    law_line = f"law: {s.law} — {s.law_title} [status: {s.status}; domain: {s.domain.upper()}]"
    seq_len = s.seq_len
    seqs = f" (≈ {s.batch_sequences} sequences of {seq_len})" if seq_len else ""
    run = describe_config(config) if config is not None else s.run
    lines = [
        f"lrpredict suggest — {run}",
        law_line,
        "",
        f"  peak LR        {s.lr:.3g}   (AdamW peak; {s.lr_range.low:.3g}–{s.lr_range.high:.3g} {s.lr_range.label()})",
        f"  batch          {format_size(s.batch_tokens)} tokens per step{seqs}   [{s.batch_source}]",
        f"  optimal batch  {format_size(s.optimal_batch_tokens)} tokens (LR there: {s.lr_at_optimal_batch:.3g})",
        f"  weight decay   {s.weight_decay:.3g}   [{s.weight_decay_law}; matrices only: 0 on embeddings, norms, biases]",
        f"  schedule       {_recipe(s)}",
        f"  law's schedule {s.schedule.kind}: {s.schedule.description}",
        f"  batch policy   {s.batch_policy} ({'each run at its optimal batch' if s.batch_policy == 'optimal' else 'batch held fixed'})",
    ]
    lines.append("  conventions    " + "; ".join(f"{k}: {v}" for k, v in s.conventions.items()))
    if s.default_choice:
        lines.append(f"  default law    {s.default_choice}")
    lines += _nearest_runs(s, explain)
    if explain:
        if s.law_lrs:
            lines += ["", "laws fitted on this architecture, peak LR at this batch (default: " + s.law + "):"]
            lines += [f"  {law_id:<22} {lr:.3g}  ({lr / s.lr:.2g}× the default)" for law_id, lr in s.law_lrs.items()]
        lines += ["", "derivation:"]
        lines += [f"  {f.name:<22} = {f.value:<12.4g} {f.unit:<8} {f.source}" for f in s.derivation]
        lines.append(f"  LR band: ±{s.lr_range.high / s.lr:.3g}× from {s.lr_range.source}")
        lines += [f"  schedule {part}: {source}" for part, source in s.recommended_schedule.sources.items()]
        lines.append(f"  cite: {s.citation}")
    if s.warnings:
        lines += ["", "warnings:"] + [f"  ! {w}" for w in s.warnings]
    return "\n".join(lines)


def _nearest_runs(s: Suggestion, explain: bool) -> list[str]:
    """Published runs near this config with the suggestion's ratio to each (issue 13): a sanity anchor."""
    if not s.nearest_runs:
        return []
    lines = ["", "nearest published runs (their LRs are the teams' choices, not measured optima; lrpredict runs):"]
    for r in s.nearest_runs:
        active = r.active_params if r.arch == "moe" else None
        n = format_size(r.params) + (f"/{format_size(active)} active" if active else "")
        wd = "-" if r.weight_decay is None else f"{r.weight_decay:.2g}"
        ratios = f"LR ×{r.lr_ratio:.2g}" if r.lr_ratio is not None else ""
        if r.batch_ratio is not None:
            ratios += f", batch ×{r.batch_ratio:.2g}"
        if r.weight_decay_ratio is not None:
            ratios += f", wd ×{r.weight_decay_ratio:.2g}"
        lines.append(
            f"  {r.id:<18} N={n:<14} D={format_size(r.tokens):<6} batch {format_size(r.batch_tokens):<6} "
            f"peak LR {r.peak_lr:<8.3g} wd {wd:<4}  this suggestion: {ratios}"
        )
        if r.law_lr_at_run is not None:
            # the default is evaluated afresh at the run: its laws and blend weights are the run's (issue 20)
            at_run = "the default" if s.default_choice else s.law
            lines.append(
                f"  {'':<18} {at_run} at this run's own N, D and batch: LR {r.law_lr_at_run:.3g} "
                f"(×{r.law_lr_at_run / r.peak_lr:.2g} the team's choice)"
            )
        if explain:
            lines.append(f"    {r.status}: {r.source} (distance {r.distance:.2f} decades in N, D)")
    return lines


def _recipe(s: Suggestion) -> str:
    r = s.recommended_schedule
    return (
        f"WSD over {r.total_steps} steps: warmup {r.warmup_steps}, stable {r.stable_steps}, "
        f"{r.decay_shape} decay {r.decay_steps} to {r.final_lr_ratio:.3g}× peak"
    )


def render_compare(
    config: ModelConfig,
    rows: list[tuple[LawFile, Suggestion | LrpredictError]],
    default: DefaultChoice | None = None,
) -> str:
    """The --compare table; ``default`` is what suggest takes without --law (its rows are marked with their weights;
    issue 20).  The caller passes it, so rendering does not import suggest (no import cycle, issue 21)."""
    header = f"{'law':<20} {'status':<10} {'fitted on':<10} {'domain':<13} {'peak LR':>9} {'batch':>8}  notes"
    lines = [f"lrpredict suggest --compare — {describe_config(config)}", "", header, "-" * len(header)]
    weights = {law.id: weight for law, weight in default.parts} if default else {}
    for law, result in rows:
        fitted = "/".join(law.architectures)
        if isinstance(result, LrpredictError):
            lines.append(f"{law.id:<20} {law.status:<10} {fitted:<10} {'-':<13} {'-':>9} {'-':>8}  {result}")
            continue
        notes: list[str] = []
        if config.arch not in law.architectures:
            notes.append(f"fitted on {fitted} only")
        if result.batch_source.startswith(law.id) is False:
            notes.append(f"batch: {result.batch_source}")
        if not LR_SANE[0] <= result.lr <= LR_SANE[1]:  # the single-law view warns; the table must not hide it
            notes.append(f"LR outside {LR_SANE[0]:g}–{LR_SANE[1]:g}, where every published run lies")
        if M_APPROXIMATION_WARNING in result.warnings:
            notes.append("M ≈ 6·N_active (give --layers, --d-model, --seq-len for the exact M)")
        if law.id in weights:
            notes.insert(0, f"default, weight {weights[law.id]:.2g}")
        lines.append(
            f"{law.id:<20} {result.status:<10} {fitted:<10} {_distance(law, result):<13} {result.lr:>9.3g} "
            f"{format_size(result.batch_tokens):>8}  {'; '.join(notes)}"
        )
    lines.append("")
    if default is not None:
        lines.append(f"default (no --law): {default.label()} — {default.note}")
    lines.append("relative laws (e.g. bjorck-2024) need --reference-lr and --reference-tokens; see show-law.")
    return "\n".join(lines)


def _distance(law: LawFile, s: Suggestion) -> str:
    """'inside', or how far the law extrapolates: 'out 610×' (the largest factor over its variables)."""
    factor = max(law.domain_distance(s.inputs).values(), default=1.0)
    return "inside" if factor <= 1 else f"out {factor:.3g}×"


GRID_N = (1e8, 1e9, 1e10, 1e11)
GRID_D = (1e10, 1e11, 1e12, 1e13)
GRID_RATIO = (0.25, 0.5, 2.0, 4.0, 10.0)


def render_law(law: LawFile) -> str:
    lines = [f"{law.id}: {law.title}", f"  cite: {law.citation}" + (f"  {law.url}" if law.url else ""), ""]
    lines.append(f"  status        {law.status} (weakest of its coefficients)")
    lines.append(f"  fitted on     {'/'.join(law.architectures)}; batch policy: {law.batch_policy}")
    lines.append(f"  domain        {domain_text(law)}" + (f" ({law.domain_note})" if law.domain_note else ""))
    lines.append(f"  schedule      {law.schedule.kind}: {law.schedule.description}")
    opt = law.optimizer
    settings = ", ".join(
        f"{k}={getattr(opt, k)}" for k in ("beta1", "beta2", "eps", "weight_decay") if getattr(opt, k) is not None
    )
    lines.append(
        f"  optimizer     {opt.name}{' (' + settings + ')' if settings else ''}{'; ' + opt.note if opt.note else ''}"
    )
    lines.append(f"  conventions   N: {law.conventions.n} non-embedding — {law.conventions.n_note}")
    lines.append(f"                D: {law.conventions.d}; B: {law.conventions.b}")
    if law.conventions.m:
        lines.append(f"                M: {law.conventions.m}")
    for kind, pred in law.predictions().items():
        lines += ["", f"  {kind}: {pred.formula(SYMBOL[kind])}"]
        for name, c in pred.coefficients().items():
            lines.append(f"    {name:<16} {c.value:<10g} {c.status:<10} {c.basis + '; ' if c.basis else ''}{c.note}")
    if law.notes:
        lines += ["", "  notes: " + " ".join(law.notes.split())]
    if law.validation is not None:  # a calibration's held-out cell (issue 19)
        lines += ["", f"  validation    {law.validation.describe(law.id)}"]
    if law.provenance:
        lines += ["", "  provenance:"] + [f"    {k}: {v}" for k, v in law.provenance.items()]
    lines += ["", _grid(law)]
    return "\n".join(lines)


def _grid(law: LawFile) -> str:
    pred = law.lr
    if pred is None:
        return ""
    if not isinstance(pred, PowerLaw):
        head = "  LR multiplier η(D)/η(D_ref) by D/D_ref:  "
        return head + "  ".join(f"{r:g}: {pred.evaluate_relative(1.0, 1.0, r):.3g}" for r in GRID_RATIO)
    uses_m = bool(set(pred.variables()) & {"M", "C"})
    title = "  predicted peak LR (rows N, columns D; * outside the fitted domain"
    title += "; M taken as 6·N, attention FLOPs ignored)" if uses_m else ")"
    corner = "N \\ D"
    lines = [title, "    " + f"{corner:>8}" + "".join(f"{format_size(d):>11}" for d in GRID_D)]
    for n in GRID_N:
        row = f"    {format_size(n):>8}"
        for d in GRID_D:
            values = {"N": n, "D": d, "M": 6 * n, "C": 6 * n * d}
            mark = "*" if law.domain_status(values) else " "
            row += f"{pred.evaluate(values):>10.3g}{mark}"
        lines.append(row)
    return "\n".join(lines)
