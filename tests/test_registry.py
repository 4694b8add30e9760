from pathlib import Path

import pytest

import lrpredict
from lrpredict import registry
from lrpredict.errors import LawFileError, LrpredictError
from lrpredict.registry import bundled_laws, load_law, parse_law

BUNDLED = [law.id for law in bundled_laws()]
STEPLAW_TEXT = (Path(__file__).resolve().parents[1] / "coefficients" / "steplaw-2025.toml").read_text()


def test_bundled_laws_include_the_published_ones() -> None:
    assert {"zhou-2026", "steplaw-2025", "deepseek-llm-2024", "ling-2025", "porian-2024", "bjorck-2024"} <= set(BUNDLED)


@pytest.mark.parametrize("law_id", BUNDLED)
def test_bundled_law_is_complete(law_id: str) -> None:
    law = load_law(law_id)
    assert law.citation and law.conventions.n_note and law.schedule.description
    assert law.predictions(), "every bundled law predicts something"
    for pred in law.predictions().values():
        for coefficient in pred.coefficients().values():
            assert coefficient.status in ("confirmed", "secondary", "open")


def test_each_bundled_law_lives_in_a_file_named_by_its_id() -> None:
    """``load_law(id)`` reads ``<id>.toml`` alone (issue 21: ``suggest --law ID`` parses the laws it uses)."""
    folder = Path(__file__).resolve().parents[1] / "coefficients"
    files = sorted(p for p in folder.glob("*.toml") if p.name not in registry.NOT_LAWS)
    assert [parse_law(p.read_text(), p.name).id for p in files] == [p.stem for p in files]


def test_load_law_by_bundled_id_parses_only_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    registry._bundled.cache_clear()
    registry._bundled_file.cache_clear()
    parsed: list[str] = []
    real = registry.parse_law
    monkeypatch.setattr(registry, "parse_law", lambda text, source: parsed.append(source) or real(text, source))
    law = load_law("powerlines-2025")
    assert parsed == ["powerlines-2025.toml"]
    assert law is next(found for found in bundled_laws() if found.id == "powerlines-2025")  # one object, cached
    assert sorted(parsed) == sorted({*parsed})  # every bundled file parsed once, powerlines-2025 not again


def test_zhou_law_never_claims_confirmed_units() -> None:
    law = load_law("zhou-2026")
    assert law.status == "open"
    assert law.lr.scales["N"].status == "open"


def test_steplaw_at_reference_point_gives_published_value() -> None:
    law = load_law("steplaw-2025")
    assert law.lr.evaluate({"N": 1.0, "D": 1.0}) == 1.79
    assert law.lr.evaluate({"N": 1e9, "D": 1e11}) == pytest.approx(1.79 * 1e9**-0.713 * 1e11**0.307)


def test_load_law_accepts_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(STEPLAW_TEXT.replace('id = "steplaw-2025"', 'id = "mine"'))
    assert lrpredict.load_law(str(path)).id == "mine"


def test_load_law_unknown_id_lists_known_ones() -> None:
    with pytest.raises(LrpredictError, match=r"law='nope' is not valid: one of \[.*steplaw-2025"):
        load_law("nope")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda t: "surprise = 1\n" + t, "surprise"),
        (lambda t: t.replace('form = "power_law"', 'form = "cubic_spline"', 1), "lr.form"),
        (lambda t: t.replace("value = 1.79,", "value = 'big',"), "lr.coefficient.value"),
        (lambda t: t.replace('n = "total"', 'n = "some"'), "conventions.n"),
        (lambda t: t.replace("schema_version = 1", "schema_version = [", 1), "toml"),
        (lambda t: t.replace('id = "steplaw-2025"\n', ""), "id"),
    ],
)
def test_parse_law_rejects_corrupt_file_naming_file_and_field(mutate, field: str) -> None:
    with pytest.raises(LawFileError) as info:
        parse_law(mutate(STEPLAW_TEXT), "bad.toml")
    message = str(info.value)
    assert message.startswith(f"bad.toml: {field}=") and "\n" not in message


def test_user_registry_law_is_found_by_id(_user_home: Path) -> None:
    (_user_home / "laws").mkdir(parents=True)
    (_user_home / "laws" / "team-2026.toml").write_text(STEPLAW_TEXT.replace("steplaw-2025", "team-2026"))
    assert "team-2026" in [law.id for law in lrpredict.laws()]
    assert load_law("team-2026").lr.coefficient.value == 1.79
