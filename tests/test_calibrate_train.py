import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lrpredict.architecture import Architecture, count_parameters  # noqa: E402
from lrpredict.calibrate.executor import run_probe  # noqa: E402
from lrpredict.calibrate.model import build_model  # noqa: E402
from lrpredict.calibrate.schedule import WSDSchedule  # noqa: E402
from lrpredict.calibrate.spec import DataSpec, ProbeSpec  # noqa: E402
from lrpredict.calibrate.train import make_optimizer, train_probe  # noqa: E402

ARCH = Architecture(d_model=32, n_layers=2, d_ffn=64, n_heads=2, vocab_size=256)
DATA = DataSpec(n_tokens=1 << 18, eval_tokens=1 << 13)
STEP_TOKENS = 8 * 32


def probe(**kw) -> ProbeSpec:
    base = dict(arch=ARCH, lr=3e-3, horizons=(40 * STEP_TOKENS, 80 * STEP_TOKENS), batch_size=8, seq_len=32)
    return ProbeSpec(**{**base, "data": DATA, "warmup_steps": 4, "eval_batches": 4, **kw})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_wsd_schedule_warmup_stable_and_decay_shapes() -> None:
    s = WSDSchedule(peak=1.0, warmup=10, decay_start=80, total=100, final_ratio=0.1)
    assert [s(0), s(4), s(9)] == [0.1, 0.5, 1.0]
    assert s(10) == s(79) == 1.0
    assert s(80) == pytest.approx(0.1 + 0.9 * 19 / 20)
    assert s(89) == pytest.approx(0.55)
    assert s(99) == pytest.approx(0.1)
    cos = WSDSchedule(1.0, 0, 80, 100, 0.0, "cosine")
    assert cos(89) == pytest.approx(0.5) and cos(99) == pytest.approx(0.0)
    sqrt = WSDSchedule(1.0, 0, 80, 100, 0.0, "1-sqrt")
    assert sqrt(84) == pytest.approx(1 - math.sqrt(0.25))
    with pytest.raises(ValueError):
        WSDSchedule(1.0, 50, 40, 100)


def test_probe_spec_branch_points_and_id() -> None:
    spec = probe()
    assert spec.horizon_steps == (40, 80)
    assert spec.branch_steps == (32, 64)  # (1 - 0.2)·T_i
    assert spec.probe_id == probe(device="cpu", grad_accum=2, compile=True, branch_store="disk").probe_id
    assert spec.probe_id != probe(lr=1e-3).probe_id
    assert len(spec.probe_id) == 16
    with pytest.raises(ValueError, match="increasing"):
        probe(horizons=(80 * STEP_TOKENS, 40 * STEP_TOKENS))
    with pytest.raises(ValueError, match="grad_accum"):
        probe(grad_accum=3)
    with pytest.raises(ValueError, match="warmup"):
        probe(warmup_steps=33)
    assert probe(warmup_steps=None, horizons=(40 * STEP_TOKENS, 800 * STEP_TOKENS)).resolved_warmup_steps == 8


def test_train_probe_branches_equal_independent_runs() -> None:
    both = train_probe(probe())
    assert both.status == "ok"
    assert [b.tokens for b in both.branches] == [40 * STEP_TOKENS, 80 * STEP_TOKENS]
    short = train_probe(probe(horizons=(40 * STEP_TOKENS,)))
    long = train_probe(probe(horizons=(80 * STEP_TOKENS,)))
    # the long branch ran after restoring the stable checkpoint the short one branched from
    assert both.branches[0].eval_loss == pytest.approx(short.branches[0].eval_loss, rel=1e-6)
    assert both.branches[1].eval_loss == pytest.approx(long.branches[0].eval_loss, rel=1e-6)
    assert both.branches[1].eval_loss < both.branches[0].eval_loss < both.first_loss
    assert both.trained_tokens == (80 + 8) * STEP_TOKENS  # stable 64 + decays of 8 and 16 steps
    on_disk = train_probe(probe(branch_store="disk"))
    assert [b.eval_loss for b in on_disk.branches] == pytest.approx([b.eval_loss for b in both.branches], rel=1e-6)


def test_train_probe_records_curve_and_metadata() -> None:
    result = train_probe(probe(log_every=8))
    assert result.first_loss == pytest.approx(math.log(256), abs=0.3)
    assert {p.branch for p in result.curve} == {-1, 0, 1}
    assert result.curve[-1].lr == pytest.approx(0.1 * 3e-3)
    assert result.n_params == count_parameters(ARCH).total
    assert result.device.startswith("cpu") and result.data_fingerprint
    assert 0 < result.train_time_s <= result.wall_time_s


def test_train_probe_grad_accum_computes_the_same_steps() -> None:
    one = train_probe(probe(horizons=(40 * STEP_TOKENS,)))
    two = train_probe(probe(horizons=(40 * STEP_TOKENS,), grad_accum=2))
    assert two.branches[0].eval_loss == pytest.approx(one.branches[0].eval_loss, rel=1e-4)


def test_train_probe_moe_learns() -> None:
    arch = Architecture(d_model=32, n_layers=2, d_ffn=64, n_heads=2, vocab_size=256, n_experts=4, top_k=2,
                        d_expert=32, n_shared_experts=1, n_dense_layers=1, tied_embeddings=True)  # fmt: skip
    result = train_probe(probe(arch=arch))
    assert result.status == "ok"
    assert result.branches[1].eval_loss < result.branches[0].eval_loss < result.first_loss - 1.0


def test_train_probe_huge_lr_diverges_early() -> None:
    result = train_probe(probe(lr=50.0, log_every=2))
    assert result.status == "diverged"
    assert "train loss" in result.error
    assert all(b.eval_loss is None for b in result.branches)
    assert result.trained_tokens < 40 * STEP_TOKENS


def test_run_probe_retries_out_of_memory_with_doubled_accumulation() -> None:
    attempts = []

    def train_needing_accum_4(spec: ProbeSpec):
        attempts.append(spec.grad_accum)
        if spec.grad_accum < 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return train_probe(spec)

    result = run_probe(probe(horizons=(40 * STEP_TOKENS,)), train=train_needing_accum_4)
    assert attempts == [1, 2, 4]
    assert result.status == "ok" and result.spec.grad_accum == 4
    assert result.probe_id == probe(horizons=(40 * STEP_TOKENS,)).probe_id

    attempts.clear()
    failed = run_probe(probe(batch_size=2, horizons=(40 * 64,)), train=train_needing_accum_4)
    assert attempts == [1, 2] and failed.status == "failed" and "out of memory" in failed.error


def test_run_probe_records_any_crash_as_failed(tmp_path) -> None:
    missing = DataSpec(kind="bin", path=str(tmp_path / "missing.bin"))
    result = run_probe(probe(data=missing))
    assert result.status == "failed"
    assert "FileNotFoundError" in result.error
    assert [b.eval_loss for b in result.branches] == [None, None]


@pytest.mark.parametrize("decay_embeddings", [False, True])
def test_make_optimizer_decays_matrices_only(decay_embeddings: bool) -> None:
    arch = Architecture(d_model=32, n_layers=2, d_ffn=64, n_heads=2, vocab_size=256, tied_embeddings=True)
    spec = probe(arch=arch, decay_embeddings=decay_embeddings)
    model = build_model(arch, max_seq_len=32)
    decayed, plain = make_optimizer(model, spec, torch.device("cpu")).param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for p in plain["params"]}
    assert all("norm" in n for n in no_decay - {"embed.weight"})
    assert ("embed.weight" in no_decay) is not decay_embeddings
    assert all(p.ndim == 2 for p in decayed["params"])


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("cc"), reason="torch.compile on CPU needs a C compiler")
def test_train_probe_compiled_model_matches_eager() -> None:
    eager = train_probe(probe(horizons=(40 * STEP_TOKENS,)))
    compiled = train_probe(probe(horizons=(40 * STEP_TOKENS,), compile=True))
    assert compiled.status == "ok"
    assert compiled.branches[0].eval_loss == pytest.approx(eager.branches[0].eval_loss, rel=1e-4)


NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: none on this machine")


def _benchmark(*args: str) -> str:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "probe_throughput.py"
    cmd = [sys.executable, str(script), "--markdown", "--repeats", "1", "--steps", "5", "--batch", "4", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout


def test_probe_throughput_benchmark_reports_tokens_per_second_and_mfu() -> None:
    row = _benchmark("--d-model", "32", "--n-layers", "2", "--vocab", "256", "--seq-len", "32", "--threads", "1",
                     "--device", "cpu", "--peak-tflops", "0.05")  # fmt: skip
    cells = [c.strip() for c in row.strip().split("|")[1:-1]]
    assert cells[0].startswith("cpu") and "d=32 L=2 V=256" in cells[1]
    assert float(cells[5].replace(",", "")) > 0  # probe tokens/s
    assert cells[9].endswith("%") and 0 < float(cells[9][:-1]) < 100  # MFU against the given peak


@pytest.mark.cuda
@NEEDS_CUDA
def test_train_probe_on_cuda_uses_bf16_fused_adamw_and_learns_like_cpu() -> None:
    from lrpredict.calibrate.train import ProbeRun

    run = ProbeRun(probe(device="cuda"))
    assert run.optimizer.defaults["fused"] is True
    with run.autocast():
        assert run.model(*(run._to_device(a) for a in run.batches.train(0))).logits.dtype == torch.bfloat16
    gpu, cpu = run.run(), train_probe(probe(device="cpu"))
    assert gpu.status == "ok" and gpu.device.startswith("cuda")
    assert gpu.branches[-1].eval_loss == pytest.approx(cpu.branches[-1].eval_loss, rel=0.05)  # bf16 vs fp32


@pytest.mark.cuda
@NEEDS_CUDA
def test_probe_throughput_benchmark_reports_mfu_on_cuda() -> None:
    row = _benchmark("--device", "cuda", "--widths", "256", "--seq-len", "256")
    mfu = [c.strip() for c in row.strip().split("|")[1:-1]][9]
    known = any(key in torch.cuda.get_device_name() for key in ("H100", "H200", "A100"))
    assert mfu.endswith("%") and float(mfu[:-1]) > 0 if known else mfu == "–"
