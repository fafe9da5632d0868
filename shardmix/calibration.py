"""A calibrated proxy: from the really trained mixtures of a run, predict true perplexity.

Merging dilutes each member while training on a k-shard mixture sees k budgets of tokens, so
merged perplexity ranks pairs above triples that really train better. Per eval set we fit

    log true_ppl = a + b * log merged_ppl + c * log n_eff,     n_eff = 1 / sum(w_i^2)

(n_eff is the effective number of members: k for a uniform k-shard mixture) by least squares,
judge it by leave-one-out, and predict every scored mixture with a prediction interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from shardmix import decision
from shardmix.validation import within_budget_pairwise

FEATURES = ("log_merged", "log_n_eff")
MIN_FIT = len(FEATURES) + 2  # leave-one-out keeps at least one degree of freedom
LEVEL = 0.9  # prediction interval


def design(merged: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(merged)), np.log(merged), np.log(n_eff)])


class Fit:
    """Least squares in log space; min-norm where a feature does not vary (e.g. only pairs)."""

    def __init__(self, merged, n_eff, true):
        self.x = design(np.asarray(merged, float), np.asarray(n_eff, float))
        y = np.log(np.asarray(true, float))
        self.coef, *_ = np.linalg.lstsq(self.x, y, rcond=None)
        rank = np.linalg.matrix_rank(self.x)
        self.dof = len(y) - rank
        resid = y - self.x @ self.coef
        self.sigma = float(np.sqrt(resid @ resid / self.dof)) if self.dof > 0 else math.nan
        self.xtx_inv = np.linalg.pinv(self.x.T @ self.x)

    def log_predict(self, merged, n_eff) -> tuple[np.ndarray, np.ndarray]:
        """Predicted log true ppl and the half-width of its LEVEL prediction interval."""
        x = design(np.asarray(merged, float), np.asarray(n_eff, float))
        mean = x @ self.coef
        if not self.dof > 0:
            return mean, np.full(len(mean), math.nan)
        leverage = np.einsum("ij,jk,ik->i", x, self.xtx_inv, x)
        half = stats.t.ppf(0.5 + LEVEL / 2, self.dof) * self.sigma * np.sqrt(1 + leverage)
        return mean, half


def leave_one_out(group: pd.DataFrame, merged: str) -> np.ndarray:
    """Each mixture's true ppl predicted by a fit on the others."""
    out = np.empty(len(group))
    rows = np.arange(len(group))
    for i in rows:
        rest = group.iloc[rows != i]
        fit = Fit(rest[merged], rest["n_eff"], rest["true"])
        out[i] = np.exp(fit.log_predict(group[merged].iloc[[i]], group["n_eff"].iloc[[i]])[0][0])
    return out


def calibrate(pairs: pd.DataFrame, merged: str) -> tuple[pd.DataFrame, dict, pd.Series]:
    """Per eval set of the per-shard trained mixtures (`pairs`): fitted coefficients and
    leave-one-out figures of the calibrated proxy next to the raw merged proxy, which of the two
    ranks that set (`ranked_by`: the one whose pairwise accuracy over mixtures of equal budget is
    higher out of sample; the merged proxy on a tie), the fits, and the leave-one-out predictions
    (index of `pairs`; NaN where a set has too few mixtures)."""
    rows, fits = [], {}
    loo = pd.Series(np.nan, index=pairs.index)
    for name, g in pairs.groupby("eval_set", sort=True):
        if len(g) >= MIN_FIT:
            loo[g.index] = leave_one_out(g, merged)
    scored = pairs.assign(calibrated=loo)
    for name, g in scored.groupby("eval_set", sort=True):
        true, raw = g["true"].to_numpy(), g[merged].to_numpy()
        row = {"eval_set": name, "n_mixtures": len(g), "raw_rel_error": float(np.mean(np.abs(raw / true - 1))),
               "raw_pairwise": within_budget_pairwise(scored, merged, name),
               "raw_regret": decision.regret(true, raw), "ranked_by": "merged"}
        if len(g) >= MIN_FIT:
            fits[name] = Fit(raw, g["n_eff"], true)
            predicted = g["calibrated"].to_numpy()
            row.update(a=fits[name].coef[0], b=fits[name].coef[1], c=fits[name].coef[2],
                       loo_rel_error=float(np.mean(np.abs(predicted / true - 1))),
                       loo_pairwise=within_budget_pairwise(scored, "calibrated", name),
                       loo_regret=decision.regret(true, predicted))
            if np.nan_to_num(row["loo_pairwise"], nan=-1) > np.nan_to_num(row["raw_pairwise"], nan=-1) + 1e-12:
                row["ranked_by"] = "calibrated"
        rows.append(row)  # too few trained mixtures to fit and check a calibration: merged
    columns = ["eval_set", "n_mixtures", "ranked_by", "a", "b", "c", "raw_rel_error", "loo_rel_error",
               "raw_pairwise", "loo_pairwise", "raw_regret", "loo_regret"]
    return pd.DataFrame(rows).reindex(columns=columns), fits, loo


def coefficients(table: pd.DataFrame, sets) -> dict[str, dict]:
    """Eval set -> its fit {"a", "b", "c"}, for the `sets` that calibration.csv ranks by calibration."""
    return {r.eval_set: {"a": r.a, "b": r.b, "c": r.c} for r in table.itertuples()
            if r.ranked_by == "calibrated" and r.eval_set in sets}


def predictions(scores: pd.DataFrame, method: str, fits: dict, table: pd.DataFrame, regression_ppl=None) -> pd.DataFrame:
    """Predicted true ppl of every scored mixture (merged by `method`) on every eval set, with a
    LEVEL interval. A shard's own model is its true model, so its ppl is measured, not predicted.
    `regression_ppl(eval_set, rows)`: the regression proxy's prediction of those rows, where it has
    one. `rank` orders mixtures per eval set by the proxy that set is ranked by."""
    from shardmix import naming

    ranked_by = table.set_index("eval_set")["ranked_by"].to_dict()
    merged = scores[(scores["kind"] == "merged") & (scores["method"] == method)]
    shards = scores[scores["kind"] == "shard"]
    true = scores[scores["kind"] == "full"].set_index(["shards", "weights", "eval_set"])["ppl"]
    out = []
    for kind, part in (("merged", merged), ("shard", shards)):
        for name, g in part.groupby("eval_set", sort=True):
            mixtures = [m.split("/", 1)[1] for m in g["model"]]
            n_eff = np.array([naming.n_eff(m) for m in mixtures])
            ppl = g["ppl"].to_numpy()
            regressed = ppl if kind == "shard" else (
                regression_ppl(name, g.assign(mixture=mixtures)) if regression_ppl else None)
            if regressed is None:
                regressed = np.full(len(ppl), np.nan)
            fit = fits.get(name)
            if kind == "shard":
                mean, lower, upper, basis = ppl, ppl, ppl, "measured"
            elif fit is not None:
                log_mean, half = fit.log_predict(ppl, n_eff)
                mean, lower, upper, basis = np.exp(log_mean), np.exp(log_mean - half), np.exp(log_mean + half), \
                    "calibrated"
            else:  # nothing calibrates this set: its merged ppl is a score, not a prediction
                mean = lower = upper = np.full(len(ppl), np.nan)
                basis = "uncalibrated"
            for m, (_, r), n, p, lo, hi, rp in zip(mixtures, g.iterrows(), n_eff, mean, lower, upper, regressed):
                out.append({"mixture": m, "shards": r["shards"], "weights": r["weights"], "eval_set": name,
                            "budget_tokens": r["budget_tokens"], "merged_ppl": r["ppl"], "n_eff": round(float(n), 4),
                            "predicted_ppl": p,
                            "lower": lo, "upper": hi, "basis": basis, "regression_ppl": rp,
                            "ranked_by": ranked_by.get(name, "merged"),
                            "true_ppl": true.get((r["shards"], r["weights"], name), np.nan)})
    frame = pd.DataFrame(out)
    key = np.select([frame["ranked_by"] == "calibrated", frame["ranked_by"] == "regression"],
                    [frame["predicted_ppl"], frame["regression_ppl"]], frame["merged_ppl"])
    frame["rank"] = frame.assign(_key=key).groupby("eval_set")["_key"].rank(method="min").astype(int)
    return frame.sort_values(["eval_set", "rank", "mixture"]).reset_index(drop=True)
