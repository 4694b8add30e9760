"""Token sources for probes: nanoGPT ``.bin`` files, ``.npy`` arrays, text files, and an embedded synthetic corpus.

What a user passes to ``--data`` (Megatron datasets, Hugging Face datasets and shards, tokenizers) is turned into
one of these by ``token_sources.prepare_data``, which also checks every id and may compact the vocabulary
(``DataSpec.vocab_map``, applied here batch by batch).

Every source becomes a ``TokenData``: two disjoint 1-D token arrays (train, then held-out eval taken from the end,
or from a separate file) and a fingerprint that changes when the data does.  ``Batches`` draws the training batch
of step ``t`` from ``(seed, t)`` alone, so a decay branch that restarts at step ``t`` sees exactly the batches an
uninterrupted run would have seen (nanoGPT samples windows uniformly in the same way).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrpredict.calibrate.spec import DataSpec, SyntheticConfig
from lrpredict.errors import LrpredictError

# Bump when synthetic_tokens changes its output for the same parameters: it is part of the fingerprint.
SYNTHETIC_VERSION = 1
_HEAD_BYTES = 1 << 20
# Past the head, 16 chunks of 64 KiB spread evenly to the end: a same-size edit anywhere in a 100 GB token file
# (re-tokenised shard, rewritten tail) changes the fingerprint for 1 MiB more read (docs/log.md 2026-12-01).
_SAMPLE_CHUNKS, _SAMPLE_BYTES = 16, 1 << 16
# Ledgers written before the samples were hashed hold head-only fingerprints; a resume accepts those
# (executor.check_same_data computes both).
_LEGACY_FINGERPRINT: contextvars.ContextVar[bool] = contextvars.ContextVar("legacy_fingerprint", default=False)


@dataclass(frozen=True)
class TokenData:
    """Train and held-out tokens (disjoint ranges or files), the vocabulary they need, and a fingerprint."""

    train: np.ndarray
    eval: np.ndarray
    vocab_size: int | None  # None: unknown without a full scan (token files); checked batch by batch instead
    fingerprint: str
    vocab_map: np.ndarray | None = None  # data id → probe id (token_sources compacts a large vocabulary)


def open_data(spec: DataSpec, vocab_size: int) -> TokenData:
    """Open the source ``spec`` names for a model with ``vocab_size`` tokens (cached per process)."""
    data = _open_synthetic(spec, vocab_size) if spec.kind == "synthetic" else _open_file(spec)
    if data.vocab_size is not None and data.vocab_size > vocab_size:
        raise LrpredictError("arch.vocab_size", vocab_size, f"the data needs at least {data.vocab_size} tokens")
    return data


def data_fingerprint(spec: DataSpec, vocab_size: int) -> str:
    """The fingerprint ``open_data(spec, vocab_size)`` would give, without generating, memory-mapping or tokenising
    anything (a resume compares it with the ledger's before any probe runs).  A missing file raises ``OSError``."""
    if spec.kind == "synthetic":
        return _synthetic_fingerprint(spec, vocab_size)
    path, eval_path = Path(spec.path), Path(spec.eval_path) if spec.eval_path else None
    if spec.kind == "text":
        tok_id = _tokenizer_digest(Path(spec.tokenizer)) if spec.tokenizer else "bytes"
        return _text_fingerprint(path, eval_path, spec, tok_id)
    return _token_file_fingerprint(path, eval_path, spec)


@functools.lru_cache(maxsize=4)  # a worker runs many probes on one corpus: generate it once
def _open_synthetic(spec: DataSpec, vocab_size: int) -> TokenData:
    tokens = synthetic_tokens(spec.n_tokens, vocab_size, spec.seed, spec.synthetic)
    return _split(tokens, None, spec.eval_tokens, vocab_size, _synthetic_fingerprint(spec, vocab_size))


def _synthetic_fingerprint(spec: DataSpec, vocab_size: int) -> str:
    meta = {"n_tokens": spec.n_tokens, "seed": spec.seed, "vocab_size": vocab_size, **spec.synthetic.model_dump()}
    return _sha256_json({"kind": "synthetic", "version": SYNTHETIC_VERSION, **meta})


def _open_file(spec: DataSpec) -> TokenData:
    # not cached: the file may change between probes, and memmapping it again costs nothing
    path = Path(spec.path)  # validated non-empty for file kinds
    eval_path = Path(spec.eval_path) if spec.eval_path else None
    if spec.kind == "text":
        return _open_text(path, eval_path, spec)
    tokens = _load_tokens(path, spec)
    held_out = _load_tokens(eval_path, spec) if eval_path else None
    vocab_map = np.load(spec.vocab_map) if spec.vocab_map else None
    data = _split(tokens, held_out, spec.eval_tokens, None, _token_file_fingerprint(path, eval_path, spec))
    return data if vocab_map is None else dataclasses.replace(data, vocab_map=vocab_map)


def _token_file_fingerprint(path: Path, eval_path: Path | None, spec: DataSpec) -> str:
    extra = {"kind": spec.kind, "dtype": spec.dtype, "eval_tokens": spec.eval_tokens}
    if spec.vocab_map:  # only then: fingerprints of earlier ledgers stay as they were
        extra |= {"vocab_map": file_fingerprint(Path(spec.vocab_map)), "source": spec.source}
    return _sha256_json({**extra, "train": file_fingerprint(path), "eval": eval_path and file_fingerprint(eval_path)})


def _load_tokens(path: Path, spec: DataSpec) -> np.ndarray:
    if spec.kind == "bin":
        # nanoGPT's prepare.py writes raw uint16 (uint32 for vocabularies over 65,536) with no header; a Megatron
        # .bin is the same once its .idx gave the dtype (token_sources, megatron_index)
        return np.memmap(path, dtype=spec.dtype, mode="r")
    tokens = load_npy(path)
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise LrpredictError(
            "data.path", str(path), f"a .npy file of 1-D integer tokens (got {tokens.dtype}{tokens.shape})"
        )
    return tokens


def load_npy(path: Path) -> np.ndarray:
    """A .npy file memory-mapped, never unpickled; a file numpy cannot map (object or pickled data, random bytes, a
    header whose shape is larger than the file) is one line naming --data (issue 23: ValueError tracebacks)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        reason = str(exc).split(".")[0][:80] or exc.__class__.__name__
        raise LrpredictError("data", str(path), f"a .npy file of 1-D integer tokens (numpy: {reason})") from None


def _open_text(path: Path, eval_path: Path | None, spec: DataSpec) -> TokenData:
    if spec.tokenizer:
        tokenize, vocab, tok_id = _hf_tokenizer(Path(spec.tokenizer))
        tokens = tokenize(path.read_bytes())
        held_out = tokenize(eval_path.read_bytes()) if eval_path else None
    else:  # bytes are tokens: memory-map the file, never read it whole
        vocab, tok_id = 256, "bytes"
        tokens = np.memmap(path, dtype=np.uint8, mode="r")
        held_out = np.memmap(eval_path, dtype=np.uint8, mode="r") if eval_path else None
    return _split(tokens, held_out, spec.eval_tokens, vocab, _text_fingerprint(path, eval_path, spec, tok_id))


def _text_fingerprint(path: Path, eval_path: Path | None, spec: DataSpec, tok_id: str) -> str:
    meta = {"kind": "text", "tokenizer": tok_id, "eval_tokens": spec.eval_tokens}
    return _sha256_json({**meta, "train": file_fingerprint(path), "eval": eval_path and file_fingerprint(eval_path)})


def _tokenizer_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hf_tokenizer(path: Path):
    try:
        from tokenizers import Tokenizer  # optional: only for text files with a tokenizer.json
    except ImportError as exc:
        raise LrpredictError("data.tokenizer", str(path), "needs the `tokenizers` package installed") from exc
    tok = Tokenizer.from_file(str(path))
    dtype = np.uint16 if tok.get_vocab_size() <= 1 << 16 else np.uint32

    def tokenize(text: bytes) -> np.ndarray:
        return np.asarray(tok.encode(text.decode("utf-8", errors="replace")).ids, dtype=dtype)

    return tokenize, tok.get_vocab_size(), _tokenizer_digest(path)


def _split(tokens: np.ndarray, held_out: np.ndarray | None, eval_tokens: int, vocab: int | None, fp: str) -> TokenData:
    """Train and eval as disjoint ranges: eval is the last ``eval_tokens`` tokens unless a held-out file is given."""
    if held_out is not None:
        return TokenData(train=tokens, eval=held_out, vocab_size=vocab, fingerprint=fp)
    if eval_tokens >= len(tokens):
        # said of the data the user gave, not of an internal field (QA 2026-12-01: "data.eval_tokens=1 … the 1 tokens")
        raise LrpredictError("data", f"{len(tokens)} tokens", f"more than the {eval_tokens} held out for evaluation")
    cut = len(tokens) - eval_tokens
    return TokenData(train=tokens[:cut], eval=tokens[cut:], vocab_size=vocab, fingerprint=fp)


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's size, first MiB and 16 chunks spread to its end: cheap for 100 GB token files (2 MiB
    read), and it changes with the data."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(_HEAD_BYTES))
        rest = size - _HEAD_BYTES
        if _LEGACY_FINGERPRINT.get() or rest <= 0:
            return h.hexdigest()
        if rest <= _SAMPLE_CHUNKS * _SAMPLE_BYTES:
            h.update(f.read())
            return h.hexdigest()
        for k in range(1, _SAMPLE_CHUNKS + 1):  # the last chunk ends at the file's end
            f.seek(_HEAD_BYTES + (rest - _SAMPLE_BYTES) * k // _SAMPLE_CHUNKS)
            h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()


@contextlib.contextmanager
def legacy_fingerprints() -> Iterator[None]:
    """Within: ``file_fingerprint`` hashes size and first MiB only, as ledgers before 2026-12-01 recorded."""
    token = _LEGACY_FINGERPRINT.set(True)
    try:
        yield
    finally:
        _LEGACY_FINGERPRINT.reset(token)


def _sha256_json(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def synthetic_tokens(n_tokens: int, vocab_size: int, seed: int, config: SyntheticConfig | None = None) -> np.ndarray:
    """A seeded corpus with learnable structure (see ``SyntheticConfig``); same arguments, same tokens.

    Documents of ``doc_len`` tokens are generated side by side, one vectorised step per position, so 16M tokens
    take 2-3 s.  Each next token copies an earlier span (if one is running), else follows the previous
    token's sparse Markov row with probability ``markov_prob``, else is a fresh Zipfian unigram draw.
    """
    cfg = config or SyntheticConfig()
    lo, hi = cfg.copy_len
    if not 1 <= lo <= hi:
        raise LrpredictError("synthetic.copy_len", cfg.copy_len, "must be 1 ≤ min ≤ max")
    rng = np.random.default_rng(seed)
    # Zipfian unigram over a random assignment of ranks to token ids
    freq = np.empty(vocab_size)
    freq[rng.permutation(vocab_size)] = np.arange(1, vocab_size + 1, dtype=float) ** -cfg.zipf_exponent
    unigram_cdf = np.cumsum(freq / freq.sum())
    unigram_cdf[-1] = 1.0
    # sparse Markov table: each token has `successors` likely next tokens, drawn by frequency, Dirichlet weights
    k = min(cfg.successors, vocab_size)
    succ = np.searchsorted(unigram_cdf, rng.random((vocab_size, k)), side="right")
    succ_cdf = np.cumsum(rng.dirichlet(np.full(k, cfg.dirichlet_alpha), size=vocab_size), axis=1)
    succ_cdf[:, -1] = 1.0

    length = cfg.doc_len
    n_docs = -(-n_tokens // length)
    docs = np.empty((n_docs, length), dtype=np.uint16 if vocab_size <= 1 << 16 else np.uint32)
    rows = np.arange(n_docs)
    docs[:, 0] = np.searchsorted(unigram_cdf, rng.random(n_docs), side="right")
    copy_left = np.zeros(n_docs, dtype=np.int64)
    copy_dist = np.zeros(n_docs, dtype=np.int64)
    for t in range(1, length):
        prev = docs[:, t - 1]
        u = rng.random((n_docs, 4))
        choice = (u[:, :1] > succ_cdf[prev]).sum(axis=1)
        nxt = np.where(
            u[:, 1] < cfg.markov_prob, succ[prev, choice], np.searchsorted(unigram_cdf, u[:, 2], side="right")
        )
        if t >= lo:
            starts = (copy_left == 0) & (u[:, 3] < cfg.copy_prob)
            n_new = int(starts.sum())
            if n_new:
                copy_left[starts] = rng.integers(lo, hi + 1, size=n_new)
                copy_dist[starts] = rng.integers(lo, max(lo, min(cfg.copy_distance, t)) + 1, size=n_new)
        copying = copy_left > 0
        nxt = np.where(copying, docs[rows, t - np.where(copying, copy_dist, 1)], nxt)
        copy_left -= copying
        docs[:, t] = nxt
    return docs.reshape(-1)[:n_tokens]


class Batches:
    """Training batches indexed by step, and a fixed list of held-out windows."""

    def __init__(self, data: TokenData, batch_size: int, seq_len: int, seed: int, vocab_size: int) -> None:
        if len(data.train) <= seq_len:
            # named as the data, not seq_len: calibrate has no --seq-len, the corpus is what is too small
            raise LrpredictError(
                "data", f"{len(data.train)} training tokens", f"more than {seq_len}, one probe sequence (seq_len)"
            )
        self.data = data
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.vocab_size = vocab_size
        self._offsets = np.arange(seq_len + 1)

    def train(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets (int64, batch × seq_len) of optimizer step ``step``: random windows of the train range."""
        rng = np.random.default_rng((self.seed, step))
        starts = rng.integers(0, len(self.data.train) - self.seq_len, size=self.batch_size)
        return self._windows(self.data.train, starts)

    def eval(self, n_batches: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Up to ``n_batches`` batches of consecutive, non-overlapping held-out windows (the same on every call)."""
        n_windows = min(n_batches * self.batch_size, (len(self.data.eval) - 1) // self.seq_len)
        if n_windows < 1:
            raise LrpredictError(
                "data",
                f"{len(self.data.eval)} held-out tokens",
                f"more than {self.seq_len}, one probe sequence (seq_len): a larger --data file",
            )
        starts = np.arange(n_windows) * self.seq_len
        for i in range(0, n_windows, self.batch_size):
            yield self._windows(self.data.eval, starts[i : i + self.batch_size])

    def _windows(self, tokens: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        block = np.asarray(tokens[starts[:, None] + self._offsets], dtype=np.int64)
        if self.data.vocab_map is not None:
            if block.max() >= len(self.data.vocab_map):
                raise LrpredictError("data.vocab_map", len(self.data.vocab_map), f"covers token id {int(block.max())}")
            block = self.data.vocab_map[block].astype(np.int64)
            if block.min() < 0:  # an id the scan did not see: the file changed after it was planned
                raise LrpredictError("data.vocab_map", self.data.fingerprint[:16], "the data the plan scanned")
        if self.data.vocab_size is None and block.max() >= self.vocab_size:
            raise LrpredictError("arch.vocab_size", self.vocab_size, f"the data holds token id {int(block.max())}")
        return block[:, :-1], block[:, 1:]
