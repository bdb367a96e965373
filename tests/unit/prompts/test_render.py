"""Renders with the real Festival, sox and espeak-ng (the setup script installs them)."""

import shutil
import wave
from array import array
from pathlib import Path

import pytest

from ari_app.prompts import render
from ari_app.prompts.catalog import Catalog, MissingValue, load_catalog
from ari_app.prompts.render import MANIFEST_NAME, RenderError, Voice, render_catalog

VALUES = {"company": "Acme"}
LANGS = ["en", "ru"]
FILES = [
    "en/etiquette/greeting.wav",
    "en/etiquette/goodbye.wav",
    "ru/etiquette/greeting.wav",
    "ru/etiquette/goodbye.wav",
]
CATALOG = """\
languages = ["en", "ru"]
placeholders = ["company"]

[greeting]
en = "Thank you for calling {company}."
ru = "Спасибо, что позвонили в компанию {company}."

[goodbye]
en = "Goodbye."
ru = "До свидания!"
"""


def small_catalog(tmp_path: Path, body: str = CATALOG) -> Catalog:
    path = tmp_path / "catalog.toml"
    path.write_text(body, encoding="utf-8")
    return load_catalog(path)


def read_wav(path: Path) -> tuple[wave._wave_params, int]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        samples = array("h", wav.readframes(params.nframes))
    return params, max(abs(s) for s in samples)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small catalog rendered once; tests copy it before changing anything."""
    base = tmp_path_factory.mktemp("rendered")
    report = render_catalog(small_catalog(base), base / "sounds", VALUES, LANGS)
    assert sorted(report.rendered) == sorted(FILES)
    return base / "sounds"


@pytest.fixture
def sounds(rendered: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "sounds"
    shutil.copytree(rendered, copy)
    return copy


def test_given_small_catalog_when_rendered_then_8khz_mono_16bit_and_audible(
    rendered: Path,
) -> None:
    for rel in FILES:
        params, peak = read_wav(rendered / rel)
        assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000), rel
        assert params.nframes > 8000 * 0.3, rel  # at least 0.3 s of speech
        assert peak > 10_000, rel  # normalised near -3 dBFS, far above silence
    assert (rendered / MANIFEST_NAME).exists()


def test_given_rendered_when_rendered_again_then_nothing_rendered(sounds: Path, tmp_path: Path) -> None:
    report = render_catalog(small_catalog(tmp_path), sounds, VALUES, LANGS)

    assert report.rendered == []
    assert sorted(report.unchanged) == sorted(FILES)
    assert report.kept_custom == []
    assert report.engines == {
        "en": "festival:voice_cmu_us_slt_arctic_hts",
        "ru": "festival:voice_msu_ru_nsh_clunits",
    }


def test_given_changed_text_when_rendered_then_only_that_file_rendered(
    sounds: Path, tmp_path: Path
) -> None:
    before = (sounds / "en/etiquette/goodbye.wav").read_bytes()
    catalog = small_catalog(tmp_path, CATALOG.replace('"Goodbye."', '"Goodbye, and have a nice day."'))

    report = render_catalog(catalog, sounds, VALUES, LANGS)

    assert report.rendered == ["en/etiquette/goodbye.wav"]
    assert len(report.unchanged) == 3
    assert (sounds / "en/etiquette/goodbye.wav").read_bytes() != before


def test_given_changed_value_when_rendered_then_prompts_using_it_rendered(
    sounds: Path, tmp_path: Path
) -> None:
    report = render_catalog(small_catalog(tmp_path), sounds, {"company": "Globex"}, LANGS)

    assert sorted(report.rendered) == ["en/etiquette/greeting.wav", "ru/etiquette/greeting.wav"]


def test_given_custom_recording_in_place_when_rendered_then_kept(sounds: Path, tmp_path: Path) -> None:
    custom = sounds / "ru/etiquette/greeting.wav"
    with wave.open(str(custom), "wb") as wav:  # an admin's studio take
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(array("h", [3000, -3000] * 4000).tobytes())
    studio = custom.read_bytes()
    changed = CATALOG.replace("До свидания!", "Всего доброго, до свидания!")
    catalog = small_catalog(tmp_path, changed.replace("Спасибо, что", "Благодарим, что"))

    report = render_catalog(catalog, sounds, VALUES, LANGS)

    assert report.kept_custom == ["ru/etiquette/greeting.wav"]
    assert report.rendered == ["ru/etiquette/goodbye.wav"]
    assert custom.read_bytes() == studio


def test_given_file_unknown_to_manifest_when_rendered_then_kept(sounds: Path, tmp_path: Path) -> None:
    (sounds / MANIFEST_NAME).unlink()

    report = render_catalog(small_catalog(tmp_path), sounds, VALUES, ["en"])

    assert sorted(report.kept_custom) == ["en/etiquette/goodbye.wav", "en/etiquette/greeting.wav"]
    assert report.rendered == []


def test_given_missing_value_when_rendered_then_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(MissingValue, match="company"):
        render_catalog(small_catalog(tmp_path), tmp_path / "out", {}, LANGS)
    assert not (tmp_path / "out").exists()


def test_given_text_the_russian_voice_cannot_read_when_rendered_then_error_names_it(
    tmp_path: Path,
) -> None:
    # text2wave exits 0 here: the failure is only on its stderr.
    catalog = small_catalog(tmp_path, CATALOG.replace("До свидания!", "Нажмите *."))

    with pytest.raises(RenderError) as caught:
        render_catalog(catalog, tmp_path / "out", VALUES, ["ru"])
    message = str(caught.value)
    assert "'goodbye' (ru)" in message and "text2wave" in message
    assert "no rule matches" in message
    assert (tmp_path / "out/ru/etiquette/greeting.wav").exists()  # the rest was rendered


def test_given_festival_voice_missing_when_rendered_then_espeak_fallback_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(render.FESTIVAL_VOICES, "en", Voice("festival", "voice_not_installed"))

    report = render_catalog(small_catalog(tmp_path), tmp_path / "out", VALUES, ["en"])

    assert report.engines == {"en": "espeak-ng:en-us"}
    assert "voice_not_installed" in report.fallbacks["en"]
    assert len(report.rendered) == 2
    params, peak = read_wav(tmp_path / "out/en/etiquette/greeting.wav")
    assert params.framerate == 8000 and peak > 10_000
