"""The prompt catalog: every phrase the system says, with its text per language.

The catalog is data (`catalog.toml` beside this module) and is validated when
it is loaded, so a missing translation or a misspelt placeholder stops the
build instead of a call. Code refers to a prompt by name only and plays it as
`media(name)`; the sound files are made from the texts by `render.py`.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "SOUND_DIR",
    "Catalog",
    "CatalogError",
    "MissingValue",
    "Prompt",
    "PromptError",
    "UnknownPrompt",
    "UnsupportedLanguage",
    "load_catalog",
    "media",
    "minutes_prompt",
]

#: Folder under each language's sounds folder that holds the rendered prompts.
SOUND_DIR = "etiquette"

_NAME_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LANG_RE = re.compile(r"[a-z]{2,3}(?:_[A-Za-z0-9]+)?")  # Asterisk folder names: en, ru, en_GB
_PLACEHOLDER_RE = re.compile(r"[a-z][a-z0-9_]*")
# A "+" right before a vowel marks the stressed syllable for the TTS voice.
_VOWELS = "аеёиоуыэюяaeiouy"
_STRESS_RE = re.compile(r"\+(?=[" + _VOWELS + _VOWELS.upper() + "])")
_FORMATTER = string.Formatter()


class PromptError(Exception):
    """Base of the errors raised by the catalog."""

    def __str__(self) -> str:  # KeyError subclasses would repr() the message
        return str(self.args[0]) if self.args else ""


class CatalogError(PromptError, ValueError):
    """The catalog file is not valid; the message names the file and the prompt."""


class UnknownPrompt(PromptError, KeyError):
    """A prompt name that the catalog does not define."""

    error_id = "unknown-prompt"


class UnsupportedLanguage(PromptError, KeyError):
    """A language that the catalog has no texts for."""

    error_id = "unsupported-language"


class MissingValue(PromptError, KeyError):
    """A placeholder in a prompt's text with no value to fill it."""

    error_id = "missing-prompt-value"


@dataclass(frozen=True)
class Prompt:
    """One phrase: its name, its text per language, and when it is played."""

    name: str
    texts: Mapping[str, str]
    note: str = ""

    @property
    def placeholders(self) -> frozenset[str]:
        """Names of the `{placeholders}` used in any language."""
        return frozenset(
            field for text in self.texts.values() for field in _placeholders(text)
        )


def media(name: str) -> str:
    """The ARI media URI that plays prompt `name` in the channel's language.

    Asterisk looks for `<sounds>/<lang>/etiquette/<name>.wav`, with `<lang>` from
    the play request's `lang` or else the channel's language.
    """
    if not _NAME_RE.fullmatch(name):
        raise UnknownPrompt(f"{name!r} is not a prompt name (lowercase letters, digits, dashes)")
    return f"sound:{SOUND_DIR}/{name}"


def hours_prompt(count: int, lang: str) -> str:
    """Which of `hour`, `hours-few`, `hours` follows the number `count` (as minutes_prompt)."""
    return {"minute": "hour", "minutes-few": "hours-few", "minutes": "hours"}[
        minutes_prompt(count, lang)]


def spoken_minutes(count: int, lang: str) -> tuple[str, ...]:
    """"N minutes" as media. Russian says 1 and 2 in the feminine before минута (одна, две),
    which ARI's number: cannot, and Asterisk's Russian sounds have no digits/1f or 2f: those
    come from the catalog (count-1f, count-2f)."""
    word = f"sound:etiquette/{minutes_prompt(count, lang)}"
    units, tens = count % 10, count % 100
    if lang.split("_")[0] == "ru" and units in (1, 2) and tens not in (11, 12):
        head = (f"number:{count - units}",) if count > units else ()
        return (*head, f"sound:etiquette/count-{units}f", word)
    return (f"number:{count}", word)


def minutes_prompt(count: int, lang: str) -> str:
    """Which of `minute`, `minutes-few`, `minutes` follows the number `count`.

    Russian has three forms (1, 21 минута; 2-4, 22-24 минуты; 5-20, 25 минут);
    English and the other languages two.
    """
    if lang.split("_")[0] == "ru":
        tens, units = count % 100, count % 10
        if units == 1 and tens != 11:
            return "minute"
        if 2 <= units <= 4 and not 12 <= tens <= 14:
            return "minutes-few"
        return "minutes"
    return "minute" if count == 1 else "minutes"


class Catalog:
    """All prompts, checked: every prompt has a text in every catalog language."""

    def __init__(
        self,
        prompts: Mapping[str, Prompt],
        languages: tuple[str, ...],
        placeholders: frozenset[str] = frozenset(),
    ) -> None:
        self._prompts: Mapping[str, Prompt] = MappingProxyType(dict(prompts))
        self.languages: tuple[str, ...] = languages
        self.placeholders: frozenset[str] = placeholders

    def __contains__(self, name: object) -> bool:
        return name in self._prompts

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self._prompts.values())

    def __len__(self) -> int:
        return len(self._prompts)

    def names(self) -> list[str]:
        """Prompt names in catalog order."""
        return list(self._prompts)

    def get(self, name: str) -> Prompt:
        try:
            return self._prompts[name]
        except KeyError:
            raise UnknownPrompt(
                f"no prompt named {name!r} in the catalog ({len(self)} prompts; "
                f"add it to catalog.toml)"
            ) from None

    def with_names(self, names: Mapping[str, str]) -> "Catalog":
        """This catalog plus the policy's own words (a directory entry's name): one prompt per
        name, the same text in every language."""
        prompts = {p.name: p for p in self}
        for name, text in names.items():
            prompts[name] = Prompt(name, {lang: text for lang in self.languages},
                                   "a name from the policy")
        return Catalog(prompts, self.languages, self.placeholders)

    def media(self, name: str) -> str:
        """`media(name)` for a prompt that the catalog defines."""
        return media(self.get(name).name)

    def text(
        self,
        name: str,
        lang: str,
        values: Mapping[str, str] | None = None,
        *,
        stress_marks: bool = False,
    ) -> str:
        """The text of prompt `name` in `lang`, with its placeholders filled.

        A value is looked up as `<key>.<lang>` first, then `<key>`, so a company
        name can be spelt for the Russian voice (`company.ru`) and kept as is
        elsewhere. `stress_marks` keeps the "+" marks meant for the TTS voice.
        """
        prompt = self.get(name)
        try:
            template = prompt.texts[lang]
        except KeyError:
            raise UnsupportedLanguage(
                f"prompt {name!r} has no {lang!r} text; the catalog languages are "
                f"{', '.join(self.languages)}"
            ) from None
        if not stress_marks:
            template = _STRESS_RE.sub("", template)
        values = values or {}
        filled: dict[str, str] = {}
        for key in _placeholders(template):
            value = values.get(f"{key}.{lang}", values.get(key))
            if value is None:
                raise MissingValue(
                    f"prompt {name!r} ({lang}) needs a value for {{{key}}}: "
                    f"pass {key!r} (or {key + '.' + lang!r}) in the values"
                )
            filled[key] = str(value)
        return template.format_map(filled)


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Load and check a catalog file; by default the packaged `catalog.toml`."""
    if path is None:
        source = resources.files(__package__).joinpath("catalog.toml")
        where = "catalog.toml (packaged)"
        raw = source.read_bytes()
    else:
        where = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise CatalogError(f"{where}: cannot read the prompt catalog: {exc}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{where}: not a valid UTF-8 TOML file: {exc}") from exc
    return _parse(data, where)


# --- parsing and checks ------------------------------------------------------


def _placeholders(text: str) -> list[str]:
    return [field for _, field, _, _ in _FORMATTER.parse(text) if field is not None]


def _parse(data: dict[str, Any], where: str) -> Catalog:
    problems: list[str] = []
    languages = data.pop("languages", None)
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(lang, str) and _LANG_RE.fullmatch(lang) for lang in languages)
        or len(set(languages)) != len(languages)
    ):
        raise CatalogError(
            f"{where}: needs `languages = [...]` at the top: a list of distinct "
            f"Asterisk language codes such as \"en\", \"ru\"; got {languages!r}"
        )
    allowed = data.pop("placeholders", [])
    if not isinstance(allowed, list) or not all(
        isinstance(p, str) and _PLACEHOLDER_RE.fullmatch(p) for p in allowed
    ):
        raise CatalogError(
            f"{where}: `placeholders` must be a list of lowercase names; got {allowed!r}"
        )

    prompts: dict[str, Prompt] = {}
    for name, table in data.items():
        at = f"{where}: [{name}]"
        if not isinstance(table, dict):
            problems.append(
                f"{where}: {name!r} = {table!r} is not a prompt table; the only top-level "
                f"keys are `languages` and `placeholders`"
            )
            continue
        if not _NAME_RE.fullmatch(name):
            problems.append(f"{at}: a prompt name is lowercase letters, digits and single dashes")
        note = table.get("note", "")
        if not isinstance(note, str):
            problems.append(f"{at}: `note` must be a string")
            note = ""
        unknown = sorted(set(table) - set(languages) - {"note"})
        if unknown:
            problems.append(
                f"{at}: unknown keys {', '.join(unknown)}; allowed are note and the catalog "
                f"languages {', '.join(languages)}"
            )
        texts: dict[str, str] = {}
        for lang in languages:
            text = table.get(lang)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{at}: missing its {lang!r} text")
                continue
            problems.extend(_check_text(at, lang, text, frozenset(allowed)))
            texts[lang] = text
        prompts[name] = Prompt(name=name, texts=MappingProxyType(texts), note=note)

    if not prompts:
        problems.append(f"{where}: defines no prompts")
    if problems:
        raise CatalogError("\n".join(problems))
    return Catalog(prompts, tuple(languages), frozenset(allowed))


def _check_text(at: str, lang: str, text: str, allowed: frozenset[str]) -> list[str]:
    try:
        fields = list(_FORMATTER.parse(text))
    except ValueError as exc:
        return [f"{at} {lang}: bad braces in {text!r}: {exc}"]
    problems = []
    for _, field, spec, conversion in fields:
        if field is None:
            continue
        if field not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            problems.append(f"{at} {lang}: unknown placeholder {{{field}}}; known: {known}")
        elif spec or conversion:
            problems.append(f"{at} {lang}: placeholder {{{field}}} takes no format or conversion")
    stray = _STRESS_RE.sub("", text)
    if "+" in stray:
        problems.append(f"{at} {lang}: a '+' is only a stress mark, right before a vowel")
    return problems
