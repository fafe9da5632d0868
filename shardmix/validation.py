"""How well does the merged-model score predict the score of a model really trained on a mixture?

Compares, per eval set and over the really-trained (`full`) mixtures, the merged model's
perplexity with the true one, and does the same for a naive proxy that merges nothing: the
mean perplexity of the mixture's member shard models.
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
from shardmix.naming import SEP  # noqa: E402

COLUMNS = ["eval_set", "n_mixtures", "pearson", "spearman", "kendall", "top1_agree", "mean_ratio"]


def paired(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (eval set, validated mixture): true, merged and naive perplexity."""
    ppl = table.set_index(["kind", "shards", "eval_set"])["ppl"]
    full = table[table["kind"] == "full"]
    rows = []
    for _, r in full.iterrows():
        members = r["shards"].split(SEP)
        rows.append({"eval_set": r["eval_set"], "shards": r["shards"], "true": r["ppl"],
                     "merged": ppl[("merged", r["shards"], r["eval_set"])],
                     "naive": float(np.mean([ppl[("shard", m, r["eval_set"])] for m in members]))})
    if not rows:
        raise ValueError("scores hold no kind=full rows: no mixture was really trained")
    return pd.DataFrame(rows)


def _figures(true: np.ndarray, proxy: np.ndarray) -> dict:
    enough = len(true) >= 3 and np.ptp(true) > 0 and np.ptp(proxy) > 0
    return {
        "n_mixtures": len(true),
        "pearson": stats.pearsonr(proxy, true)[0] if enough else math.nan,
        "spearman": stats.spearmanr(proxy, true)[0] if enough else math.nan,
        "kendall": stats.kendalltau(proxy, true)[0] if enough else math.nan,
        "top1_agree": float(np.argmin(proxy) == np.argmin(true)),
        "mean_ratio": float(np.mean(proxy / true)),
    }


def agreement(pairs: pd.DataFrame, proxy: str) -> pd.DataFrame:
    """Per eval set figures for `proxy` ('merged' or 'naive'), then the row ALL (their means)."""
    rows = [{"eval_set": name, **_figures(g["true"].to_numpy(), g[proxy].to_numpy())}
            for name, g in pairs.groupby("eval_set", sort=True)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    pooled = {"eval_set": "ALL", "n_mixtures": int(table["n_mixtures"].max())}
    pooled.update({c: table[c].mean() for c in COLUMNS[2:]})  # top1_agree: fraction of eval sets
    return pd.concat([table, pd.DataFrame([pooled])], ignore_index=True)


def scatter_plot(pairs: pd.DataFrame, out: str) -> None:
    sets = sorted(pairs["eval_set"].unique())
    cols = min(4, len(sets))
    rows = math.ceil(len(sets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, sets):
        g = pairs[pairs["eval_set"] == name]
        ax.scatter(g["true"], g["merged"], s=22, color="tab:blue", label="merged")
        ax.scatter(g["true"], g["naive"], s=14, color="tab:gray", marker="x", label="naive (mean of members)")
        title = name
        if len(g) >= 3 and np.ptp(g["true"]) > 0:
            slope, intercept = np.polyfit(g["true"], g["merged"], 1)
            xs = np.linspace(g["true"].min(), g["true"].max(), 10)
            ax.plot(xs, slope * xs + intercept, color="tab:blue", lw=1)
            title += f"\nr = {stats.pearsonr(g['merged'], g['true'])[0]:.3f}"
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
        scored = shardmix_mixtures.candidate_mixtures(shards[:n], {**mixture_spec, "explicit": []})
        rows.append({"shards": n, "shardmix": n * tokens_per_shard,
                     "train_every_mixture": sum(len(m) for m in scored) * tokens_per_shard + n * tokens_per_shard,
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
