"""AutoScale (Kang et al. 2024): Direct Data Optimization (DDO) at two small budgets, and the
projection of its optimum to larger ones.

DDO at a budget of N tokens over K domains trains a uniform run (N/K tokens of each domain) and,
for each domain and factor f, a run with that domain's quantity f N/K and the others unchanged.
Per domain, the target loss of those runs over the uniform run's is fitted as (x + a)^(-b) + c in
the quantity multiple x; the optimum minimises the sum of the fitted terms over multiples summing
to K (a total of N). AutoScale extrapolates each domain's optimal quantity geometrically in the
budget: from N1* and N2*, N* at a larger budget continues the same per-domain power law.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

UNIFORM = "uniform"


class AutoScaleError(ValueError):
    """DDO results that cannot be fitted or projected."""


def run_name(domain: str, factor: float) -> str:
    return f"{domain}-x{factor:.3g}"


def ddo_runs(domains: list[str], factors: list[float]) -> dict[str, dict[str, float]]:
    """Run name -> quantity multiple of each domain (1 = the uniform share N/K): the uniform run,
    then each domain times each factor, the others at 1."""
    runs = {UNIFORM: dict.fromkeys(domains, 1.0)}
    for d in domains:
        for f in factors:
            runs[run_name(d, f)] = {**dict.fromkeys(domains, 1.0), d: float(f)}
    return runs


def shard_budgets(quantities: dict[str, float], domain_shards: dict[str, list[str]]) -> dict[str, int]:
    """Training tokens per shard for domain quantities (tokens): a domain's quantity split evenly
    over its shards (its base units); at least one token, so every domain keeps a window."""
    return {s: max(1, round(quantities[d] / len(shards))) for d, shards in domain_shards.items() for s in shards}


def unit_weights(quantities: dict[str, float], domain_shards: dict[str, list[str]], unit_tokens: int) -> dict[str, float]:
    """Merge weights that stand for a real run with these domain quantities (tokens): a domain's
    quantity is a number of its units (shard models of `unit_tokens` each), taken in order, the
    last one in part; a domain asked for more units than it has uses each of them equally often,
    as real training cycles its data. Weights are normalised over all units."""
    weights = {}
    for d, shards in domain_shards.items():
        count = quantities[d] / unit_tokens
        if count >= len(shards):
            weights.update(dict.fromkeys(shards, count / len(shards)))
            continue
        for j, s in enumerate(shards):
            share = min(1.0, count - j)
            if share <= 0:
                break
            weights[s] = share
    total = sum(weights.values())
    return {s: w / total for s, w in weights.items()}


# --- the per-domain fit -----------------------------------------------------------------------


def ratio_curve(x, a, b, c):
    """A domain's loss ratio against its quantity multiple x: (x + a)^(-b) + c."""
    return np.power(np.asarray(x, dtype=float) + a, -b) + c


def fit_ratio(x, y) -> dict:
    """Least-squares fit of ratio_curve through the points (x, y) (scipy curve_fit, several starts;
    the best kept). b may be negative: more of a domain can hurt the targets."""
    from scipy.optimize import curve_fit

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        raise AutoScaleError(f"a fit of (x + a)^(-b) + c needs 3 or more points, got {len(x)}")
    bounds = ([1e-3, -10.0, -1e3], [1e3, 30.0, 1e3])
    best = None
    for a0, b0 in ((1.0, 0.5), (0.1, 1.0), (3.0, 2.0), (1.0, -0.5), (0.3, 0.1)):
        c0 = float(y[np.argmax(x)]) - (x.max() + a0) ** -b0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = curve_fit(ratio_curve, x, y, p0=(a0, b0, float(np.clip(c0, -1e3, 1e3))),
                                      bounds=bounds, maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((ratio_curve(x, *params) - y) ** 2))
        if best is None or sse < best[1]:
            best = (params, sse)
    if best is None:
        raise AutoScaleError(f"no fit of (x + a)^(-b) + c through x = {x.tolist()}, y = {y.tolist()}")
    (a, b, c), sse = best
    return {"a": float(a), "b": float(b), "c": float(c), "rmse": math.sqrt(sse / len(x))}


# --- the optimisation ---------------------------------------------------------------------------


def project_simplex(v: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of v onto {x >= 0, sum x = total} (sort-based, Held et al. 1974)."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - total
    rho = np.nonzero(u - cumulative / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - cumulative[rho] / (rho + 1), 0.0)


def _objective(fits: list[dict], x: np.ndarray) -> float:
    return float(sum(ratio_curve(xi, f["a"], f["b"], f["c"]) for f, xi in zip(fits, x)))


def _gradient(fits: list[dict], x: np.ndarray) -> np.ndarray:
    return np.array([-f["b"] * (xi + f["a"]) ** (-f["b"] - 1) for f, xi in zip(fits, x)])


def optimise(fits: list[dict], total: float, steps: int = 5000, tol: float = 1e-12) -> np.ndarray:
    """Multiples x >= 0 with sum `total` that minimise sum_i f_i(x_i): projected gradient descent
    from the uniform point, its step halved until the objective falls (Armijo backtracking)."""
    x = np.full(len(fits), total / len(fits))
    value, step = _objective(fits, x), 1.0
    for _ in range(steps):
        grad = _gradient(fits, x)
        while step > 1e-12:
            candidate = project_simplex(x - step * grad, total)
            new = _objective(fits, candidate)
            if new <= value - 1e-4 * float(grad @ (x - candidate)):
                break
            step /= 2
        else:
            break
        moved = float(np.abs(candidate - x).max())
        x, value, step = candidate, new, step * 2
        if moved < tol:
            break
    return x


# --- DDO and the projection -------------------------------------------------------------------


def ddo(domains: list[str], factors: list[float], losses: dict[str, float]) -> dict:
    """DDO from each run's target loss (run name -> loss): per domain the fitted parameters and
    its points, and the optimal multiples (sum K)."""
    base = losses[UNIFORM]
    fits = []
    for d in domains:
        x = [1.0] + [float(f) for f in factors]
        y = [1.0] + [losses[run_name(d, f)] / base for f in factors]
        fits.append({"domain": d, "x": x, "y": y, **fit_ratio(x, y)})
    best = optimise(fits, float(len(domains)))
    for fit, xi in zip(fits, best):
        fit["optimal_multiple"] = float(xi)
    return {"fits": fits, "multiples": dict(zip(domains, best.tolist()))}


def quantities(multiples: dict[str, float], scale: int) -> dict[str, float]:
    """Tokens of each domain at budget `scale` for quantity multiples (1 = the uniform share)."""
    return {d: m * scale / len(multiples) for d, m in multiples.items()}


def project(small: dict[str, float], large: dict[str, float], n_small: int, n_large: int, scale: int) -> dict[str, float]:
    """Weights at `scale` from the optimal quantities at two budgets: each domain's quantity
    continues its geometric growth, N*(s) = N2* (N2*/N1*)^(log(s/N2) / log(N2/N1)) (AutoScale's
    N3* = N2* (N2*/N1*) where s/N2 = N2/N1), normalised. A domain DDO dropped at N2 stays dropped;
    one dropped at N1 only grows like the budget."""
    steps = math.log(scale / n_large) / math.log(n_large / n_small)
    grown = {}
    for d in large:
        if large[d] <= 0:
            grown[d] = 0.0
            continue
        ratio = large[d] / small[d] if small[d] > 0 else n_large / n_small
        grown[d] = large[d] * ratio ** steps
    total = sum(grown.values())
    return {d: q / total for d, q in grown.items()}
