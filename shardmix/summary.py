"""The run's answers, first: for every eval set and search target, the best mixture by the proxy
that ranks it, its perplexity, the seed's, the best really trained mixture, and how far the
proxy can be trusted, in plain words. Written as results/summary.csv, an HTML table, and the
report's landing text.

Memory: the scores of one eval set at a time are compared; the table has one row per eval set
and target.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from shardmix import naming, trust

COLUMNS = ["answer_for", "kind", "best_mixture", "ranked_by", "ppl", "seed_ppl", "vs_seed", "best_trained",
           "best_trained_ppl", "best_trained_budget_tokens", "trust", "trust_note", "mergekit"]
RANKER_PROXY = {"calibrated": "calibrated", "regression": "regression"}  # else the merged proxy (merged:<label>)
HIGH = 0.9  # pairwise accuracy from which a proxy's order is called reliable
HOVER = "Hover a shortened name for the whole mixture, a trust word for why."
FEW = 4  # fewer trained mixtures than this check a proxy too little to say more than "weak"


COLUMNS_READ = ["model", "kind", "shards", "eval_set", "ppl", "budget_tokens"]


def _chunks(path: str):
    """The scores table in pieces of the columns read here (Parquet row groups or CSV chunks)."""
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=65536, columns=COLUMNS_READ):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, keep_default_na=False, usecols=COLUMNS_READ, chunksize=65536,
                               dtype={"shards": str}, converters={"ppl": lambda v: float(v) if v else np.nan})


def read_scores(path: str) -> pd.DataFrame:
    """What the summary needs of a scores table of any size: the seed's and the trained models'
    rows, and the lowest merged or shard ppl per eval set (the answer where nothing ranks)."""
    kept, best = [], {}
    for chunk in _chunks(path):
        scored = chunk["kind"].isin(["merged", "shard"])
        kept.append(chunk[~scored])
        for eval_set, g in chunk[scored].dropna(subset=["ppl"]).groupby("eval_set"):
            r = g.loc[g["ppl"].idxmin()]
            if eval_set not in best or r["ppl"] < best[eval_set]["ppl"]:
                best[eval_set] = r
    return pd.concat(kept + [pd.DataFrame(list(best.values()), columns=COLUMNS_READ)], ignore_index=True)


def rank_one(path: str) -> pd.DataFrame:
    """The rank-1 rows of predictions.csv (one per eval set), read in chunks."""
    return pd.concat([c[c["rank"] == 1] for c in pd.read_csv(path, chunksize=65536)], ignore_index=True)


def trust_words(agreement: pd.DataFrame | None, proxy: str, eval_set: str) -> tuple[str, str]:
    """(level, sentence) of how well `proxy` ordered the trained mixtures on `eval_set`: the
    group of equal budget with most trained mixtures, per-shard framing (as the ranking uses)."""
    if agreement is None:
        return "unchecked", "no mixture was really trained (validation off): the proxy is not checked on this run"
    rows = agreement[(agreement["proxy"] == proxy) & (agreement["eval_set"] == eval_set)
                     & (agreement["framing"] == "per_shard") & (agreement["budget_tokens"].astype(str) != "pooled")]
    rows = rows.dropna(subset=["pairwise_accuracy"])
    if rows.empty:
        return "unchecked", f"{proxy} was not compared with trained mixtures on {eval_set}"
    r = rows.loc[rows["n_mixtures"].astype(int).idxmax()]
    n, acc, lo, hi = int(r["n_mixtures"]), r["pairwise_accuracy"], r["pairwise_accuracy_lo"], r["pairwise_accuracy_hi"]
    sentence = (f"{proxy} ordered {acc:.0%} of pairs of {n} trained mixtures as training did "
                f"(interval {lo:.0%}-{hi:.0%}, at {int(r['budget_tokens']):,} tokens)")
    if n < FEW or hi - lo > trust.WIDE:
        return "weak", sentence + "; too few trained mixtures to be sure"
    if acc < trust.LOW_PAIRWISE:
        return "low", sentence
    return ("high" if acc >= HIGH else "moderate"), sentence


def _proxy_ppl(row) -> float:
    if row["ranked_by"] == "calibrated" and not np.isnan(row["predicted_ppl"]):
        return row["predicted_ppl"]
    if row["ranked_by"] == "regression" and not np.isnan(row["regression_ppl"]):
        return row["regression_ppl"]
    return row["merged_ppl"]


def _best_trained(scores: pd.DataFrame, eval_set: str, members=None) -> tuple[str, float, float]:
    trained = scores[(scores["eval_set"] == eval_set)
                     & (scores["kind"].eq("full") | scores["kind"].str.startswith(naming.FIXED))]
    if members is not None:
        trained = trained[trained["shards"].map(lambda s: set(s.split(naming.SEP)) <= members)]
    trained = trained.dropna(subset=["ppl"])
    if trained.empty:
        return "", np.nan, np.nan
    r = trained.loc[trained["ppl"].idxmin()]
    return r["model"].split("/", 1)[1], float(r["ppl"]), float(r["budget_tokens"])


def eval_set_rows(scores: pd.DataFrame, predictions: pd.DataFrame | None, agreement: pd.DataFrame | None,
                  merged_proxy: str) -> list[dict]:
    """One row per eval set: the proxy's rank-1 mixture (predictions), or the lowest merged or
    shard perplexity where nothing was trained to rank with."""
    seed = scores[scores["kind"] == "seed"].set_index("eval_set")["ppl"]
    rows = []
    for eval_set in sorted(scores["eval_set"].unique()):
        if predictions is not None and (predictions["eval_set"] == eval_set).any():
            p = predictions[predictions["eval_set"] == eval_set].sort_values("rank").iloc[0]
            mixture, ranked_by, ppl = p["mixture"], p["ranked_by"], _proxy_ppl(p)
        else:
            scored = scores[(scores["eval_set"] == eval_set) & scores["kind"].isin(["merged", "shard"])].dropna(
                subset=["ppl"])
            if scored.empty:
                continue
            r = scored.loc[scored["ppl"].idxmin()]
            mixture, ranked_by, ppl = r["model"].split("/", 1)[1], "merged", float(r["ppl"])
        trained, trained_ppl, budget = _best_trained(scores, eval_set)
        level, note = trust_words(agreement, RANKER_PROXY.get(ranked_by, merged_proxy), eval_set)
        seed_ppl = float(seed.get(eval_set, np.nan))
        rows.append({"answer_for": eval_set, "kind": "eval set", "best_mixture": mixture, "ranked_by": ranked_by,
                     "ppl": ppl, "seed_ppl": seed_ppl, "vs_seed": ppl / seed_ppl - 1, "best_trained": trained,
                     "best_trained_ppl": trained_ppl, "best_trained_budget_tokens": budget,
                     "trust": level, "trust_note": note})
    return rows


def target_rows(found: pd.DataFrame, checked: pd.DataFrame | None) -> list[dict]:
    """One row per search target: its searched mixture, and what really training it showed."""
    rows = []
    checked = None if checked is None else checked.set_index("target")
    for r in found.itertuples():
        row = {"answer_for": r.target, "kind": "search target", "best_mixture": r.weights, "ranked_by": r.ranked_by,
               "ppl": r.predicted_ppl, "seed_ppl": r.seed_ppl, "vs_seed": r.predicted_ppl / r.seed_ppl - 1,
               "best_trained": "", "best_trained_ppl": np.nan, "best_trained_budget_tokens": np.nan}
        if checked is not None and r.target in checked.index:
            c = checked.loc[r.target]
            better = c["search_true_ppl"] <= c["uniform_true_ppl"]
            row.update(best_trained=r.weights if better else "uniform over all shards",
                       best_trained_ppl=min(c["search_true_ppl"], c["uniform_true_ppl"]),
                       best_trained_budget_tokens=c["budget_tokens"])
            note = (f"trained on {int(c['budget_tokens']):,} tokens, the searched mixture reached ppl "
                    f"{c['search_true_ppl']:.2f}; uniform weights {c['uniform_true_ppl']:.2f}; the seed {c['seed_ppl']:.2f}")
            level = "confirmed" if better and c["search_true_ppl"] < c["seed_ppl"] else "not confirmed"
        else:
            level, note = "unchecked", "the searched mixture was not trained (validation.search off)"
        if isinstance(r.flag, str) and r.flag:
            note += f"; before training, the search flagged: {r.flag}"
        rows.append({**row, "trust": level, "trust_note": note})
    return rows


def table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _cell(text: str, full: str | None = None) -> str:
    title = f" title='{html.escape(full, quote=True)}'" if full and full != text else ""
    return f"<td{title}>{html.escape(text)}</td>"


def _number(x, fmt="{:.2f}") -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else fmt.format(x)


def html_table(frame: pd.DataFrame, width: int = 24) -> str:
    """The summary as one compact HTML table: short names, the whole one (and the trust note) on hover."""
    head = "<tr><th>For</th><th>Best mixture</th><th>ppl / seed</th><th>Best trained (ppl)</th><th>Trust</th></tr>"
    body = []
    for r in frame.itertuples():
        what = r.answer_for + (" (target)" if r.kind == "search target" else "")
        trained = (f"{naming.short(r.best_trained, width)} ({_number(r.best_trained_ppl)}, "
                   f"{_number(r.best_trained_budget_tokens, '{:,.0f}')} tok)") if r.best_trained else "none"
        body.append("<tr>" + _cell(what) + _cell(naming.short(r.best_mixture, width), r.best_mixture)
                    + _cell(f"{_number(r.ppl)} / {_number(r.seed_ppl)}", f"ranked by the {r.ranked_by} proxy")
                    + _cell(trained, r.best_trained) + _cell(r.trust, r.trust_note) + "</tr>")
    return ("<table class='summary' style='font-size:12px;line-height:1.3'>" + head + "".join(body) + "</table>")


def notes_html(frame: pd.DataFrame) -> str:
    """Every row's trust note in full, as an HTML list."""
    return "<ul>" + "".join(f"<li><b>{html.escape(r.answer_for)}</b> ({html.escape(r.trust)}): "
                            f"{html.escape(r.trust_note)}</li>" for r in frame.itertuples()) + "</ul>"


def landing(frame: pd.DataFrame, description: str) -> str:
    """The report's landing text (reStructuredText): the answers, then what the workflow does."""
    table_html = html_table(frame).replace("\n", " ")
    counts = frame["trust"].value_counts().to_dict()
    said = ", ".join(f"{n} {level}" for level, n in counts.items())
    return ("Answers\n=======\n\n"
            f"Best mixture per eval set (by the proxy that ranks it) and per search target. {HOVER} "
            f"Trust: {said}. The same table is ``summary.csv``; every score is under *Scores*, every check "
            "under *Validation*.\n\n"
            f".. raw:: html\n\n   {table_html}\n\n"
            f"How it works\n============\n\n{description}")
