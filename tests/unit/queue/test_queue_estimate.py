"""The estimated wait: a fake clock (`now` passed in), no event loop.

The simulation at the end is a sanity check of the formula against a FIFO queue with random
arrivals and handle times (fixed seed); the figures that count go in a bench."""

import heapq
import random
import statistics

import pytest

from ari_app.queue.estimate import (
    LESS_THAN_A_MINUTE,
    MINUTES,
    NONE,
    EstimateSettings,
    HandleTimes,
    WaitEstimate,
    estimate_error,
    estimate_wait,
)

SETTINGS = EstimateSettings(window=10, max_age=600.0, min_samples=3)


def times(*durations: float, ended_at: float = 0.0) -> HandleTimes:
    samples = HandleTimes()
    for d in durations:
        samples.add(ended_at, d, SETTINGS)
    return samples


def test_given_no_operator_logged_in_when_estimate_then_none():
    est = estimate_wait(1, now=0.0, handle_times=times(120, 120, 120), available=0, free=0,
                        settings=SETTINGS)

    assert est.said == NONE and est.seconds is None and est.basis == "no-operator"


def test_given_a_free_operator_for_the_position_when_estimate_then_less_than_a_minute():
    est = estimate_wait(2, now=0.0, handle_times=HandleTimes(), available=3, free=2,
                        settings=SETTINGS)

    assert est.said == LESS_THAN_A_MINUTE and est.seconds == 0.0


def test_given_too_few_samples_and_no_default_when_estimate_then_none():
    est = estimate_wait(3, now=0.0, handle_times=times(120, 120), available=2, free=0,
                        settings=SETTINGS)

    assert est.said == NONE and est.seconds is None and est.basis == "too-few-samples"


def test_given_too_few_samples_and_a_policy_default_when_estimate_then_from_the_default():
    settings = EstimateSettings(min_samples=3, default_handle_time=180)

    est = estimate_wait(2, now=0.0, handle_times=times(30), available=2, free=0,
                        settings=settings)

    assert est.basis == "policy-default" and est.seconds == 180.0
    assert est.said == MINUTES and est.minutes == 3


def test_given_position_and_operators_when_estimate_then_k_handle_times_over_n():
    # 4th in line, 2 operators both busy, 120 s calls: 4 calls must end, 2 at a time
    est = estimate_wait(4, now=0.0, handle_times=times(100, 120, 140), available=2, free=0,
                        settings=SETTINGS)

    assert est.seconds == pytest.approx(240.0) and est.minutes == 4 and est.basis == "samples"


def test_given_one_free_operator_when_estimate_then_callers_ahead_take_it_first():
    est = estimate_wait(3, now=0.0, handle_times=times(120, 120, 120), available=2, free=1,
                        settings=SETTINGS)

    assert est.seconds == pytest.approx(120.0) and est.minutes == 2


@pytest.mark.parametrize("wait, said, minutes", [
    (59.0, LESS_THAN_A_MINUTE, None), (60.0, MINUTES, 2), (179.0, MINUTES, 3),
    (600.0, MINUTES, 10), (601.0, MINUTES, 15), (1500.0, MINUTES, 25), (3600.0, MINUTES, 60),
    (3601.0, NONE, None),
])
def test_given_a_wait_of_position_one_when_said_then_rounded_up(wait, said, minutes):
    est = estimate_wait(1, now=0.0, handle_times=times(wait, wait, wait), available=1, free=0,
                        settings=SETTINGS)

    assert (est.said, est.minutes) == (said, minutes)
    assert est.seconds == pytest.approx(wait)


def test_given_old_samples_when_now_moves_on_then_they_age_out():
    samples = HandleTimes()
    for ended in (0.0, 10.0, 20.0):
        samples.add(ended, 300.0, SETTINGS)
    samples.add(700.0, 60.0, SETTINGS)

    assert samples.recent(now=605.0, settings=SETTINGS) == [300.0, 300.0, 60.0]
    assert samples.recent(now=700.0, settings=SETTINGS) == [60.0]
    est = estimate_wait(2, now=700.0, handle_times=samples, available=1, free=0,
                        settings=SETTINGS)
    assert est.said == NONE  # one sample left: no basis


def test_given_more_samples_than_the_window_when_added_then_only_the_last_kept():
    samples = HandleTimes()
    for i in range(15):
        samples.add(float(i), float(i), SETTINGS)

    assert samples.recent(now=20.0, settings=SETTINGS) == [float(i) for i in range(5, 15)]
    assert HandleTimes.from_dict(samples.to_dict()) == samples


def test_given_an_estimate_when_the_wait_is_known_then_error_is_actual_minus_estimate():
    est = WaitEstimate(MINUTES, 3, 150.0, "samples", 150.0)

    assert estimate_error(est, 180.0) == pytest.approx(30.0)
    assert estimate_error(WaitEstimate(NONE, None, None, "no-operator"), 180.0) is None
    assert dict(est.data())["estimate_seconds"] == 150.0


# --- a simulated queue -----------------------------------------------------------------------
def simulate(seed: int, operators: int, callers: int, mean_gap: float, mean_handle: float
             ) -> list[float]:
    """Callers arrive at random (exponential gaps), operators serve FIFO with random handle
    times (lognormal around `mean_handle`); each caller's estimate on arrival against their
    actual wait: the absolute errors of the callers who were given a figure."""
    rng = random.Random(seed)
    settings = EstimateSettings(window=20, max_age=3600.0, min_samples=5)
    samples = HandleTimes()
    free_at = [0.0] * operators            # when each operator is next free
    ends: list[tuple[float, float]] = []   # (ended_at, duration) of calls started, heap
    waiting_starts: list[float] = []       # start times of the callers in line (FIFO)
    errors = []
    now = 0.0
    for _ in range(callers):
        now += rng.expovariate(1 / mean_gap)
        while ends and ends[0][0] <= now:  # calls that ended by now feed the estimate
            ended, duration = heapq.heappop(ends)
            samples.add(ended, duration, settings)
        waiting_starts = [s for s in waiting_starts if s > now]
        free = sum(1 for t in free_at if t <= now)
        position = len(waiting_starts) + 1
        est = estimate_wait(position, now=now, handle_times=samples, available=operators,
                            free=free, settings=settings)
        # FIFO: this caller takes the operator who frees up first after everyone ahead
        i = min(range(operators), key=lambda j: free_at[j])
        start = max(now, free_at[i])
        duration = rng.lognormvariate(0, 0.5) * mean_handle / 1.133  # mean ~ mean_handle
        free_at[i] = start + duration
        heapq.heappush(ends, (start + duration, duration))
        if start > now:
            waiting_starts.append(start)
        error = estimate_error(est, start - now)
        if error is not None:
            errors.append(abs(error))
    return errors


def test_given_a_simulated_busy_queue_when_estimated_then_errors_stay_within_sane_bounds():
    errors = simulate(seed=11, operators=4, callers=2000, mean_gap=50.0, mean_handle=180.0)
    errors.sort()
    median, p90 = statistics.median(errors), errors[int(0.9 * len(errors))]
    print(f"estimate error over {len(errors)} callers: median {median:.0f} s, p90 {p90:.0f} s")

    assert len(errors) > 1500  # a figure for nearly everyone once samples exist
    assert median < 60 and p90 < 240
