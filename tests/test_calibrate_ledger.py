from pathlib import Path

import pytest

pytest.importorskip("torch")

from lrpredict.architecture import Architecture
from lrpredict.calibrate.executor import failed_result
from lrpredict.calibrate.ledger import Ledger
from lrpredict.calibrate.spec import BranchResult, ProbeResult, ProbeSpec
from lrpredict.errors import LrpredictError

ARCH = Architecture(d_model=32, n_layers=2, d_ffn=64, n_heads=2, vocab_size=256)


def result(lr: float, status: str = "ok") -> ProbeResult:
    spec = ProbeSpec(arch=ARCH, lr=lr, horizons=(10_240,), batch_size=8, seq_len=32, warmup_steps=1)
    if status == "failed":
        return failed_result(spec, "boom")
    return ProbeResult(
        probe_id=spec.probe_id,
        spec=spec,
        status=status,
        branches=(BranchResult(tokens=10_240, steps=40, eval_loss=3.0),),
    )


def test_ledger_appends_one_line_per_result_and_reads_them_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "out")
    assert ledger.records() == [] and ledger.finished_ids() == set()
    a, b = result(1e-3), result(2e-3, "diverged")
    ledger.append(a)
    ledger.append(b)
    assert ledger.path.read_text().count("\n") == 2
    assert ledger.results() == [a, b]
    line = ledger.records()[0]
    assert (line["probe_id"], line["lr"], line["horizons"], line["losses"]) == (a.probe_id, 1e-3, [10_240], [3.0])
    assert ledger.finished_ids() == {a.probe_id, b.probe_id}


def test_ledger_failed_probes_can_be_left_out_of_finished(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ok, bad = result(1e-3), result(4e-3, "failed")
    ledger.append(ok)
    ledger.append(bad)
    assert ledger.finished_ids() == {ok.probe_id, bad.probe_id}
    assert ledger.finished_ids(include_failed=False) == {ok.probe_id}


def test_ledger_tolerates_a_torn_last_line_and_cuts_it_before_appending(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    a, b = result(1e-3), result(2e-3)
    ledger.append(a)
    with ledger.path.open("a") as f:
        f.write(b.model_dump_json()[:57])  # a writer killed mid-line
    assert ledger.results() == [a]
    ledger.append(b)
    assert ledger.results() == [a, b]
    assert ledger.path.read_text().count("\n") == 2


def test_ledger_torn_only_line_is_dropped(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.path.write_text('{"probe_id": "ab')
    assert ledger.records() == []
    ledger.append(result(1e-3))
    assert len(ledger.records()) == 1


def test_ledger_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(result(1e-3))
    with ledger.path.open("a") as f:
        f.write("not json\n")
    ledger.append(result(2e-3))
    with pytest.raises(LrpredictError, match=":2"):
        ledger.records()


@pytest.mark.parametrize("line", ['{"hello": "valid JSON, not a probe"}', "[1, 2]", "42"])
def test_ledger_validate_names_the_line_of_a_non_probe_record(tmp_path: Path, line: str) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(result(1e-3))
    with ledger.path.open("a") as f:
        f.write(line + "\n")
    ledger.append(result(2e-3))
    with pytest.raises(LrpredictError, match=r"probes\.jsonl:2' is not valid: a probe record"):
        ledger.validate()
    with pytest.raises(LrpredictError, match=":2"):
        ledger.finished_ids()


def test_ledger_latest_record_of_a_probe_wins(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    died = failed_result(result(1e-3).spec, "worker process died (exit code -9)")
    ledger.append(died)
    assert ledger.finished_ids() == set()  # a dead worker is not the probe's failure: run it again
    ledger.append(result(1e-3))
    assert ledger.latest()[died.probe_id].status == "ok" and ledger.finished_ids() == {died.probe_id}
