"""A model of the paper's smaller size on CPU: a 124M-parameter Llama (768 wide, 12 layers, 12
heads, SwiGLU 2,048, the GPT-2 vocabulary's 50,257 rows, tied embeddings, context 1,024)
trained a few optimizer steps with micro-batch accumulation, each side in its own process
(bench.kit.side):

- ours (shardmix.training.train) against transformers.Trainer at the same settings (batch,
  accumulation, data order, optimizer, schedule, fp32): tokens/s, peak RSS, losses;
- the plain loss (whole logits) against the lean one: peak RSS;
- torch.compile, activation checkpointing and eager attention against the defaults.

Tokens/s leave out the first step (allocation, compilation). FLOPs per token are the model's
matmul FLOPs, 6 N + 12 L h T (PaLM, appendix B; N counts the output layer, not the input
lookup): what MFU divides by a device's peak.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench import kit
from bench.speed import TRAINING, _sources, trainer_arguments, trainer_data
from shardmix import training

ARCH = {"hidden_size": 768, "layers": 12, "heads": 12, "ffn_size": 2048, "vocab": 50257, "context": 1024}
RUN = {"steps": 4, "batch": 2, "micro_batch": 1}  # 2 windows of each of the 4 shards
# the loss's memory at the micro-batch the paper's runs would use on a GPU: 4 x 1,024 positions
LOSS_MEMORY = {"steps": 2, "batch": 4, "micro_batch": 4}


def build(arch: dict = ARCH, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    config = LlamaConfig(vocab_size=arch["vocab"], hidden_size=arch["hidden_size"],
                         intermediate_size=arch["ffn_size"], num_hidden_layers=arch["layers"],
                         num_attention_heads=arch["heads"], num_key_value_heads=arch.get("kv_heads", arch["heads"]),
                         max_position_embeddings=arch["context"], tie_word_embeddings=True)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def flops_per_token(model, context: int) -> float:
    """6 N + 12 L h T: N the parameters every token multiplies (the input embedding's lookup
    is not a matmul; a tied output layer is), L layers, h width, T context."""
    config = model.config
    n = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    n += model.get_output_embeddings().weight.numel()
    return 6 * n + 12 * config.num_hidden_layers * config.hidden_size * context


def steady_tokens_per_s(log: dict, skip: int = 1) -> float:
    """Tokens/s of a training log over its steps after the first `skip` (allocation, compilation)."""
    skip = min(skip, len(log["step_seconds"]) - 1)
    tokens = log["tokens_seen"][-1] - (log["tokens_seen"][skip - 1] if skip else 0)
    return tokens / sum(log["step_seconds"][skip:])


def train_ours(corpus: dict, options: dict, steps: int = RUN["steps"], batch: int = RUN["batch"],
               micro_batch: int = RUN["micro_batch"]) -> dict:
    model = build()
    sources, _ = _sources(corpus, 4 * ARCH["context"])
    budget = [steps * batch * ARCH["context"] // len(sources)] * len(sources)
    start = time.perf_counter()
    log = training.train(model, sources, budget, {**TRAINING, "batch_size": batch}, ARCH["context"],
                         torch.device("cpu"), label="bench", log_every=10**9,
                         options=training.Options(micro_batch_size=micro_batch, **options))
    return {"tokens_per_s": steady_tokens_per_s(log), "first_step_seconds": log["step_seconds"][0], "loss": log["loss"],
            "seconds": time.perf_counter() - start, "parameters": kit.parameters(model),
            "flops_per_token": flops_per_token(model, ARCH["context"])}


def train_trainer(corpus: dict, steps: int = RUN["steps"], batch: int = RUN["batch"],
                  micro_batch: int = RUN["micro_batch"]) -> dict:
    """transformers.Trainer on the same windows in the same order, accumulating batch /
    micro_batch passes per step; step times from its callbacks."""
    import transformers

    transformers.logging.set_verbosity_error()
    model = build()
    context = ARCH["context"]
    data = trainer_data(corpus, steps, batch, context)
    losses, marks = [], []

    class Steps(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if not marks:
                marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(round(logs["loss"], 5))

    args = trainer_arguments(len(data), batch, micro_batch)
    transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[Steps()]).train()
    step_seconds = np.diff(marks)
    return {"tokens_per_s": (len(step_seconds) - 1) * batch * context / float(step_seconds[1:].sum()), "loss": losses,
            "first_step_seconds": float(step_seconds[0]), "parameters": kit.parameters(model)}


def run(corpus: dict, repeats: int) -> dict:
    """The section's figures: ours vs Trainer (alternated `repeats` times), then one run of each
    option against the defaults."""
    ours, hf = kit.alternate(lambda: kit.side("paper_scale", "train_ours", corpus=corpus, options={}),
                             lambda: kit.side("paper_scale", "train_trainer", corpus=corpus), repeats)
    first = ours[0]
    out = {"model": {"parameters": first["parameters"], **ARCH, **RUN,
                     "tokens_per_step": RUN["batch"] * ARCH["context"],
                     "flops_per_token": first["flops_per_token"]}}
    out["ours vs Trainer"] = {
        "ours_tokens_per_s": kit.median(ours, "tokens_per_s"), "trainer_tokens_per_s": kit.median(hf, "tokens_per_s"),
        "ours_peak_rss_mib": kit.median(ours, "peak_rss_mib"), "trainer_peak_rss_mib": kit.median(hf, "peak_rss_mib"),
        "max_loss_difference": round(max(abs(a - b) for a, b in zip(first["loss"], hf[0]["loss"])), 5),
        "ours_loss": first["loss"], "trainer_loss": hf[0]["loss"]}
    row = out["ours vs Trainer"]
    row["ratio"] = round(row["ours_tokens_per_s"] / row["trainer_tokens_per_s"], 3)
    row["ours_gflops_per_s"] = round(row["ours_tokens_per_s"] * first["flops_per_token"] / 1e9, 1)
    lean, plain = (kit.side("paper_scale", "train_ours", corpus=corpus, options={"lean_loss": lean}, **LOSS_MEMORY)
                   for lean in (True, False))
    out["loss memory, micro-batch 4 x 1,024"] = {
        "lean_peak_rss_mib": lean["peak_rss_mib"], "plain_peak_rss_mib": plain["peak_rss_mib"],
        "saved_mib": round(plain["peak_rss_mib"] - lean["peak_rss_mib"], 1),
        "plain_logits_mib_per_copy": round(4 * ARCH["context"] * ARCH["vocab"] * 4 / 2**20, 1),
        "lean_tokens_per_s": round(lean["tokens_per_s"], 1), "plain_tokens_per_s": round(plain["tokens_per_s"], 1),
        "max_loss_difference": round(max(abs(a - b) for a, b in zip(lean["loss"], plain["loss"])), 5)}
    base = {"tokens_per_s": row["ours_tokens_per_s"], "peak_rss_mib": row["ours_peak_rss_mib"]}
    for name, options in (("torch.compile", {"compile": True}),
                          ("activation checkpointing", {"activation_checkpointing": True}),
                          ("eager attention", {"attention": "eager"})):
        other = kit.side("paper_scale", "train_ours", corpus=corpus, options=options)
        out[name] = {"tokens_per_s": round(other["tokens_per_s"], 1), "peak_rss_mib": other["peak_rss_mib"],
                     "speed_vs_default": round(other["tokens_per_s"] / base["tokens_per_s"], 3),
                     "peak_rss_vs_default_mib": round(other["peak_rss_mib"] - base["peak_rss_mib"], 1),
                     "first_step_seconds": round(other["first_step_seconds"], 1),
                     "max_loss_difference": round(max(abs(a - b) for a, b in zip(other["loss"], first["loss"])), 5)}
    return out


if __name__ == "__main__":
    kit.serve({f.__name__: f for f in (train_ours, train_trainer)})
