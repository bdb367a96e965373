"""Music on hold trimmed of its quiet ends: what Asterisk plays from a file's start (the first
music on a channel, the next track) must be sound, never the track's silent lead-in or tail;
and a quiet passage inside a track is cut to a short pause."""

from __future__ import annotations

import math
import wave
from array import array
from pathlib import Path

import pytest

from ari_app.cli import main as cli_main
from ari_app.prompts.music import MAX_PAUSE_S, QUIET_RMS, trim_music, trim_track

RATE = 8000


def write_track(path: Path, parts: list[tuple[float, int]], *, channels: int = 1,
                width: int = 2) -> None:
    """`parts`: (seconds, amplitude) in order; amplitude 0 is silence, else a 440 Hz tone."""
    samples = array("h")
    for seconds, amplitude in parts:
        samples.extend(int(amplitude * math.sin(2 * math.pi * 440 * i / RATE))
                       for i in range(int(seconds * RATE)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(RATE)
        if width == 2 and channels == 1:
            out.writeframes(samples.tobytes())
        else:
            out.writeframes(b"\0" * (width * channels * len(samples)))


def levels(path: Path) -> list[float]:
    """RMS of each 100 ms of the file, as a test's recording of a caller's leg measures it."""
    with wave.open(str(path), "rb") as track:
        data = array("h", track.readframes(track.getnframes()))
    step = RATE // 10
    return [math.sqrt(sum(s * s for s in data[i:i + step]) / step)
            for i in range(0, len(data) - step + 1, step)]


def test_given_a_quiet_lead_in_and_fade_out_when_trimmed_then_sound_from_first_to_last_window(
        tmp_path):
    track = tmp_path / "song.wav"
    # 0.8 s silence, 0.3 s too quiet to hear, 2 s of music, 1 s faint, 3 s of zeros
    write_track(track, [(0.8, 0), (0.3, 100), (2.0, 8000), (1.0, 60), (3.0, 0)])

    assert trim_track(track) == pytest.approx((1.1, 4.0, 0.0))

    heard = levels(track)
    assert len(heard) == 20 and min(heard) > QUIET_RMS
    with wave.open(str(track), "rb") as again:
        assert (again.getnchannels(), again.getsampwidth(), again.getframerate()) == (1, 2, RATE)


def test_given_quiet_passages_inside_when_trimmed_then_each_cut_to_a_short_pause_and_the_music_kept(
        tmp_path):
    track = tmp_path / "song.wav"
    # music, a 1.9 s gap (as in macroform-the_simplicity's last notes), music, a 0.2 s breath,
    # music, 0.65 s faint (under what a caller hears), music
    write_track(track, [(1.0, 8000), (1.9, 0), (0.5, 6000), (0.2, 0), (1.0, 8000),
                        (0.65, 80), (0.7, 5000)])
    music = sum(1 for level in levels(track) if level >= QUIET_RMS)

    cut = trim_track(track)

    assert (cut.head, cut.tail) == (0.0, 0.0)
    assert cut.inside == pytest.approx(1.6 + 0.3)  # 1.9 s -> 0.3 s; the faint 6 windows -> 3
    heard = levels(track)
    quiet_runs, run = [], 0
    for level in heard + [QUIET_RMS]:
        if level < QUIET_RMS:
            run += 1
        elif run:
            quiet_runs, run = quiet_runs + [run], 0
    assert quiet_runs == [3, 2, 3], heard  # never more than MAX_PAUSE_S of quiet
    assert max(quiet_runs) / 10 <= MAX_PAUSE_S
    assert sum(1 for level in heard if level >= QUIET_RMS) == music, "every window of music kept"
    assert trim_track(track) == (0.0, 0.0, 0.0)  # a rerun cuts nothing more


def test_given_a_folder_when_trimmed_twice_then_the_second_run_writes_nothing(tmp_path):
    write_track(tmp_path / "a.wav", [(0.5, 0), (1.0, 5000)])
    write_track(tmp_path / "b.wav", [(1.0, 5000)])
    write_track(tmp_path / "quiet.wav", [(1.0, 20)])
    write_track(tmp_path / "stereo.wav", [(1.0, 5000)], channels=2)
    (tmp_path / "c.gsm").write_bytes(b"\x00" * 33)
    (tmp_path / "d.wav").write_bytes(b"not a wav")

    report = trim_music(tmp_path)

    assert set(report.trimmed) == {"a.wav"} and report.unchanged == ["b.wav"]
    assert set(report.skipped) == {"quiet.wav", "stereo.wav", "c.gsm", "d.wav"}
    assert report.skipped["quiet.wav"] == "quiet throughout"
    assert "not mono 16-bit" in report.skipped["stereo.wav"]
    assert (tmp_path / "quiet.wav").stat().st_size > 44  # left as it was, never emptied
    written = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = trim_music(tmp_path)
    assert not again.trimmed and sorted(again.unchanged) == ["a.wav", "b.wav"]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == written
    assert not list(tmp_path.glob(".trim-*"))  # no temporary file left behind
    assert "1 trimmed" in report.summary() and "a.wav: 0.50 s quiet at the start" in \
        report.summary()


def test_given_no_folder_when_trimmed_from_the_command_line_then_a_clear_error(tmp_path, capsys):
    assert cli_main(["music", "trim", str(tmp_path / "nope")]) == 1
    assert f"no music folder at {tmp_path / 'nope'}" in capsys.readouterr().err

    write_track(tmp_path / "a.wav", [(0.3, 0), (1.0, 5000)])
    assert cli_main(["music", "trim", str(tmp_path)]) == 0
    assert "a.wav: 0.30 s quiet at the start, 0.00 s at the end\n" in capsys.readouterr().out

    write_track(tmp_path / "b.wav", [(1.0, 5000), (2.0, 0), (1.0, 5000)])
    assert cli_main(["music", "trim", str(tmp_path)]) == 0
    assert ("b.wav: 0.00 s quiet at the start, 0.00 s at the end, 1.70 s of long pauses "
            "inside") in capsys.readouterr().out
