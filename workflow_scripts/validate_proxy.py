"""Rule agreement: every proxy (merged by each method, naive, ensemble, calibrated, regression)
against the really trained mixtures, within groups of equal budget; the calibration, predictions
for every scored mixture, the regression families compared, trust warnings, scatter and cost plots."""
import json

import numpy as np
import pandas as pd

from shardmix import atomic, calibration, decision, ensemble, html_tables, regression, scores, trust, validation
from shardmix.jobs import job_args

args = job_args()


def write_csv(frame: pd.DataFrame, path: str) -> None:
    with atomic.file(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")


table = scores.load(args["scores"])
merged = [validation.proxy_name(m) for m in args["methods"]]
cache = ensemble.Cache(args["ensemble_dir"], args["groups"])
pairs = validation.paired(table, args["methods"], args["fixed_budget"], cache)
ensemble_cost = (f"ensemble proxy: {cache.calls} (mixture, eval set) scores from cached token NLLs in {cache.seconds:.3f} s "
      f"({1000 * cache.seconds / max(cache.calls, 1):.2f} ms each)")
per_shard = pairs["framing"] == validation.PER_SHARD
calibrated, fits, loo = calibration.calibrate(pairs[per_shard], merged[0])
pairs.loc[per_shard, "calibrated"] = loo

# the regression families, each judged by leave-one-out within each framing; FAMILY is the proxy
families = []
for family in regression.FAMILIES:
    column = f"regression:{family}"
    pairs[column] = np.nan
    for framing, g in pairs.groupby("framing"):
        pairs.loc[g.index, column] = regression.loo_column(g, family, merged[0], args["shards"])
    families.append(validation.agreement(pairs, [column]).query("eval_set == 'ALL'"))
pairs["regression"] = pairs[f"regression:{regression.FAMILY}"]
family_table = pd.concat(families, ignore_index=True)
write_csv(family_table, args["regression"])

# which proxy ranks each set: the best pairwise accuracy out of sample over mixtures of equal
# budget (per shard), the simpler proxy on a tie
RANKERS = {merged[0]: "merged", "calibrated": "calibrated", "regression": "regression"}
for i, row in calibrated.iterrows():
    accuracy = {name: validation.within_budget_pairwise(pairs, column, row.eval_set)
                for column, name in RANKERS.items() if pairs[column].notna().any()}
    calibrated.loc[i, "regression_pairwise"] = accuracy.get("regression", np.nan)
    best = max(np.nan_to_num(a, nan=-1) for a in accuracy.values())
    calibrated.loc[i, "ranked_by"] = next(n for n, a in accuracy.items() if np.nan_to_num(a, nan=-1) == best)
write_csv(calibrated, args["calibration"])
fitted = {name: regression.fit(g, regression.FAMILY, merged[0], args["shards"])
          for name, g in pairs[per_shard].groupby("eval_set")}


def regression_ppl(eval_set, rows):
    model = fitted.get(eval_set)
    rows = rows.rename(columns={"ppl": merged[0]})
    return None if model is None else regression.predict(model, rows, regression.FAMILY, merged[0], args["shards"])


proxies = merged + ["naive", "ensemble", "calibrated", "regression"]
agreement = validation.agreement(pairs, [p for p in proxies if pairs[p].notna().any()])
write_csv(agreement, args["agreement"])
write_csv(pairs.drop(columns=["weighted", "members"]), args["pairs"])
write_csv(calibration.predictions(table, args["methods"][0], fits, calibrated, regression_ppl), args["predictions"])

with open(f"{args['seed_dir']}/config.json") as f:
    vocab = json.load(f)["vocab_size"]
warnings = trust.proxy_warnings(agreement) + trust.seed_warnings(table, vocab) + trust.shard_warnings(table)
trust.write(args["warnings"], warnings)

n_trained = pairs.groupby("framing")["mixture"].nunique().to_dict()
note = (f"Trained mixtures per framing: {n_trained}. Figures are computed within a group of equal budget "
        "(budget_tokens; `pooled` mixes the budgets of the per-shard framing: a k-shard mixture trains on k shard "
        "budgets, which no proxy sees). Row ALL is the mean of the per-eval-set rows (top1: the share of eval sets "
        "whose pick is the truly best); *_lo/*_hi: a "
        f"{decision.LEVEL:.0%} bootstrap interval over the trained mixtures. calibrated and regression are "
        "leave-one-out predictions.")
columns = ["proxy", "framing", "budget_tokens", "n_mixtures", *decision.METRICS, *validation.INTERVAL]
sections = [("Trust warnings", "Read these first.", pd.DataFrame({"warning": warnings or ["none"]})),
            ("Decision quality of every proxy (ALL rows; agreement.csv has every eval set)", note,
             agreement[agreement["eval_set"] == "ALL"][columns]),
            ("Regression families, leave-one-out (the proxy `regression` is " + regression.FAMILY + ")",
             "ridge regressions of log ppl, fitted per eval set on the other trained mixtures",
             family_table[columns]),
            ("Calibration per eval set: log true = a + b log merged + c log n_eff", "raw_*: the merged proxy; "
             "loo_*: the calibrated one, each mixture predicted by a fit on the others; *_pairwise over pairs of equal "
             "budget. ranked_by: the proxy that ranks the set: of merged, calibrated and regression, the one with "
             "the best pairwise accuracy out of sample (the simpler on a tie).", calibrated)]
html_tables.write(args["html"], sections)
print("\n".join(["TRUST WARNINGS:"] + [f"  - {w}" for w in warnings] if warnings else ["no trust warnings"]) + "\n")
print(ensemble_cost)
for heading, _, frame in sections[1:]:
    print(f"{heading}:\n{frame.to_string(index=False)}\n")
validation.scatter_plot(pairs[per_shard], merged[0], args["scatter"])
curve = validation.cost_curve(args["shards"], args["mixtures"], args["tokens_per_shard"])
validation.cost_plot(curve, args["cost"])
print(curve.to_string(index=False))
