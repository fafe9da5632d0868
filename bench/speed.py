"""Sides of the speed comparisons, each run in its own process by bench/run.py (bench.kit.side).

training: shardmix.training.train against transformers.Trainer, same model init, data order,
batch, context, optimizer, schedule and precision; evaluation: shardmix.perplexity.evaluate
against a plain `model(input_ids, labels=...)` loop over the same windows; scoring: a saved
model against merged mixtures built by streaming from disk or from a resident pool.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch

from bench import kit
from shardmix import merging, perplexity, tokens, training


# timed passes over the eval set per evaluation side (median): one pass of the demo model takes 0.2 s,
# too short for a stable figure on a shared machine
PASSES = 5
TRAINING = {"seed": 0, "lr": 1e-3, "warmup_steps": 0, "schedule": "constant", "min_lr_ratio": 0.1,
            "weight_decay": 0.1, "grad_clip": 1.0}


def _sources(corpus: dict, heldout: int):
    """Training arrays (all but the last `heldout` tokens of each shard) and the held-out ones."""
    arrays = [np.asarray(tokens.load(p), dtype=np.int64) for p in corpus["shards"].values()]
    return [a[:-heldout] for a in arrays], [a[-heldout:] for a in arrays]


def _heldout_loss(model, heldout, context, device) -> float:
    nll = n = 0
    for ids in heldout:
        score = perplexity.evaluate(model, perplexity.EvalSet(ids), np.ones(8192), context, 16, device)
        nll, n = nll + score["nll"], n + score["tokens"]
    return nll / n


@contextlib.contextmanager
def _cpu_bf16(enabled: bool):
    """bf16 autocast on CPU, for the precision comparison (shardmix trains in fp32 on CPU)."""
    original = training.autocast
    if enabled:
        training.autocast = lambda device: torch.autocast("cpu", dtype=torch.bfloat16)
    try:
        yield
    finally:
        training.autocast = original


def train_ours(arch: str, corpus: dict, steps: int, batch: int, context: int, bf16: bool = False,
               heldout: bool = False) -> dict:
    model = kit.build_model(arch, corpus["tokenizer"])
    sources, heldout_ids = _sources(corpus, 4 * context)
    budget = [steps * batch * context // len(sources)] * len(sources)
    with _cpu_bf16(bf16):
        log = training.train(model, sources, budget, {**TRAINING, "batch_size": batch}, context,
                             torch.device("cpu"), label="bench", log_every=10**9)
    result = {"tokens_per_s": log["tokens_per_second"], "loss": log["loss"], "steps": log["steps"],
              "parameters": kit.parameters(model)}
    if heldout:  # after the peak of training; only the precision comparison asks
        result["heldout_loss"] = _heldout_loss(model, heldout_ids, context, torch.device("cpu"))
    return result


def trainer_data(corpus: dict, steps: int, batch: int, context: int) -> list[dict]:
    """Trainer's examples: the windows of context + 1 tokens in shardmix's order (the training
    seed's plan over equal shares of the shards), whose labels the model shifts itself."""
    sources, _ = _sources(corpus, 4 * context)
    per_source = steps * batch * context // len(sources)
    torch.manual_seed(TRAINING["seed"])
    rng = np.random.default_rng(TRAINING["seed"])
    plan = training.window_plan([len(s) for s in sources], [max(1, -(-per_source // context))] * len(sources),
                                context, rng)
    rows = [torch.from_numpy(np.asarray(sources[s][o:o + context + 1], dtype=np.int64)) for s, o in plan]
    return [{"input_ids": r, "labels": r} for r in rows]


def trainer_arguments(examples: int, batch: int, micro_batch: int):
    """TrainingArguments of shardmix's run: AdamW (0.9, 0.95), constant lr, clipping, fp32 on CPU,
    examples fed in order, batch / micro_batch accumulated passes per step."""
    import transformers

    return transformers.TrainingArguments(
        output_dir=str(Path(kit.ROOT) / "results/bench/trainer"), per_device_train_batch_size=micro_batch,
        gradient_accumulation_steps=batch // micro_batch, max_steps=-(-examples // batch),
        learning_rate=TRAINING["lr"], weight_decay=TRAINING["weight_decay"], adam_beta1=0.9, adam_beta2=0.95,
        max_grad_norm=TRAINING["grad_clip"], lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
        save_strategy="no", report_to=[], use_cpu=True, seed=TRAINING["seed"], train_sampling_strategy="sequential",
        dataloader_num_workers=0, disable_tqdm=True)


def train_trainer(arch: str, corpus: dict, steps: int, batch: int, context: int) -> dict:
    """The same run through transformers.Trainer (trainer_data, trainer_arguments)."""
    import transformers

    transformers.logging.set_verbosity_error()
    model = kit.build_model(arch, corpus["tokenizer"])
    data = trainer_data(corpus, steps, batch, context)
    losses = []

    class Losses(transformers.TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(round(logs["loss"], 5))

    args = trainer_arguments(len(data), batch, batch)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[Losses()])
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return {"tokens_per_s": len(data) * context / seconds, "loss": losses, "steps": args.max_steps,
            "parameters": kit.parameters(model)}


def _eval_set(corpus: dict, n_tokens: int) -> perplexity.EvalSet:
    ids = np.asarray(tokens.load(next(iter(corpus["shards"].values()))), dtype=np.int64)[-n_tokens:]
    return perplexity.EvalSet(ids, 256)  # chunks of 256 tokens, as the demo's held-out sets


@torch.no_grad()
def _warm_up(model, eval_set, context, batch_windows):
    """One untimed forward pass of the timed shape: first-call set-up is not evaluation speed."""
    x = torch.from_numpy(np.stack([np.asarray(eval_set.ids[:context], dtype=np.int64)] * batch_windows))
    model.eval()(input_ids=x)


def _median_pass(run):
    """(median seconds of PASSES calls of `run`, the last call's result): both evaluation sides."""
    seconds = []
    for _ in range(PASSES):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), result


def eval_ours(arch: str, corpus: dict, n_tokens: int, context: int, batch_windows: int) -> dict:
    model = kit.build_model(arch, corpus["tokenizer"])
    eval_set = _eval_set(corpus, n_tokens)
    _warm_up(model, eval_set, context, batch_windows)
    seconds, score = _median_pass(lambda: perplexity.evaluate(
        model, eval_set, np.ones(8192, dtype=np.int64), context, batch_windows, torch.device("cpu")))
    return {"tokens_per_s": score["tokens"] / seconds, "ppl": score["ppl"]}


@torch.no_grad()
def eval_plain(arch: str, corpus: dict, n_tokens: int, context: int, batch_windows: int) -> dict:
    """model(input_ids, labels=input_ids) on the same windows (equal lengths batched together)."""
    model = kit.build_model(arch, corpus["tokenizer"]).eval()
    eval_set = _eval_set(corpus, n_tokens)
    spans = perplexity.windows(len(eval_set.ids), context, eval_set.segment)
    _warm_up(model, eval_set, context, batch_windows)

    def one_pass():
        nll = n = 0
        for length in sorted({length for _, length in spans}, reverse=True):
            starts = [s for s, ln in spans if ln == length]
            for i in range(0, len(starts), batch_windows):
                x = torch.from_numpy(np.stack([eval_set.ids[s:s + length + 1] for s in starts[i:i + batch_windows]]))
                loss = model(input_ids=x, labels=x).loss
                nll, n = nll + loss.item() * x.shape[0] * length, n + x.shape[0] * length
        return nll, n

    seconds, (nll, n) = _median_pass(one_pass)
    return {"tokens_per_s": n / seconds, "ppl": math.exp(nll / n)}


def score(arch: str, corpus: dict, dirs: list[str], k: int, mode: str, mixtures: int, n_tokens: int) -> dict:
    """Per-model time to build and score: `saved` loads each of `mixtures` saved models; `streamed`
    and `resident` build as many k-member mixtures (consecutive members of the pool) and score them."""
    from shardmix import model as models

    lm = models.skeleton(dirs[0])
    eval_set = _eval_set(corpus, n_tokens)
    plans = [[dirs[(i + j) % len(dirs)] for j in range(k)] for i in range(mixtures)]
    start = time.perf_counter()
    load_seconds = 0.0
    if mode == "resident":
        pool = merging.ResidentPool(lm, sorted({d for p in plans for d in p}), torch.device("cpu"))
        load_seconds = time.perf_counter() - start
        order = merging.update_order([dict.fromkeys(p, 1.0) for p in plans])
        plans = [plans[i] for i in order]
    linear = merging.method("linear")
    build = 0.0
    for members in plans:
        t = time.perf_counter()
        if mode == "saved":
            merging.merge_into(lm, [members[0]])
        elif mode == "streamed":
            merging.merge_into(lm, members)
        else:
            pool.build(members, [1 / k] * k, linear)
        build += time.perf_counter() - t
        perplexity.evaluate(lm, eval_set, np.ones(8192, dtype=np.int64), 256, 16, torch.device("cpu"))
    # per model: build and score; a resident pool's one-off load is reported apart (a batch
    # holds up to mixtures.batch_size mixtures, 256 by default, to spread it over)
    per_model = (time.perf_counter() - start - load_seconds) / mixtures
    return {"seconds_per_model": per_model, "build_seconds_per_model": build / mixtures,
            "pool_load_seconds": load_seconds, "updates": pool.updates if mode == "resident" else None}


def amortise(arch: str, corpus: dict, steps: int, batch: int, context: int, n_tokens: int, how: str,
             workdir: str) -> dict:
    """Score every multi-shard mixture of the corpus's shards on each shard's held-out tokens:
    `merge` trains one model per shard (`steps` steps each) and merges; `train` trains each mixture
    on its members' budgets (k x `steps` steps) and scores it."""
    import itertools

    from shardmix import model as models
    from shardmix import tokenizer

    tok = tokenizer.load(corpus["tokenizer"])
    sources, heldout = _sources(corpus, n_tokens)
    sets = [perplexity.EvalSet(h, 256) for h in heldout]
    names = list(range(len(sources)))
    mixtures = [m for k in range(2, len(names) + 1) for m in itertools.combinations(names, k)]
    cfg = {**TRAINING, "batch_size": batch}
    budget = steps * batch * context
    device = torch.device("cpu")

    def trained(members):
        model = kit.build_model(arch, corpus["tokenizer"])  # the shared seed: the same init every time
        training.train(model, [sources[i] for i in members], [budget] * len(members), cfg, context, device,
                       log_every=10**9)
        return model

    def score_all(model):
        for s in sets:
            perplexity.evaluate(model, s, np.ones(8192, dtype=np.int64), context, 16, device)

    start = time.perf_counter()
    if how == "merge":
        dirs = []
        for i in names:
            dirs.append(str(Path(workdir) / f"shard{i}"))
            models.save(trained([i]), tok, dirs[-1], label=f"shard{i}")
        lm = models.skeleton(dirs[0])
        pool = merging.ResidentPool(lm, dirs, device)
        linear = merging.method("linear")
        for m in mixtures:
            pool.build([dirs[i] for i in m], [1 / len(m)] * len(m), linear)
            score_all(lm)
    else:
        for m in mixtures:
            score_all(trained(list(m)))
    return {"seconds": time.perf_counter() - start, "mixtures": len(mixtures),
            "training_steps": steps * (len(names) if how == "merge" else sum(len(m) for m in mixtures))}


if __name__ == "__main__":
    kit.serve({f.__name__: f for f in (train_ours, train_trainer, eval_ours, eval_plain, score, amortise)})
