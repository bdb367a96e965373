"""Music on hold without dead air: a track's quiet head and tail cut off, its long pauses
shortened.

Asterisk plays a music file from its start every time music begins on a channel that had none
(`sort=randstart` picks the file, not a point in it) and goes from one file's end to the next
file's start. Debian's opsound tracks open with up to a second under the level a caller hears
and end with up to 11 s of fade-out and zeros: after "please hold" a caller heard nothing for a
second, and between two tracks for up to 11 s, long enough to think the line dropped. Inside a
track, a quiet passage is dead air too: `macroform-the_simplicity` ends with 16 s of notes
between pauses of up to 1.9 s.

`trim_music` rewrites each 8 kHz mono 16-bit WAV of a folder without its quiet ends (100 ms
windows whose RMS is under `QUIET_RMS`, the level the integration tests call silence), and
with each quiet passage inside cut to its first `MAX_PAUSE_S` (the music's own breath, not a
gap a caller notices). A rerun on trimmed files reads them (about 0.1 s a track) and writes
nothing; a file is replaced atomically (Asterisk may be playing it). Anything else (another
format, a file that is quiet throughout) is left as it is and reported. The sandbox and the
docker image run it on the music they ship; an admin runs it on their own folder
(`ari-etiquette music trim DIR`, or `python3 music.py DIR` where the app is not installed: it
needs the standard library only).
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import sys
import tempfile
import wave
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = ["MAX_PAUSE_S", "QUIET_RMS", "MusicReport", "Trimmed", "trim_music", "trim_track"]

QUIET_RMS = 150       # 16-bit RMS of a window a caller hears as nothing (tests' SILENCE)
WINDOW_S = 0.1        # as the ear and the tests hear it: 100 ms at a time
MAX_PAUSE_S = 0.3     # the longest quiet kept inside a track (the tests' dead air is 0.5 s)


class Trimmed(NamedTuple):
    """Seconds of quiet cut from a track: its start, its end, and its long pauses inside."""
    head: float
    tail: float
    inside: float = 0.0


@dataclass
class MusicReport:
    trimmed: dict[str, Trimmed] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)                 # name -> why

    def summary(self) -> str:
        lines = [f"music: {len(self.trimmed)} trimmed, {len(self.unchanged)} already start and "
                 f"end with sound, {len(self.skipped)} left as they are"]
        lines += [f"  trimmed {name}: {cut.head:.2f} s quiet at the start, {cut.tail:.2f} s at "
                  f"the end" + (f", {cut.inside:.2f} s of long pauses inside" if cut.inside else "")
                  for name, cut in sorted(self.trimmed.items())]
        lines += [f"  left {name}: {why}" for name, why in sorted(self.skipped.items())]
        return "\n".join(lines)


def _rms(samples: array) -> float:
    return math.sqrt(sum(map(operator.mul, samples, samples)) / len(samples)) if samples else 0.0


def _quiet_windows(samples: array, window: int, quiet: float, from_end: bool) -> int:
    """How many frames at one end of the track are quiet, in whole windows."""
    total, count = len(samples), 0
    while count + window <= total:
        at = total - count - window if from_end else count
        if _rms(samples[at:at + window]) >= quiet:
            return count
        count += window
    return total


def _without_long_pauses(samples: array, window: int, quiet: float, keep: int) -> array:
    """`samples` with each run of quiet windows cut to its first `keep` windows."""
    out, run = array("h"), 0
    for at in range(0, len(samples), window):
        chunk = samples[at:at + window]
        run = run + 1 if len(chunk) == window and _rms(chunk) < quiet else 0
        if run <= keep:
            out.extend(chunk)
    return out


def trim_track(path: Path, quiet: float = QUIET_RMS) -> Trimmed | str:
    """Cut `path`'s quiet head and tail and shorten its long pauses, in place: the seconds
    cut, or why it was left alone."""
    try:
        with wave.open(str(path), "rb") as track:
            channels, width, rate, total = (track.getnchannels(), track.getsampwidth(),
                                            track.getframerate(), track.getnframes())
            if (channels, width) != (1, 2):
                return f"not mono 16-bit PCM ({channels} channels, {8 * width}-bit)"
            samples = array("h", track.readframes(total))
            params = track.getparams()
    except (wave.Error, EOFError) as exc:
        return f"not a WAV file Asterisk plays as music ({exc})"
    if sys.byteorder == "big":
        samples.byteswap()
    total = len(samples)  # a truncated file has fewer frames than its header says
    window = max(1, int(rate * WINDOW_S))
    head = _quiet_windows(samples, window, quiet, from_end=False)
    if head >= total:
        return "quiet throughout"
    tail = _quiet_windows(samples, window, quiet, from_end=True)
    kept = _without_long_pauses(samples[head:total - tail], window, quiet,
                                keep=max(1, round(MAX_PAUSE_S / WINDOW_S)))
    inside = total - head - tail - len(kept)
    if head == tail == inside == 0:
        return Trimmed(0.0, 0.0)
    if sys.byteorder == "big":
        kept.byteswap()
    fd, tmp = tempfile.mkstemp(prefix=".trim-", suffix=".wav", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as out:
            out.setparams(params)
            out.writeframes(kept.tobytes())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Trimmed(head / rate, tail / rate, inside / rate)


def trim_music(folder: Path, quiet: float = QUIET_RMS) -> MusicReport:
    """Every `.wav` of a music-on-hold folder made to start and end with sound."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no music folder at {folder}")
    report = MusicReport()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() != ".wav":
            report.skipped[path.name] = "not a .wav file"
            continue
        result = trim_track(path, quiet)
        if isinstance(result, str):
            report.skipped[path.name] = result
        elif not any(result):
            report.unchanged.append(path.name)
        else:
            report.trimmed[path.name] = result
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a music-on-hold folder, e.g. /usr/share/asterisk/moh")
    args = parser.parse_args(argv)
    try:
        print(trim_music(Path(args.folder)).summary())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
