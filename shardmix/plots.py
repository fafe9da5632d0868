"""Figures people read: the mixture x eval-set heatmap and the best mixtures per eval set."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MAX_HEATMAP_ROWS = 60


def _label(row) -> str:
    return "seed" if row["kind"] == "seed" else f"{row['kind'][0]}: {row['shards']}"


def heatmap(table: pd.DataFrame, out: str) -> None:
    """Rows: models; columns: eval sets; colour: log2 of perplexity relative to the seed."""
    wide = table.pivot_table(index="model", columns="eval_set", values="ppl")
    meta = table.drop_duplicates("model").set_index("model")
    rel = np.log2(wide / wide.loc["seed"]) if "seed" in wide.index else np.log(wide)
    order = rel.mean(axis=1).sort_values().index.tolist()
    if len(order) > MAX_HEATMAP_ROWS:
        keep = [m for m in order if meta.loc[m, "kind"] in ("seed", "shard")]
        keep += [m for m in order if m not in keep][:MAX_HEATMAP_ROWS - len(keep)]
        order = [m for m in order if m in set(keep)]
    rel, wide = rel.loc[order], wide.loc[order]
    fig_h = 1.5 + 0.28 * len(order)
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * rel.shape[1], fig_h))
    lim = float(np.nanmax(np.abs(rel.values))) or 1.0
    im = ax.imshow(rel.values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(rel.shape[1]), rel.columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(order)), [_label(meta.loc[m]) for m in order], fontsize=7)
    if len(order) <= MAX_HEATMAP_ROWS:
        for i in range(len(order)):
            for j in range(rel.shape[1]):
                ax.text(j, i, f"{wide.values[i, j]:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="log2(ppl / seed ppl)  (blue = better than seed)")
    shown = "" if len(order) == len(meta) else f" (best {len(order)} of {len(meta)})"
    ax.set_title(f"Perplexity of every model on every eval set{shown}\n"
                 "cell text: ppl; s = shard model, m = merged mixture, f = trained on the mixture", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)


def ranking(table: pd.DataFrame, out: str, top: int = 10) -> None:
    """For each eval set, the `top` mixtures (shard or merged models) with the lowest perplexity."""
    candidates = table[table["kind"].isin(["shard", "merged"])]
    sets = sorted(candidates["eval_set"].unique())
    seed = table[table["kind"] == "seed"].set_index("eval_set")["ppl"]
    cols = min(3, len(sets))
    rows = math.ceil(len(sets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 0.32 * top * rows + 1.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, sets):
        best = candidates[candidates["eval_set"] == name].nsmallest(top, "ppl").iloc[::-1]
        colors = ["tab:orange" if k == "shard" else "tab:blue" for k in best["kind"]]
        ax.barh(range(len(best)), best["ppl"], color=colors)
        ax.set_yticks(range(len(best)), best["shards"], fontsize=7)
        if name in seed.index:
            ax.axvline(seed[name], color="black", ls="--", lw=1, label="seed")
        lo = min(best["ppl"].min(), seed.get(name, np.inf))
        ax.set_xlim(lo * 0.95, max(best["ppl"].max(), seed.get(name, 0)) * 1.02)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("perplexity (lower is better)", fontsize=8)
    for ax in list(axes.flat)[len(sets):]:
        ax.axis("off")
    fig.suptitle(f"Best {top} mixtures per eval set (orange: one shard, blue: merged; dashed: seed)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


def selection(summary: pd.DataFrame, reference: dict, target: str, out: str) -> None:
    """Per method: target ppl of its selected shard's model and of the best mixture holding it,
    against the seed and the best model without new data (`reference`: label -> ppl)."""
    rows = summary[summary["target"] == target].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.75 * len(rows)))
    y = np.arange(len(rows))
    ax.barh(y + 0.2, rows["shard_ppl"], height=0.4, color="tab:orange", label="selected shard alone")
    ax.barh(y - 0.2, rows["best_mixture_ppl"], height=0.4, color="tab:blue", label="best mixture holding it")
    for i, r in rows.iterrows():
        ax.text(r["shard_ppl"], i + 0.2, f" {r['shard_ppl']:.1f}", va="center", fontsize=7)
        name = r["best_mixture"].split("/", 1)[-1]
        members = name.count("+") + 1
        label = name if len(name) <= 40 else f"{members} members"
        ax.text(r["best_mixture_ppl"], i - 0.2, f" {r['best_mixture_ppl']:.1f}  ({label})", va="center", fontsize=6)
    ax.set_yticks(y, [f"{m}\nOT dist {d:.3f}" for m, d in zip(rows["method"], rows["ot_distance"])], fontsize=8)
    styles = iter([("black", "--"), ("tab:green", ":"), ("tab:red", "-.")])
    for label, value in reference.items():
        color, ls = next(styles)
        ax.axvline(value, color=color, ls=ls, lw=1, label=f"{label}: {value:.1f}")
    values = list(rows["shard_ppl"]) + list(rows["best_mixture_ppl"]) + list(reference.values())
    ax.set_xlim(min(values) * 0.9, max(values) * 1.35)
    ax.set_xlabel(f"perplexity on {target} (lower is better)")
    ax.set_title(f"New data chosen toward {target}: one shard per method", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)


def autoscale_weights(weights: pd.DataFrame, ddo_scales: tuple, out: str) -> None:
    """Weight of each domain against the training budget (log scale): DDO's optimum at the small
    scales (filled markers) and the projection beyond them (open markers); real DDO solid, the
    merged proxy dashed."""
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, domain in enumerate(sorted(weights["domain"].unique())):
        for method, ls in (("real", "-"), ("proxy", "--")):
            rows = weights[(weights["domain"] == domain) & (weights["method"] == method)].sort_values("scale_tokens")
            if rows.empty:
                continue
            color = colors[i % len(colors)]
            ax.plot(rows["scale_tokens"], rows["weight"], ls=ls, color=color, lw=1.4,
                    label=f"{domain} ({method})")
            fitted = rows["scale_tokens"].isin(ddo_scales)
            ax.scatter(rows["scale_tokens"][fitted], rows["weight"][fitted], color=color, s=28, zorder=3)
            ax.scatter(rows["scale_tokens"][~fitted], rows["weight"][~fitted], facecolors="white",
                       edgecolors=color, s=28, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("training budget (tokens)")
    ax.set_ylabel("domain weight")
    ax.set_ylim(0, min(1.0, weights["weight"].max() * 1.15 + 0.02))
    ax.set_title("AutoScale: optimal domain weights by budget\n(filled: DDO optimum; open: projected)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
