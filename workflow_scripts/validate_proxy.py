"""Rule agreement: merged (every method), calibrated and naive proxies against really trained
mixtures; the calibration, predictions for every scored mixture, scatter and cost plots."""
import pandas as pd

from shardmix import calibration, html_tables, scores, validation
from shardmix.jobs import job_args

args = job_args()
table = scores.load(args["scores"])
proxies = [validation.proxy_name(m) for m in args["methods"]]
pairs = validation.paired(table, args["methods"])
calibrated, fits, loo = calibration.calibrate(pairs, proxies[0])
calibrated.to_csv(args["calibration"], index=False, float_format="%.4f")
if loo.notna().any():
    pairs["calibrated"] = loo
    proxies.append("calibrated")
calibration.predictions(table, args["methods"][0], fits, calibrated).to_csv(
    args["predictions"], index=False, float_format="%.4f")
n_trained = pairs["mixture"].nunique()
note = (f"{n_trained} really trained mixtures. Row ALL is the mean of the per-eval-set rows (top1_agree: the "
        "fraction of eval sets whose pick is the truly best), not a figure pooled over eval sets; regret is the true "
        "ppl of the proxy's pick over the best true ppl, minus 1.")
agreement = validation.agreement(pairs, [p for p in proxies if p != "calibrated"])
if "calibrated" in proxies:  # on the eval sets with enough trained mixtures to fit
    agreement = pd.concat([agreement, validation.agreement(pairs[pairs["calibrated"].notna()], ["calibrated"])],
                          ignore_index=True)
naive = validation.agreement(pairs, ["naive"])
agreement.to_csv(args["agreement"], index=False, float_format="%.4f")
naive.to_csv(args["naive"], index=False, float_format="%.4f")
sections = [("Merged models (shardmix)" + (" and the calibrated proxy (leave-one-out)" if "calibrated" in proxies
                                           else ""), note, agreement),
            ("Calibration per eval set: log true = a + b log merged + c log n_eff", "raw_*: the merged proxy; "
             "loo_*: the calibrated one, each mixture predicted by a fit on the others. ranked_by: the proxy that "
             "ranks the set (calibrated where its leave-one-out regret is lower).", calibrated),
            ("Naive proxy: weighted mean perplexity of the member shard models", note, naive)]
html_tables.write(args["html"], sections)
for heading, _, frame in sections:
    print(f"{heading}:\n{frame.to_string(index=False)}\n")
validation.scatter_plot(pairs, proxies[0], args["scatter"])
curve = validation.cost_curve(args["shards"], args["mixtures"], args["tokens_per_shard"])
validation.cost_plot(curve, args["cost"])
print(curve.to_string(index=False))
