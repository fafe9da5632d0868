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


def _pairs(true: np.ndarray, proxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (eval set): the pairs with different true ppl the proxy orders the same way (a
    proxy tie counts half), and how many such pairs there are."""
    dt = np.sign(true[:, :, None] - true[:, None, :])
    dp = np.sign(proxy[:, :, None] - proxy[:, None, :])
    counted = np.triu(np.ones(dt.shape[1:], dtype=bool), 1)[None] & (dt != 0)
    agree = np.where(dp == 0, 0.5, (dt == dp).astype(float)) * counted
    return agree.sum(axis=(1, 2)), counted.sum(axis=(1, 2))


def pairwise_counts(true, proxy) -> tuple[float, int]:
    """(pairs ordered right, pairs with different true ppl) of one eval set."""
    agree, pairs = _pairs(np.asarray(true, float)[None], np.asarray(proxy, float)[None])
    return float(agree[0]), int(pairs[0])


def _pairwise(true: np.ndarray, proxy: np.ndarray) -> np.ndarray:
    agree, pairs = _pairs(true, proxy)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, agree / np.maximum(pairs, 1), np.nan)


def _top_quarter_spearman(true: np.ndarray, proxy: np.ndarray) -> np.ndarray:
    n = max(MIN_TOP, math.ceil(true.shape[1] / 4))
    if true.shape[1] < n:
        return np.full(len(true), np.nan)
    best = np.argsort(true, axis=1, kind="stable")[:, :n]
    t, p = np.take_along_axis(true, best, 1), np.take_along_axis(proxy, best, 1)
    # Spearman: Pearson of average ranks, as scipy.stats.spearmanr computes it
    rt, rp = stats.rankdata(t, axis=1), stats.rankdata(p, axis=1)
    rt, rp = rt - rt.mean(axis=1, keepdims=True), rp - rp.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rt * rp).sum(axis=1) / np.sqrt((rt ** 2).sum(axis=1) * (rp ** 2).sum(axis=1))
    return np.where((np.ptp(t, axis=1) == 0) | (np.ptp(p, axis=1) == 0), np.nan, rho)


def _picked(true: np.ndarray, proxy: np.ndarray) -> np.ndarray:
    return np.take_along_axis(true, np.argmin(proxy, axis=1)[:, None], 1)[:, 0]


VECTORS = {"pairwise_accuracy": _pairwise, "top_quarter_spearman": _top_quarter_spearman,
           "top1": lambda t, p: (_picked(t, p) <= t.min(axis=1)).astype(float),
           "regret": lambda t, p: _picked(t, p) / t.min(axis=1) - 1}


def _one(metric: str, true, proxy) -> float:
    return float(VECTORS[metric](np.asarray(true, float)[None], np.asarray(proxy, float)[None])[0])


def pairwise_accuracy(true, proxy) -> float:
    """Share of pairs with different true ppl that the proxy orders the same way (a proxy tie
    counts half); NaN without such a pair."""
    return _one("pairwise_accuracy", true, proxy)


def top_quarter_spearman(true, proxy) -> float:
    """Spearman over the truly best quarter of the mixtures (at least MIN_TOP), where a decision is
    made; NaN where they are fewer or a side is constant."""
    return _one("top_quarter_spearman", true, proxy)


def top1(true, proxy) -> float:
    """1 where the proxy's pick has the best true ppl (ties in true count as right)."""
    return _one("top1", true, proxy)


def regret(true, proxy) -> float:
    """How much worse the proxy's pick really is than the truly best: true[pick] / min(true) - 1."""
    return _one("regret", true, proxy)


def per_set(true: np.ndarray, proxy: np.ndarray) -> dict:
    """Metrics of each eval set (rows of `true` and `proxy`: eval sets; columns: mixtures) and
    their mean over sets (`ALL`; top1 there is the share of sets whose pick is right). Every set
    is computed at once: the cost grows with sets x mixtures^2 array work, not Python calls."""
    true, proxy = np.asarray(true, float), np.asarray(proxy, float)
    if true.shape[1] < 2:
        values = {m: np.full(len(true), np.nan) for m in METRICS}
    else:
        values = {m: VECTORS[m](true, proxy) for m in METRICS}
    rows = [{m: float(values[m][i]) for m in METRICS} for i in range(len(true))]
    mean = {m: float(np.nanmean(values[m])) if not np.isnan(values[m]).all() else math.nan for m in METRICS}
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
