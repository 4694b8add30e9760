"""Read a Megatron-LM indexed dataset (``PREFIX.bin`` + ``PREFIX.idx``, the "MMIDIDX" format) as one token array.

The ``.idx`` layout, as Megatron-LM's ``megatron/core/datasets/indexed_dataset.py`` (``_IndexWriter``) writes it,
all little-endian: the 9-byte magic ``b"MMIDIDX\\x00\\x00"``, a u64 version (1), a u8 dtype code (``DType``: 1 uint8,
2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16), a u64 sequence count S, a u64 document count,
then S int32 sequence lengths, S int64 byte pointers into ``.bin``, and the int64 document indices.
The ``.bin`` holds the sequences back to back, so the probes read it as one flat memory-mapped token array (windows
across document boundaries, as nanoGPT's loader does): only the index is read, never the tokens.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrpredict.errors import LrpredictError

MAGIC = b"MMIDIDX\x00\x00"
_HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, sequence count, document count: 34 bytes
# Megatron's DType codes; only integer token types can hold token ids.
DTYPE_CODES = {1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float64", 7: "float32", 8: "uint16"}
TOKEN_DTYPES = ("uint16", "int32")  # what Megatron's preprocess_data.py writes (uint16 below 65,500 ids, else int32)


@dataclass(frozen=True)
class MegatronIndex:
    dtype: str
    sequence_lengths: np.ndarray
    sequence_pointers: np.ndarray
    document_indices: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.sequence_lengths.sum(dtype=np.int64))


def is_megatron_prefix(path: Path) -> bool:
    """True when ``path`` (a ``.bin``, ``.idx`` or the bare prefix) has a ``.idx`` beside it that starts with MAGIC."""
    idx = index_path(path)
    if not idx.is_file():
        return False
    with idx.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def index_path(path: Path) -> Path:
    return path.with_suffix(".idx") if path.suffix in (".bin", ".idx") else Path(f"{path}.idx")


def bin_path(path: Path) -> Path:
    return path.with_suffix(".bin") if path.suffix in (".bin", ".idx") else Path(f"{path}.bin")


def read_index(idx: Path) -> MegatronIndex:
    """Parse ``idx``; a wrong magic, version, dtype or a truncated file is a one-line ``LrpredictError``."""
    raw = np.memmap(idx, dtype=np.uint8, mode="r")
    if len(raw) < _HEADER.size:
        raise LrpredictError("data", str(idx), f"a Megatron .idx file (it has {len(raw)} bytes, under the header)")
    magic, version, code, n_seq, n_doc = _HEADER.unpack(bytes(raw[: _HEADER.size]))
    if magic != MAGIC or version != 1:
        raise LrpredictError("data", str(idx), "a Megatron MMIDIDX index, version 1")
    dtype = DTYPE_CODES.get(code)
    if dtype not in TOKEN_DTYPES:
        raise LrpredictError("data", str(idx), f"token dtype uint16 or int32 (dtype code {code}: {dtype})")
    need = _HEADER.size + 4 * n_seq + 8 * n_seq + 8 * n_doc
    if len(raw) < need:
        raise LrpredictError("data", str(idx), f"{need} bytes for {n_seq} sequences (it has {len(raw)}): truncated")
    off = _HEADER.size
    lengths = np.frombuffer(raw, dtype="<i4", count=n_seq, offset=off)
    pointers = np.frombuffer(raw, dtype="<i8", count=n_seq, offset=off + 4 * n_seq)
    docs = np.frombuffer(raw, dtype="<i8", count=n_doc, offset=off + 12 * n_seq)
    if n_seq and lengths.min() < 0:  # a negative length overflowed the memmap's shape (issue 23)
        raise LrpredictError(
            "data", str(idx), f"sequence lengths ≥ 0 (sequence {int(np.argmin(lengths))} has {lengths.min()})"
        )
    return MegatronIndex(dtype, lengths, pointers, docs)


def open_tokens(path: Path) -> tuple[np.ndarray, MegatronIndex]:
    """The ``.bin`` beside ``path`` as one memory-mapped token array, checked against its index."""
    index = read_index(index_path(path))
    data = bin_path(path)
    itemsize = np.dtype(index.dtype).itemsize
    n = index.n_tokens
    if not data.is_file() or data.stat().st_size < n * itemsize:
        size = data.stat().st_size if data.is_file() else 0
        raise LrpredictError(
            "data", str(data), f"{n * itemsize} bytes of {index.dtype} tokens per its .idx (has {size})"
        )
    if len(index.sequence_pointers) and not np.array_equal(
        index.sequence_pointers,
        np.concatenate([[0], np.cumsum(index.sequence_lengths[:-1], dtype=np.int64)]) * itemsize,
    ):
        raise LrpredictError("data", str(data), "sequences stored back to back, as Megatron writes them")
    return np.memmap(data, dtype=index.dtype, mode="r", shape=(n,)), index
