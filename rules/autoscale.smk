# AutoScale: DDO at two small budgets, by really training each perturbation run and by merging
# the domains' shard models (the proxy), projected to larger budgets; one larger budget is
# really trained with the projected, the uniform and the small-scale-optimal weights.
import re

ASC = CFG["autoscale"]
AUTOSCALE = (ASC["folder"] or f"{R}/autoscale").rstrip("/")
# a study in its own folder keeps its logs there, so two studies over one run never share a log
ASC_LOGS = f"{AUTOSCALE}/logs" if ASC["folder"] else f"{LOGS}/autoscale"
ASC_METHODS = ["real"] + (["proxy"] if ASC["proxy"] else [])
CHECK_WEIGHTINGS = ["predicted"] + (["predicted_proxy"] if ASC["proxy"] else []) + ["uniform", "small_scale_optimum"]


def autoscale_domains():
    """Domain -> its shards, checked against the run's shards: a name is a shard, or a domain
    cut into base units by field_units (the shards <name>-NNN), unless its shards are listed."""
    order = list(shard_sources())
    domains, owner, problems = {}, {}, []
    for i, d in enumerate(ASC["domains"]):
        name = d if isinstance(d, str) else d["name"]
        shards = d["shards"] if isinstance(d, dict) else (
            [d] if d in order else [s for s in order if re.fullmatch(re.escape(d) + r"-\d{3,}", s)])
        unknown = [s for s in shards if s not in order]
        if not shards or unknown:
            problems.append(f"autoscale.domains[{i}]: {(unknown or [name])[0]!r} is neither a shard of this run nor "
                            f"a domain cut into shards {name}-NNN (shards: {', '.join(order)})")
        for s in shards:
            if s in owner:
                problems.append(f"autoscale.domains[{i}]: shard {s!r} is already in domain {owner[s]!r}")
            owner[s] = name
        domains[name] = shards
    unknown = [t for t in ASC["targets"] if t not in eval_sets()]
    if unknown:
        problems.append(f"autoscale.targets names {unknown[0]!r}, which is not an eval set of this run "
                        f"(eval sets: {', '.join(eval_sets())})")
    if problems:
        raise WorkflowError("\n".join(problems))
    return domains


def ddo_runs():
    from shardmix.autoscale import ddo_runs as runs

    return runs(list(autoscale_domains()), ASC["factors"])


def autoscale_model(scale, run):
    return f"{AUTOSCALE}/models/{scale}/{run}"


def autoscale_training(scale, weights, label, out):
    """Arguments of a real run: each domain `weights[d] * scale` tokens, split over its shards."""
    from shardmix.autoscale import shard_budgets

    domains = autoscale_domains()
    budgets = shard_budgets({d: weights[d] * int(scale) for d in domains}, domains)
    return dict(seed=SEED_MODEL, sources=[train_tokens(s) for s in budgets], budgets=list(budgets.values()),
                training=training_settings("shard_training"), context=CFG["model"]["context"],
                out=out, label=label)


def ddo_training(scale, run):
    multiples = ddo_runs()[run]
    return autoscale_training(scale, {d: m / len(multiples) for d, m in multiples.items()}, f"autoscale/{scale}/{run}",
                              autoscale_model(scale, run))


def check_model(weighting):
    return f"{AUTOSCALE}/models/check/{weighting}"


def check_weights():
    """Weighting -> domain weights of the really trained check: the projections (read from
    weights.csv, which only the checkpoint's consumers read), uniform, and the optimum at N2."""
    import csv

    with open(f"{AUTOSCALE}/weights.csv") as f:
        rows = list(csv.DictReader(f))

    def at(method, scale):
        return {r["domain"]: float(r["weight"]) for r in rows if r["method"] == method and int(r["scale_tokens"]) == scale}

    domains = list(autoscale_domains())
    chosen = {"predicted": at("real", ASC["check"])}
    if ASC["proxy"]:
        chosen["predicted_proxy"] = at("proxy", ASC["check"])
    chosen["uniform"] = dict.fromkeys(domains, 1 / len(domains))
    chosen["small_scale_optimum"] = at("real", ASC["scales"][1])
    return chosen


def domain_inputs():
    return sorted({manifest(shard_source(s)) for shards in autoscale_domains().values() for s in shards})


rule autoscale_train:
    input:
        manifests=lambda wc: domain_inputs(),
        seed=SEED_MODEL,
    output:
        directory(f"{AUTOSCALE}/models/{{scale}}/{{run}}"),
    wildcard_constraints:
        scale="[0-9]+",
        run="[^/]+",
    params:
        args=lambda wc: args(**ddo_training(wc.scale, wc.run)),
        how=lambda wc, output: run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{ASC_LOGS}/train/{{scale}}/{{run}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


rule autoscale_check_train:
    input:
        manifests=lambda wc: domain_inputs(),
        seed=SEED_MODEL,
        weights=f"{AUTOSCALE}/weights.csv",
    output:
        directory(f"{AUTOSCALE}/models/check/{{weighting}}"),
    wildcard_constraints:
        weighting="|".join(CHECK_WEIGHTINGS),
    params:
        args=lambda wc: args(**autoscale_training(ASC["check"], check_weights()[wc.weighting],
                                                  f"autoscale/check/{wc.weighting}", check_model(wc.weighting))),
        how=lambda wc, output: run_settings("shard_training"),
    threads: CFG["runtime"]["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=240,
    log:
        f"{ASC_LOGS}/train/check/{{weighting}}.log",
    shell:
        f"{script('continue_pretraining')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


def _domain_columns(weights):
    return {"shards": naming.SEP.join(weights), "weights": naming.SEP.join(f"{w:.6g}" for w in weights.values()),
            "method": ""}


def autoscale_entries(method, scale):
    """The models one scoring job scores: a scale's DDO runs, really trained or merged, or the check."""
    from shardmix.autoscale import quantities, unit_weights

    if method == "check":
        return [{"model": f"autoscale/check/{w}", "kind": "full", "dirs": [check_model(w)],
                 **_domain_columns(weights)} for w, weights in check_weights().items()]
    domains = autoscale_domains()
    entries = []
    for run, multiples in ddo_runs().items():
        entry = {"model": f"autoscale/{method}/{scale}/{run}", **_domain_columns(multiples)}
        if method == "real":
            entries.append({**entry, "kind": "full", "dirs": [autoscale_model(scale, run)]})
            continue
        units = unit_weights(quantities(multiples, int(scale)), domains, CFG["shard_training"]["tokens"])
        entries.append({**entry, "kind": "merged", "method": "linear", "dirs": [shard_model(s) for s in units],
                        "merge": {"weights": list(units.values()), "method": method_spec("linear"), "seed": None}})
    return entries


def autoscale_score_inputs(wildcards):
    entries = autoscale_entries(wildcards.method, wildcards.scale)
    inputs = {"models": sorted({d for e in entries for d in e["dirs"]}), "data": eval_set_inputs(ASC["targets"]),
              "tokenizer": TOKENIZER}
    if wildcards.method == "check":
        inputs["weights"] = f"{AUTOSCALE}/weights.csv"
    return inputs


rule autoscale_score:
    input:
        unpack(autoscale_score_inputs),
    output:
        f"{AUTOSCALE}/scores/{{method}}-{{scale}}.csv",
    wildcard_constraints:
        method="real|proxy|check",
        scale="[0-9]+",
    params:
        args=lambda wc: args(
            models=autoscale_entries(wc.method, wc.scale), eval_sets={s: eval_set_spec(s) for s in ASC["targets"]},
            tokenizer=TOKENIZER, max_tokens=CFG["evaluation"]["max_tokens"],
            min_tokens=CFG["evaluation"]["min_tokens"], batch_windows=CFG["evaluation"]["batch_windows"],
            context=CFG["model"]["context"], out=f"{AUTOSCALE}/scores/{wc.method}-{wc.scale}.csv"),
        how=lambda wc, output: run_settings("evaluation"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=2000 + CFG["evaluation"]["resident_mb"],
        runtime=60,
    log:
        f"{ASC_LOGS}/score/{{method}}-{{scale}}.log",
    shell:
        f"{script('evaluate_batch')} {{params.args:q}} {{threads}} {{params.how:q}} > {{log}} 2>&1"


def autoscale_scores():
    return {m: {n: f"{AUTOSCALE}/scores/{m}-{n}.csv" for n in ASC["scales"]} for m in ASC_METHODS}


def proxy_units():
    """The shard models some proxy merge uses: what the proxy cost in training."""
    if not ASC["proxy"]:
        return []
    return sorted({d for n in ASC["scales"] for e in autoscale_entries("proxy", n) for d in e["dirs"]})


checkpoint autoscale_fit:
    input:
        scores=lambda wc: [p for by_scale in autoscale_scores().values() for p in by_scale.values()],
        real=lambda wc: [autoscale_model(n, run) for n in ASC["scales"] for run in ddo_runs()],
        units=lambda wc: proxy_units(),
    output:
        fits=report(f"{AUTOSCALE}/fits.csv", caption="../report/autoscale_fits.rst", category="4. AutoScale"),
        weights=report(f"{AUTOSCALE}/weights.csv", caption="../report/autoscale_weights.rst",
                       category="4. AutoScale"),
        plot=report(f"{AUTOSCALE}/weights.png", caption="../report/autoscale_plot.rst", category="4. AutoScale"),
        cost=report(f"{AUTOSCALE}/cost.csv", caption="../report/autoscale_cost.rst", category="4. AutoScale"),
    params:
        args=lambda wc: args(
            domains=list(autoscale_domains()), factors=ASC["factors"], scales=ASC["scales"], predict=ASC["predict"],
            targets=ASC["targets"], scores=autoscale_scores(),
            real_models=[autoscale_model(n, run) for n in ASC["scales"] for run in ddo_runs()],
            proxy_units=proxy_units(), fits=f"{AUTOSCALE}/fits.csv", weights=f"{AUTOSCALE}/weights.csv",
            plot=f"{AUTOSCALE}/weights.png", cost=f"{AUTOSCALE}/cost.csv"),
    log:
        f"{ASC_LOGS}/fit.log",
    shell:
        f"{script('autoscale_fit')} {{params.args:q}} > {{log}} 2>&1"


rule autoscale_check:
    input:
        scores=f"{AUTOSCALE}/scores/check-{ASC['check']}.csv",
        weights=f"{AUTOSCALE}/weights.csv",
    output:
        report(f"{AUTOSCALE}/check.csv", caption="../report/autoscale_check.rst", category="4. AutoScale"),
    params:
        args=lambda wc: args(scores=f"{AUTOSCALE}/scores/check-{ASC['check']}.csv", targets=ASC["targets"],
                             scale=ASC["check"], out=f"{AUTOSCALE}/check.csv"),
    log:
        f"{ASC_LOGS}/check.log",
    shell:
        f"{script('autoscale_check')} {{params.args:q}} > {{log}} 2>&1"


def autoscale_outputs():
    outputs = [f"{AUTOSCALE}/{name}" for name in ("fits.csv", "weights.csv", "weights.png", "cost.csv")]
    if ASC["check"]:
        checkpoints.autoscale_fit.get()  # the projected weights decide what the check trains
        outputs.append(f"{AUTOSCALE}/check.csv")
    return outputs
