"""Documents from Hugging Face ``datasets`` folders (``save_to_disk``), parquet or JSON-lines shards, and plain text,
tokenised once by a local Hugging Face tokenizer into a flat token file the probes memory-map.

Why a token file: every probe (in every worker) reads windows at random offsets; tokenising per probe would repeat the
slowest step 15 times and hold the corpus in memory.  Rows are streamed in batches (a ``save_to_disk`` folder is
memory-mapped Arrow, parquet is read one record batch at a time, JSON lines one line at a time), so the corpus is never
read whole.  A column of token ids (``input_ids``) is taken as is: the dataset is already tokenised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrpredict import bounded_read
from lrpredict.errors import LrpredictError

BATCH_ROWS = 1000
IDS_COLUMN = "input_ids"
# Names of a document separator in common tokenizers (GPT-2, Llama/Mistral, Gemma, Llama 3): appended after each
# document, as nanoGPT's prepare.py appends GPT-2's <|endoftext|>.
EOS_NAMES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")
PROGRESS_EVERY = 10_000_000
HELD_OUT_SPLITS = ("validation", "valid", "val", "test")
HF_DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class Tokenizer:
    """A local Hugging Face ``tokenizers`` tokenizer (a tokenizer.json, or a folder holding one)."""

    path: Path
    encode_batch: Callable[[list[str]], list[list[int]]]
    vocab_size: int
    eos_id: int | None
    digest: str


def load_tokenizer(path: Path) -> Tokenizer:
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise LrpredictError("tokenizer", str(path), "a tokenizer.json file, or a folder holding one (save_pretrained)")
    try:
        from tokenizers import Tokenizer as HFTokenizer  # optional: only for text data
    except ImportError:
        raise LrpredictError(
            "tokenizer", str(path), "needs the `tokenizers` package: pip install 'lrpredict[data]'"
        ) from None
    try:
        tok = HFTokenizer.from_file(str(file))
    except Exception as exc:  # the tokenizers library raises a bare Exception on a malformed file
        raise LrpredictError("tokenizer", str(file), f"a Hugging Face tokenizer.json ({exc})") from None
    eos = next((i for i in map(tok.token_to_id, EOS_NAMES) if i is not None), None)

    def encode_batch(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]

    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    return Tokenizer(file, encode_batch, tok.get_vocab_size(with_added_tokens=True), eos, digest)


def text_format(path: Path) -> str | None:
    """'hf-disk', 'parquet' or 'jsonl' for a dataset folder or shard, else None (a token or plain-text file)."""
    if path.is_dir():
        if any((path / m).is_file() for m in HF_DISK_MARKERS):
            return "hf-disk"
        if any(path.glob("*.parquet")):
            return "parquet"
        if any(f.suffix in JSON_SUFFIXES for f in path.iterdir()):
            return "jsonl"
        raise LrpredictError("data", str(path), "a folder from datasets' save_to_disk, or of .parquet or .jsonl shards")
    if path.suffix == ".parquet":
        return "parquet"
    if path.suffix in JSON_SUFFIXES:
        return "jsonl"
    return None


def _shards(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(f for f in path.iterdir() if f.suffix in suffixes) if path.is_dir() else [path]


def iter_columns(path: Path, fmt: str, column: str, split: str | None = None) -> Iterator[tuple[str, list]]:
    """Batches of (column name, values): the text column, or ``input_ids`` when the rows are already tokenised;
    ``split`` picks a split of a saved ``DatasetDict`` (default: ``train``, else its first)."""
    if fmt == "hf-disk":
        yield from _hf_disk(path, column, split)
    elif fmt == "parquet":
        yield from _parquet(path, column)
    else:
        yield from _jsonl(path, column)


def _pick(columns: list[str], column: str, where: str) -> str:
    if column in columns:
        return column
    if IDS_COLUMN in columns:
        return IDS_COLUMN
    raise LrpredictError("text_column", column, f"a column of {where}: {', '.join(columns) or 'none'}")


def held_out_split(path: Path) -> tuple[str | None, str | None]:
    """(train split, held-out split) of a saved ``DatasetDict``: ``train`` (else the first) and the first of
    ``validation``, ``valid``, ``val``, ``test`` that exists; (None, None) for a single ``Dataset``."""
    file = path / "dataset_dict.json"
    if not file.is_file():
        return None, None
    # bounded: a dataset_dict.json of 100k nested '[' recursed in json (issue 23)
    meta = bounded_read.load_json(file, option="data", what="dataset_dict.json")
    splits = meta.get("splits", []) if isinstance(meta, dict) else None
    if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
        raise LrpredictError("data", str(file), 'a dataset_dict.json with "splits": a list of split names')
    train = "train" if "train" in splits else (splits[0] if splits else None)
    return train, next((s for s in HELD_OUT_SPLITS if s in splits and s != train), None)


def _hf_disk(path: Path, column: str, split: str | None) -> Iterator[tuple[str, list]]:
    try:
        import datasets
    except ImportError:
        raise LrpredictError("data", str(path), "needs the `datasets` package: pip install 'lrpredict[data]'") from None
    ds = datasets.load_from_disk(str(path))  # memory-maps the Arrow files
    if isinstance(ds, datasets.DatasetDict):
        ds = ds[split or ("train" if "train" in ds else next(iter(ds)))]
    name = _pick(list(ds.column_names), column, str(path))
    for batch in ds.select_columns([name]).iter(batch_size=BATCH_ROWS):
        yield name, batch[name]


def _parquet(path: Path, column: str) -> Iterator[tuple[str, list]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise LrpredictError("data", str(path), "needs the `pyarrow` package: pip install 'lrpredict[data]'") from None
    import pyarrow as pa

    for shard in _shards(path, (".parquet",)):
        try:  # a corrupt shard is the --data's error, not an ArrowInvalid traceback (issue 23)
            f = pq.ParquetFile(shard)
            name = _pick(f.schema_arrow.names, column, str(shard))
            batches = f.iter_batches(batch_size=BATCH_ROWS, columns=[name])
            for batch in batches:
                yield name, batch.column(0).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            reason = str(exc).splitlines()[0][:100] if str(exc) else exc.__class__.__name__
            raise LrpredictError("data", str(shard), f"a readable parquet file ({reason})") from None


def _jsonl(path: Path, column: str) -> Iterator[tuple[str, list]]:
    for shard in _shards(path, JSON_SUFFIXES):
        name, rows = None, []
        with shard.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LrpredictError(
                        "data", f"{shard}:{line_no}", f"one JSON object per line ({exc.msg})"
                    ) from None
                if not isinstance(record, dict):
                    raise LrpredictError("data", f"{shard}:{line_no}", "one JSON object per line")
                name = name or _pick(list(record), column, f"{shard}:{line_no}")
                if name not in record:
                    raise LrpredictError("text_column", name, f"a key of every line ({shard}:{line_no} lacks it)")
                rows.append(record[name])
                if len(rows) == BATCH_ROWS:
                    yield name, rows
                    rows = []
        if rows:
            yield name, rows


def iter_text_file(path: Path, chunk_bytes: int = 1 << 22) -> Iterator[tuple[str, list]]:
    """A plain text file in ~4 MiB chunks cut after a newline, else after a space (never inside a word or a UTF-8
    character), so tokenising chunk by chunk gives the tokens of the whole text for whitespace-split tokenizers."""
    with path.open("rb") as f:
        rest = b""
        while block := f.read(chunk_bytes):
            block = rest + block
            cut = block.rfind(b"\n") + 1 or block.rfind(b" ") + 1
            block, rest = block[:cut], block[cut:]
            if block:
                yield "text", [block.decode("utf-8", errors="replace")]
        if rest:
            yield "text", [rest.decode("utf-8", errors="replace")]


def write_tokens(
    batches: Iterator[tuple[str, list]],
    out: Path,
    tokenizer: Tokenizer | None,
    *,
    separate: bool = True,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[str, int, bool]:
    """Tokenise (or copy ids of) the batches into the flat token file ``out``, stopping after ``limit`` tokens;
    returns (dtype, token count, whether the limit cut the source short).

    uint32 when the vocabulary needs it (nanoGPT's convention), else uint16.  Written to ``out.part`` and renamed,
    so an interrupted run leaves no half file under the final name.  ``progress`` gets the count every ~10M tokens.
    """
    dtype = np.uint32 if tokenizer is None or tokenizer.vocab_size > 1 << 16 else np.uint16
    part = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    eos = [tokenizer.eos_id] if tokenizer and tokenizer.eos_id is not None and separate else []
    try:
        dtype, count, cut = _write_part(batches, part, tokenizer, dtype, eos, limit, progress)
    except BaseException:  # a failed or interrupted source leaves no 0-byte .part behind (issue 23)
        part.unlink(missing_ok=True)
        raise
    part.replace(out)
    return np.dtype(dtype).name, count, cut


def _write_part(batches, part: Path, tokenizer, dtype, eos: list, limit: int | None, progress) -> tuple:
    """The token file written to ``part`` (its name without .part is the one errors show)."""
    count, reported, cut = 0, 0, False
    with part.open("wb") as f:
        for name, values in batches:
            if name == IDS_COLUMN:
                docs = values
            else:
                if tokenizer is None:
                    raise LrpredictError("tokenizer", None, f"a local tokenizer (--tokenizer PATH) for column {name!r}")
                docs = tokenizer.encode_batch([v if isinstance(v, str) else "" for v in values])
            flat = [t for doc in docs for t in (*doc, *eos)] if eos else [t for doc in docs for t in doc]
            if not flat:
                continue
            arr = np.asarray(flat, dtype=np.int64)
            if arr.min() < 0:
                raise LrpredictError("data", str(part)[:-5], f"token ids ≥ 0 (found {int(arr.min())})")
            if dtype == np.uint16 and arr.max() >= 1 << 16:  # only an ids column can: a tokenizer stays in vocab
                raise LrpredictError(
                    "data", str(part)[:-5], f"ids below the tokenizer's {tokenizer.vocab_size} (found {int(arr.max())})"
                )
            if limit is not None and count + len(arr) > limit:
                cut = True  # a probe samples windows of the prefix; the rest of a 100B-token corpus is not needed
                arr = arr[: limit - count]
            arr.astype(dtype).tofile(f)
            count += len(arr)
            if progress and count - reported >= PROGRESS_EVERY:
                progress(count)
                reported = count
            if cut:
                break
    return dtype, count, cut
