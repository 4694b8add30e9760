"""Tokens/s and MFU of the probe trainer, against a minimal PyTorch loop, eager and (optionally) torch.compile'd.

    python benchmarks/probe_throughput.py [--d-model 256 --n-layers 4 --steps 10 --threads 1] [--markdown]
    python benchmarks/probe_throughput.py --device cuda --widths 256,512,1024,2048 --compile   # MFU per probe size

The plain loop is what a probe cannot do without: fetch the batch, forward, backward, AdamW step, zero grads.  The
probe trainer adds the WSD schedule, grad clipping, loss logging with divergence checks and MoE aux loss; its
tokens/s counts optimizer steps only (``ProbeResult.train_time_s``: no data generation, model build or eval).
Target: probe ≥ 0.9× plain.  Runs alternate; medians over ``--repeats`` pairs, and the range of the pair ratios.

MFU = model FLOP/s over the device's peak dense bf16 FLOP/s.  Model FLOPs per token (PaLM, Chowdhery et al. arXiv
2204.02311, App. B): 6·(N + d·V) + 12·L·d·T, with N the non-embedding parameters, d·V the output head's matmul
(tied or not), L layers, T the sequence length (attention counted without the causal half, as PaLM does).  Peaks:
H100/H200 SXM 989.4 TFLOP/s, H100 PCIe 756 TFLOP/s, A100 312 TFLOP/s (NVIDIA datasheets); others: ``--peak-tflops``.
``--compile`` also times the probe with ``torch.compile``: steady-state tokens/s after two untimed steps, the
one-off compile time, and the steps after which compiling pays.  Probe shapes with ``--widths`` follow the planner
(``probe_architecture``: depth = width/64, heads of 64).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lrpredict.architecture import Architecture, count_parameters
from lrpredict.calibrate.data import Batches, open_data
from lrpredict.calibrate.model import build_model
from lrpredict.calibrate.planner import probe_architecture
from lrpredict.calibrate.spec import DataSpec, ProbeSpec
from lrpredict.calibrate.train import ProbeRun, resolve_device, train_probe

# Peak dense bf16 tensor FLOP/s by device-name fragment, most specific first.  Sources: NVIDIA H100 datasheet via
# glennklockwood.com/garden/processors/h100 (SXM5 989.4; H200 is the same GPU with more memory), H100 PCIe 756.45,
# A100 datasheet (312).
PEAK_BF16 = (("H100 PCIe", 756.45e12), ("H100", 989.4e12), ("H200", 989.4e12), ("A100", 312e12))


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return next((peak for key, peak in PEAK_BF16 if key in device_name), None)


def model_flops_per_token(arch: Architecture, seq_len: int) -> float:
    counts = count_parameters(arch)
    n = counts.non_embedding_active if arch.is_moe else counts.non_embedding
    return 6.0 * (n + arch.d_model * arch.vocab_size) + 12.0 * arch.n_layers * arch.d_model * seq_len


def probe_spec(args: argparse.Namespace, width: int | None = None) -> ProbeSpec:
    if width is None:
        arch = Architecture(
            d_model=args.d_model,
            n_layers=args.n_layers,
            d_ffn=int(8 * args.d_model / 3) // 64 * 64 or 64,
            n_heads=max(1, args.d_model // 64),
            vocab_size=args.vocab,
        )
    else:
        arch = probe_architecture(width, arch="dense", n_layers=None, vocab_size=args.vocab, n_experts=8, top_k=2)
    return ProbeSpec(
        arch=arch,
        lr=1e-3,
        horizons=(args.steps * args.batch * args.seq_len,),
        batch_size=args.batch,
        seq_len=args.seq_len,
        data=DataSpec(n_tokens=1 << 22, eval_tokens=1 << 14),
        eval_batches=1,
        device=args.device,
    )


def plain_loop(spec: ProbeSpec) -> float:
    """Tokens/s of fetch → forward → backward → AdamW step → zero_grad, over the probe's steps."""
    device = resolve_device(spec.device)
    torch.manual_seed(spec.seed)
    data = open_data(spec.data, spec.arch.vocab_size)
    batches = Batches(data, spec.batch_size, spec.seq_len, spec.seed, spec.arch.vocab_size)
    with device:
        model = build_model(spec.arch, max_seq_len=spec.seq_len)
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95), weight_decay=0.1, **fused)
    steps = spec.horizon_steps[-1]
    bf16 = device.type == "cuda" and spec.precision == "bf16"
    t0 = time.perf_counter()
    for step in range(steps):
        x, y = (torch.from_numpy(a).to(device, non_blocking=True) for a in batches.train(step))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(x, y).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss.item()  # wait for the device
    return steps * spec.tokens_per_step / (time.perf_counter() - t0)


def steady_rate(spec: ProbeSpec, warmup: int = 2) -> tuple[float, float]:
    """(seconds to build the model and run ``warmup`` untimed steps — compilation included —, steady tokens/s)."""
    t0 = time.perf_counter()
    run = ProbeRun(spec)
    for step in range(warmup):
        run.step(step, spec.lr)
    sync = torch.cuda.synchronize if run.device.type == "cuda" else (lambda: None)
    sync()
    setup = time.perf_counter() - t0
    steps = spec.horizon_steps[-1]
    t1 = time.perf_counter()
    for step in range(warmup, warmup + steps):
        loss = run.step(step, spec.lr)
    loss.item()
    sync()
    return setup, steps * spec.tokens_per_step / (time.perf_counter() - t1)


def measure(spec: ProbeSpec, args: argparse.Namespace) -> str:
    open_data(spec.data, spec.arch.vocab_size)  # generate the corpus once, outside every timing
    plain, probe, end_to_end, ratios = [], [], [], []
    for _ in range(args.repeats):  # alternate, so load from other processes hits both alike
        plain.append(plain_loop(spec))
        result = train_probe(spec)
        probe.append(result.trained_tokens / result.train_time_s)
        end_to_end.append(result.trained_tokens / result.wall_time_s)
        ratios.append(probe[-1] / plain[-1])
    p, q, e, r = (statistics.median(v) for v in (plain, probe, end_to_end, ratios))
    flops = model_flops_per_token(spec.arch, spec.seq_len)
    peak = peak_flops(result.device or "", args.peak_tflops)
    mfu = f"{q * flops / peak:.1%}" if peak else "–"
    row = (
        f"| {result.device} | d={spec.arch.d_model} L={spec.arch.n_layers} V={spec.arch.vocab_size} "
        f"({result.n_params / 1e6:.1f}M) | {spec.batch_size}×{spec.seq_len} | {spec.horizon_steps[-1]} × {args.repeats} "
        f"| {p:,.0f} | {q:,.0f} | {r:.3f} ({min(ratios):.2f}–{max(ratios):.2f}) | {e:,.0f} "
        f"| {q * flops / 1e12:.3g} | {mfu} |"
    )
    if args.compile:
        eager_setup, eager = steady_rate(spec)
        compiled_setup, compiled = steady_rate(spec.model_copy(update={"compile": True}))
        step_tokens = spec.tokens_per_step
        saved = step_tokens / eager - step_tokens / compiled  # seconds saved per step by compiling
        overhead = compiled_setup - eager_setup
        pays = f"{overhead / saved:,.0f}" if saved > 0 else "never"
        row += f" {eager:,.0f} | {compiled:,.0f} ({compiled / eager:.2f}×) | {overhead:.1f} s | {pays} |"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--widths", help="probe widths shaped as the planner does, e.g. 256,512,1024 (one row each)")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak dense bf16 TFLOP/s (default: known GPUs)")
    parser.add_argument("--compile", action="store_true", help="also time the probe under torch.compile")
    parser.add_argument("--markdown", action="store_true", help="print only the table rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.markdown:
        head = (
            "| device | model | batch×seq | steps × runs | plain tok/s | probe tok/s | probe/plain (range) "
            "| probe end-to-end tok/s | model TFLOP/s | MFU |"
        )
        rule = "|---|---|---|---|---|---|---|---|---|---|"
        if args.compile:
            head += " eager steady tok/s | compiled steady tok/s | compile overhead | compile pays after (steps) |"
            rule += "---|---|---|---|"
        print(head)
        print(rule)
    widths = [int(w) for w in args.widths.split(",")] if args.widths else [None]
    for width in widths:
        print(measure(probe_spec(args, width), args), flush=True)


if __name__ == "__main__":
    main()
