from pathlib import Path

import pytest

from ari_app.prompts.catalog import (
    CatalogError,
    MissingValue,
    UnknownPrompt,
    UnsupportedLanguage,
    load_catalog,
    media,
    minutes_prompt,
)

# Named by the spec of the call flows: the catalog must keep all of them.
REQUIRED = [
    "greeting", "recording-notice", "connecting-operator", "all-operators-busy",
    "hold-intro", "hold-reason-lookup", "hold-reason-consult", "hold-reason-system",
    "hold-no-reason", "hold-expected-duration", "minute", "minutes-few", "minutes",
    "checkin-1", "checkin-2", "checkin-3", "hold-resume-thanks", "hold-fallback-menu",
    "callback-own-number", "callback-confirmed", "callback-window-prefix",
    "voicemail-intro", "voicemail-saved", "operator-gone", "operator-nudge-hold",
    "transfer-announce", "transfer-direct-number", "transfer-expect", "transfer-thanks",
    "transfer-menu", "transfer-intro-to-target", "transfer-target-menu",
    "transfer-unavailable", "supervisor-unavailable", "complaint-record", "goodbye",
    "invalid-choice", "press-0-for-operator",
    "callback-enter-number", "callback-number-refused", "callback-voicemail-instead",
    "complaint-record-no-callback", "operator-complaint-recorded-no-callback",
    "operator-logged-in", "operator-logged-out", "operator-paused", "operator-unpaused",
    "operator-still-paused", "operator-not-logged-in", "operator-code-unknown",
    "operator-state-not-saved",
]  # fmt: skip


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_given_packaged_catalog_when_loaded_then_every_prompt_has_en_and_ru() -> None:
    catalog = load_catalog()

    assert {"en", "ru"} <= set(catalog.languages)
    assert set(REQUIRED) <= set(catalog.names())
    for prompt in catalog:
        assert prompt.texts["en"].strip() and prompt.texts["ru"].strip(), prompt.name
        assert any("\u0400" <= ch <= "\u04ff" for ch in prompt.texts["ru"]), prompt.name


def test_given_packaged_catalog_when_greeting_read_then_company_is_filled() -> None:
    catalog = load_catalog()

    assert catalog.text("greeting", "en", {"company": "Acme"}) == "Thank you for calling Acme."
    assert "Acme" in catalog.text("greeting", "ru", {"company": "Acme"})


def test_given_language_specific_value_when_text_then_it_wins_for_that_language() -> None:
    catalog = load_catalog()
    values = {"company": "Acme", "company.ru": "Акме"}

    assert "Акме" in catalog.text("greeting", "ru", values)
    assert "Acme" in catalog.text("greeting", "en", values)


def test_given_connecting_operator_then_it_is_not_a_hold() -> None:
    text = load_catalog().text("connecting-operator", "en")

    assert "stay on the line" in text and "hold" not in text.lower()


def test_given_stress_marks_when_text_then_dropped_unless_asked_for() -> None:
    catalog = load_catalog()

    assert "+" not in catalog.text("recording-notice", "ru")
    assert "з+аписан" in catalog.text("recording-notice", "ru", stress_marks=True)


def test_given_unknown_prompt_when_get_then_unknown_prompt_names_it() -> None:
    catalog = load_catalog()

    with pytest.raises(UnknownPrompt, match="'no-such-prompt'") as caught:
        catalog.get("no-such-prompt")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value).startswith("no prompt named")


def test_given_missing_value_when_text_then_error_names_placeholder() -> None:
    with pytest.raises(MissingValue, match=r"greeting.*\{company\}"):
        load_catalog().text("greeting", "en", {})


def test_given_missing_language_when_text_then_error_lists_languages() -> None:
    with pytest.raises(UnsupportedLanguage, match="'de'.*en, ru"):
        load_catalog().text("greeting", "de", {"company": "Acme"})


def test_given_prompt_name_when_media_then_sound_uri_under_etiquette() -> None:
    assert media("hold-intro") == "sound:etiquette/hold-intro"
    assert load_catalog().media("goodbye") == "sound:etiquette/goodbye"
    with pytest.raises(UnknownPrompt):
        media("Bad Name")
    with pytest.raises(UnknownPrompt):
        load_catalog().media("no-such-prompt")


@pytest.mark.parametrize(
    ("count", "lang", "expected"),
    [
        (1, "en", "minute"), (2, "en", "minutes"), (21, "en", "minutes"),
        (1, "ru", "minute"), (21, "ru", "minute"), (11, "ru", "minutes"),
        (2, "ru", "minutes-few"), (4, "ru", "minutes-few"), (12, "ru", "minutes"),
        (24, "ru", "minutes-few"), (5, "ru", "minutes"), (0, "ru", "minutes"),
    ],
)  # fmt: skip
def test_given_count_when_minutes_prompt_then_grammatical_form(
    count: int, lang: str, expected: str
) -> None:
    assert minutes_prompt(count, lang) == expected


def test_given_prompt_without_ru_when_loaded_then_catalog_error(tmp_path: Path) -> None:
    path = write(tmp_path, 'languages = ["en", "ru"]\n[hello]\nen = "Hello."\n')

    with pytest.raises(CatalogError, match=r"\[hello\]: missing its 'ru' text"):
        load_catalog(path)


def test_given_bad_name_and_unknown_placeholder_when_loaded_then_both_reported(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        'languages = ["en"]\nplaceholders = ["company"]\n'
        '[Bad_Name]\nen = "Hi."\n[ok]\nen = "Call {compnay}."\n',
    )

    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert "[Bad_Name]: a prompt name is lowercase" in str(caught.value)
    assert "unknown placeholder {compnay}; known: company" in str(caught.value)


def test_given_no_languages_when_loaded_then_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="languages"):
        load_catalog(write(tmp_path, '[hello]\nen = "Hello."\n'))


def test_given_stray_plus_when_loaded_then_catalog_error(tmp_path: Path) -> None:
    path = write(tmp_path, 'languages = ["en"]\n[a]\nen = "Press + now."\n')

    with pytest.raises(CatalogError, match="stress mark"):
        load_catalog(path)
