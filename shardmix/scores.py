"""The scores table: one row per (model, eval set)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shardmix import checksums

# `weights`: member weights in the order of `shards`; `method`: how a merged model was merged
COLUMNS = ["model", "kind", "shards", "weights", "method", "eval_set", "tokens", "bytes", "nll", "ppl", "bpb"]
KIND_ORDER = {"seed": 0, "shard": 1, "merged": 2, "full": 3}


def read_batch(path: Path) -> pd.DataFrame:
    """One evaluation job's scores, checked against its seal and its columns; a damaged batch is
    set aside (the next run scores it again) and named."""
    checksums.check(path)
    try:
        frame = pd.read_csv(path, keep_default_na=False, dtype={"weights": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:  # EmptyDataError is a ValueError
        why = str(e)
    else:
        missing = [c for c in COLUMNS if c not in frame.columns]
        if not missing and not frame.empty:
            return frame
        why = f"no column {', '.join(missing)}" if missing else "no rows"
    # unsealed (written before seals) or sealed over bad bytes: moved away, the next run scores it again
    aside = checksums.set_aside(path)
    raise checksums.DamagedArtifact(f"{path}: damaged score batch ({why}); moved to {aside}; rerun snakemake, "
                                    "which scores the batch again")


def collect(scores_dir: str, groups: list[str], batches: list[str]) -> pd.DataFrame:
    frames = [read_batch(Path(scores_dir) / g / f"{b}.csv") for g in groups for b in batches]
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    dupes = table.duplicated(["model", "eval_set"])
    if dupes.any():
        row = table[dupes].iloc[0]
        raise ValueError(f"model {row['model']} is scored twice on {row['eval_set']}")
    order = table["kind"].map(KIND_ORDER)
    return (table.assign(_k=order, _n=table["shards"].str.count(r"\+"))
            .sort_values(["_k", "_n", "shards", "weights", "method", "eval_set"]).drop(columns=["_k", "_n"])
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
    return pd.read_csv(path, keep_default_na=False, dtype={"weights": str})
