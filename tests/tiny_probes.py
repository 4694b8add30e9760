"""The smallest real probe the calibration tests train on CPU (16 steps, seconds): shared so every test that needs
one builds the same thing."""

from lrpredict.architecture import Architecture
from lrpredict.calibrate.spec import DataSpec, ProbeSpec

DATA = DataSpec(n_tokens=1 << 15, eval_tokens=1 << 11)


def tiny(lr: float, data: DataSpec = DATA, vocab: int = 64) -> ProbeSpec:
    return ProbeSpec(
        arch=Architecture(d_model=16, n_layers=1, d_ffn=32, n_heads=1, vocab_size=vocab),
        lr=lr,
        horizons=(8 * 128, 16 * 128),
        batch_size=4,
        seq_len=32,
        warmup_steps=1,
        eval_batches=1,
        data=data,
    )
