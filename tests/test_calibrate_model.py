import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from lrpredict.architecture import Architecture, count_parameters  # noqa: E402
from lrpredict.calibrate.model import MoE, build_model, parameter_groups  # noqa: E402

TINY = dict(d_model=32, n_layers=2, d_ffn=64, n_heads=4, vocab_size=256)
ARCHS = {
    "dense-untied": Architecture(**TINY),
    "dense-tied-gqa": Architecture(**{**TINY, "n_kv_heads": 2}, tied_embeddings=True),
    "moe-untied": Architecture(**{**TINY, "n_layers": 2}, n_experts=4, top_k=2, d_expert=16),
    "moe-tied-shared-dense": Architecture(
        **{**TINY, "n_layers": 3, "n_kv_heads": 1},
        n_experts=8,
        top_k=2,
        d_expert=16,
        n_shared_experts=2,
        d_shared_expert=24,
        n_dense_layers=1,
        tied_embeddings=True,
    ),
    # full-size shapes, built on the meta device (no memory): Llama-2-7B and a DeepSeekMoE-like 16B
    "llama-7b": Architecture(d_model=4096, n_layers=32, d_ffn=11008, n_heads=32, vocab_size=32000),
    "moe-16b": Architecture(
        d_model=2048, n_layers=28, d_ffn=10944, n_heads=16, vocab_size=102400, n_experts=64, top_k=6,
        d_expert=1408, n_shared_experts=2, n_dense_layers=1,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", ARCHS)
def test_model_parameter_groups_equal_count_parameters(name: str) -> None:
    arch = ARCHS[name]
    with torch.device("meta"):
        model = build_model(arch, max_seq_len=16)
    assert parameter_groups(model) == count_parameters(arch).groups()
    assert sum(p.numel() for p in model.parameters()) == count_parameters(arch).total


@pytest.mark.parametrize("name", ["dense-untied", "dense-tied-gqa", "moe-tied-shared-dense"])
def test_model_initial_loss_is_near_log_vocab_and_every_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(ARCHS[name], max_seq_len=16)
    idx = torch.randint(0, 256, (4, 16))
    out = model(idx, torch.randint(0, 256, (4, 16)))
    assert out.logits.shape == (4, 16, 256)
    assert abs(out.loss.item() - torch.log(torch.tensor(256.0)).item()) < 0.3
    (out.loss + out.aux_loss).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_model_is_causal() -> None:
    torch.manual_seed(0)
    model = build_model(ARCHS["moe-tied-shared-dense"], max_seq_len=16)
    idx = torch.randint(0, 256, (2, 16))
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 256
    with torch.no_grad():
        a, b = model(idx).logits, model(changed).logits
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_moe_dispatch_equals_per_token_loop() -> None:
    torch.manual_seed(0)
    arch = ARCHS["moe-tied-shared-dense"]
    moe = MoE(arch)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(3, 5, arch.d_model)
    y, aux = moe(x)
    flat = x.reshape(-1, arch.d_model)
    probs = torch.softmax(moe.router(flat), -1)
    e = moe.experts
    expected = []
    for t in range(flat.shape[0]):
        weight, chosen = probs[t].topk(arch.top_k)
        out = moe.shared(flat[t])
        for w, i in zip(weight, chosen, strict=True):
            h = torch.nn.functional.silu(e.w_gate[i] @ flat[t]) * (e.w_up[i] @ flat[t])
            out = out + w * (e.w_down[i] @ h)
        expected.append(out)
    torch.testing.assert_close(y.reshape(-1, arch.d_model), torch.stack(expected), rtol=1e-5, atol=1e-5)
    assert aux.item() >= 1.0 - 1e-6  # Switch loss is at least 1, its value under perfect balance


def test_import_lrpredict_and_torch_free_calibrate_modules_do_not_import_torch() -> None:
    code = (
        "import sys, lrpredict, lrpredict.calibrate, lrpredict.calibrate.spec, lrpredict.calibrate.ledger, "
        "lrpredict.calibrate.executor, lrpredict.calibrate.schedule, lrpredict.calibrate.token_sources; "
        "assert not {'torch', 'datasets', 'pyarrow', 'tokenizers'} & set(sys.modules), 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
