"""How far the queue's estimated wait is from the wait callers then have, in a simulated call
center, side by side with Asterisk app_queue's announced hold time.

    ~/.cache/ari-etiquette/venv/bin/python bench/queue_estimate.py

Callers arrive at random (exponential gaps), operators answer in arrival order (FIFO), handle
times are random (lognormal around the mean). For every caller who was told a figure, the
absolute error |actual wait - estimate|:

- ours (ari_app/queue/estimate.py): (place - free operators) x the mean of the queue's last 20
  talk times / operators logged in; nothing said without 5 samples;
- app_queue's: its `holdtime`, a running average of the waits of callers already answered
  (3/4 old + 1/4 new, apps/app_queue.c recalc_holdtime), the same figure for every place in
  line (announced once it is known).

Not a test: prints a table and writes JSON to bench/results/. Pure Python: no Asterisk.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.queue.estimate import (EstimateSettings, HandleTimes, estimate_error,  # noqa: E402
                                    estimate_wait)
import report  # noqa: E402 (bench/report.py: the results as JSON and Markdown)

SCENARIOS = {  # name: operators, mean gap between callers (s), mean handle time (s)
    "15 operators, 90% busy": (15, 13.3, 180.0),
    "18 operators, 97% busy": (18, 10.3, 180.0),
    "4 operators, 90% busy": (4, 50.0, 180.0),
}


def simulate(seed: int, operators: int, callers: int, mean_gap: float, mean_handle: float
             ) -> dict[str, list[float]]:
    rng = random.Random(seed)
    settings = EstimateSettings()
    samples = HandleTimes()
    free_at = [0.0] * operators
    ends: list[tuple[float, float]] = []         # (ended at, talk time) of calls started
    answered: list[tuple[float, float]] = []     # (answered at, waited): app_queue learns then
    in_line: list[float] = []                    # answer times of callers still waiting
    holdtime = 0.0                               # app_queue's running average
    errors: dict[str, list[float]] = {"ours": [], "app_queue": []}
    waits = []
    now = 0.0
    for _ in range(callers):
        now += rng.expovariate(1 / mean_gap)
        while ends and ends[0][0] <= now:
            ended, duration = heapq.heappop(ends)
            samples.add(ended, duration, settings)
        answered.sort()
        while answered and answered[0][0] <= now:
            _, waited = answered.pop(0)
            holdtime = (3 * holdtime + waited) / 4
        in_line = [t for t in in_line if t > now]
        free = sum(1 for t in free_at if t <= now)
        ours = estimate_wait(len(in_line) + 1, now=now, handle_times=samples,
                             available=operators, free=free, settings=settings)
        i = min(range(operators), key=lambda j: free_at[j])
        start = max(now, free_at[i])
        duration = rng.lognormvariate(0, 0.5) * mean_handle / 1.133  # mean ~ mean_handle
        free_at[i] = start + duration
        heapq.heappush(ends, (start + duration, duration))
        answered.append((start, start - now))
        if start > now:
            in_line.append(start)
        wait = start - now
        waits.append(wait)
        if (error := estimate_error(ours, wait)) is not None:
            errors["ours"].append(abs(error))
        if holdtime > 0:
            errors["app_queue"].append(abs(wait - holdtime))
    errors["waits"] = waits
    return errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    command = f"bench/queue_estimate.py --callers {args.callers} --seeds {args.seeds}"
    results = {"command": command, "scenarios": {}}
    print(f"$ {command}")
    print(f"{'scenario':42} {'mean wait':>9} {'ours p50/p90':>14} {'app_queue p50/p90':>18} "
          f"{'p50 ratio':>9}")
    for name, (operators, gap, handle) in SCENARIOS.items():
        ours, theirs, waits = [], [], []
        for seed in range(args.seeds):
            run = simulate(seed, operators, args.callers, gap, handle)
            ours += run["ours"]
            theirs += run["app_queue"]
            waits += run["waits"]
        row = {"operators": operators, "mean_gap": gap, "mean_handle": handle,
               "mean_wait": statistics.mean(waits), "callers_told": len(ours),
               "ours_p50": pct(ours, 50), "ours_p90": pct(ours, 90),
               "app_queue_p50": pct(theirs, 50), "app_queue_p90": pct(theirs, 90)}
        results["scenarios"][name] = row
        print(f"{name:42} {row['mean_wait']:8.0f}s {row['ours_p50']:6.0f}/{row['ours_p90']:<5.0f}s "
              f"{row['app_queue_p50']:9.0f}/{row['app_queue_p90']:<5.0f}s "
              f"{row['ours_p50'] / max(row['app_queue_p50'], 1e-9):9.2f}")
    report.write("queue_estimate", results,
                 rows=[{"scenario": name, **row} for name, row in results["scenarios"].items()])


if __name__ == "__main__":
    main()
