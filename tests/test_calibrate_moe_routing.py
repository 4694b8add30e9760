"""MoE probes route like the target (--experts/--top-k or the target config), and a calibrated MoE law says when a
run activates a very different share of its parameters than its probes did."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner

pytest.importorskip("scipy")

from lrpredict.calibrate.fit import Observation, fit_calibration
from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated
from lrpredict.calibrate.planner import make_plan
from lrpredict.calibrate.run import save_plan
from lrpredict.cli import cli
from lrpredict.config import ModelConfig
from lrpredict.suggest import suggest

DEEPSEEK_V2 = {"params": "236B", "active_params": "21B", "tokens": "8.1T", "experts": 160, "top_k": 6}


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_calibrate_moe_routing_options_shape_every_probe() -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--arch", "moe", "--dry-run", "--experts", "16", "--top-k", "1"])
    assert result.exit_code == 0, result.output
    shapes = [line for line in result.output.splitlines() if line.lstrip().startswith("d_model=")]  # the probe sizes
    assert shapes and all("16 experts, top-1" in line for line in shapes)


def test_calibrate_moe_routing_comes_from_the_target_config(tmp_path: Path) -> None:
    path = tmp_path / "deepseek-v2.json"
    path.write_text(json.dumps(DEEPSEEK_V2))
    args = ["calibrate", "--arch", "moe", "--dry-run", "--sizes", "32", "--target-config", str(path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "160 experts, top-6" in result.output
    assert "route like it" not in result.output  # the probes activate about what the target does
    both = CliRunner().invoke(cli, [*args, "--top-k", "2"])  # an option wins over the file
    assert both.exit_code == 0 and "160 experts, top-2" in both.output, both.output


def test_calibrate_moe_target_that_routes_otherwise_gets_a_note(tmp_path: Path) -> None:
    path = tmp_path / "target.json"
    path.write_text(json.dumps({k: v for k, v in DEEPSEEK_V2.items() if k not in ("experts", "top_k")}))
    result = CliRunner().invoke(cli, ["calibrate", "--arch", "moe", "--dry-run", "--target-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "the target 8.9%: give --experts/--top-k" in result.output


@pytest.mark.parametrize(
    ("args", "config", "expected"),
    [
        (["--arch", "dense", "--experts", "16"], None, "--experts=16 is not valid: used only with --arch moe"),
        (["--arch", "dense", "--top-k", "1"], None, "--top-k=1 is not valid: used only with --arch moe"),
        (["--arch", "moe", "--experts", "8", "--top-k", "8"], None, "--top-k=8 is not valid: 1 to 7 experts"),
        (["--arch", "moe", "--experts", "0"], None, "--experts=0 is not valid: 2 to 512"),
        (["--arch", "moe", "--experts", "100000"], None, "--experts=100000 is not valid: 2 to 512"),
        (["--arch", "moe", "--top-k", "0"], None, "--top-k=0 is not valid"),
        (["--arch", "moe"], {**DEEPSEEK_V2, "experts": "x"}, "target_config.experts='x' is not valid"),
        (["--arch", "moe"], {**DEEPSEEK_V2, "top_k": True}, "target_config.top_k=True is not valid"),
        (["--arch", "moe"], {**DEEPSEEK_V2, "top_k": 160}, "target_config.top_k=160 is not valid: 1 to 159"),
        (["--arch", "moe"], {"experts": 160}, "the target's params and tokens with its experts"),
        (["--replay", "x.csv", "--experts", "4"], None, "--experts=4 is not valid: not used with --replay"),
    ],
)
def test_calibrate_moe_routing_bad_input_is_one_line(tmp_path: Path, args, config, expected) -> None:
    extra = []
    if config is not None:
        path = tmp_path / "target.json"
        path.write_text(json.dumps(config))
        extra = ["--target-config", str(path)]
    dry = [] if "--replay" in args else ["--dry-run"]
    assert expected in _one_line_error(["calibrate", *dry, *args, *extra])


def test_calibrate_resume_refuses_other_routing(tmp_path: Path) -> None:
    save_plan(make_plan(name="moe-plan", arch="moe", device="cpu", widths=[32], lrs=3), tmp_path)
    line = _one_line_error(["calibrate", "--resume", str(tmp_path), "--experts", "4"])
    assert "--experts=4 is not valid: not given with --resume" in line


def _moe_law(name: str, active_fraction: float):
    obs = []
    for n in (2e7, 4e7):
        for d in (2e8, 8e8):
            mu = math.log(0.3 * n**-0.3 * d**-0.05)
            for k in range(5):
                x = mu + (k - 2) * math.log(2.0)
                obs.append(Observation(n, d, math.exp(x), 3.0 * (1 + 0.01 * (x - mu) ** 2), 262144.0))
    fit = fit_calibration(obs, prior="default", arch="moe", bootstrap=0)
    routing = {"experts": 8, "top_k": 2, "active_fraction": active_fraction}
    text = calibrated_law(
        fit, name=name, arch="moe", schedule={"kind": "wsd", "description": "t"}, provenance={"moe_routing": routing}
    )
    return install_calibrated(text, name)


def test_suggest_warns_when_the_run_activates_another_share_than_the_probes() -> None:
    law = _moe_law("moe-cal", 0.34)
    far = suggest(ModelConfig(arch="moe", params=236e9, active_params=21e9, tokens=8e12), law)
    assert any("probes activated 34.0%" in w and "this run 8.9%" in w for w in far.warnings), far.warnings
    near = suggest(ModelConfig(arch="moe", params=60e9, active_params=20e9, tokens=8e12), law)
    assert not any("probes activated" in w for w in near.warnings)
    assert math.isfinite(far.lr) and far.lr > 0


@pytest.mark.slow
def test_calibrate_moe_torch_run_records_the_probes_routing(tmp_path: Path) -> None:
    """A real (tiny) MoE calibration on CPU: the law file records how its probes routed."""
    home = tmp_path / "home"
    out = tmp_path / "cal"
    cmd = [sys.executable, "-m", "lrpredict", "calibrate", "--arch", "moe", "--name", "moe-route"]
    cmd += ["--sizes", "32", "--lrs", "3", "--experts", "4", "--top-k", "1", "--workers", "2", "--out", str(out)]
    done = subprocess.run(
        cmd, env={**os.environ, "LRPREDICT_HOME": str(home)}, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    law = tomllib.loads(next(home.rglob("moe-route.toml")).read_text())
    routing = law["provenance"]["moe_routing"]
    assert routing["experts"] == 4 and routing["top_k"] == 1
    assert 0 < routing["active_fraction"] < 1


HF_CONFIGS = Path(__file__).parent / "data" / "hf_configs"


def test_read_target_from_a_published_hf_config_counts_like_suggest() -> None:
    from lrpredict.calibrate.target_plan import read_target

    target = read_target(tokens="14.8T", hf_config=HF_CONFIGS / "deepseek-v3.json")
    config = ModelConfig.from_hf_config(HF_CONFIGS / "deepseek-v3.json", tokens="14.8T")
    assert (target.arch, target.experts, target.top_k) == ("moe", 256, 8)
    assert target.params == config.params and target.active_params == config.active_params
    dense = read_target(tokens="2T", hf_config=HF_CONFIGS / "llama2-7b.json")
    assert dense.arch == "dense" and dense.active_params is None and 6e9 < dense.params < 7e9
    assert read_target(tokens="2T", params="8B", hf_config=HF_CONFIGS / "llama2-7b.json").params == 8e9  # option wins


def test_calibrate_target_hf_config_sets_the_arch_and_the_routing() -> None:
    args = ["calibrate", "--dry-run", "--sizes", "32", "--target-hf-config", str(HF_CONFIGS / "mixtral-8x7b.json")]
    result = CliRunner().invoke(cli, [*args, "--target-tokens", "1T"])
    assert result.exit_code == 0, result.output
    assert "8 experts, top-2" in result.output and "prior: ling-2025" in result.output  # MoE without --arch moe
    line = _one_line_error([*args, "--target-tokens", "1T", "--arch", "dense"])
    assert "--arch='dense' is not valid: moe, the kind of model --target-hf-config describes" in line
    assert "--target-tokens is missing" in _one_line_error(args)


def test_calibrate_target_hf_config_broken_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64}))
    line = _one_line_error(["calibrate", "--dry-run", "--target-hf-config", str(path), "--target-tokens", "1T"])
    assert "target_hf_config.num_hidden_layers is missing" in line
