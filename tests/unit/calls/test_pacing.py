"""calls/pacing.py: when the next check-in is due, and how long a menu waits for a key. Pure
arithmetic in seconds; the machines' tests show it in a call."""

import pytest

from ari_app.calls.pacing import MAX_SILENCE, MIN_MUSIC, menu_wait, next_check_in


def test_given_check_in_shorter_than_interval_when_next_due_then_interval_after_its_start():
    assert next_check_in(25.0, started=100.0, ended=106.4) == 125.0


def test_given_check_in_longer_than_interval_when_next_due_then_after_its_end_and_some_music():
    assert next_check_in(25.0, started=100.0, ended=127.0) == 127.0 + MIN_MUSIC == 129.0


def test_given_check_in_ending_just_before_the_interval_when_next_due_then_still_2s_of_music():
    assert next_check_in(25.0, started=100.0, ended=124.0) == 126.0


@pytest.mark.parametrize("repeat_after, timeout, first, last", [
    (4.0, 8.0, 4.0, 5.0),    # the hold's way out: a timeout above 5 s counts as 5
    (4.0, 6.0, 4.0, 5.0),    # the transfer's caller menu
    (4.0, 3.0, 4.0, 3.0),    # a short timeout is kept
    (2.0, 10.0, 2.0, 5.0),
    (5.0, 5.0, 5.0, 5.0),
])
def test_given_menu_when_waiting_for_a_key_then_repeat_first_and_never_more_than_5s_of_silence(
        repeat_after, timeout, first, last):
    assert menu_wait(False, repeat_after, timeout) == first
    assert menu_wait(True, repeat_after, timeout) == last
    assert max(first, last) <= MAX_SILENCE == 5.0
