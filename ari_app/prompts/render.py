"""Build-time renderer: the catalog's texts to Asterisk sound files.

`render_catalog` writes `<out_dir>/<lang>/etiquette/<name>.wav`, 8 kHz mono
16-bit PCM, which Asterisk's format_wav plays. Festival speaks (US English HTS
voice, Russian clunits voice); espeak-ng stands in, and the report says so,
when a Festival voice is missing. sox trims the leading and trailing silence,
fades the edges, resamples to 8 kHz and normalises the peak to -3 dBFS, so a
prompt is clearly louder than music on hold.

Reruns are cheap. The manifest `<out_dir>/.etiquette-render.json` records, per
file, a hash of what it was made from (spoken text, voice, RENDERER_VERSION)
and a hash of the file itself. A file is rendered again only when its source
changed. A file whose content the manifest does not know is an administrator's
studio recording put there under the prompt's name: it is never overwritten,
and is reported as `kept_custom`.

Festival facts this module works around (festival 2.5.0, Debian bookworm):
- `text2wave` exits 0 when it fails (unknown voice, a character the voice's
  letter-to-sound rules lack); it leaves no file or an empty one and only says
  so on stderr. Failure is judged from stderr and the output, not the exit code.
- The Russian voice wants UTF-8 (KOI8-R fails); it cannot read guillemets,
  dashes, `#` or `*`, and hyphenated words come out garbled or mis-stressed:
  those are replaced before synthesis. A "+" before a vowel forces the stress.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from array import array
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ari_app.prompts.catalog import SOUND_DIR, Catalog, UnsupportedLanguage, load_catalog

__all__ = [
    "MANIFEST_NAME",
    "RENDERER_VERSION",
    "RenderError",
    "RenderReport",
    "Voice",
    "main",
    "render_catalog",
]

logger = structlog.get_logger()

#: Part of every file's source hash: bump it when the synthesis or the sox chain
#: changes, so that every rendered file is made again.
RENDERER_VERSION = "1"
MANIFEST_NAME = ".etiquette-render.json"

SAMPLE_RATE = 8000
PEAK_DBFS = -3
TOOL_TIMEOUT_S = 120
# The quietest acceptable peak, in 16-bit sample units: anything below is a
# failed synthesis, not a prompt.
MIN_PEAK = 2000

# After synthesis: mono, cut silence at both ends (below -45 dBFS), 30 ms fade
# out and 10 ms fade in, 8 kHz, peak at PEAK_DBFS, then 50 ms of silence before
# and 100 ms after, so prompts played back to back do not run together.
_SOX_EFFECTS = [
    "channels", "1",
    "silence", "1", "0.02", "-45d",
    "reverse", "silence", "1", "0.02", "-45d",
    "fade", "q", "0.03", "reverse",
    "fade", "q", "0.01",
    "rate", "-h", str(SAMPLE_RATE),
    "gain", "-n", str(PEAK_DBFS),
    "pad", "0.05", "0.1",
]  # fmt: skip

# What festival's stderr says when it failed although it exited 0.
_FESTIVAL_FAILURES = ("SIOD ERROR", "no rule matches")


@dataclass(frozen=True)
class Voice:
    """A TTS engine and one of its voices."""

    engine: str  # "festival" or "espeak-ng"
    name: str  # festival: the voice function; espeak-ng: the -v argument
    stress_marks: bool = False  # reads "+" before a vowel as the stressed syllable
    plain_punctuation: bool = False  # needs quotes, dashes and hyphens removed

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


FESTIVAL_VOICES: Mapping[str, Voice] = {
    "en": Voice("festival", "voice_cmu_us_slt_arctic_hts"),
    "ru": Voice("festival", "voice_msu_ru_nsh_clunits", stress_marks=True, plain_punctuation=True),
}
ESPEAK_VOICES: Mapping[str, Voice] = {
    "en": Voice("espeak-ng", "en-us"),
    "ru": Voice("espeak-ng", "ru"),
}


class RenderError(Exception):
    """A prompt could not be rendered; the message names prompt, language and tool."""


@dataclass
class RenderReport:
    """What one `render_catalog` run did. Files are named relative to out_dir."""

    out_dir: Path
    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_custom: list[str] = field(default_factory=list)
    engines: dict[str, str] = field(default_factory=dict)  # lang -> "festival:voice_..."
    fallbacks: dict[str, str] = field(default_factory=dict)  # lang -> why not festival
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"{self.out_dir}: {len(self.rendered)} rendered, {len(self.unchanged)} unchanged, "
            f"{len(self.kept_custom)} kept as custom recordings, in {self.seconds:.1f} s"
        ]
        lines += [f"  {lang}: {engine}" for lang, engine in sorted(self.engines.items())]
        lines += [f"  {lang}: FALLBACK: {why}" for lang, why in sorted(self.fallbacks.items())]
        lines += [f"  kept custom: {rel}" for rel in self.kept_custom]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Job:
    prompt: str
    lang: str
    rel: str
    text: str  # what the voice is given
    voice: Voice
    source: str  # hash of (text, voice, RENDERER_VERSION)


def render_catalog(
    catalog: Catalog,
    out_dir: Path,
    values: Mapping[str, str],
    languages: Sequence[str],
    *,
    jobs: int | None = None,
) -> RenderReport:
    """Render every prompt of `catalog` in `languages` under `out_dir`.

    `values` fill the texts' placeholders (see `Catalog.text`). `jobs` is how
    many prompts are synthesised at once (default: one per CPU).
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    for lang in languages:
        if lang not in catalog.languages:
            raise UnsupportedLanguage(
                f"cannot render {lang!r}: the catalog languages are {', '.join(catalog.languages)}"
            )
    # Fill every text first: a missing value fails before any work is done.
    texts = {
        (lang, name): catalog.text(name, lang, values, stress_marks=True)
        for lang in languages
        for name in catalog.names()
    }
    report = RenderReport(out_dir=out_dir)
    manifest = _Manifest.load(out_dir)
    chooser = _VoiceChooser(report)

    todo: list[_Job] = []
    for (lang, name), text in texts.items():
        rel = f"{lang}/{SOUND_DIR}/{name}.wav"
        path = out_dir / rel
        ours = path.exists() and manifest.owns(rel, _file_hash(path))
        if path.exists() and not ours:
            report.kept_custom.append(rel)
            logger.info("custom prompt kept", prompt=name, lang=lang, file=rel)
            continue
        if ours and manifest.files[rel]["source"] == _source_hash(text, chooser.preferred(lang)):
            report.unchanged.append(rel)
            continue
        voice = chooser.choose(lang)
        source = _source_hash(text, voice)
        if ours and manifest.files[rel]["source"] == source:
            report.unchanged.append(rel)
            continue
        todo.append(_Job(name, lang, rel, text, voice, source))

    for lang in languages:
        report.engines[lang] = chooser.label(lang, manifest)
    if todo:
        _render_jobs(todo, out_dir, manifest, report, jobs)
    report.seconds = time.monotonic() - started
    return report


# --- the work -----------------------------------------------------------------


def _render_jobs(
    todo: list[_Job],
    out_dir: Path,
    manifest: _Manifest,
    report: RenderReport,
    jobs: int | None,
) -> None:
    if shutil.which("sox") is None:
        raise RenderError("sox is not installed (apt-get install sox): it converts prompts to 8 kHz")
    for lang in {job.lang for job in todo}:
        (out_dir / lang / SOUND_DIR).mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="etiquette-render-") as tmp,
        ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool,
    ):
        futures: list[tuple[_Job, Future[Path]]] = [
            (job, pool.submit(_synthesize, job, Path(tmp), out_dir)) for job in todo
        ]
        for job, future in futures:
            try:
                partial = future.result()
            except RenderError as exc:
                failures.append(str(exc))
                continue
            # Record the new hash before the file takes its place, so a crash
            # between the two can never make our own file look custom.
            digest = _file_hash(partial)
            manifest.stage(job, digest)
            os.replace(partial, out_dir / job.rel)
            manifest.commit(job.rel)
            report.rendered.append(job.rel)
            logger.info("prompt rendered", prompt=job.prompt, lang=job.lang, voice=job.voice.id)
    if failures:
        shown = "\n".join(failures[:5])
        more = f"\n... and {len(failures) - 5} more" if len(failures) > 5 else ""
        raise RenderError(f"{len(failures)} prompt(s) failed to render:\n{shown}{more}")


def _synthesize(job: _Job, tmp: Path, out_dir: Path) -> Path:
    """Speak one prompt and convert it; returns the finished file next to its target."""
    stem = f"{job.lang}-{job.prompt}"
    text_file, raw = tmp / f"{stem}.txt", tmp / f"{stem}.raw.wav"
    text_file.write_text(_speakable(job.text, job.voice) + "\n", encoding="utf-8")
    if job.voice.engine == "festival":
        cmd = ["text2wave", "-eval", f"({job.voice.name})", str(text_file), "-o", str(raw)]
    else:
        cmd = ["espeak-ng", "-v", job.voice.name, "-b", "1", "-f", str(text_file), "-w", str(raw)]
    result = _run(job, cmd)
    failed = result.returncode != 0 or not raw.exists() or raw.stat().st_size <= 44
    if job.voice.engine == "festival":
        failed = failed or any(marker in result.stderr for marker in _FESTIVAL_FAILURES)
    if failed:
        raise RenderError(
            f"prompt {job.prompt!r} ({job.lang}): {cmd[0]} with {job.voice.name} failed "
            f"(exit {result.returncode}) on text {job.text!r}: "
            f"{result.stderr.strip() or 'no output file'}"
        )
    target = out_dir / job.rel
    partial = target.with_name(f".{target.name}.partial")
    cmd = ["sox", "-R", str(raw), "-b", "16", "-e", "signed-integer", "-t", "wav", str(partial)]
    result = _run(job, cmd + _SOX_EFFECTS)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RenderError(
            f"prompt {job.prompt!r} ({job.lang}): sox failed (exit {result.returncode}): "
            f"{result.stderr.strip()}"
        )
    problem = _check_wav(partial)
    if problem:
        partial.unlink(missing_ok=True)
        raise RenderError(f"prompt {job.prompt!r} ({job.lang}): {problem} ({job.voice.id})")
    return partial


def _run(job: _Job, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=TOOL_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"prompt {job.prompt!r} ({job.lang}): {cmd[0]} could not run: {exc}") from exc


def _check_wav(path: Path) -> str | None:
    try:
        with wave.open(str(path), "rb") as wav:
            params = wav.getparams()
            frames = wav.readframes(params.nframes)
    except (wave.Error, EOFError, OSError) as exc:
        return f"sox wrote an unreadable WAV: {exc}"
    if (params.nchannels, params.sampwidth, params.framerate) != (1, 2, SAMPLE_RATE):
        return f"sox wrote {params.nchannels} ch, {params.sampwidth * 8} bit, {params.framerate} Hz"
    samples = array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    peak = max((abs(s) for s in samples), default=0)
    if peak < MIN_PEAK:
        return f"the synthesised audio is silent (peak {peak})"
    return None


_QUOTES_RE = re.compile(r"[«»“”„\"]")
_DASH_RE = re.compile(r"\s*[—–]\s*")
_HYPHEN_RE = re.compile(r"(?<=\w)-(?=\w)")
_STRESS_RE = re.compile(r"\+(?=\w)")


def _speakable(text: str, voice: Voice) -> str:
    """The text as `voice` can read it."""
    if not voice.stress_marks:
        text = _STRESS_RE.sub("", text)
    text = text.replace("’", "'")
    if voice.plain_punctuation:
        text = _QUOTES_RE.sub("", text)
        text = _DASH_RE.sub(", ", text)
        text = _HYPHEN_RE.sub(" ", text)
    return " ".join(text.split())


def _source_hash(text: str, voice: Voice) -> str:
    data = json.dumps([RENDERER_VERSION, voice.id, _speakable(text, voice)], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- voices -------------------------------------------------------------------


class _VoiceChooser:
    """Festival's voice for a language if it loads, else espeak-ng; probed once, lazily."""

    def __init__(self, report: RenderReport) -> None:
        self._report = report
        self._chosen: dict[str, Voice] = {}

    @staticmethod
    def preferred(lang: str) -> Voice:
        return FESTIVAL_VOICES.get(lang) or ESPEAK_VOICES.get(lang) or Voice("espeak-ng", lang)

    def choose(self, lang: str) -> Voice:
        if lang not in self._chosen:
            self._chosen[lang] = self._probe(lang)
        return self._chosen[lang]

    def label(self, lang: str, manifest: _Manifest) -> str:
        if lang in self._chosen:
            return self._chosen[lang].id
        used = sorted({e["voice"] for e in manifest.files.values() if e.get("lang") == lang})
        return ", ".join(used) or "none (custom recordings only)"

    def _probe(self, lang: str) -> Voice:
        why_not: list[str] = []
        festival = FESTIVAL_VOICES.get(lang)
        if festival is not None:
            problem = _festival_problem(festival)
            if problem is None:
                return festival
            why_not.append(f"festival voice {festival.name}: {problem}")
        espeak = ESPEAK_VOICES.get(lang) or Voice("espeak-ng", lang)
        problem = _espeak_problem(espeak)
        if problem is not None:
            why_not.append(f"espeak-ng voice {espeak.name}: {problem}")
            raise RenderError(f"no speech engine for {lang!r}: " + "; ".join(why_not))
        if why_not:
            self._report.fallbacks[lang] = f"{'; '.join(why_not)}; using {espeak.id}"
            logger.warning("tts fallback", lang=lang, voice=espeak.id, reason=why_not[0])
        return espeak


def _festival_problem(voice: Voice) -> str | None:
    if shutil.which("text2wave") is None or shutil.which("festival") is None:
        return "festival is not installed"
    try:
        result = subprocess.run(
            ["festival", "-b", f"({voice.name})"],
            capture_output=True, text=True, errors="replace", timeout=TOOL_TIMEOUT_S,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0 or "SIOD ERROR" in result.stderr:
        return result.stderr.strip() or f"festival exited {result.returncode}"
    return None


def _espeak_problem(voice: Voice) -> str | None:
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed"
    try:
        result = subprocess.run(
            ["espeak-ng", "-q", "-v", voice.name, "test"],
            capture_output=True, text=True, errors="replace", timeout=TOOL_TIMEOUT_S,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0:
        return result.stderr.strip() or f"espeak-ng exited {result.returncode}"
    return None


# --- manifest -----------------------------------------------------------------


class _Manifest:
    """`<out_dir>/.etiquette-render.json`: what we rendered, so we know our own files."""

    def __init__(self, path: Path, files: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self.files = files

    @classmethod
    def load(cls, out_dir: Path) -> _Manifest:
        path = out_dir / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            files = data["files"]
            if not isinstance(files, dict):
                raise TypeError("files is not an object")
        except FileNotFoundError:
            files = {}
        except (ValueError, KeyError, TypeError) as exc:
            # Unreadable: know no file, so every existing one is kept as custom.
            logger.warning("render manifest unreadable", path=str(path), error=str(exc))
            files = {}
        return cls(path, files)

    def owns(self, rel: str, digest: str) -> bool:
        """Whether the file at `rel` with content hash `digest` is one we wrote."""
        entry = self.files.get(rel)
        if entry is None:
            return False
        pending = entry.get("pending")
        if pending is not None:  # a run stopped between stage() and commit()
            if digest == pending["sha256"]:
                self.files[rel] = pending
            else:
                del entry["pending"]
            self._save()
        return digest == self.files[rel]["sha256"]

    def stage(self, job: _Job, digest: str) -> None:
        new = {
            "prompt": job.prompt,
            "lang": job.lang,
            "voice": job.voice.id,
            "text": job.text,
            "source": job.source,
            "sha256": digest,
        }
        entry = self.files.get(job.rel)
        if entry is None:
            self.files[job.rel] = {**new, "sha256": "", "pending": new}
        else:
            entry["pending"] = new
        self._save()

    def commit(self, rel: str) -> None:
        self.files[rel] = self.files[rel]["pending"]
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"renderer": RENDERER_VERSION, "files": dict(sorted(self.files.items()))}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


# --- command line -------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ari_app.prompts.render OUT_DIR --value company=Acme [--lang en ...]`."""
    parser = argparse.ArgumentParser(
        prog="python -m ari_app.prompts.render", description="Render the prompt catalog to WAV."
    )
    parser.add_argument("out_dir", type=Path, help="Asterisk sounds folder (gets <lang>/etiquette/)")
    parser.add_argument(
        "--value", action="append", default=[], metavar="KEY=TEXT",
        help="placeholder value, e.g. company=Acme or company.ru=Акме",
    )  # fmt: skip
    parser.add_argument("--lang", action="append", help="language to render (default: all)")
    parser.add_argument("--catalog", type=Path, help="catalog TOML (default: the packaged one)")
    parser.add_argument(
        "--policy", type=Path,
        help="policy file: its company (unless --value company=...) and its directory's names",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, help="prompts synthesised at once (default: CPUs)")
    args = parser.parse_args(argv)
    values = {}
    for item in args.value:
        key, sep, text = item.partition("=")
        if not sep:
            parser.error(f"--value {item!r}: expected KEY=TEXT")
        values[key.strip()] = text
    catalog = load_catalog(args.catalog)
    if args.policy is not None:
        from ari_app.policy import PolicyError, load_policy
        from ari_app.transfer.directory import Directory

        try:
            policy = load_policy(args.policy)
        except PolicyError as exc:
            print(f"render failed: {exc}", file=sys.stderr)
            return 1
        values.setdefault("company", policy.company)
        catalog = catalog.with_names(Directory(policy).rendered_names())
    try:
        report = render_catalog(
            catalog, args.out_dir, values, args.lang or catalog.languages, jobs=args.jobs
        )
    except (RenderError, KeyError) as exc:
        print(f"render failed: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
