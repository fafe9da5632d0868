"""Rule summary: the run's answers first (shardmix.summary), each best mixture as a mergekit config."""
import os

import pandas as pd

from shardmix import atomic, html_tables, merging, naming, summary, validation
from shardmix.jobs import job_args
from shardmix.merging import mergekit

args = job_args()
method = merging.method(args["method"])  # the first merge method: the one scored, calibrated and searched
seed = args["seed"] if method.needs_seed else None
table = summary.read_scores(args["scores"])
optional = {k: pd.read_csv(args[k]) if args.get(k) else None for k in ("agreement", "best_mixtures", "search_validation")}
optional["predictions"] = summary.rank_one(args["predictions"]) if args.get("predictions") else None
rows = summary.eval_set_rows(table, optional["predictions"], optional["agreement"], validation.proxy_name(method.label))
if optional["best_mixtures"] is not None:
    rows += summary.target_rows(optional["best_mixtures"], optional["search_validation"])
frame = summary.table(rows)

os.makedirs(args["mergekit"], exist_ok=True)
paths = []
for r in frame.itertuples():
    paths.append(f"{args['mergekit']}/{r.kind.replace(' ', '_')}-{naming.safe_name(r.answer_for)}.yaml")
    mergekit.write(paths[-1], r.best_mixture, {s: args["shard_model"].format(shard=s) for s in naming.members(r.best_mixture)},
                   method, seed)
frame["mergekit"] = paths

with atomic.file(args["csv"]) as tmp:
    frame.to_csv(tmp, index=False, float_format="%.4f")
html_tables.write(args["html"], [("Best mixture per eval set and search target", summary.HOVER,
                                   summary.html_table(frame) + summary.notes_html(frame))], seal=True)
# the workflow's description follows the answers; read from the code, not an input: a fresh
# clone's newer file would otherwise rerun this job
with open(os.path.join(os.environ["SHARDMIX_HOME"], "report", "workflow.rst")) as f:
    atomic.write_text(args["landing"], summary.landing(frame, f.read()), seal=False)
print(frame.drop(columns=["trust_note", "mergekit"]).to_string(index=False))
