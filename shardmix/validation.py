"""How well do the proxies predict the models really trained on a mixture?

Pairs, per eval set, each really trained mixture's true perplexity with every proxy's score of
it: the merged model (each merge method), the naive proxy (weighted mean perplexity of the member
shard models), the ensemble (weighted mean of their token probabilities, shardmix.ensemble), the
calibration and the regression (each judged out of sample, by leave-one-out). Trained mixtures are
budgeted two ways (`framing`): per shard (k shards get k shard budgets: "does adding this data
help?") and, with validation.fixed_budget, on one total each ("which proportions at this budget?").
A proxy cannot see a mixture's budget, so every figure is computed within a group of equal
budget; the per-shard pooled row (budget `pooled`) mixes budgets and says so.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from shardmix import decision  # noqa: E402
from shardmix import mixtures as shardmix_mixtures  # noqa: E402
from shardmix import naming  # noqa: E402

PER_SHARD, FIXED = "per_shard", "fixed"
POOLED = "pooled"
INTERVAL = [f"{m}_{end}" for m in decision.METRICS for end in ("lo", "hi")]
COLUMNS = ["proxy", "framing", "budget_tokens", "eval_set", "n_mixtures", "pearson", "spearman",
           *decision.METRICS, *INTERVAL, "mean_ratio"]


def proxy_name(method_label: str) -> str:
    return f"merged:{method_label}"


def paired(table: pd.DataFrame, method_labels: list[str], fixed_budget: int | None = None,
           ensemble=None) -> pd.DataFrame:
    """One row per (framing, eval set, really trained mixture): its true perplexity, its budget,
    the merged model's by every method (column `merged:<method>`), the naive and (given the
    ensemble cache) the ensemble proxy, and what the fits need (members, n_eff)."""
    ppl = table.set_index(["model", "eval_set"])["ppl"]
    trained = table[table["kind"] == "full"].assign(framing=PER_SHARD)
    if fixed_budget:
        at_budget = table[table["kind"].isin(["full", naming.FIXED]) & (table["budget_tokens"] == fixed_budget)]
        trained = pd.concat([trained, at_budget.assign(framing=FIXED)], ignore_index=True)
    rows = []
    for r in trained.itertuples():
        mixture = r.model.split("/", 1)[1]
        weights = naming.weights(mixture)
        row = {"framing": r.framing, "eval_set": r.eval_set, "mixture": mixture, "model": r.model,
               "budget_tokens": int(r.budget_tokens), "weighted": naming.is_weighted(mixture),
               "members": len(weights), "n_eff": naming.n_eff(mixture), "true": r.ppl,
               "naive": float(sum(wi * ppl[(naming.model_id("shard", m), r.eval_set)] for m, wi in weights.items()))}
        for label in method_labels:
            row[proxy_name(label)] = ppl[(naming.model_id("merged", mixture, label), r.eval_set)]
        if ensemble is not None:
            row["ensemble"] = ensemble.ppl(weights, r.eval_set)
        rows.append(row)
    if not rows:
        raise ValueError("scores hold no kind=full rows: no mixture was really trained")
    return pd.DataFrame(rows)


def groups(pairs: pd.DataFrame):
    """(framing, budget label, rows) of every group of equal budget, then per shard the pooled one."""
    for framing, f in pairs.groupby("framing", sort=False):
        for budget, g in f.groupby("budget_tokens", sort=True):
            yield framing, str(budget), g
        if framing == PER_SHARD and f["budget_tokens"].nunique() > 1:
            yield framing, POOLED, f


def _matrix(g: pd.DataFrame, column: str) -> tuple[list, np.ndarray, np.ndarray]:
    """Eval sets, and true and proxy ppl as (sets x mixtures) arrays; mixtures missing a proxy
    value on any set are left out."""
    wide = g.pivot(index="eval_set", columns="mixture", values=["true", column])
    keep = wide[column].notna().all(axis=0) & wide["true"].notna().all(axis=0)
    names = [m for m in wide["true"].columns if keep[m]]
    return list(wide.index), wide["true"][names].to_numpy(float), wide[column][names].to_numpy(float)


def agreement(pairs: pd.DataFrame, proxies: list[str], seed: int = 0) -> pd.DataFrame:
    """Per proxy, framing and budget group: decision metrics per eval set with bootstrap
    intervals over the trained mixtures, then a row ALL: the mean of the per-set rows (top1: the
    share of eval sets whose pick is the truly best), not a figure pooled over sets."""
    rows = []
    for proxy in proxies:
        for framing, budget, g in groups(pairs):
            sets, true, score = _matrix(g, proxy)
            if true.shape[1] < 2:
                continue  # one trained mixture of this budget: nothing to choose between
            point, spread = decision.per_set(true, score), decision.bootstrap(true, score, seed)
            base = {"proxy": proxy, "framing": framing, "budget_tokens": budget, "n_mixtures": true.shape[1]}
            for i, name in enumerate(sets + ["ALL"]):
                t, p = (true[i], score[i]) if name != "ALL" else (true, score)
                metrics, interval = (point["sets"][i], spread["sets"][i]) if name != "ALL" else \
                    (point["ALL"], spread["ALL"])
                enough = name != "ALL" and len(t) >= 3 and np.ptp(t) > 0 and np.ptp(p) > 0
                row = {**base, "eval_set": name, **metrics, "mean_ratio": float(np.mean(p / t)),
                       "pearson": stats.pearsonr(p, t)[0] if enough else math.nan,
                       "spearman": stats.spearmanr(p, t)[0] if enough else math.nan}
                row.update({f"{m}_{end}": v for m, (lo, hi) in interval.items() for end, v in (("lo", lo), ("hi", hi))})
                rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("pearson", "spearman"):  # ALL: the mean of the sets' correlations
        for key, g in table.groupby(["proxy", "framing", "budget_tokens"], sort=False):
            table.loc[g.index[g["eval_set"] == "ALL"], c] = g.loc[g["eval_set"] != "ALL", c].mean()
    return table


def within_budget_pairwise(pairs: pd.DataFrame, proxy: str, eval_set: str, framing: str = PER_SHARD) -> float:
    """One eval set's pairwise accuracy over the pairs of trained mixtures of equal budget (the
    choices a proxy is asked to make), NaN without such a pair."""
    agree, total = 0.0, 0
    rows = pairs[(pairs["eval_set"] == eval_set) & (pairs["framing"] == framing) & pairs[proxy].notna()]
    for _, g in rows.groupby("budget_tokens"):
        right, counted = decision.pairwise_counts(g["true"], g[proxy])
        agree, total = agree + right, total + counted
    return agree / total if total else math.nan


def scatter_plot(pairs: pd.DataFrame, merged: str, out: str) -> None:
    sets = sorted(pairs["eval_set"].unique())
    cols = min(4, len(sets))
    rows = math.ceil(len(sets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, sets):
        g = pairs[pairs["eval_set"] == name]
        ax.scatter(g["true"], g[merged], s=22, color="tab:blue", label="merged")
        ax.scatter(g["true"], g["naive"], s=14, color="tab:gray", marker="x", label="naive (mean of members)")
        title = name
        if len(g) >= 3 and np.ptp(g["true"]) > 0:
            slope, intercept = np.polyfit(g["true"], g[merged], 1)
            xs = np.linspace(g["true"].min(), g["true"].max(), 10)
            ax.plot(xs, slope * xs + intercept, color="tab:blue", lw=1)
            title += f"\nr = {stats.pearsonr(g[merged], g['true'])[0]:.3f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("true mixture model ppl", fontsize=8)
        ax.set_ylabel("merged model ppl", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(sets):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Merged-model perplexity against the perplexity of a model trained on the mixture", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


def cost_curve(shards: list[str], mixture_spec: dict, tokens_per_shard: int) -> pd.DataFrame:
    """Training tokens for the first n shards: shardmix (one model per shard) against training
    every scored mixture (a k-shard mixture costs k shard budgets). The seed is common to both."""
    rows = []
    for n in range(1, len(shards) + 1):
        # what the config asks for any pool: subsets and Dirichlet samples over all shards
        spec = {**mixture_spec, "explicit": [], "weighted": [], "grid": [],
                "dirichlet": [d for d in mixture_spec.get("dirichlet", []) if not d.get("shards")]}
        scored = shardmix_mixtures.candidate_mixtures(shards[:n], spec)
        rows.append({"shards": n, "shardmix": n * tokens_per_shard,
                     "train_every_mixture": sum(len(naming.members(m)) for m in scored) * tokens_per_shard
                     + n * tokens_per_shard,
                     "mixtures_scored": len(scored) + n})
    return pd.DataFrame(rows)


def cost_plot(curve: pd.DataFrame, out: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["shards"], curve["shardmix"], "o-", label="shardmix: one model per shard")
    ax.plot(curve["shards"], curve["train_every_mixture"], "s-", label="training every scored mixture")
    for _, r in curve.iterrows():
        ax.annotate(f"{int(r['mixtures_scored'])}", (r["shards"], r["train_every_mixture"]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("number of shards")
    ax.set_ylabel("training tokens (excluding the shared seed)")
    ax.set_title("Training cost as shards are added (labels: models scored)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
