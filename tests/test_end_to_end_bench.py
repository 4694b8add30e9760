"""benchmarks/end_to_end.py: the corpus builder, the target's shape and the scoring (the full run is a benchmark)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.e2e_corpus import EOS, build_corpus, corpus_files
from benchmarks.e2e_score import next_lrs, score, target_optimum
from benchmarks.end_to_end import Times, target_shape
from lrpredict.calibrate.planner import law_n
from lrpredict.calibrate.token_sources import prepare_data

OPT, CURV, FLOOR = 1e-3, 0.05, 3.0
SLICE = corpus_files(("stdlib",))[:60]  # a tiny slice of the real sources: the builder, not the corpus, is tested
GRID = [OPT * math.sqrt(2) ** k for k in range(-3, 4)]


def _bowl(lrs: list[float]) -> list[float | None]:
    return [FLOOR + CURV * math.log(lr / OPT) ** 2 for lr in lrs]


def test_end_to_end_corpus_is_reproducible_and_calibrate_reads_it(tmp_path: Path) -> None:
    first = build_corpus(tmp_path / "a", max_bytes=150_000, vocab_size=320, files=SLICE)
    second = build_corpus(tmp_path / "b", max_bytes=150_000, vocab_size=320, files=SLICE)
    text = Path(first.text_path).read_bytes()
    assert first.sha256 == hashlib.sha256(text).hexdigest() == second.sha256
    assert first.tokenizer_sha256 == second.tokenizer_sha256
    assert first.sources == ["stdlib"] and first.bytes == len(text) <= 150_000
    tokens = np.fromfile(first.tokens_path, dtype=np.uint16)
    assert len(tokens) == first.tokens and tokens.max() < 320
    assert text.count(EOS.encode()) == first.documents - 1
    prepared = prepare_data(Path(first.tokens_path), tmp_path / "data")  # what `calibrate --data` does with it
    assert prepared.n_tokens == first.tokens and prepared.spec.kind == "bin"


def test_end_to_end_corpus_seed_gives_another_corpus(tmp_path: Path) -> None:
    """--corpus-seed (a blind rerun): another shuffle picks and orders other documents, so other text and tokens;
    the same seed in another folder rebuilds the same corpus."""
    zero = build_corpus(tmp_path / "0", max_bytes=60_000, vocab_size=300, files=SLICE)
    one = build_corpus(tmp_path / "1", max_bytes=60_000, vocab_size=300, files=SLICE, seed=1)
    again = build_corpus(tmp_path / "1b", max_bytes=60_000, vocab_size=300, files=SLICE, seed=1)
    assert one.sha256 != zero.sha256
    assert one.sha256 == again.sha256 and one.tokenizer_sha256 == again.tokenizer_sha256
    # a reused folder does not hand back another seed's corpus
    assert build_corpus(tmp_path / "0", max_bytes=60_000, vocab_size=300, files=SLICE, seed=1).sha256 == one.sha256


def test_end_to_end_corpus_reuses_a_finished_build(tmp_path: Path) -> None:
    first = build_corpus(tmp_path, max_bytes=60_000, vocab_size=300, files=SLICE)
    Path(first.text_path).write_text("changed")  # a reuse reads corpus.json, not the text
    assert build_corpus(tmp_path, max_bytes=60_000, vocab_size=300, files=SLICE) == first


def test_end_to_end_target_shape_is_the_smallest_above_the_bound() -> None:
    shape = target_shape(8 * 97_600, 4096)
    assert law_n(shape) >= 8 * 97_600
    assert (shape.d_model, shape.n_layers) == (128, 4)


def test_end_to_end_score_recovers_the_bowl() -> None:
    losses = _bowl(GRID)
    fit = target_optimum(GRID, losses)
    assert fit is not None and fit.lr_opt == pytest.approx(OPT, rel=1e-6)
    s = score("x", 2 * OPT, (5e-4, 4e-3), fit, GRID, losses)
    assert s.ln_error == pytest.approx(math.log(2))
    assert s.regret_parabola == pytest.approx(CURV * math.log(2) ** 2)
    assert s.regret_measured == pytest.approx(s.regret_parabola, rel=1e-6)  # 2·OPT is a grid point
    assert s.inside is True and not s.outside_grid
    assert score("x", 2 * OPT, (2e-3, 4e-3), fit, GRID, losses).inside is False


def test_end_to_end_score_outside_the_grid_has_no_measured_regret() -> None:
    losses = _bowl(GRID)
    fit = target_optimum(GRID, losses)
    s = score("far", 100 * OPT, None, fit, GRID, losses)
    assert s.outside_grid and s.regret_measured is None and s.inside is None
    assert s.nearest_lr == pytest.approx(GRID[-1])
    assert s.regret_nearest == pytest.approx(max(losses) - FLOOR)


def test_end_to_end_grid_grows_toward_falling_loss_and_stops_at_divergence() -> None:
    low = [OPT * 4 * math.sqrt(2) ** k for k in range(5)]  # optimum below the grid
    assert next_lrs(low, _bowl(low), math.sqrt(2)) == pytest.approx([low[0] / math.sqrt(2), low[0] / 2])
    high = [OPT / 8 * math.sqrt(2) ** k for k in range(5)]
    assert next_lrs(high, _bowl(high), math.sqrt(2))[0] > max(high)
    assert next_lrs(high, [*_bowl(high)[:-1], None], math.sqrt(2)) == []  # the top LR diverged
    assert next_lrs(GRID, _bowl(GRID), math.sqrt(2)) == []


def test_end_to_end_times_keep_a_finished_part_across_reruns(tmp_path: Path) -> None:
    Times(tmp_path / "times.json").add("target sweep", 120.0)
    rerun = Times(tmp_path / "times.json")
    rerun.add("target sweep", 0.5)  # a rerun finds the part cached: its time is not the part's
    rerun.add("calibrate", 30.0)
    assert Times(tmp_path / "times.json").seconds == {"target sweep": 120.0, "calibrate": 30.0}


def test_end_to_end_cpu_target_is_ten_times_the_given_horizons() -> None:
    from benchmarks.end_to_end import SCALES, hint_target, with_horizons

    cpu = SCALES["cpu"]
    assert cpu.calibrate_args.count("--horizons") == 1  # the CPU scale's longer probes (docs/log.md 2026-12-04)
    _, tokens = hint_target(cpu, "cpu", cpu.vocab)
    assert tokens == 10 * 524_288
    longer = dataclasses.replace(cpu, calibrate_args=with_horizons(cpu.calibrate_args, "1M,2M"))
    assert longer.calibrate_args.count("--horizons") == 1 and hint_target(longer, "cpu", cpu.vocab)[1] == 2e7
