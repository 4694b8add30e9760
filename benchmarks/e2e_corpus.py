"""The end-to-end benchmark's corpus: text and code no one on the project wrote, found on any machine with Python.

Sources, in this order, each a sorted file list (``corpus_files``):

* ``licenses``: ``/usr/share/common-licenses/*`` (Debian's licence texts: English prose), when present;
* ``copyright``: ``/usr/share/doc/*/copyright`` (Debian packages' copyright files: prose), when present;
* ``stdlib``: the ``.py`` files of the running interpreter's standard library (``sysconfig``'s ``stdlib`` path,
  ``site-packages`` left out): code with English docstrings.  Always present, so a bare machine (a GPU node with
  only Python) falls back to it alone; the output records which sources were used;
* ``site-packages`` (the gpu scale only, which needs more tokens): the ``.py`` files of the installed packages
  (``sysconfig``'s ``purelib``: torch, numpy, … as pip installed them).

Documents are files, decoded as UTF-8 (a file that is not is skipped), deduplicated by content (the same GPL text
ships in hundreds of copyright files), then shuffled with a fixed seed so the held-out tail (the last tokens,
calibrate's split) is a mix of every source rather than the last directory in sort order, and cut at ``max_bytes``.
The same interpreter version and Debian image give the same corpus; the sha256 in the output says whether it did.

Tokeniser: a byte-level BPE trained with Hugging Face ``tokenizers`` on the corpus (``<|endoftext|>`` after each
document), tokens written as nanoGPT uint16 ``tokens.bin`` — a format ``lrpredict calibrate --data`` reads as is.
"""

from __future__ import annotations

import hashlib
import json
import random
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

EOS = "<|endoftext|>"
SEPARATOR = "\n" + EOS + "\n"  # between documents in corpus.txt (the tokens get EOS after each document)
SYSTEM_SOURCES = {
    "licenses": (Path("/usr/share/common-licenses"), "*"),
    "copyright": (Path("/usr/share/doc"), "*/copyright"),
}
MAX_FILE_BYTES = 1 << 20  # one huge generated file (unicode tables) would dominate a small corpus
TOKENIZER_TRAIN_BYTES = 8 << 20  # BPE merges settle on a few MB; training on all of it costs minutes on 2 cores


@dataclass(frozen=True)
class Corpus:
    """What was built: paths, sizes and hashes (every field goes into the benchmark's JSON)."""

    text_path: str
    tokens_path: str
    tokenizer_path: str
    sources: list[str]
    files: int
    documents: int
    bytes: int
    sha256: str
    file_list_sha256: str
    tokens: int
    vocab_size: int
    tokenizer_sha256: str

    def as_dict(self) -> dict:
        return asdict(self)


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_files(sources: tuple[str, ...] = ("licenses", "copyright", "stdlib")) -> list[tuple[str, Path]]:
    """(source, file) pairs: each present source's files, sorted; the stdlib without site-packages."""
    out: list[tuple[str, Path]] = []
    for source in sources:
        if source == "stdlib":
            root = stdlib_root()
            found = [p for p in root.rglob("*.py") if "site-packages" not in p.relative_to(root).parts]
        elif source == "site-packages":
            found = list(Path(sysconfig.get_paths()["purelib"]).rglob("*.py"))
        else:
            root, pattern = SYSTEM_SOURCES[source]
            found = list(root.glob(pattern)) if root.is_dir() else []
        out += [(source, p) for p in sorted(found) if p.is_file()]
    return out


def read_documents(files: list[tuple[str, Path]]) -> list[tuple[str, str]]:
    """(source, text) of each UTF-8 file under ``MAX_FILE_BYTES``, each text once (the first in list order)."""
    seen: set[str] = set()
    docs = []
    for source, path in files:
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        digest = hashlib.sha256(raw).hexdigest()
        if not text.strip() or len(raw) > MAX_FILE_BYTES or digest in seen:
            continue
        seen.add(digest)
        docs.append((source, text))
    return docs


def train_tokenizer(docs: list[str], vocab_size: int, path: Path) -> None:
    """A byte-level BPE (GPT-2's pre-tokeniser, every byte in the alphabet: no unknown token) with ``EOS``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sample, total = [], 0
    for doc in docs:  # the shuffled order: a sample of every source
        if total >= TOKENIZER_TRAIN_BYTES:
            break
        sample.append(doc)
        total += len(doc)
    tok.train_from_iterator(sample, trainer)
    tok.save(str(path))


def tokenize(docs: list[str], tokenizer_path: Path) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    eos = tok.token_to_id(EOS)
    parts = []
    for start in range(0, len(docs), 256):
        for enc in tok.encode_batch(docs[start : start + 256]):
            parts.append(np.asarray([*enc.ids, eos], dtype=np.uint16))
    return np.concatenate(parts)


def build_corpus(
    out_dir: Path,
    *,
    max_bytes: int,
    vocab_size: int,
    seed: int = 0,
    sources: tuple[str, ...] = ("licenses", "copyright", "stdlib"),
    files: list[tuple[str, Path]] | None = None,
) -> Corpus:
    """Build (or reuse, when ``corpus.json`` says the same recipe) the corpus, tokenizer and tokens in ``out_dir``.
    ``files``: (source, path) pairs to read instead of ``corpus_files(sources)`` (a slice, for tests)."""
    if vocab_size > 65_536:
        raise ValueError(f"vocab_size={vocab_size}: at most 65,536 (tokens are written as uint16)")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = corpus_files(sources) if files is None else files
    listing = "\n".join(f"{s}:{p}" for s, p in files).encode()
    recipe = {
        "max_bytes": max_bytes,
        "vocab_size": vocab_size,
        "seed": seed,
        "files": hashlib.sha256(listing).hexdigest(),
    }
    meta = out_dir / "corpus.json"
    if meta.is_file():
        cached = json.loads(meta.read_text())
        if cached.get("recipe") == recipe and Path(cached["corpus"]["tokens_path"]).is_file():
            return Corpus(**cached["corpus"])
    docs = read_documents(files)
    random.Random(seed).shuffle(docs)
    kept, used, total = [], [], 0
    for source, doc in docs:
        size = len(doc.encode("utf-8")) + (len(SEPARATOR) if kept else 0)
        if total + size > max_bytes:  # too big for what is left: a later, smaller one may fit
            continue
        kept.append(doc)
        used += [source] if source not in used else []
        total += size
    text_path, tok_path, bin_path = out_dir / "corpus.txt", out_dir / "tokenizer.json", out_dir / "tokens.bin"
    text = SEPARATOR.join(kept).encode("utf-8")
    text_path.write_bytes(text)
    train_tokenizer(kept, vocab_size, tok_path)
    tokens = tokenize(kept, tok_path)
    tokens.tofile(bin_path)
    corpus = Corpus(
        text_path=str(text_path),
        tokens_path=str(bin_path),
        tokenizer_path=str(tok_path),
        sources=used,
        files=len(files),
        documents=len(kept),
        bytes=len(text),
        sha256=hashlib.sha256(text).hexdigest(),
        file_list_sha256=hashlib.sha256(listing).hexdigest(),
        tokens=len(tokens),
        vocab_size=vocab_size,
        tokenizer_sha256=hashlib.sha256(tok_path.read_bytes()).hexdigest(),
    )
    meta.write_text(json.dumps({"recipe": recipe, "corpus": corpus.as_dict()}, indent=1))
    return corpus
