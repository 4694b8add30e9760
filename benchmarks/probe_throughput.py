"""Tokens/s of the probe trainer against a minimal PyTorch loop on the same model, batches and optimizer.

    python benchmarks/probe_throughput.py [--d-model 256 --n-layers 4 --steps 10 --threads 1] [--markdown]

The plain loop is what a probe cannot do without: fetch the batch, forward, backward, AdamW step, zero grads.  The
probe trainer adds the WSD schedule, grad clipping, loss logging with divergence checks and MoE aux loss; its
tokens/s counts optimizer steps only (``ProbeResult.train_time_s``: no data generation, model build or eval).
Target: probe ≥ 0.9× plain.  Runs alternate; medians over ``--repeats`` pairs, and the range of the pair ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lrpredict.architecture import Architecture
from lrpredict.calibrate.data import Batches, open_data
from lrpredict.calibrate.model import build_model
from lrpredict.calibrate.spec import DataSpec, ProbeSpec
from lrpredict.calibrate.train import resolve_device, train_probe


def probe_spec(args: argparse.Namespace) -> ProbeSpec:
    arch = Architecture(
        d_model=args.d_model,
        n_layers=args.n_layers,
        d_ffn=int(8 * args.d_model / 3) // 64 * 64 or 64,
        n_heads=max(1, args.d_model // 64),
        vocab_size=args.vocab,
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--markdown", action="store_true", help="print only the table row")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = probe_spec(args)
    open_data(spec.data, spec.arch.vocab_size)  # generate the corpus once, outside every timing
    plain, probe, end_to_end, ratios = [], [], [], []
    for _ in range(args.repeats):  # alternate, so load from other processes hits both alike
        plain.append(plain_loop(spec))
        result = train_probe(spec)
        probe.append(result.trained_tokens / result.train_time_s)
        end_to_end.append(result.trained_tokens / result.wall_time_s)
        ratios.append(probe[-1] / plain[-1])
    p, q, e, r = (statistics.median(v) for v in (plain, probe, end_to_end, ratios))
    row = (
        f"| {result.device} | d={args.d_model} L={args.n_layers} V={args.vocab} ({result.n_params / 1e6:.1f}M) "
        f"| {args.batch}×{args.seq_len} | {spec.horizon_steps[-1]} × {args.repeats} | {p:,.0f} | {q:,.0f} "
        f"| {r:.3f} ({min(ratios):.2f}–{max(ratios):.2f}) | {e:,.0f} |"
    )
    if not args.markdown:
        print(
            "| device | model | batch×seq | steps × runs | plain tok/s | probe tok/s | probe/plain (range) "
            "| probe end-to-end tok/s |"
        )
        print("|---|---|---|---|---|---|---|---|")
    print(row)


if __name__ == "__main__":
    main()
