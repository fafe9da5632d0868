"""The scores table: one row per (model, eval set)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shardmix import checksums, naming

# `weights`: member weights in the order of `shards`; `method`: how a merged model was merged
COLUMNS = ["model", "kind", "shards", "weights", "method", "eval_set", "tokens", "bytes", "nll", "ppl", "bpb"]
# the table adds each model's training tokens (shardmix.naming.budget_tokens), the same for every batch
TABLE_COLUMNS = COLUMNS + ["budget_tokens"]
KIND_ORDER = {"seed": 0, "shard": 1, "merged": 2, "full": 3, "fixed": 4}


def with_budget(frame: pd.DataFrame, shard_tokens: int) -> pd.DataFrame:
    budgets = {m: naming.budget_tokens(m, shard_tokens) for m in frame["model"].unique()}
    return frame.assign(budget_tokens=frame["model"].map(budgets).astype("Int64"))


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


# the table's columns as Parquet stores them
SCHEMA = {"model": "string", "kind": "string", "shards": "string", "weights": "string", "method": "string",
          "eval_set": "string", "tokens": "int64", "bytes": "int64", "nll": "float64", "ppl": "float64",
          "bpb": "float64", "budget_tokens": "int64"}
ROW_GROUP = 100_000  # rows buffered before a Parquet row group is written


def _arrow_schema():
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in SCHEMA.items()])


def write_parquet(scores_dir: str, groups: list[str], batches: list[str], out: str, shard_tokens: int) -> dict:
    """Every batch's scores into one Parquet file at `out` (whole or not at all), a batch at a
    time: memory grows with one batch and the models' names, not with the table. Returns the
    table's rows, models and eval sets."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shardmix import atomic

    schema, rows, models, sets = _arrow_schema(), 0, set(), set()
    with atomic.file(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        buffered = []
        for g in groups:
            in_group = set()  # a model scored twice on a set is a model in two batches of one group
            for b in batches:
                frame = with_budget(read_batch(Path(scores_dir) / g / f"{b}.csv")[COLUMNS], shard_tokens)
                twice = in_group.intersection(frame["model"].unique())
                if twice:
                    raise ValueError(f"model {sorted(twice)[0]} is scored twice in eval-set group {g}")
                in_group.update(frame["model"].unique())
                sets.update(frame["eval_set"].unique())
                rows += len(frame)
                buffered.append(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
                if sum(len(t) for t in buffered) >= ROW_GROUP:
                    writer.write_table(pa.concat_tables(buffered))
                    buffered = []
            models |= in_group
        if buffered:
            writer.write_table(pa.concat_tables(buffered))
    return {"rows": rows, "models": len(models), "eval_sets": len(sets)}


def collect(scores_dir: str, groups: list[str], batches: list[str], shard_tokens: int) -> pd.DataFrame:
    """Every batch's scores as one sorted table, held whole (scores.csv, for tables that are small)."""
    frames = [read_batch(Path(scores_dir) / g / f"{b}.csv") for g in groups for b in batches]
    table = with_budget(pd.concat(frames, ignore_index=True)[COLUMNS], shard_tokens)
    dupes = table.duplicated(["model", "eval_set"])
    if dupes.any():
        row = table[dupes].iloc[0]
        raise ValueError(f"model {row['model']} is scored twice on {row['eval_set']}")
    return sort(table)


def sort(table: pd.DataFrame) -> pd.DataFrame:
    """Seed, shard models, merged mixtures (fewest members first), trained mixtures."""
    order = table["kind"].map(KIND_ORDER)
    return (table.assign(_k=order, _n=table["shards"].str.count(r"\+"))
            .sort_values(["_k", "_n", "shards", "weights", "method", "eval_set"]).drop(columns=["_k", "_n"])
            .reset_index(drop=True))


TRAINED = "trained"  # full and fixed-budget mixtures: really trained, k budgets for k members


def ppl_by_model(table: pd.DataFrame, max_rows: int = 500) -> list[tuple[str, pd.DataFrame, str]]:
    """(heading, one row per model with a perplexity column per eval set, note) for the seed,
    shard and merged models, then for the really trained mixtures: a trained mixture had k
    shard budgets, so it is not ranked among models of one. Rows by mean relative perplexity."""
    trained = table["kind"].eq("full") | table["kind"].str.startswith(naming.FIXED)
    out = []
    for heading, part in (("Seed, shard and merged models (the proxy)", table[~trained]),
                          ("Really trained mixtures (k shards: k shard budgets, or the budget in the name)",
                           table[trained])):
        if part.empty:
            continue
        wide = part.pivot_table(index=["model", "kind"], columns="eval_set", values="ppl")
        order = (wide / wide.min()).mean(axis=1).sort_values().index
        wide = wide.loc[order].reset_index()
        wide.columns.name = None
        note = ("Perplexity (lower is better); the best per eval set marked; rows sorted by mean perplexity "
                "relative to the best model per eval set; hover a name for the whole of it.")
        if len(wide) > max_rows:
            note += f" Showing the best {max_rows} of {len(wide)} models; scores.parquet has them all."
        out.append((heading, wide.head(max_rows), note))
    return out


def load(path: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The scores table (Parquet, or a CSV written by this module), optionally only `columns`:
    Parquet reads just those from disk."""
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=columns).to_pandas()
    return pd.read_csv(path, keep_default_na=False, dtype={"weights": str}, usecols=columns)
