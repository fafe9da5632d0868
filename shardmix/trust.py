"""Trust signals: findings that undercut a run's answers, said in plain words at the top of the
agreement's log and report (results/validation/warnings.txt) rather than left in a table."""

from __future__ import annotations

import math

import pandas as pd

from shardmix import atomic

LOW_PAIRWISE = 0.7  # below it a proxy orders fewer than 7 in 10 pairs of trained mixtures as training does
WIDE = 0.3  # a bootstrap interval of pairwise accuracy wider than this proves little
UNTRAINED = 0.5  # a seed whose ppl exceeds this share of the vocabulary has barely learned


def proxy_warnings(agreement: pd.DataFrame) -> list[str]:
    out = []
    rows = agreement[(agreement["eval_set"] == "ALL") & (agreement["budget_tokens"] != "pooled")]
    for r in rows.itertuples():
        where = f"{r.proxy} ({r.framing}, {r.budget_tokens} tokens, {r.n_mixtures} trained mixtures)"
        if r.pairwise_accuracy < LOW_PAIRWISE:
            out.append(f"{where} orders only {r.pairwise_accuracy:.0%} of pairs of trained mixtures correctly")
        elif r.pairwise_accuracy_hi - r.pairwise_accuracy_lo > WIDE:
            out.append(f"{where}: pairwise accuracy {r.pairwise_accuracy:.0%} but its interval "
                       f"[{r.pairwise_accuracy_lo:.0%}, {r.pairwise_accuracy_hi:.0%}] is wide: too few trained "
                       "mixtures to trust it")
    return out


def seed_warnings(table: pd.DataFrame, vocab_size: int) -> list[str]:
    seed = table[table["kind"] == "seed"]
    if seed.empty:
        return []
    worst = seed.loc[seed["ppl"].idxmax()]
    if worst["ppl"] > UNTRAINED * vocab_size:
        return [f"the seed looks untrained: ppl {worst['ppl']:.0f} on {worst['eval_set']} against a vocabulary of "
                f"{vocab_size}; merged models of an untrained seed say little about trained mixtures"]
    return []


def shard_warnings(table: pd.DataFrame) -> list[str]:
    """A shard model worse than the seed on its own held-out set: its continued pretraining hurt
    the very domain it trained on (learning rate too high, too few tokens, a domain the seed knows)."""
    seed = table[table["kind"] == "seed"].set_index("eval_set")["ppl"]
    own = table[(table["kind"] == "shard") & (table["shards"] == table["eval_set"])]
    return [f"shard model {r.shards} is worse than the seed on its own held-out set: ppl {r.ppl:.2f} against "
            f"{seed[r.eval_set]:.2f}" for r in own.itertuples()
            if r.eval_set in seed.index and r.ppl > seed[r.eval_set] and not math.isnan(r.ppl)]


def write(path: str, warnings: list[str]) -> None:
    atomic.write_text(path, "".join(f"WARNING: {w}\n" for w in warnings) or "no warnings\n")
