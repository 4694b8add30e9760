"""Turn what a pre-training team has (``--data``) into a ``DataSpec`` the probes read, checked before any probe runs.

Formats, by what the path is:

* ``.bin`` with a Megatron ``.idx`` beside it: a Megatron-LM indexed dataset (dtype from the index);
* ``.bin`` alone: a nanoGPT flat token file, uint16 or uint32 (``token_dtype``, else inferred: see ``infer_bin_dtype``);
* ``.npy``: a 1-D integer array;
* a ``save_to_disk`` folder, ``.parquet`` or ``.jsonl`` shards (a file or a folder of them): the text column is
  tokenised once by a local Hugging Face tokenizer into ``WORK/tokens-<key>.bin`` (an ``input_ids`` column is used as
  is);
* anything else: text, byte-level (vocabulary 256) or, with a tokenizer, tokenised once like the above.

Every token file is memory-mapped and scanned once in chunks (max id and counts, never loaded whole).  The vocabulary
is ``vocab_size`` if given, else the tokenizer's, else the largest id + 1; an id outside it is a ``LrpredictError``
here, before any probe starts.  The held-out split is the last ``eval_tokens`` tokens (deterministic) and the plan
records it with a fingerprint of the data.

Large vocabularies: unless ``vocab_size`` pins the vocabulary, the probes' embedding holds only the ids the data uses
(``vocab_map`` sends data ids to 0..K-1, K padded to a multiple of 64): an id that never occurs is never a target, so
the task is the same, and a 50K-row embedding in a 30K-parameter probe would make the head cost ~100× the rest.  The
law's N excludes embeddings, so the fit is unaffected (docs/log.md 2026-11-30).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lrpredict.calibrate import hf_text, megatron_index
from lrpredict.calibrate.data import file_fingerprint, load_npy
from lrpredict.calibrate.spec import DataSpec
from lrpredict.errors import LrpredictError

SCAN_CHUNK = 1 << 24  # tokens per scan step: 32-64 MiB of a memory-mapped file at a time
VOCAB_PAD = 64  # embedding rows rounded up to a multiple of 64 (nanoGPT pads 50,257 → 50,304 for the same reason)
COMPACT_BELOW = 0.9  # compact the vocabulary only when it saves at least 10% of the rows
EVAL_TOKENS = 2**17
EVAL_SHARE = 0.1  # small data: the held-out tail is at most a tenth of it
# Text is tokenised up to this many tokens (8 GB of uint16): more than the longest probe of a default GPU plan
# trains on, and a day of single-process tokenising less for a 100B-token corpus.
TEXT_TOKEN_LIMIT = 4_000_000_000
HELD_OUT_LIMIT = 1 << 24  # tokens of a dataset's own held-out split (probes evaluate a few batches)
TOKEN_DTYPES = ("uint16", "uint32")
MAX_VOCAB = 1 << 24  # 16.8M ids: far above any tokenizer (the largest have ~10^6); bounds the count table


@dataclass(frozen=True)
class PreparedData:
    """A checked data source: the spec for the probes, the vocabularies, and how it was read (for the plan)."""

    spec: DataSpec
    data_vocab: int  # the vocabulary of the data (tokenizer's, --vocab-size, or max id + 1)
    probe_vocab: int  # rows of the probes' embedding
    n_tokens: int  # of the data file (the training split when the held-out set is a file of its own)
    max_id: int
    fingerprint: str
    notes: list[str] = field(default_factory=list)
    held_out_tokens: int | None = None  # size of a separate held-out file; None: the tail of the data

    def repetition_notes(self, horizon: int, seq_len: int) -> list[str]:
        """What a too-small corpus does to the probes, said in the plan (QA 2026-12-01: 585 training tokens read
        ~450 times installed a law from models whose held-out loss rose with training)."""
        train, held_out = self._split_sizes()
        notes = []
        epochs = horizon / max(train, 1)
        if epochs > 1:
            # up to ~4 epochs cost little loss (Muennighoff et al. 2023); far beyond, the probes overfit and their
            # optimum is not the one-pass optimum of the run they stand for
            severity = "the probes will overfit: use a larger --data" if epochs > 4 else "mild above 1 epoch"
            notes.append(
                f"the longest horizon ({horizon:,} tokens) reads the {train:,} training tokens {epochs:.3g} times: "
                f"repeated data ({severity})"
            )
        windows = held_out // (seq_len + 1)
        if windows < 8:
            notes.append(f"the held-out split holds {windows} window(s) of {seq_len + 1} tokens: a noisy loss")
        return notes

    def _split_sizes(self) -> tuple[int, int]:
        """(training, held-out) tokens: a separate held-out file, else the data's last ``eval_tokens``."""
        held_out = self.held_out_tokens or self.spec.eval_tokens
        return (self.n_tokens if self.held_out_tokens else self.n_tokens - held_out), held_out

    def check_windows(self, seq_len: int) -> None:
        """Both train and held-out ranges must hold a window of ``seq_len + 1`` tokens."""
        train, held_out = self._split_sizes()
        if min(held_out, train) <= seq_len:
            raise LrpredictError(
                "data",
                self.spec.source,
                f"more tokens: {train} train and {held_out} held-out, under a window of {seq_len + 1}",
            )


def prepare_data(
    path: Path,
    work_dir: Path,
    *,
    tokenizer: Path | None = None,
    text_column: str = "text",
    token_dtype: str | None = None,
    vocab_size: int | None = None,
    eval_tokens: int | None = None,
    compact: bool = True,
    text_token_limit: int | None = TEXT_TOKEN_LIMIT,
    write: Callable[[str], None] | None = None,
) -> PreparedData:
    """Read ``path`` (see the module docstring), scan it, and return the spec the probes use."""
    _check_options(path, vocab_size, token_dtype)
    tok = hf_text.load_tokenizer(tokenizer) if tokenizer else None
    src = _open_source(path, work_dir, tok, text_column, token_dtype, vocab_size, text_token_limit, write)
    tokens, held_out, fingerprint, notes = src.tokens, src.held_out, src.fingerprint, src.notes
    if len(tokens) == 0:
        raise LrpredictError("data", str(path), "at least one token")

    vocab_limit = vocab_size or (tok.vocab_size if tok else None) or (256 if src.kind == "text" else None)
    max_id, counts, bad_tokens, first_bad = _scan_ids(src, vocab_limit, work_dir, write)
    data_vocab, vocab_from = _data_vocab(vocab_size, tok, src.kind, max_id)
    if first_bad is not None:
        raise LrpredictError(
            "vocab_size" if vocab_size or not tok else "tokenizer",
            data_vocab,
            f"more than every token id: {path} holds id {int(bad_tokens[first_bad])} at token {first_bad}",
        )
    used = np.flatnonzero(counts)
    vocab_map = None
    probe_vocab = _pad(data_vocab) if vocab_from.startswith("the largest") else data_vocab
    if compact and not vocab_size and src.kind != "text" and _pad(len(used)) < COMPACT_BELOW * data_vocab:
        vocab_map, probe_vocab = _write_vocab_map(used, max_id, work_dir / f"vocab-map-{fingerprint[:16]}.npy")
    eval_tokens, split = _held_out_split(src, eval_tokens)
    spec = DataSpec(
        kind=src.kind,
        path=str(src.file.resolve()),
        eval_path=str(src.eval_file.resolve()) if src.eval_file else None,
        dtype=src.dtype if src.kind == "bin" else "uint16",
        eval_tokens=eval_tokens,
        vocab_map=vocab_map,
        source=f"{src.what}; fingerprint {fingerprint[:16]}",
    )
    notes.append(f"data: {src.what}; {len(tokens):,} tokens, fingerprint {fingerprint[:16]}")
    notes.append(f"split: {split}")
    rows = (
        f"probes embed the {len(used):,} ids that occur ({probe_vocab:,} rows, padded to {VOCAB_PAD})"
        if vocab_map
        else f"probes embed all {probe_vocab:,} ids"
    )
    notes.append(f"vocabulary {data_vocab:,} from {vocab_from}; {rows}; N excludes embeddings, the fit does not see it")
    held_out_n = len(held_out) if held_out is not None else None
    return PreparedData(spec, data_vocab, probe_vocab, len(tokens), max_id, fingerprint, notes, held_out_n)


def _check_options(path: Path, vocab_size: int | None, token_dtype: str | None) -> None:
    """The options checked before anything is read: the path exists, ``vocab_size`` ≥ 2, a known ``token_dtype``."""
    if not path.exists() and not megatron_index.is_megatron_prefix(path):  # Megatron users give the bare prefix
        raise LrpredictError("data", str(path), "an existing token file, dataset folder, shard or text file")
    if vocab_size is not None and vocab_size < 2:
        raise LrpredictError("vocab_size", vocab_size, "an integer ≥ 2")
    if token_dtype is not None and token_dtype not in TOKEN_DTYPES:
        raise LrpredictError("token_dtype", token_dtype, " or ".join(TOKEN_DTYPES))


def _scan_ids(
    src: _Source, vocab_limit: int | None, work_dir: Path, write: Callable[[str], None] | None
) -> tuple[int, np.ndarray, np.ndarray, int | None]:
    """Scan the training tokens and, when they pass, a held-out set of its own (its ids count too): the largest id,
    the count of each id, and the first id ≥ ``vocab_limit`` as (the tokens holding it, its index or None)."""
    tokens, held_out, fingerprint = src.tokens, src.held_out, src.fingerprint
    max_id, counts, first_bad = _cached_scan(tokens, vocab_limit, work_dir / f"counts-{fingerprint[:16]}.npy", write)
    if held_out is not None and first_bad is None:
        cache = work_dir / f"counts-{fingerprint[:16]}-eval.npy"
        eval_max, eval_counts, bad = _cached_scan(held_out, vocab_limit, cache, write)
        if bad is not None:
            tokens, first_bad = held_out, bad
        max_id = max(max_id, eval_max)
        merged = np.zeros(max_id + 1, dtype=np.int64)
        merged[: len(counts)] += counts
        merged[: len(eval_counts)] += eval_counts
        counts = merged
    return max_id, counts, tokens, first_bad


def _data_vocab(vocab_size: int | None, tok: hf_text.Tokenizer | None, kind: str, max_id: int) -> tuple[int, str]:
    """The data's vocabulary and where it came from: ``vocab_size``, else the tokenizer's, else bytes (text), else
    the largest id + 1."""
    return (
        (vocab_size, "--vocab-size")
        if vocab_size
        else (tok.vocab_size, "the tokenizer")
        if tok
        else (256, "bytes")
        if kind == "text"
        else (max_id + 1, "the largest token id + 1")
    )


def _write_vocab_map(used: np.ndarray, max_id: int, map_file: Path) -> tuple[str, int]:
    """Save the table sending each used data id to 0..K-1 (-1: unused) to ``map_file``; return its path and the
    probes' embedding rows (K padded)."""
    table = np.full(max_id + 1, -1, dtype=np.int32)
    table[used] = np.arange(len(used), dtype=np.int32)
    map_file.parent.mkdir(parents=True, exist_ok=True)
    np.save(map_file, table)
    return str(map_file.resolve()), _pad(len(used))


def _held_out_split(src: _Source, eval_tokens: int | None) -> tuple[int, str]:
    """Held-out tokens and how the data splits, said in words: a held-out set of its own, else the data's tail."""
    if src.held_out is not None:
        n = len(src.held_out)
        return n, f"held-out = the {src.eval_split!r} split ({n:,} tokens), train = the {src.train_split!r}"
    n = max(1, eval_tokens or min(EVAL_TOKENS, int(len(src.tokens) * EVAL_SHARE)))
    return n, f"train = tokens [0, {len(src.tokens) - n:,}), held-out = the last {n:,}"


@dataclass
class _Source:
    """What one ``--data`` path reads as: tokens (memory-mapped), a held-out file if it has one, and a description."""

    kind: str
    file: Path
    dtype: str
    tokens: np.ndarray
    fingerprint: str
    what: str
    notes: list[str] = field(default_factory=list)
    held_out: np.ndarray | None = None  # a held-out set of its own (a dataset's validation split)
    eval_file: Path | None = None
    train_split: str | None = None
    eval_split: str | None = None


def _open_source(
    path: Path,
    work_dir: Path,
    tok: hf_text.Tokenizer | None,
    text_column: str,
    token_dtype: str | None,
    vocab_size: int | None,
    limit: int | None,
    write: Callable[[str], None] | None,
) -> _Source:
    fmt = hf_text.text_format(path)
    if fmt is None and megatron_index.is_megatron_prefix(path):
        tokens, index = megatron_index.open_tokens(path)
        file = megatron_index.bin_path(path)
        fingerprint = _digest({"bin": file_fingerprint(file), "idx": file_fingerprint(megatron_index.index_path(path))})
        what = f"Megatron indexed dataset {file.name} ({index.dtype}, {len(index.document_indices) - 1} documents)"
        return _Source("bin", file, index.dtype, tokens, fingerprint, what)
    if fmt is None and path.suffix == ".bin":
        dtype, why = (token_dtype, "--token-dtype") if token_dtype else infer_bin_dtype(path, vocab_size)
        fingerprint = _digest({"bin": file_fingerprint(path), "dtype": dtype})
        return _Source(
            "bin", path, dtype, _memmap(path, dtype), fingerprint, f"nanoGPT token file {path.name} ({dtype}: {why})"
        )
    if fmt is None and path.suffix == ".npy":
        tokens = load_npy(path)
        if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
            raise LrpredictError(
                "data", str(path), f"a .npy file of 1-D integer tokens (got {tokens.dtype}{tokens.shape})"
            )
        fingerprint = _digest({"npy": file_fingerprint(path)})
        return _Source("npy", path, tokens.dtype.name, tokens, fingerprint, f"token array {path.name} ({tokens.dtype})")
    if fmt is None and tok is None:
        what = f"text file {path.name}, byte-level (vocabulary 256; --tokenizer PATH for a real one)"
        return _Source("text", path, "uint8", _memmap(path, "uint8"), _digest({"text": file_fingerprint(path)}), what)
    key = _digest(
        {"source": _tree_fingerprint(path), "tokenizer": tok and tok.digest, "column": text_column, "limit": limit}
    )
    file = work_dir / f"tokens-{key[:16]}.bin"
    train_split, eval_split = hf_text.held_out_split(path) if fmt == "hf-disk" else (None, None)
    meta = _tokenise(path, fmt, text_column, tok, file, train_split, limit, write)
    by = f"tokenised by {tok.path} (eos {tok.eos_id})" if tok else "ids as stored"
    src = _Source(
        "bin",
        file,
        meta["dtype"],
        _memmap(file, meta["dtype"]),
        key,
        f"{fmt or 'text'} {path.name} ({by}) → {file.name}",
    )
    if meta.get("cut"):
        src.notes.append(f"data: tokenised the first {meta['tokens']:,} tokens only (the limit; probes sample these)")
    if eval_split:  # the dataset's own held-out split, capped: the probes evaluate a few batches of it
        src.eval_file = work_dir / f"tokens-{key[:16]}-{eval_split}.bin"
        eval_meta = _tokenise(path, fmt, text_column, tok, src.eval_file, eval_split, HELD_OUT_LIMIT, write)
        src.held_out = _memmap(src.eval_file, eval_meta["dtype"])
        src.train_split, src.eval_split = train_split, eval_split
    return src


def _tokenise(
    path: Path,
    fmt: str | None,
    column: str,
    tok: hf_text.Tokenizer | None,
    file: Path,
    split: str | None,
    limit: int | None,
    write: Callable[[str], None] | None,
) -> dict:
    """Tokenise ``path`` (one split of it) into ``file`` once; later calls read the ``.json`` written beside it."""
    meta_path = file.with_suffix(".json")
    if meta_path.is_file() and file.is_file():  # tokenised by an earlier run or dry run: reuse
        return json.loads(meta_path.read_text(encoding="utf-8"))
    batches = hf_text.iter_columns(path, fmt, column, split) if fmt else hf_text.iter_text_file(path)
    if write:
        write(f"tokenising {path}{f' ({split})' if split else ''} into {file} (once; reused by later runs)")
    progress = (lambda n: write(f"  {n:,} tokens")) if write else None
    # a plain text file is one stream: no separator at its chunk boundaries
    dtype, count, cut = hf_text.write_tokens(
        batches, file, tok, separate=fmt is not None, limit=limit, progress=progress
    )
    meta = {"dtype": dtype, "tokens": count, "source": str(path), "format": fmt or "text", "cut": cut}
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    return meta


def infer_bin_dtype(path: Path, vocab_size: int | None) -> tuple[str, str]:
    """nanoGPT writes uint16 (uint32 above 65,536 ids).  Without ``vocab_size``: uint32 when the file's first MiB,
    read as uint16, has every high half zero (small ids stored in 4 bytes), else uint16."""
    size = path.stat().st_size
    if vocab_size is not None:
        return ("uint16", "--vocab-size fits 16 bits") if vocab_size <= 1 << 16 else ("uint32", "--vocab-size > 65,536")
    if size % 2:
        raise LrpredictError("data", str(path), f"uint16 or uint32 tokens (its {size} bytes are odd)")
    if size % 4 == 0:
        head = np.fromfile(path, dtype="<u2", count=min(size // 2, 1 << 19))
        if len(head) >= 2 and not head[1::2].any() and head[0::2].any():
            return "uint32", "every second uint16 is 0: 32-bit ids"
    return "uint16", "nanoGPT's default; --token-dtype uint32 otherwise"


def _cached_scan(
    tokens: np.ndarray, vocab: int | None, cache: Path, write: Callable[[str], None] | None
) -> tuple[int, np.ndarray, int | None]:
    """``scan_tokens``, with the counts kept in ``cache`` (keyed by the data's fingerprint): a dry run and the run
    after it scan a 100 GB file once.  A cached scan with an id ≥ ``vocab`` rescans to find its position."""
    if cache.is_file():
        counts = np.load(cache)
        max_id = len(counts) - 1
        if vocab is None or max_id < vocab:
            return max_id, counts, None
    elif write and len(tokens) > SCAN_CHUNK * 16:
        write(f"scanning {len(tokens):,} tokens for their ids (once; cached in {cache.parent})")
    max_id, counts, first_bad = scan_tokens(tokens, vocab)
    if first_bad is None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, counts)
    return max_id, counts, first_bad


def scan_tokens(tokens: np.ndarray, vocab: int | None) -> tuple[int, np.ndarray, int | None]:
    """Max id, per-id counts (length max id + 1), and the index of the first id ≥ ``vocab`` (None if none), chunk
    by chunk of the memory map."""
    counts = np.zeros(0, dtype=np.int64)
    max_id = -1
    for start in range(0, len(tokens), SCAN_CHUNK):
        chunk = np.asarray(tokens[start : start + SCAN_CHUNK])
        if chunk.dtype.kind == "i" and chunk.min() < 0:
            raise LrpredictError(
                "data", f"token {start + int(np.argmin(chunk))}", f"token ids ≥ 0 (found {chunk.min()})"
            )
        top = int(chunk.max())
        if vocab is not None and top >= vocab:
            return max(max_id, top), counts, start + int(np.argmax(chunk >= vocab))
        if top >= MAX_VOCAB:  # no tokenizer is this large: the bytes are not tokens of this dtype
            where = start + int(np.argmax(chunk >= MAX_VOCAB))
            raise LrpredictError(
                "data", f"token {where}", f"ids below {MAX_VOCAB:,} (found {top:,}: is --token-dtype right?)"
            )
        c = np.bincount(chunk, minlength=len(counts))
        if len(c) > len(counts):
            c[: len(counts)] += counts
            counts = c
        else:
            counts += c
        max_id = max(max_id, top)
    return max_id, counts, None


def _memmap(path: Path, dtype: str) -> np.ndarray:
    size = path.stat().st_size
    item = np.dtype(dtype).itemsize
    if size % item:
        raise LrpredictError("token_dtype", dtype, f"a dtype whose size divides {path}'s {size} bytes")
    if size == 0:
        raise LrpredictError("data", str(path), "a non-empty file")
    return np.memmap(path, dtype=dtype, mode="r")


def _pad(n: int) -> int:
    return -(-n // VOCAB_PAD) * VOCAB_PAD


def _tree_fingerprint(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return _digest({str(f.relative_to(path) if path.is_dir() else f.name): file_fingerprint(f) for f in files})


def _digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
