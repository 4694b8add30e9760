"""Property-based fuzzing (issue 15): any input to the CLI (suggest, show-law, laws, transfer) or the public API ends in
success or in one LrpredictError line with exit status 2 — never a traceback, never a non-finite or non-positive LR,
weight decay or batch.

Bounded for CI: a fixed number of examples per property, derandomized (the same inputs on every run), no deadline.
``LRPREDICT_FUZZ_EXAMPLES`` raises the count for a longer hunt (docs/benchmarks.md, Reliability).
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import timedelta
from importlib import resources
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lrpredict
from lrpredict import registry
from lrpredict.cli import cli
from lrpredict.config import ModelConfig
from lrpredict.errors import LawFileError, LrpredictError
from lrpredict.transfer import transfer

EXAMPLES = int(os.environ.get("LRPREDICT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
LAW_IDS = [
    "steplaw-2025",
    "porian-2024",
    "deepseek-llm-2024",
    "ling-2025",
    "zhou-2026",
    "bjorck-2024",
    "powerlines-2025",
]
HOSTILE_DIR = os.path.join(os.path.dirname(__file__), "data", "hostile_laws")

# --- values ---------------------------------------------------------------------------------------------------------

_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-12, max_value=1e16),
    st.integers(min_value=-(10**20), max_value=10**20),
)
# valid but extreme: sizes over 11 decades, so most examples reach the laws' arithmetic and the output checks
good_size = st.floats(min_value=0.0, max_value=17.0).map(lambda e: 10.0**e)
good_size_text = st.one_of(
    good_size.map(repr),
    st.tuples(st.floats(min_value=1, max_value=999), st.sampled_from(["K", "M", "B", "T", "Ki", "Mi"])).map(
        lambda p: f"{p[0]:.3g}{p[1]}"
    ),
)
good_int_text = st.integers(min_value=1, max_value=65_536).map(str)
good_float_text = st.floats(min_value=-12.0, max_value=1.0).map(lambda e: repr(10.0**e))
hostile_size_text = st.one_of(
    st.sampled_from(["7B", "400M", "20B", "1T", "50M", "4Mi", "128Ki", "1.3e9", "0", "-1", "nan", "inf", "1e-300",
                     "1e400", "7 B", "7BB", "B", "", " ", "0x10", "1_000", "٣", "7b", "1e9\n", "\x1b[31m"]),
    _numbers.map(repr),
    st.text(max_size=12),
)  # fmt: skip
size_text = st.one_of(good_size_text, good_size_text, hostile_size_text)
int_text = st.one_of(
    good_int_text,
    good_int_text,
    st.integers(min_value=-5, max_value=100_000).map(str),
    st.sampled_from(["0", "-1", "1e3", "abc", "", "99999999999999999999999"]),
)
float_text = st.one_of(
    good_float_text, good_float_text, _numbers.map(repr), st.sampled_from(["nan", "-inf", "1e-3", "0", "abc", ""])
)
law_text = st.one_of(
    st.sampled_from(LAW_IDS),
    st.sampled_from(LAW_IDS),
    st.sampled_from([*LAW_IDS, "nope", "", "../x", "x.toml", "/etc/passwd", "a/b", "\x00", "x" * 300]),
    st.sampled_from(sorted(os.listdir(HOSTILE_DIR))).map(lambda name: os.path.join(HOSTILE_DIR, name)),
    st.text(max_size=10),
)

SUGGEST_OPTIONS: dict[str, Any] = {
    "--arch": st.sampled_from(["dense", "moe", "tpu"]),
    "--params": size_text,
    "--active-params": size_text,
    "--tokens": size_text,
    "--layers": int_text,
    "--d-model": int_text,
    "--seq-len": int_text,
    "--batch-tokens": size_text,
    "--n-experts": int_text,
    "--top-k": int_text,
    "--vocab-size": int_text,
    "--schedule": st.sampled_from(["wsd", "cosine", "constant", "step"]),
    "--law": law_text,
    "--weight-decay-law": law_text,
    "--tolerance": float_text,
    "--reference-lr": float_text,
    "--reference-tokens": size_text,
    "--compare": None,
    "--explain": None,
    "--json": None,
    "--format": st.sampled_from(["text", "json", "hf", "torchtitan", "megatron", "yaml"]),
    "--paradigm": st.sampled_from(["fitting", "transfer"]),
    "--proxy-params": size_text,
    "--proxy-tokens": size_text,
    "--proxy-d-model": int_text,
    "--proxy-layers": int_text,
    "--proxy-lr": float_text,
}
TRANSFER_OPTIONS: dict[str, Any] = {
    "--proxy-params": size_text,
    "--proxy-tokens": size_text,
    "--proxy-layers": int_text,
    "--proxy-d-model": int_text,
    "--proxy-lr": float_text,
    "--proxy-wd": float_text,
    "--proxy-batch-tokens": size_text,
    "--proxy-eps": float_text,
    "--params": size_text,
    "--tokens": size_text,
    "--layers": int_text,
    "--d-model": int_text,
    "--batch-tokens": size_text,
    "--rule": st.sampled_from(["mup", "completep", "depth-mup", "sp"]),
    "--base-width": float_text,
    "--json": None,
}
# a valid run, so that fuzzed options are often the only thing wrong (else most examples stop at --params)
SUGGEST_BASE = {"--params": "400M", "--tokens": "20B"}
TRANSFER_BASE = {
    "--proxy-params": "50M",
    "--proxy-tokens": "1B",
    "--proxy-d-model": "256",
    "--proxy-layers": "8",
    "--proxy-lr": "0.01",
    "--proxy-wd": "0.1",
    "--params": "1B",
    "--tokens": "20B",
    "--d-model": "2048",
    "--layers": "16",
}


@st.composite
def command_line(draw: st.DrawFn, options: dict[str, Any], base: dict[str, str]) -> list[str]:
    chosen = dict(base) if draw(st.integers(0, 3)) else {}  # mostly a valid run with a few options fuzzed
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4, unique=True)):
        strategy = options[name]
        chosen[name] = None if strategy is None else draw(strategy)
    args: list[str] = []
    for name, value in chosen.items():
        args += [name] if value is None else [name, value]
    return args


def cli_lines() -> st.SearchStrategy[list[str]]:
    ids = st.one_of(st.sampled_from(LAW_IDS), law_text)
    urls = st.builds(
        lambda scheme, host, path: f"{scheme}{host}{path}",
        st.sampled_from(["http://", "https://", "ftp://", "file://", "", "http:/"]),
        # loopback or malformed only: nothing leaves this machine (port 9 is discard: nothing listens)
        st.sampled_from(["127.0.0.1:9", "[::1", "[::1]:9", "", "127.0.0.1:99999", "127.0.0.1:x", "[zz]"]),
        st.text(max_size=8).map(lambda t: "/" + t),
    )
    return st.one_of(
        command_line(SUGGEST_OPTIONS, SUGGEST_BASE).map(lambda a: ["suggest", *a]),
        command_line(TRANSFER_OPTIONS, TRANSFER_BASE).map(lambda a: ["transfer", *a]),
        st.lists(ids, max_size=2).map(lambda a: ["show-law", *a]),
        st.tuples(ids, st.sampled_from(["--json", "-h", "--bogus"])).map(lambda a: ["show-law", *a]),
        st.sampled_from([["laws", "list"], ["laws", "list", "--json"], ["laws"], ["laws", "nope"]]),
        ids.map(lambda i: ["laws", "remove", i]),
        st.tuples(ids, st.sampled_from(["out", "sub/out.toml", "", "."])).map(lambda a: ["laws", "export", *a]),
        st.tuples(urls, st.sampled_from([[], ["--sha256", "abc"], ["--name", "../x"], ["--name", "ok"]])).map(
            lambda a: ["laws", "pull", a[0], *a[1]]
        ),
    )


# --- properties ----------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])(-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|nan|inf|NaN|Infinity))(?![\w.])")


def assert_clean(result: Any, args: list[str]) -> None:
    """Success, or one ``Error:`` line with exit 2; never a traceback."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args!r} raised {result.exception!r}") from result.exception
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    assert "Traceback" not in result.output, (args, result.output)
    if result.exit_code == 2 and args == ["laws"]:  # a group alone shows its help (click's no_args_is_help)
        assert result.stderr.startswith("Usage: "), result.stderr
    elif result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, result.stderr)
    else:
        for line in result.stderr.strip().splitlines():
            assert line.startswith(("warning:", "note:")), (args, result.stderr)
        assert not re.search(r"\b(nan|NaN|inf|Infinity)\b", result.stdout), (args, result.stdout)


def assert_sane_suggestion(data: dict[str, Any], where: Any) -> None:
    for key in ("lr", "lr_at_optimal_batch", "weight_decay", "batch_tokens", "optimal_batch_tokens"):
        value = data[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (where, key, value)
    for key in ("low", "high"):
        assert math.isfinite(data["lr_range"][key]) and data["lr_range"][key] > 0, (where, data["lr_range"])
    for group, value in data["weight_decay_groups"].items():
        assert math.isfinite(value) and value >= 0, (where, group, value)


@FUZZ
@given(args=cli_lines())
def test_fuzz_cli_ends_in_success_or_one_error_line(args: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz"))  # `laws export` writes relative paths: keep them out of the tree
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        os.chdir(here)
    assert_clean(result, args)
    event(f"{' '.join(args[:2] if args[0] == 'laws' else args[:1])}: exit {result.exit_code}")
    if result.exit_code == 0 and args[0] == "suggest" and ("--json" in args or "json" in args):
        payload = json.loads(result.stdout)
        rows = payload if isinstance(payload, list) else [payload.get("fitting", payload)]
        for row in rows:
            if "error" not in row:
                assert_sane_suggestion(row, args)


config_values = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    size_text,
    st.sampled_from([[], {}, b"7B", object()]),
)


# a plausible run at any scale (10^5–10^15 parameters, up to 10^17 tokens), with the shape fields compute laws need
@st.composite
def good_config(draw: st.DrawFn) -> dict[str, Any]:
    params = 10.0 ** draw(st.floats(5.0, 15.0))
    config: dict[str, Any] = {"params": params, "tokens": 10.0 ** draw(st.floats(6.0, 17.0))}
    if draw(st.booleans()):
        config["arch"] = "moe"
        config["active_params"] = max(1e5, params * draw(st.floats(0.01, 1.0)))
    if draw(st.booleans()):
        config.update(n_layers=draw(st.integers(1, 256)), d_model=draw(st.integers(64, 65_536)))
        config["seq_len"] = draw(st.integers(1, 1_048_576))
    if draw(st.booleans()):
        config["batch_tokens"] = config["tokens"] * 10.0 ** draw(st.floats(-9.0, 0.0))
    if draw(st.booleans()):
        config["schedule"] = draw(st.sampled_from(["wsd", "cosine", "constant"]))
    return config


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "params",
                "tokens",
                "active_params",
                "batch_tokens",
                "n_layers",
                "d_model",
                "seq_len",
                "arch",
                "top_k",
                "n_experts",
                "schedule",
                "vocab_size",
                "bogus",
            ]
        ),
        st.one_of(config_values, st.sampled_from(["dense", "moe", "cosine", "wsd"])),
        max_size=6,
    ),
    good=st.one_of(good_config(), good_config(), good_config(), st.none()),
    law=st.one_of(st.none(), st.sampled_from(LAW_IDS), law_text),
    wd_law=st.one_of(st.none(), st.none(), law_text),
    tolerance=st.one_of(st.just(0.0025), st.floats(1e-6, 0.5), st.just(0.01), st.just(0.05), _numbers, st.none()),
    # a reference only with a relative law; mostly none, so most examples use an absolute law
    reference=st.one_of(
        st.none(), st.none(), st.none(), st.tuples(good_size, good_size), st.tuples(_numbers, _numbers)
    ),
)
def test_fuzz_api_suggest_returns_sane_numbers_or_lrpredict_error(
    fields: dict[str, Any], good: dict[str, Any] | None, law: Any, wd_law: Any, tolerance: Any, reference: Any
) -> None:
    if good is not None:  # mostly a plausible run; the hostile fields then only sometimes override it
        fields = good if len(fields) > 2 else {**good, **fields}
    kwargs: dict[str, Any] = {"weight_decay_law": wd_law, "tolerance": tolerance}
    if reference is not None:
        kwargs["reference_lr"], kwargs["reference_tokens"] = reference
    try:
        config = ModelConfig(**fields)
        result = lrpredict.suggest(config, law, **kwargs)
    except LrpredictError as exc:
        assert "\n" not in str(exc), str(exc)
        event("suggest: LrpredictError")
        return
    event("suggest: success")
    assert_sane_suggestion(result.model_dump(mode="json"), (fields, law, kwargs))
    for row_law, row in lrpredict.compare(config):
        if not isinstance(row, LrpredictError):
            assert_sane_suggestion(row.model_dump(mode="json"), row_law.id)


@FUZZ
@given(
    proxy=st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {}, optional={"params": good_size, "tokens": good_size, "d_model": st.integers(1, 65_536)}
        ),
        st.dictionaries(st.sampled_from(["params", "tokens", "d_model", "n_layers"]), config_values, max_size=4),
    ),
    hparams=st.one_of(
        st.fixed_dictionaries(  # tuned values at any scale: most examples reach the plan's arithmetic
            {"lr": st.floats(-8.0, 2.0).map(lambda e: 10.0**e)},
            optional={
                "weight_decay": st.floats(0, 10),
                "adam_eps": st.floats(1e-30, 1),
                "init_std": st.floats(1e-6, 10),
            },
        ),
        st.none(),
        st.dictionaries(st.sampled_from(["lr", "weight_decay", "adam_eps", "init_std", "bogus"]), config_values),
    ),
    rule=st.sampled_from(["mup", "completep", "depth-mup", "sp", None]),
    base_width=st.one_of(st.none(), _numbers),
)
def test_fuzz_api_transfer_never_raises_anything_else(proxy: dict, hparams: Any, rule: Any, base_width: Any) -> None:
    target = ModelConfig(params="1B", tokens="20B", d_model=2048, n_layers=16)
    try:
        proxy_config = ModelConfig(**{"params": "50M", "tokens": "1B", "d_model": 256, "n_layers": 8, **proxy})
        plan = transfer(proxy_config, hparams, target, rule, base_width=base_width)  # type: ignore[arg-type]
    except LrpredictError as exc:
        assert "\n" not in str(exc), str(exc)
        event("transfer: LrpredictError")
        return
    event("transfer: success")
    for name, group in plan.groups.items():
        assert math.isfinite(group.lr) and group.lr > 0, (name, group)


_BASE_LAW = (resources.files("lrpredict.coefficients") / "porian-2024.toml").read_text(encoding="utf-8")
_LITERAL = re.compile(r"(?<=value = )[-0-9.e]+")


@FUZZ
@given(
    picks=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=3),
    numbers=st.lists(
        st.one_of(
            _numbers.map(lambda x: repr(x).replace("inf", "inf").replace("nan", "nan")),
            st.sampled_from(["nan", "-inf", "1e308", "-0.0", "1e-320", "3.0", "-3.0", "3.0000001"]),
        ),
        min_size=3,
        max_size=3,
    ),
    inserted=st.text(max_size=6),
    where=st.integers(min_value=0, max_value=len(_BASE_LAW)),
)
def test_fuzz_law_files_are_refused_or_give_sane_suggestions(
    picks: list[int], numbers: list[str], inserted: str, where: int
) -> None:
    """Mutate a bundled law (a coefficient, an exponent, a stray insertion): it is refused with a LawFileError, or it
    loads and then every suggestion from it is sane or an LrpredictError."""
    spots = list(_LITERAL.finditer(_BASE_LAW))
    text = _BASE_LAW
    for pick, number in sorted(zip(picks, numbers, strict=False), key=lambda p: -spots[p[0] % len(spots)].start()):
        spot = spots[pick % len(spots)]
        text = text[: spot.start()] + number.replace("inf", "inf") + text[spot.end() :]
    if inserted:
        text = text[:where] + inserted + text[where:]
    try:
        law = registry.parse_law(text, "fuzzed.toml")
    except LawFileError as exc:
        assert "\n" not in str(exc)
        event("law file: refused")
        return
    event("law file: loaded")
    for config in (ModelConfig(params="400M", tokens="20B"), ModelConfig(params="1T", tokens="100T")):
        try:
            result = lrpredict.suggest(config, law)
        except LrpredictError:
            continue
        assert_sane_suggestion(result.model_dump(mode="json"), text)


# --- issue 23: bounds on every number out, bounded reads of every file in --------------------------------------------

# few examples, each bounded in time: these run in CI (a hang past the deadline fails the property)
FUZZ_BOUNDED = settings(FUZZ, max_examples=min(EXAMPLES, 60), deadline=timedelta(seconds=10))
extreme_size_text = st.one_of(
    st.floats(min_value=-320.0, max_value=320.0).map(lambda e: f"{10.0**e if e < 308 else math.inf!r}"),
    st.floats(min_value=0.0, max_value=17.0).map(lambda e: f"{10.0**e:.3g}"),
    hostile_size_text,
)


def _assert_within_bounds(row: dict[str, Any], args: list[str]) -> None:
    from lrpredict.bounds import BOUNDS

    for key, kind in (("lr", "lr"), ("weight_decay", "weight_decay"), ("batch_tokens", "batch_tokens")):
        bound = BOUNDS[kind]
        assert bound.low <= row[key] <= bound.high, (args, key, row[key])


@FUZZ_BOUNDED
@given(params=extreme_size_text, tokens=extreme_size_text, batch=st.one_of(st.none(), extreme_size_text))
def test_fuzz_cli_never_exits_0_with_an_out_of_bounds_number(params: str, tokens: str, batch: str | None) -> None:
    args = ["suggest", "--params", params, "--tokens", tokens, "--json"]
    args += [] if batch is None else ["--batch-tokens", batch]
    result = CliRunner().invoke(cli, args)
    assert_clean(result, args)
    if result.exit_code == 0:
        row = json.loads(result.stdout)
        assert_sane_suggestion(row, args)
        _assert_within_bounds(row, args)
        from lrpredict.units import parse_size

        assert row["batch_tokens"] <= parse_size(tokens), args  # a batch is at most the run


@FUZZ_BOUNDED
@given(lr=float_text, wd=float_text, tokens=extreme_size_text, width=float_text)
def test_fuzz_cli_transfer_never_exits_0_out_of_bounds(lr: str, wd: str, tokens: str, width: str) -> None:
    from lrpredict.bounds import BOUNDS

    base = {**TRANSFER_BASE, "--proxy-lr": lr, "--proxy-wd": wd, "--tokens": tokens, "--base-width": width}
    args = ["transfer", *[part for item in base.items() for part in item], "--json"]
    result = CliRunner().invoke(cli, args)
    assert_clean(result, args)
    if result.exit_code == 0:
        for name, group in json.loads(result.stdout)["groups"].items():
            assert BOUNDS["lr"].low <= group["lr"] <= BOUNDS["lr"].high, (args, name, group["lr"])
            assert group["weight_decay"] <= BOUNDS["weight_decay"].high, (args, name, group["weight_decay"])


file_bodies = st.one_of(
    st.binary(max_size=2048),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "[" * n),
    st.integers(min_value=1, max_value=200_000).map(lambda n: '{"a": ' * n),
    st.text(max_size=400),
    st.sampled_from(['{"hidden_size": "abc"}', "run = 5", "schema_version = 1\nrun = [1, 2]", "{}", "[]", "null"]),
)
FILE_OPTIONS = [
    (["suggest", "--params", "1B", "--tokens", "20B", "--law"], "law.toml"),
    (["suggest", "--params", "1B", "--tokens", "20B", "--weight-decay-law"], "wd.toml"),
    (["suggest", "--tokens", "1T", "--hf-config"], "config.json"),
    (["runs", "--ledger"], "ledger.toml"),
    (["show-law"], "shown.toml"),
    (["calibrate", "--dry-run", "--target-config"], "target.json"),
]


@FUZZ_BOUNDED
@given(body=file_bodies, which=st.sampled_from(FILE_OPTIONS))
def test_fuzz_cli_user_files_end_in_success_or_one_error_line(
    body: bytes | str, which: tuple[list[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    prefix, name = which
    path = tmp_path_factory.mktemp("files") / name
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(body)
    args = [*prefix, str(path)]
    result = CliRunner().invoke(cli, args)
    assert_clean(result, args)
