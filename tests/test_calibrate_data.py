from pathlib import Path

import pytest

pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from lrpredict.calibrate.data import Batches, open_data, synthetic_tokens  # noqa: E402
from lrpredict.calibrate.spec import DataSpec  # noqa: E402
from lrpredict.errors import LrpredictError  # noqa: E402


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_synthetic_tokens_same_seed_same_tokens() -> None:
    a, b, c = (synthetic_tokens(50_000, 256, seed) for seed in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.5
    assert len(a) == 50_000 and a.max() < 256


def test_synthetic_tokens_have_structure_beyond_unigrams() -> None:
    v = 256
    x = synthetic_tokens(1 << 20, v, 0).astype(np.int64)
    unigram = np.bincount(x, minlength=v)
    pairs = np.bincount(x[:-1] * v + x[1:], minlength=v * v).reshape(v, v)
    conditional = _entropy(pairs.ravel()) - _entropy(pairs.sum(1))  # H(next | prev)
    assert _entropy(unigram) < np.log(v) - 1.0  # Zipfian, far from uniform
    assert conditional < _entropy(unigram) - 1.0  # the Markov table is learnable
    # copied spans: 8-grams repeated from 8..256 tokens back, which chance alone (p ≈ 0.07 per token) never makes
    y = x[: 1 << 17]
    in_copy = np.zeros(len(y), dtype=bool)
    for d in range(8, 257):
        run = np.convolve((y[d:] == y[:-d]).astype(np.int8), np.ones(8, dtype=np.int8), "valid") == 8
        in_copy[d : d + len(run)] |= run
    assert 0.05 < in_copy.mean() < 0.4


def test_synthetic_split_is_disjoint_and_deterministic() -> None:
    spec = DataSpec(n_tokens=40_000, eval_tokens=5_000, seed=1)
    data = open_data(spec, 256)
    tokens = synthetic_tokens(40_000, 256, 1)
    assert len(data.train) + len(data.eval) == len(tokens)
    np.testing.assert_array_equal(data.train, tokens[:35_000])
    np.testing.assert_array_equal(data.eval, tokens[35_000:])
    assert not np.shares_memory(data.train, data.eval)
    assert data.fingerprint == open_data(DataSpec(n_tokens=40_000, eval_tokens=5_000, seed=1), 256).fingerprint
    assert data.fingerprint != open_data(DataSpec(n_tokens=40_000, eval_tokens=5_000, seed=2), 256).fingerprint


def test_batches_train_windows_stay_in_train_range_and_depend_only_on_step(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.arange(1000, dtype=np.uint16))  # token = position: windows show their origin
    data = open_data(DataSpec(kind="npy", path=str(tmp_path / "t.npy"), eval_tokens=200), 1000)
    batches = Batches(data, batch_size=8, seq_len=16, seed=0, vocab_size=1000)
    for step in range(200):
        x, y = batches.train(step)
        assert x.shape == (8, 16) and x.dtype == np.int64
        np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
        assert y.max() < 800  # never reaches the held-out tail
    np.testing.assert_array_equal(batches.train(7)[0], Batches(data, 8, 16, 0, 1000).train(7)[0])
    assert not np.array_equal(batches.train(7)[0], batches.train(8)[0])
    evals = [x for x, _ in batches.eval(2)]
    assert all(x.min() >= 800 for x in evals)
    assert evals[0][0, 0] == 800 and evals[0][1, 0] == 816  # consecutive, non-overlapping windows


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_bin_loader_reads_nanogpt_files(tmp_path: Path, dtype: str) -> None:
    tokens = (np.arange(10_000) * 7 % 70_000 if dtype == "uint32" else np.arange(10_000) % 50_000).astype(dtype)
    path = tmp_path / "train.bin"
    tokens.tofile(path)
    data = open_data(DataSpec(kind="bin", path=str(path), dtype=dtype, eval_tokens=1_000), 70_000)
    assert isinstance(data.train, np.memmap)
    np.testing.assert_array_equal(np.concatenate([data.train, data.eval]), tokens)
    assert len(data.eval) == 1_000
    before = data.fingerprint
    tokens[0] += 1
    tokens.tofile(path)
    assert open_data(DataSpec(kind="bin", path=str(path), dtype=dtype, eval_tokens=1_000), 70_000).fingerprint != before


def test_npy_loader_with_separate_eval_file(tmp_path: Path) -> None:
    np.save(tmp_path / "train.npy", np.arange(5_000, dtype=np.int32) % 300)
    np.save(tmp_path / "val.npy", np.arange(700, dtype=np.int32) % 300)
    spec = DataSpec(kind="npy", path=str(tmp_path / "train.npy"), eval_path=str(tmp_path / "val.npy"))
    data = open_data(spec, 300)
    assert len(data.train) == 5_000 and len(data.eval) == 700
    np.save(tmp_path / "bad.npy", np.zeros((3, 3), dtype=np.int32))
    with pytest.raises(LrpredictError, match="1-D integer"):
        open_data(DataSpec(kind="npy", path=str(tmp_path / "bad.npy")), 300)


def test_npy_tokens_outside_vocabulary_are_reported(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.full(2_000, 500, dtype=np.int32))
    data = open_data(DataSpec(kind="npy", path=str(tmp_path / "t.npy"), eval_tokens=100), 256)
    with pytest.raises(LrpredictError, match="token id 500"):
        Batches(data, 2, 8, 0, 256).train(0)


def test_text_loader_tokenizes_bytes(tmp_path: Path) -> None:
    text = "héllo wörld, " * 400
    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    data = open_data(DataSpec(kind="text", path=str(tmp_path / "corpus.txt"), eval_tokens=100), 256)
    raw = text.encode("utf-8")
    assert bytes(np.concatenate([data.train, data.eval])) == raw
    assert data.vocab_size == 256
    with pytest.raises(LrpredictError, match="at least 256"):
        open_data(DataSpec(kind="text", path=str(tmp_path / "corpus.txt"), eval_tokens=100), 128)


def test_text_loader_uses_hf_tokenizer_json(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"[UNK]": 0, "hello": 1, "world": 2}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "c.txt").write_text("hello world " * 100 + "other")
    spec = DataSpec(
        kind="text", path=str(tmp_path / "c.txt"), tokenizer=str(tmp_path / "tokenizer.json"), eval_tokens=10
    )
    data = open_data(spec, 3)
    assert list(data.train[:4]) == [1, 2, 1, 2] and data.eval[-1] == 0
