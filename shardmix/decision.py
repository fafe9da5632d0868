"""Decision metrics: how well a proxy's scores would have chosen among really trained mixtures.

A proxy is judged by the choices it supports, not by its fit: the share of pairs of trained
mixtures it orders as training does (pairwise accuracy, as DataDecide reports it), Spearman over
the truly best quarter (DeMix), whether its pick is the truly best (top-1) and how much worse its
pick really is (regret). With a handful of trained mixtures each figure is noisy, so each comes
with a bootstrap interval over the trained mixtures: resampled together across eval sets, as the
same mixtures stand on every set.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

METRICS = ("pairwise_accuracy", "top_quarter_spearman", "top1", "regret")
LEVEL = 0.9  # bootstrap interval
RESAMPLES = 1000
MIN_TOP = 3  # a rank correlation needs three points


def pairwise_accuracy(true: np.ndarray, proxy: np.ndarray) -> float:
    """Share of pairs with different true ppl that the proxy orders the same way (a proxy tie
    counts half); NaN without such a pair."""
    dt = np.sign(true[:, None] - true[None, :])
    dp = np.sign(proxy[:, None] - proxy[None, :])
    upper = np.triu(np.ones_like(dt, dtype=bool), 1) & (dt != 0)
    if not upper.any():
        return math.nan
    agree = np.where(dp[upper] == 0, 0.5, (dt[upper] == dp[upper]).astype(float))
    return float(agree.mean())


def top_quarter_spearman(true: np.ndarray, proxy: np.ndarray) -> float:
    """Spearman over the truly best quarter of the mixtures (at least MIN_TOP), where a decision is
    made; NaN where they are fewer or a side is constant."""
    n = max(MIN_TOP, math.ceil(len(true) / 4))
    if len(true) < n:
        return math.nan
    best = np.argsort(true, kind="stable")[:n]
    t, p = true[best], proxy[best]
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        return math.nan
    return float(stats.spearmanr(p, t)[0])


def top1(true: np.ndarray, proxy: np.ndarray) -> float:
    """1 where the proxy's pick has the best true ppl (ties in true count as right)."""
    return float(true[np.argmin(proxy)] <= np.min(true))


def regret(true: np.ndarray, proxy: np.ndarray) -> float:
    """How much worse the proxy's pick really is than the truly best: true[pick] / min(true) - 1."""
    return float(true[np.argmin(proxy)] / np.min(true) - 1)


FUNCTIONS = {"pairwise_accuracy": pairwise_accuracy, "top_quarter_spearman": top_quarter_spearman,
             "top1": top1, "regret": regret}


def metrics(true: np.ndarray, proxy: np.ndarray) -> dict:
    true, proxy = np.asarray(true, float), np.asarray(proxy, float)
    if len(true) < 2:
        return dict.fromkeys(METRICS, math.nan)
    return {name: f(true, proxy) for name, f in FUNCTIONS.items()}


def per_set(true: np.ndarray, proxy: np.ndarray) -> dict:
    """Metrics of each eval set (rows of `true` and `proxy`: eval sets; columns: mixtures) and
    their mean over sets (`ALL`; top1 there is the share of sets whose pick is right)."""
    rows = [metrics(t, p) for t, p in zip(true, proxy)]
    mean = {m: float(np.nanmean([r[m] for r in rows])) if any(not math.isnan(r[m]) for r in rows) else math.nan
            for m in METRICS}
    return {"sets": rows, "ALL": mean}


def bootstrap(true: np.ndarray, proxy: np.ndarray, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """LEVEL intervals of every metric per set and of ALL: the mixtures (columns) are drawn with
    replacement, the same draw for every set. Returns {"sets": [{metric: (lo, hi)}], "ALL": {...}}."""
    true, proxy = np.asarray(true, float), np.asarray(proxy, float)
    n_sets, n = true.shape
    rng = np.random.default_rng(seed)
    draws = {"sets": [[] for _ in range(n_sets)], "ALL": []}
    for _ in range(resamples if n >= 2 else 0):
        pick = rng.integers(0, n, n)
        result = per_set(true[:, pick], proxy[:, pick])
        for i, row in enumerate(result["sets"]):
            draws["sets"][i].append([row[m] for m in METRICS])
        draws["ALL"].append([result["ALL"][m] for m in METRICS])

    def interval(values) -> dict:
        if not values:
            return {m: (math.nan, math.nan) for m in METRICS}
        a = np.asarray(values, float)
        out = {}
        for j, m in enumerate(METRICS):
            col = a[:, j][~np.isnan(a[:, j])]
            out[m] = (float(np.quantile(col, (1 - LEVEL) / 2)), float(np.quantile(col, (1 + LEVEL) / 2))) \
                if len(col) else (math.nan, math.nan)
        return out

    return {"sets": [interval(v) for v in draws["sets"]], "ALL": interval(draws["ALL"])}
