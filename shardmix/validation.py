"""How well does the merged-model score predict the score of a model really trained on a mixture?

Compares, per eval set and over the really-trained (`full`) mixtures, the merged model's
perplexity with the true one, and does the same for a naive proxy that merges nothing: the
weighted mean perplexity of the mixture's member shard models. Besides correlations it
measures picking: whether the proxy's best mixture is the truly best (top-1) and how much
worse its pick really is (regret).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from shardmix import mixtures as shardmix_mixtures  # noqa: E402
from shardmix import naming  # noqa: E402

COLUMNS = ["proxy", "mixtures", "eval_set", "n_mixtures", "pearson", "spearman", "kendall", "top1_agree", "regret",
           "mean_ratio"]


def proxy_name(method_label: str) -> str:
    return f"merged:{method_label}"


def paired(table: pd.DataFrame, method_labels: list[str]) -> pd.DataFrame:
    """One row per (eval set, really trained mixture): its true perplexity, the merged model's by
    every method (column `merged:<method>`), the naive proxy (weighted mean of the members'
    perplexities) and what the calibration needs (members, effective number of members)."""
    ppl = table.set_index(["model", "eval_set"])["ppl"]
    full = table[table["kind"] == "full"]
    rows = []
    for _, r in full.iterrows():
        mixture = r["model"][len("full/"):]
        weights = naming.weights(mixture)
        row = {"eval_set": r["eval_set"], "mixture": mixture, "weighted": naming.is_weighted(mixture),
               "members": len(weights), "n_eff": naming.n_eff(mixture), "true": r["ppl"],
               "naive": float(sum(wi * ppl[(naming.model_id("shard", m), r["eval_set"])]
                                  for m, wi in weights.items()))}
        for label in method_labels:
            row[proxy_name(label)] = ppl[(naming.model_id("merged", mixture, label), r["eval_set"])]
        rows.append(row)
    if not rows:
        raise ValueError("scores hold no kind=full rows: no mixture was really trained")
    return pd.DataFrame(rows)


def regret(true: np.ndarray, proxy: np.ndarray) -> float:
    """How much worse the proxy's pick really is than the truly best: true[pick] / min(true) - 1."""
    return float(true[np.argmin(proxy)] / np.min(true) - 1)


def figures(true: np.ndarray, proxy: np.ndarray) -> dict:
    enough = len(true) >= 3 and np.ptp(true) > 0 and np.ptp(proxy) > 0
    return {
        "n_mixtures": len(true),
        "pearson": stats.pearsonr(proxy, true)[0] if enough else math.nan,
        "spearman": stats.spearmanr(proxy, true)[0] if enough else math.nan,
        "kendall": stats.kendalltau(proxy, true)[0] if enough else math.nan,
        "top1_agree": float(np.argmin(proxy) == np.argmin(true)),
        "regret": regret(true, proxy),
        "mean_ratio": float(np.mean(proxy / true)),
    }


MIXTURE_SUBSETS = {"all": lambda g: g, "uniform": lambda g: g[~g["weighted"]], "weighted": lambda g: g[g["weighted"]]}


def agreement(pairs: pd.DataFrame, proxies: list[str]) -> pd.DataFrame:
    """For each proxy column and each set of mixtures (all, uniform only, weighted only): figures
    per eval set, then a row ALL: the mean of the per-set rows (top1_agree: the fraction of eval
    sets whose pick is right), not a figure pooled over sets."""
    tables = []
    for proxy in proxies:
        for kind, subset in MIXTURE_SUBSETS.items():
            chosen = subset(pairs)
            if chosen.empty or (kind != "all" and len(chosen) == len(pairs)):
                continue  # a run without weighted mixtures: 'uniform' would repeat 'all'
            rows = [{"proxy": proxy, "mixtures": kind, "eval_set": name,
                     **figures(g["true"].to_numpy(), g[proxy].to_numpy())}
                    for name, g in chosen.groupby("eval_set", sort=True)]
            table = pd.DataFrame(rows, columns=COLUMNS)
            mean = {"proxy": proxy, "mixtures": kind, "eval_set": "ALL", "n_mixtures": int(table["n_mixtures"].max())}
            mean.update({c: table[c].mean() for c in COLUMNS[4:]})
            tables += [table, pd.DataFrame([mean])]
    return pd.concat(tables, ignore_index=True)


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
