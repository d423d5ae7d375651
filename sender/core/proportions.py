"""Rates of people out of mail sent: confidence intervals and the two-proportion test.

Pure functions over counts, shared by the subject test's decision
(sender.send.subject_tests) and the per-variant report (sender.report.variants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson_interval(hits: int, trials: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval: unlike the plain normal one, it stays inside [0, 1]
    and means something at a handful of hits, which a fresh test share has."""
    if trials <= 0:
        return Interval(0.0, 1.0)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    rate = hits / trials
    spread = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    centre = rate + z * z / (2 * trials)
    scale = 1 + z * z / trials
    return Interval(max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale))


def one_sided_p(hits_a: int, trials_a: int, hits_b: int, trials_b: int) -> float:
    """P-value that rate a exceeds rate b only by chance (pooled two-proportion z-test)."""
    if trials_a <= 0 or trials_b <= 0:
        return 1.0
    pooled = (hits_a + hits_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return 1.0  # nobody (or everybody) acted in both: no difference to see
    z = (hits_a / trials_a - hits_b / trials_b) / math.sqrt(variance)
    return 1 - _NORMAL.cdf(z)
