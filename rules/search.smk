# Mixture search: per target, the weights over every shard that minimise the predicted ppl;
# with validation.search, the searched mixtures are really trained and checked.


def calibration_input():
    """The calibration exists where mixtures were really trained; else the search uses merged ppl."""
    return f"{R}/validation/calibration.csv" if validated_mixtures() else None


def search_inputs(wildcards):
    shards = list(shard_sources())
    inputs = {"models": [shard_model(s) for s in shards] + [SEED_MODEL],
              "data": eval_set_inputs(search_targets()[wildcards.target])}
    if calibration_input():
        inputs["calibration"] = calibration_input()
    return inputs


rule search_target:
    input:
        unpack(search_inputs),
    output:
        f"{SEARCH}/targets/{{target}}.json",
    wildcard_constraints:
        target="[^/]+",
    params:
        args=lambda wc: args(
            name=wc.target, target=search_targets()[wc.target], shards=list(shard_sources()),
            shard_dirs=[shard_model(s) for s in shard_sources()], seed_dir=SEED_MODEL, method=METHODS[0],
            eval_sets={s: eval_set_spec(s) for s in search_targets()[wc.target]},
            max_tokens=CFG["evaluation"]["max_tokens"], context=CFG["model"]["context"],
            calibration=calibration_input(), search={k: v for k, v in CFG["search"].items() if k != "targets"},
            out=f"{SEARCH}/targets/{wc.target}.json"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=120,
    log:
        f"{LOGS}/search/{{target}}.log",
    shell:
        f"{script('search_target')} {{params.args:q}} {{threads}} > {{log}} 2>&1"


checkpoint best_mixtures:
    input:
        found=lambda wc: [f"{SEARCH}/targets/{t}.json" for t in search_targets()],
        scores=f"{R}/scores.csv",
        calibration=lambda wc: calibration_input() or [],
    output:
        csv=report(f"{SEARCH}/best_mixtures.csv", caption="../report/best_mixtures.rst", category="3. Search"),
        plot=report(f"{SEARCH}/weights.png", caption="../report/search_weights.rst", category="3. Search"),
    params:
        args=lambda wc: args(
            targets=search_targets(), found={t: f"{SEARCH}/targets/{t}.json" for t in search_targets()},
            scores=f"{R}/scores.csv", calibration=calibration_input(), method=METHODS[0]["label"],
            shards=list(shard_sources()), out=f"{SEARCH}/best_mixtures.csv", plot=f"{SEARCH}/weights.png"),
    log:
        f"{LOGS}/best_mixtures.log",
    shell:
        f"{script('best_mixtures')} {{params.args:q}} > {{log}} 2>&1"


def searched_mixtures():
    """The mixture each target's search chose. Only `rule all` waits for the checkpoint; this
    reads its table directly, as jobs that need it are planned only after it exists."""
    import csv

    with open(f"{SEARCH}/best_mixtures.csv") as f:
        return sorted({row["weights"] for row in csv.DictReader(f)})


def search_validation_models():
    return {m: full_model(m) for m in searched_mixtures() + [uniform_all()]}


rule validate_search:
    input:
        best=f"{SEARCH}/best_mixtures.csv",
        scores=f"{R}/scores.csv",
        models=lambda wc: sorted(search_validation_models().values()),
        tokenizer=TOKENIZER,
    output:
        report(f"{SEARCH}/validation.csv", caption="../report/search_validation.rst", category="3. Search"),
    params:
        args=lambda wc: args(
            best=f"{SEARCH}/best_mixtures.csv", scores=f"{R}/scores.csv", targets=search_targets(),
            full_models=search_validation_models(), uniform=uniform_all(), tokenizer=TOKENIZER,
            eval_sets={s: eval_set_spec(s) for t in search_targets().values() for s in t},
            max_tokens=CFG["evaluation"]["max_tokens"], context=CFG["model"]["context"],
            out=f"{SEARCH}/validation.csv"),
    threads: CFG["runtime"]["eval_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=60,
    log:
        f"{LOGS}/validate_search.log",
    shell:
        f"{script('validate_search')} {{params.args:q}} {{threads}} > {{log}} 2>&1"
