"""Statistics that turn seed groups into verdicts: each group against a baseline group
(Welch's t), and a trend along an ordered numeric swept key (least-squares slope over runs).

A difference is called ``higher`` / ``lower`` only when its 95% interval excludes 0; otherwise
the verdict says how many seeds could not tell (``no difference at n=5``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

LEVEL = 0.95


@dataclass
class Comparison:
    """``group - baseline`` of one metric: difference of means, its 95% interval, p, verdict."""

    delta: float
    ci95: tuple[float, float]
    p: float
    verdict: str
    n: tuple[int, int]  # (baseline runs, group runs)

    def as_json(self) -> dict:
        return {"delta": self.delta, "ci95": list(self.ci95), "p": self.p, "verdict": self.verdict}


@dataclass
class Trend:
    """Least-squares slope of a metric against a numeric key over all runs (one point each)."""

    key: str
    metric: str
    slope: float
    ci95: tuple[float, float]
    p: float
    verdict: str
    n: int
    where: dict  # values of the other swept keys this trend holds for ({} with one key)

    def as_json(self) -> dict:
        out = {"key": self.key, "metric": self.metric, "slope": self.slope,
               "ci95": list(self.ci95), "p": self.p, "verdict": self.verdict, "n": self.n}  # fmt: skip
        if self.where:
            out["where"] = self.where
        return out


def _sample_word(n: tuple[int, int]) -> str:
    return f"n={n[0]}" if n[0] == n[1] else f"n={n[0]} vs {n[1]}"


def welch(baseline: list[float], group: list[float]) -> Comparison | None:
    """Welch's unequal-variance t interval and two-sided p for mean(group) − mean(baseline).

    None when either side has fewer than 2 runs (no spread to test against). When neither
    side varies at all, the difference is exact: p = 0 if it is not 0, else 1."""
    na, nb = len(baseline), len(group)
    if na < 2 or nb < 2:
        return None
    ma, mb = statistics.fmean(baseline), statistics.fmean(group)
    va, vb = statistics.variance(baseline), statistics.variance(group)
    delta = mb - ma
    se2 = va / na + vb / nb
    if se2 == 0.0:
        p = 0.0 if delta != 0 else 1.0
        ci = (delta, delta)
    else:
        se = math.sqrt(se2)
        dof = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
        half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * se
        ci = (delta - half, delta + half)
        p = float(2 * stats.t.sf(abs(delta) / se, dof))
    return Comparison(
        delta, ci, p, _verdict(ci, "higher", "lower", _sample_word((na, nb))), (na, nb)
    )


def slope_trend(
    xs: list[float], ys: list[float]
) -> tuple[float, tuple[float, float], float] | None:
    """Ordinary least-squares slope of ys on xs, its 95% interval (Student's t, n − 2 degrees
    of freedom) and the two-sided p of slope = 0; None with fewer than 3 runs or one x."""
    n = len(xs)
    if n < 3 or len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    resid = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    if resid == 0.0:
        return slope, (slope, slope), (0.0 if slope != 0 else 1.0)
    se = math.sqrt(resid / (n - 2) / sxx)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 2)) * se
    p = float(2 * stats.t.sf(abs(slope) / se, n - 2))
    return slope, (slope - half, slope + half), p


def trend(key: str, metric: str, xs: list[float], ys: list[float], where: dict) -> Trend | None:
    fit = slope_trend(xs, ys)
    if fit is None:
        return None
    slope, ci, p = fit
    verdict = _verdict(ci, "increasing", "decreasing", f"n={len(xs)}", "no trend")
    return Trend(key, metric, slope, ci, p, verdict, len(xs), where)


def _verdict(
    ci: tuple[float, float], up: str, down: str, n: str, none: str = "no difference"
) -> str:
    if ci[0] > 0:
        return up
    if ci[1] < 0:
        return down
    return f"{none} at {n}"
