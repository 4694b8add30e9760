"""Run one probe: AdamW under WSD, one stable phase branching into decays that end at each token horizon.

Why branches: under WSD every horizon shares the stable phase, so the run for D_i equals the stable run up to step
(1 - decay_frac)·T_i followed by its own decay.  Zhou et al. (arXiv 2601.05049) get L(D) at several D from one run
this way; here the stable state (model and AdamW moments) is copied at each branch point, the decay is run and
evaluated, and the copy is restored to carry on.  Batches depend only on (seed, step) (see ``data.Batches``), so
each branch computes exactly what an independent run to that horizon would (a test checks it).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lrpredict.calibrate.data import Batches, open_data
from lrpredict.calibrate.model import Decoder, build_model, param_group
from lrpredict.calibrate.schedule import WSDSchedule
from lrpredict.calibrate.spec import BranchResult, CurvePoint, ProbeResult, ProbeSpec


class Diverged(Exception):
    """The train loss went non-finite or rose ``diverge_margin`` above the first step's loss."""


def resolve_device(name: str | None) -> torch.device:
    """``name``, or the current CUDA device when there is one, else the CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} {torch.cuda.get_device_name(device)}"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def make_optimizer(model: Decoder, spec: ProbeSpec, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: norms never decay, the input embedding only if asked.

    Why: decaying norm scales (and by common practice embeddings) pulls them towards 0 for no regularisation gain;
    DeepSeek, Llama and nanoGPT all exclude them (see also the shared laws reference, "Practice anchors").
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        skip = p.ndim < 2 or (param_group(name) == "embedding" and not spec.decay_embeddings)
        (no_decay if skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps, **_adamw_impl(device))


def _adamw_impl(device: torch.device) -> dict[str, bool]:
    # fused kernels on CUDA; on CPU the multi-tensor (foreach) path measured fastest for probe sizes
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


def train_probe(spec: ProbeSpec) -> ProbeResult:
    """Train ``spec``'s model once through every branch; return held-out losses at each horizon.

    A diverged probe returns status "diverged" with the branches it finished; other errors (CUDA OOM included)
    propagate, for the executor to retry or record.
    """
    return ProbeRun(spec).run()


class _ProbeSteps:
    """Training steps of a ``ProbeRun`` (its model, optimizer, batches and log are set by ``ProbeRun``)."""

    def _train(self, branch: int, start: int, end: int, schedule: WSDSchedule) -> float | None:
        """Optimizer steps ``start`` … ``end - 1``; returns the mean train loss of the last logged window."""
        t0 = time.perf_counter()
        window: list[torch.Tensor] = []
        last = None
        for step in range(start, end):
            lr = schedule(step)
            window.append(self.step(step, lr))
            if self.first_loss is None:
                self.first_loss = window[0].item()
            if len(window) == self.log_every or step == end - 1:
                last = torch.stack(window).mean().item()  # one host sync per window
                window.clear()
                self.curve.append(CurvePoint(branch=branch, step=step, lr=lr, loss=last))
                if not last < self.first_loss + self.spec.diverge_margin:  # NaN fails this comparison too
                    raise Diverged(f"train loss {last:.4g} at step {step} (first {self.first_loss:.4g}, lr {lr:.3g})")
        self.train_time += time.perf_counter() - t0
        return last

    def step(self, step: int, lr: float) -> torch.Tensor:
        """One optimizer step (all micro-batches) at ``lr``: its training loss (mean over micro-batches), on the device (no sync)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = (self._to_device(a) for a in self.batches.train(step))
        accum = self.spec.grad_accum
        micro = self.spec.batch_size // accum
        total = None
        for xm, ym in zip(x.split(micro), y.split(micro), strict=True):
            with self.autocast():
                out = self.forward(xm, ym)
                loss = out.loss + self.spec.moe_aux_coef * out.aux_loss if self.model.arch.is_moe else out.loss
            (loss / accum if accum > 1 else loss).backward()
            total = out.loss.detach() if total is None else total + out.loss.detach()
        if self.spec.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.spec.grad_clip, foreach=True)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_run += 1
        return total / accum if accum > 1 else total

    def _to_device(self, a: Any) -> torch.Tensor:
        t = torch.from_numpy(a)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t


class _ProbeBranches:
    """Held-out evaluation and the stable-phase snapshot a ``ProbeRun`` branches from."""

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, int]:
        """Mean next-token loss over the fixed held-out windows, the sd of the per-sequence mean losses and the
        number of sequences (every window has seq_len tokens, so the mean of the sequences is the token mean).

        Why per sequence (issue 19): the standard error of the mean, sd/√n, is the evaluation's own noise, measured
        rather than read off the misfit of the Eq.2 parabolas.  Only the three numbers are kept (a small ledger)."""
        self.model.eval()
        micro = self.spec.batch_size // self.spec.grad_accum
        per_sequence = []
        for xb, yb in self.batches.eval(self.spec.eval_batches):
            x, y = self._to_device(xb), self._to_device(yb)
            for xm, ym in zip(x.split(micro), y.split(micro), strict=True):
                with self.autocast():
                    logits = self.model(xm).logits
                losses = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ym.reshape(-1), reduction="none")
                per_sequence.append(losses.view(ym.shape).double().mean(dim=1))
        self.model.train()
        values = torch.cat(per_sequence)
        sd = values.std(correction=1).item() if len(values) > 1 else 0.0
        return values.mean().item(), sd, len(values)

    def _branch_result(self, steps: int, train_loss: float | None) -> BranchResult:
        eval_loss, eval_sd, sequences = self.evaluate()
        if eval_loss != eval_loss or eval_loss == float("inf"):
            raise Diverged(f"held-out loss {eval_loss} at step {steps}")
        return BranchResult(
            tokens=steps * self.spec.tokens_per_step,
            steps=steps,
            eval_loss=eval_loss,
            train_loss=train_loss,
            eval_sd=eval_sd,
            eval_sequences=sequences,
        )

    def _snapshot(self) -> Any:
        """The stable-phase state to branch from, held where ``spec.branch_store`` says."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        store = self.spec.branch_store
        if store == "disk":
            fd, name = tempfile.mkstemp(prefix="lrpredict-branch-", suffix=".pt")
            os.close(fd)
            torch.save(state, name)
            return Path(name)
        return _clone(state, self.device if store == "device" else torch.device("cpu"))

    def _restore(self, snapshot: Any) -> None:
        if isinstance(snapshot, Path):
            state = torch.load(snapshot, map_location=self.device, weights_only=True)
            snapshot.unlink()
        else:
            state = snapshot
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class ProbeRun(_ProbeSteps, _ProbeBranches):
    """One probe's model, optimizer and batches on its device: ``run()`` trains every WSD branch; ``step()`` is one
    optimizer step at a given LR (what the clock times, lrpredict.calibrate.clock)."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.t_start = time.time()
        self.spec = spec
        self.device = resolve_device(spec.device)
        if self.device.type == "cuda":  # TF32 tensor cores for what stays fp32 (fp32 runs, islands under autocast)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(spec.seed)
        self.data = open_data(spec.data, spec.arch.vocab_size)
        self.batches = Batches(self.data, spec.batch_size, spec.seq_len, spec.seed, spec.arch.vocab_size)
        with self.device:  # initialise in place: a 1B model is not built on the CPU first
            self.model = build_model(spec.arch, max_seq_len=spec.seq_len, init_std=spec.init_std)
        self.forward = torch.compile(self.model) if spec.compile else self.model
        self.optimizer = make_optimizer(self.model, spec, self.device)
        self.params = list(self.model.parameters())
        bf16 = self.device.type == "cuda" and spec.precision == "bf16"
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        steps, branch_at = spec.horizon_steps, spec.branch_steps
        warmup = spec.resolved_warmup_steps
        self.schedules = [
            WSDSchedule(spec.lr, warmup, b, t, spec.final_lr_ratio, spec.decay_shape)
            for b, t in zip(branch_at, steps, strict=True)
        ]
        total = steps[-1] + sum(t - b for t, b in zip(steps[:-1], branch_at[:-1], strict=True))
        self.log_every = spec.log_every or max(1, total // 100)
        self.curve: list[CurvePoint] = []
        self.first_loss: float | None = None
        self.steps_run = 0
        self.train_time = 0.0

    def run(self) -> ProbeResult:
        spec = self.spec
        branches: list[BranchResult] = []
        status, error = "ok", None
        step, snapshot = 0, None
        try:
            for i, schedule in enumerate(self.schedules):
                # stable phase up to this branch point: every schedule agrees there, use the last one
                train_loss = self._train(-1, step, schedule.decay_start, self.schedules[-1])
                step = schedule.decay_start
                snapshot = self._snapshot() if i < len(self.schedules) - 1 else None
                train_loss = self._train(i, step, schedule.total, schedule) if schedule.total > step else train_loss
                branches.append(self._branch_result(schedule.total, train_loss))
                if snapshot is not None:
                    self._restore(snapshot)
        except Diverged as exc:
            status, error = "diverged", str(exc)
        finally:
            if isinstance(snapshot, Path):  # a branch that diverged or crashed before its restore
                snapshot.unlink(missing_ok=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        horizons = spec.horizon_steps
        branches += [
            BranchResult(tokens=t * spec.tokens_per_step, steps=t, eval_loss=None) for t in horizons[len(branches) :]
        ]
        return ProbeResult(
            probe_id=spec.probe_id,
            spec=spec,
            status=status,
            branches=tuple(branches),
            curve=tuple(self.curve),
            first_loss=self.first_loss,
            error=error,
            n_params=sum(p.numel() for p in self.params),
            device=describe_device(self.device),
            data_fingerprint=self.data.fingerprint,
            wall_time_s=time.time() - self.t_start,
            train_time_s=self.train_time,
            trained_tokens=self.steps_run * spec.tokens_per_step,
            finished_at=time.time(),
        )


def _clone(obj: Any, device: torch.device) -> Any:
    """Deep copy of a state dict with every tensor copied to ``device`` (state_dict() returns live references)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to(device, copy=True)
    if isinstance(obj, dict):
        return {k: _clone(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_clone(v, device) for v in obj)
    return obj
