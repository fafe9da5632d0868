"""The scores table: one row per (model, eval set)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["model", "kind", "shards", "eval_set", "tokens", "bytes", "nll", "ppl", "bpb"]
KIND_ORDER = {"seed": 0, "shard": 1, "merged": 2, "full": 3}


def collect(scores_dir: str, eval_sets: list[str], batches: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(Path(scores_dir) / e / f"{b}.csv", keep_default_na=False)
              for e in eval_sets for b in batches]
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    dupes = table.duplicated(["model", "eval_set"])
    if dupes.any():
        row = table[dupes].iloc[0]
        raise ValueError(f"model {row['model']} is scored twice on {row['eval_set']}")
    order = table["kind"].map(KIND_ORDER)
    return (table.assign(_k=order, _n=table["shards"].str.count(r"\+"))
            .sort_values(["_k", "_n", "shards", "eval_set"]).drop(columns=["_k", "_n"])
            .reset_index(drop=True))


def ppl_by_model(table: pd.DataFrame, max_rows: int = 500) -> tuple[pd.DataFrame, str]:
    """One row per model, one perplexity column per eval set, best mean relative perplexity first."""
    wide = table.pivot_table(index=["model", "kind", "shards"], columns="eval_set", values="ppl")
    order = (wide / wide.min()).mean(axis=1).sort_values().index
    wide = wide.loc[order].reset_index()
    note = "Perplexity (lower is better); rows sorted by mean perplexity relative to the best model per eval set."
    if len(wide) > max_rows:
        note += f" Showing the best {max_rows} of {len(wide)} models; scores.csv has them all."
    return wide.head(max_rows), note


def load(path: str) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)
