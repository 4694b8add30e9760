import pytest

from lrpredict import ModelConfig
from lrpredict.errors import LrpredictError


def test_model_config_parses_size_strings() -> None:
    config = ModelConfig(arch="moe", params="12B", active_params="1.3B", tokens="500B", batch_tokens="4Mi")
    assert (config.params, config.active_params, config.tokens, config.batch_tokens) == (12e9, 1.3e9, 5e11, 4 * 2**20)
    assert config.n_active == 1.3e9


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(params=-1, tokens=1e9), "params"),
        (dict(params=0, tokens=1e9), "params"),
        (dict(params=float("nan"), tokens=1e9), "params"),
        (dict(params=1e9, tokens=float("inf")), "tokens"),
        (dict(params="7X", tokens=1e9), "params"),
        (dict(arch="moe", params=1e9, active_params=2e9, tokens=1e9), "active_params"),
        (dict(arch="moe", params=1e9, tokens=1e9, n_experts=4, top_k=8), "top_k"),
        (dict(arch="dense", params=1e9, tokens=1e9, n_experts=4), "arch"),
        (dict(arch="mamba", params=1e9, tokens=1e9), "arch"),
        (dict(params=1e9, tokens=1e9, colour="red"), "colour"),
        (dict(params=1e9, tokens=1e9, batch_tokens=-4), "batch_tokens"),
        (dict(params=1e9, tokens=1e9, n_layers=0), "n_layers"),
    ],
)
def test_model_config_rejects_bad_input_in_one_line(kwargs: dict, field: str) -> None:
    with pytest.raises(LrpredictError) as info:
        ModelConfig(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{field}=") and "is not valid" in message and "\n" not in message


def test_model_config_flops_per_token_needs_shape() -> None:
    assert ModelConfig(params=1e9, tokens=1e9).flops_per_token() is None
    m = ModelConfig(params=1e9, tokens=1e9, n_layers=24, d_model=2048, seq_len=4096).flops_per_token()
    assert m == 6e9 + 12 * 24 * 2048 * 4096


def test_suggest_accepts_config_mapping_or_keyword_fields() -> None:
    import lrpredict

    by_config = lrpredict.suggest(ModelConfig(params="1B", tokens="20B"))
    assert lrpredict.suggest({"params": "1B", "tokens": "20B"}).lr == by_config.lr
    assert lrpredict.suggest(params="1B", tokens="20B").lr == by_config.lr
    assert lrpredict.suggest(ModelConfig(params="1B", tokens="20B"), batch_tokens="1M").batch_tokens == 1e6


@pytest.mark.parametrize("bad", [None, 7, "1B", [1, 2]])
def test_suggest_without_a_config_is_one_line_error(bad: object) -> None:
    import lrpredict

    with pytest.raises(LrpredictError, match=r"^config(=| is missing).*suggest\(params='1B', tokens='20B'\)"):
        lrpredict.suggest(bad)


def test_suggestion_str_is_the_cli_summary() -> None:
    import lrpredict
    from lrpredict.render import render_suggestion

    config = ModelConfig(params="1B", tokens="20B")
    s = lrpredict.suggest(config)
    text = str(s)
    assert text == render_suggestion(config, s)
    assert text.startswith("lrpredict suggest — dense, N=1B non-embedding params, D=20B tokens")
    assert "peak LR" in text and "steplaw-2025" in text and "weight decay" in text and "{" not in text
