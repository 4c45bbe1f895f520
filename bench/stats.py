"""The harness's arithmetic: medians, distribution-free intervals, paired ratios.

Rounds are interleaved, so run i of every configuration saw the same moment of
the machine. Comparisons are therefore made per round (tracer run i against
baseline run i) and summarised by their median, which is robust to the odd
run a noisy neighbour spoiled. Intervals for a median come from order
statistics (the binomial method): no assumption about the distribution, and
with n runs the interval [x(k), x(n+1-k)] covers the true median with
probability 1 - 2 * P(Binomial(n, 1/2) < k). That needs n >= 6 for 95 %;
with fewer runs the interval is [min, max] and its real level is reported.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class Estimate:
    """A median with its interval; level is the interval's real coverage."""

    median: float
    low: float
    high: float
    level: float
    n: int

    def as_json(self, digits: int = 2) -> dict[str, object]:
        return {
            "median": round(self.median, digits),
            "interval": [round(self.low, digits), round(self.high, digits)],
            "interval_level": round(self.level, 4),
            "n": self.n,
        }


def _binom_cdf_half(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) <= k)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(min(k, n) + 1)) / 2.0**n


def median_rank(n: int, level: float = LEVEL) -> tuple[int, float]:
    """(k, coverage): the widest-needed order statistic k (1-based) such that
    [x(k), x(n+1-k)] covers the median with probability >= level, and that
    probability. With too few runs for level: k = 1 and its lower coverage."""
    if n < 1:
        raise ValueError("no runs")
    best = 1
    for k in range(1, n // 2 + 1):
        if _binom_cdf_half(k - 1, n) <= (1.0 - level) / 2.0:
            best = k
        else:
            break
    return best, 1.0 - 2.0 * _binom_cdf_half(best - 1, n)


def estimate(values: Sequence[float], level: float = LEVEL) -> Estimate:
    """Median of values with its distribution-free interval."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no runs")
    k, coverage = median_rank(len(xs), level)
    return Estimate(statistics.median(xs), xs[k - 1], xs[len(xs) - k], coverage, len(xs))


def paired(values: Sequence[float], base: Sequence[float]) -> list[tuple[float, float]]:
    """Runs of the same round, side by side (rounds where either failed dropped)."""
    return [(v, b) for v, b in zip(values, base, strict=False)
            if math.isfinite(v) and math.isfinite(b)]


def added(values: Sequence[float], base: Sequence[float]) -> Estimate:
    """Added cost (e.g. ns per syscall) over the baseline, round by round."""
    return estimate([v - b for v, b in paired(values, base)])


def loss_pct(values: Sequence[float], base: Sequence[float]) -> Estimate:
    """Throughput lost against the baseline in %, round by round: 100 (1 - v/b)."""
    return estimate([100.0 * (1.0 - v / b) for v, b in paired(values, base) if b > 0])


def ratio(num: float, den: float) -> float | None:
    """num / den, or None where the ratio means nothing (den <= 0)."""
    return num / den if den > 0 else None


def finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def ratio_interval(num: Sequence[float], den: Sequence[float], base: Sequence[float],
                   level: float = LEVEL, resamples: int = 2000) -> tuple[float, float] | None:
    """An interval for median(num - base) / median(den - base), the three paired
    per round. A ratio of medians has no order-statistic interval: this one is a
    percentile bootstrap over whole rounds (a drawn round keeps its three runs),
    with a fixed seed so that a result reproduces. Rounds of one boot share its
    moment, so it is narrower than one over boots would be. A resample whose
    denominator is not > 0 counts as an infinite ratio. None with fewer than 6
    rounds where all three ran."""
    rounds = [(n - b, d - b) for n, d, b in zip(num, den, base, strict=False)
              if math.isfinite(n) and math.isfinite(d) and math.isfinite(b)]
    if len(rounds) < 6:
        return None
    rnd = random.Random(1)
    xs = []
    for _ in range(resamples):
        drawn = rnd.choices(rounds, k=len(rounds))
        d = statistics.median(r[1] for r in drawn)
        xs.append(statistics.median(r[0] for r in drawn) / d if d > 0 else math.inf)
    xs.sort()
    tail = int((1.0 - level) / 2.0 * resamples)
    return xs[tail], xs[resamples - 1 - tail]
