"""Figures people read: the mixture x eval-set heatmap and the best mixtures per eval set."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# Caps that keep both figures readable and their memory and pixels bounded whatever the run's
# size; what a capped figure leaves out is said in its title.
MAX_HEATMAP_ROWS = 60
MAX_COLUMNS = 40  # eval sets drawn as columns of the heatmap
MAX_PANELS = 12  # eval sets drawn as panels of the ranking (one of them the mean over all sets)


def _label(row) -> str:
    return "seed" if row["kind"] == "seed" else f"{row['kind'][0]}: {row['shards']}"


def spread(names: list, cap: int) -> list:
    """At most `cap` of `names` (sorted), evenly spaced, first and last kept: a capped figure
    shows the sets across the whole list rather than the first few."""
    names = sorted(names)
    if len(names) <= cap:
        return names
    return [names[round(i * (len(names) - 1) / (cap - 1))] for i in range(cap)]


def heatmap(table: pd.DataFrame, out: str) -> None:
    """Rows: models; columns: eval sets; colour: log2 of perplexity relative to the seed. At most
    MAX_HEATMAP_ROWS models (the seed and the best by mean colour over every set) and MAX_COLUMNS
    sets (evenly spaced by name, then the mean over all sets)."""
    wide = table.pivot_table(index="model", columns="eval_set", values="ppl")
    meta = table.drop_duplicates("model").set_index("model")
    rel = np.log2(wide / wide.loc["seed"]) if "seed" in wide.index else np.log(wide)
    mean = rel.mean(axis=1)
    order = mean.sort_values().index.tolist()
    n_models, n_sets = len(order), rel.shape[1]
    if n_models > MAX_HEATMAP_ROWS:
        seed = [m for m in order if meta.loc[m, "kind"] == "seed"]
        best = [m for m in order if m not in seed][:MAX_HEATMAP_ROWS - len(seed)]
        order = [m for m in order if m in set(seed + best)]
    columns = list(rel.columns)
    if n_sets > MAX_COLUMNS:
        columns = spread(columns, MAX_COLUMNS - 1)
    rel, wide = rel.loc[order, columns], wide.loc[order, columns]
    if n_sets > MAX_COLUMNS:
        rel[f"mean of all {n_sets}"] = mean.loc[order]
        wide[f"mean of all {n_sets}"] = np.nan
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * min(rel.shape[1], 12) + 0.3 * max(0, rel.shape[1] - 12),
                                    1.5 + 0.28 * len(order)))
    lim = float(np.nanmax(np.abs(rel.values))) or 1.0
    im = ax.imshow(rel.values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(rel.shape[1]), rel.columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(order)), [_label(meta.loc[m]) for m in order], fontsize=7)
    if rel.shape[1] <= 12:
        for i in range(len(order)):
            for j in range(rel.shape[1]):
                if not np.isnan(wide.values[i, j]):
                    ax.text(j, i, f"{wide.values[i, j]:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="log2(ppl / seed ppl)  (blue = better than seed)")
    shown = []
    if len(order) < n_models:
        shown.append(f"the seed and the best {len(order) - 1} of {n_models} models by mean colour over all sets")
    if n_sets > MAX_COLUMNS:
        shown.append(f"{MAX_COLUMNS - 1} of {n_sets} eval sets, evenly spaced by name, and the mean over all")
    ax.set_title("Perplexity of every model on every eval set" + (f"\n({'; '.join(shown)})" if shown else "")
                 + "\ncell text: ppl; s = shard model, m = merged mixture, f = trained on the mixture", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)


def ranking(table: pd.DataFrame, out: str, top: int = 10) -> None:
    """For each eval set, the `top` mixtures (shard or merged models) with the lowest perplexity.
    With more than MAX_PANELS sets: the mean log2 perplexity relative to the seed over all sets,
    then MAX_PANELS - 1 sets evenly spaced by name."""
    candidates = table[table["kind"].isin(["shard", "merged"])]
    seed = table[table["kind"] == "seed"].set_index("eval_set")["ppl"]
    all_sets = sorted(candidates["eval_set"].unique())
    panels = {}
    if len(all_sets) > MAX_PANELS:
        rel = np.log2(candidates["ppl"] / candidates["eval_set"].map(seed)) if len(seed) else np.log(candidates["ppl"])
        mean = candidates.assign(ppl=rel).groupby(["model", "kind", "shards"], as_index=False)["ppl"].mean()
        panels[f"mean over all {len(all_sets)} eval sets"] = (mean, "mean log2(ppl / seed ppl)", 0.0)
        all_sets = spread(all_sets, MAX_PANELS - 1)
    for name in all_sets:
        panels[name] = (candidates[candidates["eval_set"] == name], "perplexity (lower is better)", seed.get(name))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 0.32 * top * rows + 1.2 * rows), squeeze=False)
    for ax, (name, (scored, xlabel, reference)) in zip(axes.flat, panels.items()):
        best = scored.nsmallest(top, "ppl").iloc[::-1]
        colors = ["tab:orange" if k == "shard" else "tab:blue" for k in best["kind"]]
        ax.barh(range(len(best)), best["ppl"], color=colors)
        ax.set_yticks(range(len(best)), best["shards"], fontsize=7)
        values = list(best["ppl"])
        if reference is not None:
            ax.axvline(reference, color="black", ls="--", lw=1, label="seed")
            values.append(reference)
        lo, hi = min(values), max(values)
        pad = 0.05 * (hi - lo or abs(hi) or 1.0)
        ax.set_xlim(lo - pad if xlabel.startswith("mean") else lo * 0.95, hi + pad)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    capped = "" if len(panels) == len(set(candidates["eval_set"])) else \
        f"\n{len(panels) - 1} of {candidates['eval_set'].nunique()} eval sets, evenly spaced by name, after the mean over all"
    fig.suptitle(f"Best {top} mixtures per eval set (orange: one shard, blue: merged; dashed: seed){capped}",
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
