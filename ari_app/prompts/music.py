"""Music on hold without dead air: a track's quiet head and tail cut off.

Asterisk plays a music file from its start every time music begins on a channel that had none
(`sort=randstart` picks the file, not a point in it) and goes from one file's end to the next
file's start. Debian's opsound tracks open with up to a second under the level a caller hears
and end with up to 11 s of fade-out and zeros: after "please hold" a caller heard nothing for a
second, and between two tracks for up to 11 s, long enough to think the line dropped.

`trim_music` rewrites each 8 kHz mono 16-bit WAV of a folder without its quiet ends (100 ms
windows whose RMS is under `QUIET_RMS`, the level the integration tests call silence). Only the
ends are read, so a rerun on trimmed files costs milliseconds and writes nothing; a file is
replaced atomically (Asterisk may be playing it). Anything else (another format, a file that is
quiet throughout) is left as it is and reported. The sandbox and the docker image run it on
the music they ship; an admin runs it on their own folder (`ari-etiquette music trim DIR`, or
`python3 music.py DIR` where the app is not installed: it needs the standard library only).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import wave
from array import array
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["QUIET_RMS", "MusicReport", "trim_music", "trim_track"]

QUIET_RMS = 150       # 16-bit RMS of a window a caller hears as nothing (tests' SILENCE)
WINDOW_S = 0.1        # as the ear and the tests hear it: 100 ms at a time


@dataclass
class MusicReport:
    trimmed: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (head, tail) s
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)                 # name -> why

    def summary(self) -> str:
        lines = [f"music: {len(self.trimmed)} trimmed, {len(self.unchanged)} already start and "
                 f"end with sound, {len(self.skipped)} left as they are"]
        lines += [f"  trimmed {name}: {head:.2f} s quiet at the start, {tail:.2f} s at the end"
                  for name, (head, tail) in sorted(self.trimmed.items())]
        lines += [f"  left {name}: {why}" for name, why in sorted(self.skipped.items())]
        return "\n".join(lines)


def _rms(samples: array) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def _quiet_frames(track: wave.Wave_read, window: int, quiet: float, from_end: bool) -> int:
    """How many frames at one end of the track are quiet, in whole windows."""
    total = track.getnframes()
    count = 0
    while count + window <= total:
        track.setpos(total - count - window if from_end else count)
        samples = array("h", track.readframes(window))
        if sys.byteorder == "big":
            samples.byteswap()
        if _rms(samples) >= quiet:
            return count
        count += window
    return total


def trim_track(path: Path, quiet: float = QUIET_RMS) -> tuple[float, float] | str:
    """Cut `path`'s quiet head and tail in place: the seconds cut, or why it was left alone."""
    try:
        with wave.open(str(path), "rb") as track:
            channels, width, rate, total = (track.getnchannels(), track.getsampwidth(),
                                            track.getframerate(), track.getnframes())
            if (channels, width) != (1, 2):
                return f"not mono 16-bit PCM ({channels} channels, {8 * width}-bit)"
            window = max(1, int(rate * WINDOW_S))
            head = _quiet_frames(track, window, quiet, from_end=False)
            if head >= total:
                return "quiet throughout"
            tail = _quiet_frames(track, window, quiet, from_end=True)
            if head == 0 and tail == 0:
                return (0.0, 0.0)
            track.setpos(head)
            frames = track.readframes(total - head - tail)
            params = track.getparams()
    except (wave.Error, EOFError) as exc:
        return f"not a WAV file Asterisk plays as music ({exc})"
    fd, tmp = tempfile.mkstemp(prefix=".trim-", suffix=".wav", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as out:
            out.setparams(params)
            out.writeframes(frames)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return (head / rate, tail / rate)


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
        elif result == (0.0, 0.0):
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
