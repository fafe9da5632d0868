"""A regression proxy: per eval set, predict a trained mixture's log ppl from what is known of it
before training (its weights, its budget, its merged model's ppl), fitted on the mixtures that
were really trained, in the style of RegMix, Olmix and DeMix.

Families (all ridge regressions on log ppl; features standardised, the intercept not shrunk):

    merged_budget    log merged ppl, log budget tokens
    weights          the mixture's weight on every shard, log budget tokens (RegMix/Olmix: no proxy)
    merged_weights   both (DeMix: the merged proxy's score as one feature among the weights)

A regression is only worth what it predicts out of sample, so each is judged by leave-one-out
over the trained mixtures; FAMILY is the one that ranked best that way on the demo (README).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from shardmix import naming

FAMILIES = ("merged_budget", "weights", "merged_weights")
FAMILY = "merged_budget"
ALPHA = 0.1  # ridge penalty on standardised features (their squares sum to n per feature)
MIN_FIT = 4  # trained mixtures a fit needs besides the one it predicts


def features(rows: pd.DataFrame, family: str, merged: str, shards: list[str]) -> np.ndarray:
    """One row per mixture of `rows` (columns mixture, budget_tokens, and `merged`)."""
    cols = []
    if family in ("merged_budget", "merged_weights"):
        cols.append(np.log(rows[merged].to_numpy(float)))
    if family in ("weights", "merged_weights"):
        w = [naming.weights(m) for m in rows["mixture"]]
        cols += [np.array([x.get(s, 0.0) for x in w]) for s in shards]
    cols.append(np.log(rows["budget_tokens"].to_numpy(float)))
    return np.column_stack(cols)


class Ridge:
    def __init__(self, x: np.ndarray, y: np.ndarray, alpha: float = ALPHA):
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0)
        self.scale[self.scale == 0] = 1.0  # a constant feature carries nothing; its coefficient stays 0
        z = (x - self.mean) / self.scale
        self.intercept = float(y.mean())
        self.coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - self.intercept))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + ((x - self.mean) / self.scale) @ self.coef


def leave_one_out(rows: pd.DataFrame, family: str, merged: str, shards: list[str]) -> np.ndarray:
    """Each trained mixture's ppl predicted by a fit on the others (rows of one eval set); NaN
    where too few remain to fit."""
    if len(rows) < MIN_FIT + 1:
        return np.full(len(rows), math.nan)
    x = features(rows, family, merged, shards)
    y = np.log(rows["true"].to_numpy(float))
    out = np.empty(len(rows))
    for i in range(len(rows)):
        keep = np.arange(len(rows)) != i
        out[i] = math.exp(Ridge(x[keep], y[keep]).predict(x[[i]])[0])
    return out


def fit(rows: pd.DataFrame, family: str, merged: str, shards: list[str]) -> Ridge | None:
    """The family fitted on every trained mixture of one eval set (None: too few)."""
    if len(rows) < MIN_FIT:
        return None
    return Ridge(features(rows, family, merged, shards), np.log(rows["true"].to_numpy(float)))


def predict(model: Ridge, rows: pd.DataFrame, family: str, merged: str, shards: list[str]) -> np.ndarray:
    return np.exp(model.predict(features(rows, family, merged, shards)))


def loo_column(pairs: pd.DataFrame, family: str, merged: str, shards: list[str]) -> pd.Series:
    """Leave-one-out predictions for every row of `pairs` (each eval set fitted on its own)."""
    out = pd.Series(np.nan, index=pairs.index)
    for _, g in pairs.groupby("eval_set", sort=True):
        out[g.index] = leave_one_out(g, family, merged, shards)
    return out
