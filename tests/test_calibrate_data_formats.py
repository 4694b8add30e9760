"""Data a pre-training team has, each written here for real: nanoGPT .bin, .npy, Megatron .bin/.idx, a datasets
``save_to_disk`` folder, parquet and JSON-lines shards tokenised by a locally built tokenizer, and plain text."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from lrpredict.calibrate import token_sources  # noqa: E402
from lrpredict.calibrate.data import Batches, open_data, synthetic_tokens  # noqa: E402
from lrpredict.calibrate.token_sources import prepare_data  # noqa: E402
from lrpredict.cli import cli  # noqa: E402
from lrpredict.errors import LrpredictError  # noqa: E402

GPT2_VOCAB = 50_257


def write_megatron(prefix: Path, documents: list[np.ndarray], dtype: str) -> None:
    """A Megatron-LM indexed dataset, written from the published layout (megatron/core/datasets/indexed_dataset.py,
    ``_IndexWriter``): magic, u64 version 1, u8 dtype code, u64 sequence and document counts, int32 lengths,
    int64 byte pointers, int64 document indices; one sequence per document, tokens back to back in the .bin."""
    code = {"uint16": 8, "int32": 4}[dtype]
    item = np.dtype(dtype).itemsize
    lengths = np.array([len(d) for d in documents], dtype="<i4")
    pointers = np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64)]).astype("<i8") * item
    doc_index = np.arange(len(documents) + 1, dtype="<i8")
    with open(f"{prefix}.idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + struct.pack("<B", code))
        f.write(struct.pack("<Q", len(lengths)) + struct.pack("<Q", len(doc_index)))
        f.write(lengths.tobytes() + pointers.tobytes() + doc_index.tobytes())
    np.concatenate(documents).astype(dtype).tofile(f"{prefix}.bin")


def large_vocab_tokens(n: int, vocab: int = GPT2_VOCAB, used: int = 256, seed: int = 0) -> np.ndarray:
    """Learnable tokens (the synthetic corpus) on ``used`` ids spread over a real-size vocabulary, its last id included."""
    ids = np.random.default_rng(seed).choice(vocab - 1, used, replace=False)
    ids[0] = vocab - 1  # GPT-2's <|endoftext|>
    return ids[synthetic_tokens(n, used, seed)]


def words_corpus(n_docs: int = 60, words_per_doc: int = 300) -> list[str]:
    """Documents of made-up words whose order follows the synthetic corpus (learnable text)."""
    rng = np.random.default_rng(1)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = sorted({"".join(rng.choice(letters, size=rng.integers(3, 7))) for _ in range(400)})[:128]
    tokens = synthetic_tokens(n_docs * words_per_doc, len(words), 2).reshape(n_docs, words_per_doc)
    return [" ".join(words[t] for t in doc) for doc in tokens]


def build_tokenizer(texts: list[str], out: Path) -> Path:
    """A word-level tokenizer trained here with the `tokenizers` library and saved as tokenizer.json (no download)."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordLevelTrainer(special_tokens=["[UNK]", "<|endoftext|>"])
    tok.train_from_iterator(texts, trainer)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    return out


def expected_ids(texts: list[str], tokenizer_dir: Path) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    return np.array([i for t in texts for i in (*tok.encode(t).ids, eos)])


def read_prepared(prepared) -> np.ndarray:
    return np.fromfile(prepared.spec.path, dtype=prepared.spec.dtype)


def test_megatron_dataset_reads_the_published_index_layout(tmp_path: Path) -> None:
    docs = [np.arange(i * 100, i * 100 + 50 + i) for i in range(40)]
    write_megatron(tmp_path / "corpus_text_document", docs, "int32")
    prepared = prepare_data(tmp_path / "corpus_text_document.bin", tmp_path / "work", eval_tokens=256)
    tokens = np.concatenate(docs)
    assert prepared.spec.kind == "bin" and prepared.spec.dtype == "int32"
    assert prepared.n_tokens == len(tokens) and prepared.max_id == tokens.max()
    np.testing.assert_array_equal(read_prepared(prepared), tokens)
    assert "Megatron indexed dataset" in prepared.notes[0] and "40 documents" in prepared.notes[0]
    # the probes read the same tokens; held-out = the tail
    data = open_data(prepared.spec, prepared.probe_vocab)
    np.testing.assert_array_equal(data.eval, tokens[-256:])


def test_megatron_index_with_a_bad_header_is_a_one_line_error(tmp_path: Path) -> None:
    write_megatron(tmp_path / "c", [np.arange(100)], "uint16")
    raw = bytearray((tmp_path / "c.idx").read_bytes())
    raw[9:17] = struct.pack("<Q", 2)  # version 2 does not exist
    (tmp_path / "c.idx").write_bytes(bytes(raw))
    with pytest.raises(LrpredictError, match="MMIDIDX index, version 1"):
        prepare_data(tmp_path / "c.bin", tmp_path / "work")
    (tmp_path / "c.idx").write_bytes(bytes(raw[:20]))
    with pytest.raises(LrpredictError, match="under the header"):
        prepare_data(tmp_path / "c.bin", tmp_path / "work")


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_nanogpt_bin_dtype_is_inferred_and_ids_keep_their_values(tmp_path: Path, dtype: str) -> None:
    tokens = large_vocab_tokens(20_000)
    tokens.astype(dtype).tofile(tmp_path / "train.bin")
    prepared = prepare_data(tmp_path / "train.bin", tmp_path / "work")
    assert prepared.spec.dtype == dtype
    assert prepared.max_id == GPT2_VOCAB - 1 and prepared.data_vocab == GPT2_VOCAB
    forced = prepare_data(tmp_path / "train.bin", tmp_path / "work", token_dtype="uint16")
    assert forced.n_tokens == len(tokens) * (2 if dtype == "uint32" else 1)
    if dtype == "uint16":  # two uint16 ids read as one uint32: absurd ids, a one-line error, not a 16 GB table
        with pytest.raises(LrpredictError, match=r"is --token-dtype right\?"):
            prepare_data(tmp_path / "train.bin", tmp_path / "work", token_dtype="uint32")


def test_large_vocabulary_is_compacted_without_changing_the_sequence(tmp_path: Path) -> None:
    tokens = large_vocab_tokens(30_000)
    np.save(tmp_path / "t.npy", tokens.astype(np.uint32))
    prepared = prepare_data(tmp_path / "t.npy", tmp_path / "work", eval_tokens=2_000)
    assert prepared.data_vocab == GPT2_VOCAB
    assert prepared.probe_vocab == 256 and prepared.spec.vocab_map  # only the 256 ids that occur, 64-padded
    data = open_data(prepared.spec, prepared.probe_vocab)
    batches = Batches(data, batch_size=4, seq_len=32, seed=0, vocab_size=prepared.probe_vocab)
    x, _ = batches.train(3)
    assert x.max() < 256
    inverse = np.flatnonzero(data.vocab_map >= 0)  # probe id → data id
    rng = np.random.default_rng((0, 3))
    starts = rng.integers(0, len(data.train) - 32, size=4)
    np.testing.assert_array_equal(inverse[x], tokens[starts[:, None] + np.arange(32)])
    # --vocab-size pins the vocabulary: no compaction, every id its own row
    pinned = prepare_data(tmp_path / "t.npy", tmp_path / "work", vocab_size=GPT2_VOCAB)
    assert pinned.spec.vocab_map is None and pinned.probe_vocab == GPT2_VOCAB


def test_probe_trains_on_real_ids_of_a_pinned_50k_vocabulary(tmp_path: Path) -> None:
    from lrpredict.architecture import Architecture
    from lrpredict.calibrate.spec import ProbeSpec
    from lrpredict.calibrate.train import train_probe

    large_vocab_tokens(40_000).astype(np.uint16).tofile(tmp_path / "train.bin")
    prepared = prepare_data(tmp_path / "train.bin", tmp_path / "work", vocab_size=GPT2_VOCAB, eval_tokens=2_000)
    assert prepared.spec.vocab_map is None and prepared.probe_vocab == GPT2_VOCAB  # ids as they are, up to 50,256
    arch = Architecture(d_model=16, n_layers=1, d_ffn=32, n_heads=1, vocab_size=prepared.probe_vocab)
    spec = ProbeSpec(arch=arch, lr=1e-2, horizons=(8 * 4 * 16,), batch_size=4, seq_len=16, data=prepared.spec)
    result = train_probe(spec.model_copy(update={"eval_batches": 1, "warmup_steps": 2}))
    assert result.status == "ok" and result.branches[0].eval_loss < result.first_loss  # ln(50,257) ≈ 10.8 at first


def test_token_id_outside_the_vocabulary_is_an_error_naming_it(tmp_path: Path) -> None:
    tokens = large_vocab_tokens(10_000)
    tokens.astype(np.uint16).tofile(tmp_path / "train.bin")
    first = int(np.argmax(tokens >= 50_000))
    with pytest.raises(LrpredictError, match=f"holds id {tokens[first]} at token {first}"):
        prepare_data(tmp_path / "train.bin", tmp_path / "work", vocab_size=50_000)


def test_scan_is_cached_per_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = large_vocab_tokens(20_000)
    tokens.astype(np.uint16).tofile(tmp_path / "train.bin")
    first = prepare_data(tmp_path / "train.bin", tmp_path / "work")
    assert list((tmp_path / "work").glob("counts-*.npy"))

    def no_rescan(*_args):
        raise AssertionError("scanned again")

    monkeypatch.setattr(token_sources, "scan_tokens", no_rescan)
    again = prepare_data(tmp_path / "train.bin", tmp_path / "work")
    assert (again.max_id, again.probe_vocab, again.spec) == (first.max_id, first.probe_vocab, first.spec)
    with pytest.raises(AssertionError, match="scanned again"):  # an id over --vocab-size: rescanned for its place
        prepare_data(tmp_path / "train.bin", tmp_path / "work", vocab_size=1000)


def test_scan_memory_maps_instead_of_reading_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1 << 25  # 64 MiB of uint16 tokens
    np.memmap(tmp_path / "big.bin", dtype=np.uint16, mode="w+", shape=(n,))[::4097] = (
        7  # odd and even positions: reads as uint16
    )
    monkeypatch.setattr(token_sources, "SCAN_CHUNK", 1 << 20)
    tracemalloc.start()
    prepared = prepare_data(tmp_path / "big.bin", tmp_path / "work")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert prepared.n_tokens == n and prepared.max_id == 7
    assert peak < 16 << 20  # a quarter of the file: chunks, not the whole


def test_hf_dataset_on_disk_is_tokenised_by_a_local_tokenizer(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    texts = words_corpus(n_docs=12, words_per_doc=50)
    tok_dir = build_tokenizer(texts, tmp_path / "tok")
    datasets.Dataset.from_dict({"text": texts, "meta": list(range(len(texts)))}).save_to_disk(str(tmp_path / "ds"))
    prepared = prepare_data(tmp_path / "ds", tmp_path / "work", tokenizer=tok_dir, eval_tokens=100)
    np.testing.assert_array_equal(read_prepared(prepared), expected_ids(texts, tok_dir))
    from tokenizers import Tokenizer

    assert prepared.data_vocab == Tokenizer.from_file(str(tok_dir / "tokenizer.json")).get_vocab_size()
    # a second prepare reuses the token file; without a tokenizer a text column is a one-line error
    again = prepare_data(tmp_path / "ds", tmp_path / "work", tokenizer=tok_dir, eval_tokens=100)
    assert again.spec.path == prepared.spec.path and again.fingerprint == prepared.fingerprint
    with pytest.raises(LrpredictError, match="--tokenizer PATH"):
        prepare_data(tmp_path / "ds", tmp_path / "work2")
    with pytest.raises(LrpredictError, match=r"a column of .*: text, meta"):
        prepare_data(tmp_path / "ds", tmp_path / "work", tokenizer=tok_dir, text_column="body")


def test_dataset_dict_validation_split_is_the_held_out_set(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    texts = words_corpus(n_docs=12, words_per_doc=50)
    tok_dir = build_tokenizer(texts, tmp_path / "tok")
    splits = {"train": texts[:10], "validation": texts[10:]}
    datasets.DatasetDict({k: datasets.Dataset.from_dict({"text": v}) for k, v in splits.items()}).save_to_disk(
        str(tmp_path / "ds")
    )
    prepared = prepare_data(tmp_path / "ds", tmp_path / "work", tokenizer=tok_dir)
    np.testing.assert_array_equal(read_prepared(prepared), expected_ids(texts[:10], tok_dir))
    data = open_data(prepared.spec, prepared.probe_vocab)
    np.testing.assert_array_equal(data.eval, expected_ids(texts[10:], tok_dir))
    assert len(data.train) == prepared.n_tokens  # all of the train split trains
    assert any("held-out = the 'validation' split (102 tokens)" in n for n in prepared.notes)
    prepared.check_windows(64)
    with pytest.raises(LrpredictError, match="102 held-out, under a window of 129"):
        prepared.check_windows(128)


def test_parquet_and_jsonl_shards_give_the_same_tokens_as_the_dataset(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    texts = words_corpus(n_docs=10, words_per_doc=40)
    tok_dir = build_tokenizer(texts, tmp_path / "tok")
    (tmp_path / "pq").mkdir()
    (tmp_path / "jl").mkdir()
    for i, part in enumerate((texts[:6], texts[6:])):
        pq.write_table(pa.table({"content": part}), tmp_path / "pq" / f"shard-{i:05d}.parquet")
        lines = [json.dumps({"content": t, "id": j}) for j, t in enumerate(part)]
        (tmp_path / "jl" / f"shard-{i:05d}.jsonl").write_text("\n".join(lines) + "\n")
    want = expected_ids(texts, tok_dir)
    for source in ("pq", "jl"):
        prepared = prepare_data(tmp_path / source, tmp_path / "w", tokenizer=tok_dir, text_column="content")
        np.testing.assert_array_equal(read_prepared(prepared), want)
    (tmp_path / "jl" / "shard-00001.jsonl").write_text('{"content": "a b"}\nnot json\n')
    with pytest.raises(LrpredictError, match=r"shard-00001.jsonl:2. is not valid: one JSON object per line"):
        prepare_data(tmp_path / "jl", tmp_path / "w3", tokenizer=tok_dir, text_column="content")


def test_tokenising_stops_at_the_token_limit_and_says_so(tmp_path: Path) -> None:
    texts = words_corpus(n_docs=10, words_per_doc=40)
    tok_dir = build_tokenizer(texts, tmp_path / "tok")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    lines: list[str] = []
    kw = {"tokenizer": tok_dir, "eval_tokens": 50, "write": lines.append}
    prepared = prepare_data(tmp_path / "d.jsonl", tmp_path / "w", text_token_limit=150, **kw)
    np.testing.assert_array_equal(read_prepared(prepared), expected_ids(texts, tok_dir)[:150])
    assert any("first 150 tokens only" in n for n in prepared.notes)
    assert lines and "tokenising" in lines[0]
    full = prepare_data(tmp_path / "d.jsonl", tmp_path / "w", text_token_limit=None, **kw)  # another cache key
    assert full.n_tokens == 10 * 41 and full.spec.path != prepared.spec.path


def test_pretokenised_dataset_column_is_used_as_is(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    docs = [large_vocab_tokens(500, vocab=100_000, seed=s).tolist() for s in range(4)]
    datasets.Dataset.from_dict({"input_ids": docs}).save_to_disk(str(tmp_path / "ds"))
    prepared = prepare_data(tmp_path / "ds", tmp_path / "work", eval_tokens=100)
    np.testing.assert_array_equal(read_prepared(prepared), np.concatenate(docs))
    assert prepared.spec.dtype == "uint32" and prepared.data_vocab == 100_000


def test_text_file_is_byte_level_and_memory_mapped(tmp_path: Path) -> None:
    text = "héllo wörld\n" * 500
    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    prepared = prepare_data(tmp_path / "corpus.txt", tmp_path / "work", eval_tokens=100)
    assert prepared.spec.kind == "text" and prepared.data_vocab == 256
    data = open_data(prepared.spec, 256)
    assert isinstance(data.train, np.memmap)
    assert bytes(np.asarray(data.train[:6])) == "héllo".encode()


def test_plain_text_with_a_tokenizer_is_tokenised_in_chunks_cut_at_line_ends(tmp_path: Path) -> None:
    from lrpredict.calibrate.hf_text import iter_text_file

    texts = words_corpus(n_docs=6, words_per_doc=40)
    text = "\n".join(texts) + "\n"
    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    chunks = [c for _, (c,) in iter_text_file(tmp_path / "corpus.txt", chunk_bytes=100)]
    assert len(chunks) > 6 and "".join(chunks) == text and all(c[-1] in " \n" for c in chunks)
    tok_dir = build_tokenizer(texts, tmp_path / "tok")
    prepared = prepare_data(tmp_path / "corpus.txt", tmp_path / "w", tokenizer=tok_dir, eval_tokens=20)
    from tokenizers import Tokenizer

    want = Tokenizer.from_file(str(tok_dir / "tokenizer.json")).encode(text).ids  # no separator inserted
    np.testing.assert_array_equal(read_prepared(prepared), want)


def test_cli_dry_run_records_vocabulary_split_and_fingerprint(tmp_path: Path) -> None:
    large_vocab_tokens(200_000).astype(np.uint16).tofile(tmp_path / "train.bin")
    out = tmp_path / "cal"
    result = CliRunner().invoke(
        cli, ["calibrate", "--data", str(tmp_path / "train.bin"), "--out", str(out), "--dry-run", "--sizes", "32"]
    )
    assert result.exit_code == 0, result.output
    assert "vocabulary 50,257 from the largest token id + 1" in result.output
    assert "held-out = the last 20,000" in result.output and "fingerprint" in result.output


def test_cli_dry_run_takes_a_megatron_prefix(tmp_path: Path) -> None:
    docs = [large_vocab_tokens(2_000, seed=s) for s in range(20)]
    write_megatron(tmp_path / "c4_en.train_text_document", docs, "int32")
    args = ["calibrate", "--data", str(tmp_path / "c4_en.train_text_document"), "--out", str(tmp_path / "cal")]
    result = CliRunner().invoke(cli, [*args, "--dry-run", "--device", "cpu", "--sizes", "32"])
    assert result.exit_code == 0, result.output
    assert "Megatron indexed dataset c4_en.train_text_document.bin (int32, 20 documents)" in result.output
    assert "40,000 tokens" in result.output


def test_cli_token_id_outside_vocab_size_fails_before_any_probe(tmp_path: Path) -> None:
    large_vocab_tokens(50_000).astype(np.uint16).tofile(tmp_path / "train.bin")
    out = tmp_path / "cal"
    args = ["calibrate", "--data", str(tmp_path / "train.bin"), "--vocab-size", "512", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--vocab-size=512" in lines[0] and "holds id" in lines[0]
    assert not (out / "probes.jsonl").exists() and not (out / "plan.json").exists()


def _calibrate(prepared, out: Path, name: str):
    """The calibration ``lrpredict calibrate --data`` runs, with probes cut to 30/60 steps so it takes seconds."""
    from lrpredict.calibrate.executor import LocalExecutor
    from lrpredict.calibrate.planner import make_plan
    from lrpredict.calibrate.run import calibrate_torch

    plan = make_plan(name=name, widths=[16, 32], lrs=3, data=prepared.spec, vocab_size=prepared.probe_vocab)
    # LRs halved: at 60-80 steps these probes' optimum sits below the CPU plan's centre (measured), so the grid brackets
    # it and the run does not extend
    steps = (30 * plan.probes[0].tokens_per_step, 60 * plan.probes[0].tokens_per_step)
    plan.probes[:] = [p.model_copy(update={"horizons": steps, "eval_batches": 2, "lr": p.lr / 2}) for p in plan.probes]
    plan.notes[:0] = prepared.notes
    # one thread: two threads of one worker on a shared 2-core box stall on each other (measured 3.5 s vs 4-30 s)
    executor = LocalExecutor(["cpu"], threads_per_worker=1)
    return calibrate_torch(plan, out, executor=executor, write=lambda _: None)


def _check_law_written(outcome, out: Path, prepared, name: str) -> None:
    from lrpredict.registry import load_law

    assert outcome.law is not None and outcome.law.id == name
    assert load_law(name).lr.evaluate({"N": 1e5, "D": 1e5}) > 0
    ledger = [json.loads(line) for line in (out / "probes.jsonl").read_text().splitlines()]
    assert ledger and all(r["status"] == "ok" for r in ledger)
    assert {r["spec"]["data"]["source"] for r in ledger} == {prepared.spec.source}  # the fingerprint, per probe
    plan = json.loads((out / "plan.json").read_text())
    assert any("held-out = the last" in n for n in plan["notes"])


@pytest.mark.slow
def test_calibrate_end_to_end_from_a_50k_vocabulary_token_file_writes_a_law(tmp_path: Path) -> None:
    tokens = large_vocab_tokens(300_000)
    assert tokens.max() == GPT2_VOCAB - 1
    tokens.astype(np.uint16).tofile(tmp_path / "train.bin")
    prepared = prepare_data(tmp_path / "train.bin", tmp_path / "cal" / "data", eval_tokens=8_192)
    assert prepared.data_vocab == GPT2_VOCAB
    outcome = _calibrate(prepared, tmp_path / "cal", "from-bin")
    _check_law_written(outcome, tmp_path / "cal", prepared, "from-bin")


@pytest.mark.slow
def test_calibrate_end_to_end_from_a_tokenised_hf_dataset_on_disk_writes_a_law(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    texts = words_corpus(n_docs=100, words_per_doc=2_000)
    tok_dir = build_tokenizer(texts, tmp_path / "tok")
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "ds"))
    prepared = prepare_data(tmp_path / "ds", tmp_path / "cal" / "data", tokenizer=tok_dir, eval_tokens=8_192)
    assert prepared.n_tokens == 100 * 2_001  # every word a token, one <|endoftext|> per document
    outcome = _calibrate(prepared, tmp_path / "cal", "from-hf")
    _check_law_written(outcome, tmp_path / "cal", prepared, "from-hf")
