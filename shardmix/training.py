"""Causal-LM training over flat token files: the seed model and every continued pretraining.

Data are disjoint windows of `context + 1` tokens. Each source contributes the same
number of windows (its token budget), in a shuffled order fixed by the training seed;
a source smaller than its budget is cycled with a new permutation per pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shardmix import atomic, checksums, faults, loss, preemption, progress
from shardmix.model import autocast


class TrainingError(ValueError):
    """Training data or settings that cannot give the configured run."""


def window_plan(source_lengths: list[int], windows_per_source: list[int], context: int,
                rng: np.random.Generator) -> np.ndarray:
    """Rows of (source index, start offset), shuffled across sources."""
    rows = []
    for i, (length, need) in enumerate(zip(source_lengths, windows_per_source)):
        available = (length - 1) // context
        if available < 1:
            raise TrainingError(f"source {i} has {length} tokens, fewer than one window of {context + 1}")
        passes = [rng.permutation(available) for _ in range(-(-need // available))]
        starts = np.concatenate(passes)[:need] * context
        rows.append(np.stack([np.full(need, i), starts], axis=1))
    plan = np.concatenate(rows)
    return plan[rng.permutation(len(plan))]


def lr_at(step: int, total: int, cfg: dict) -> float:
    peak = cfg["lr"]
    if step < cfg["warmup_steps"]:
        return peak * (step + 1) / cfg["warmup_steps"]
    if cfg["schedule"] == "constant":
        return peak
    progress = (step - cfg["warmup_steps"]) / max(1, total - cfg["warmup_steps"])
    floor = peak * cfg["min_lr_ratio"]
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass(frozen=True)
class Options:
    """How a run executes, never what it computes: none of these is compared by the workflow,
    and changing one retrains nothing (the loss and weights agree to float rounding).

    micro_batch_size: sequences per forward/backward pass; a step accumulates batch_size of them
    (None: the whole batch at once). compile: torch.compile the model's body ("auto": on CUDA,
    off on CPU, where bench/paper_scale.py measured it slower). activation_checkpointing:
    recompute each layer's activations in the backward pass (less memory for one more forward
    pass per step). attention: the transformers attention implementation ("sdpa", "eager", ...).
    checkpoint_minutes: a resumable state at least this often, as well as every
    checkpoint_every steps. lean_loss: the loss without whole logits (shardmix.loss); off only
    to measure what it saves.
    """

    micro_batch_size: int | None = None
    checkpoint_minutes: float = 0.0
    compile: str | bool = "auto"
    activation_checkpointing: bool = False
    attention: str = "sdpa"
    lean_loss: bool = True

    @classmethod
    def from_settings(cls, settings: dict) -> "Options":
        """The options among a job's run settings (its `params.how`, shardmix.jobs.job_args)."""
        return cls(**{k: settings[k] for k in cls.__dataclass_fields__ if settings.get(k) is not None})

    def compiled(self, device: torch.device) -> bool:
        return device.type == "cuda" if self.compile == "auto" else bool(self.compile)


def train(model, sources: list[np.ndarray], tokens_per_source: list[int], cfg: dict, context: int,
          device: torch.device, label: str = "train", resume_dir: str | Path | None = None,
          checkpoint_every: int = 0, log_every: int = 10, inputs: list = (), options: Options = Options()) -> dict:
    """Train `model` in place with a fresh AdamW; return the training log.

    With `resume_dir`, the model, optimizer and log are saved there every `checkpoint_every`
    steps and `options.checkpoint_minutes`, and when a stop signal arrives (shardmix.preemption:
    then the call raises Preempted); a call that finds a state of the same run continues from
    it: on CPU the final weights equal those of an uninterrupted run. A state counts as the same
    run only with the same settings and the same `inputs` files (names, sizes, times: a
    retrained seed or re-split shard never resumes an old state).
    """
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    windows = [max(1, -(-t // context)) for t in tokens_per_source]
    plan = window_plan([len(s) for s in sources], windows, context, rng)
    use = _source_use(sources, windows, context)
    batch = cfg["batch_size"]
    micro = min(options.micro_batch_size or batch, batch)
    steps = -(-len(plan) // batch)
    model.to(device).train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            # one fused kernel per step: 4x faster optimizer steps on CPU than the
                            # default foreach (measured, 1.6M model), the same updates
                            lr=cfg["lr"], betas=(0.9, 0.95), fused=device.type in ("cuda", "cpu"))
    log = {"label": label, "steps": steps, "batch_size": batch, "context": context, "source_use": use,
           "loss": [], "lr": [], "tokens_seen": [], "step_seconds": []}
    for i, u in enumerate(use):
        if u["windows"] > u["available_windows"]:
            print(f"[{label}] source {i}: " + _reuse(u["windows"], u["available_windows"]), file=sys.stderr, flush=True)
    from shardmix.corpus import fingerprint

    identity = [fingerprint(p) for p in inputs]
    state = _ResumeState(resume_dir, _run_key(cfg, [len(s) for s in sources], tokens_per_source, context, label,
                                              identity))
    first, seen, before = state.load(model, opt, log, device)
    nll = _loss_function(model, device, options)
    start = last_save = time.perf_counter()
    with _running(model, options), preemption.StopRequests() as stop:
        for step in range(first, steps):
            step_start = time.perf_counter()
            rows = plan[step * batch:(step + 1) * batch]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, cfg)
            opt.zero_grad(set_to_none=True)
            total = torch.zeros((), device=device)
            for part in range(0, len(rows), micro):
                if stop.requested:
                    break
                x, y = _batch(sources, rows[part:part + micro], context, device)
                with autocast(device):
                    share = nll(x, y) / (len(rows) * context)  # this micro-batch's share of the step's mean
                share.backward()
                total += share.detach()
            if stop.requested:  # the weights are still the last whole step's
                _stop(state, model, opt, log, step, seen, before + time.perf_counter() - start, stop, label)
            if cfg["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
            seen += len(rows) * context
            total = total.item()  # waits for the device: the step's time below is its own
            log["loss"].append(round(total, 5))
            log["step_seconds"].append(round(time.perf_counter() - step_start, 4))
            log["lr"].append(opt.param_groups[0]["lr"])
            log["tokens_seen"].append(seen)
            if step % log_every == 0 or step == steps - 1:
                elapsed = time.perf_counter() - start
                print(f"[{label}] step {step + 1}/{steps} loss {total:.4f} lr {log['lr'][-1]:.2e} "
                      f"tokens {seen} ({(seen - log.get('resumed_tokens', 0)) / max(elapsed, 1e-9):.0f} tokens/s, "
                      f"{progress.eta(step + 1 - first, steps - first, elapsed)})",
                      file=sys.stderr, flush=True)
            due = (checkpoint_every and (step + 1) % checkpoint_every == 0) or \
                (options.checkpoint_minutes and time.perf_counter() - last_save >= 60 * options.checkpoint_minutes)
            if due and step + 1 < steps:
                state.save(model, opt, log, step + 1, seen, before + time.perf_counter() - start)
                last_save = time.perf_counter()
            faults.crash_point(f"step:{label}:{step + 1}")
            faults.pace()
        if stop.requested:  # asked to stop after the last step: the output is still not this job's to write
            _stop(state, model, opt, log, steps, seen, before + time.perf_counter() - start, stop, label)
    seconds = before + time.perf_counter() - start
    log.update(tokens=seen, seconds=round(seconds, 3), tokens_per_second=round(seen / max(seconds, 1e-9), 1),
               device=str(device), final_loss=log["loss"][-1])
    return log


def _loss_function(model, device, options: Options):
    """(x, y) -> summed NLL: the lean path where the model's head allows it, compiled if asked."""
    if options.lean_loss and loss.supports(model):
        body = model.base_model
        if options.compiled(device):
            body = torch.compile(body)
        return lambda x, y: loss.lean_nll(model, body, x, y)
    forward = torch.compile(model) if options.compiled(device) else model
    return lambda x, y: loss.plain_nll(forward, x, y)


@contextlib.contextmanager
def _running(model, options: Options):
    """The model's attention implementation and checkpointing as asked, restored afterwards so
    the saved model is the same whatever ran it."""
    attention = model.config._attn_implementation
    if options.attention != attention:
        try:
            model.set_attn_implementation(options.attention)
        except (ValueError, ImportError) as e:  # a model type without it, flash-attn not installed
            print(f"attention '{options.attention}' unavailable for this model ({str(e).splitlines()[0]}); "
                  f"training with '{attention}'", file=sys.stderr, flush=True)
    if options.activation_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    try:
        yield
    finally:
        if options.activation_checkpointing:
            model.activation_checkpointing_disable()
        if model.config._attn_implementation != attention:
            model.set_attn_implementation(attention)


def _stop(state, model, opt, log, step, seen, seconds, stop, label):
    opt.zero_grad(set_to_none=True)
    name = signal.Signals(stop.received).name
    if state.folder is None:
        print(f"[{label}] {name}: stopped at step {step} with nowhere to save it", file=sys.stderr, flush=True)
    else:
        state.save(model, opt, log, step, seen, seconds)
        print(f"[{label}] {name}: state of step {step} saved in {state.folder}; exit {preemption.EXIT_CODE}, "
              "a rerun resumes there", file=sys.stderr, flush=True)
    raise preemption.Preempted()


def _source_use(sources, windows, context) -> list[dict]:
    """How much of each source the run uses: windows drawn against windows available."""
    out = []
    for s, need in zip(sources, windows):
        available = max(1, (len(s) - 1) // context)
        out.append({"windows": need, "available_windows": available, "passes": round(need / available, 3)})
    return out


def _reuse(need: int, available: int) -> str:
    """How a share larger than its source is drawn, in words that stay true near one pass."""
    extra = need - available
    if extra < available:
        return (f"its share ({need} windows of context + 1 tokens) is {extra} more than its {available} windows; "
                f"{extra} of them are drawn twice")
    return f"its share ({need} windows) exceeds its {available} windows; cycling its data {need / available:.2f} times"


def _run_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class _ResumeState:
    """One resumable training state on disk: tensors in safetensors, everything else in JSON.

    Nothing in it is unpickled, so a state planted in a shared results folder cannot run code.
    `state.json` is written last and names its tensor file and that file's SHA-256: a state is
    used only when the JSON says it is this run's (key) and the tensors match their checksum; a
    damaged or foreign state is named and ignored, and training starts over.
    """

    def __init__(self, folder, key: str):
        self.folder = Path(folder) if folder else None
        self.key = key

    def load(self, model, opt, log, device) -> tuple[int, int, float]:
        """Restore a saved state of this run: (next step, tokens seen, seconds spent)."""
        if self.folder is None or not self.folder.exists():
            return 0, 0, 0.0
        index = self.folder / "state.json"
        if (self.folder / "state.pt").exists():
            print(f"ignoring {self.folder / 'state.pt'}: pickled resume states (earlier shardmix versions) are never "
                  "loaded; training starts over", file=sys.stderr, flush=True)
        if not index.exists():
            return 0, 0, 0.0
        try:
            saved = json.loads(index.read_text())
            if saved.get("key") != self.key:
                print(f"ignoring {self.folder}: saved by a run with other settings", file=sys.stderr, flush=True)
                return 0, 0, 0.0
            tensors = self.folder / saved["tensors"]
            if tensors.parent != self.folder or checksums.sha256_file(tensors) != saved["sha256"]:
                raise ValueError(f"{tensors.name} does not match its checksum in state.json")
            from safetensors.torch import load_file

            flat = load_file(str(tensors), device=str(device))
            weights = {k[len("model."):]: v for k, v in flat.items() if k.startswith("model.")}
            weights.update({alias: weights[same] for alias, same in saved.get("aliases", {}).items()})
            model.load_state_dict(weights)
            opt.load_state_dict(_optimizer_state(flat, saved["param_groups"]))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            print(f"ignoring {self.folder}: damaged resume state ({e}); training starts over", file=sys.stderr,
                  flush=True)
            return 0, 0, 0.0
        log.update(saved["log"], resumed_from_step=saved["step"], resumed_tokens=saved["tokens"])
        print(f"[{log['label']}] resumed from step {saved['step']} ({self.folder})", file=sys.stderr, flush=True)
        return saved["step"], saved["tokens"], saved["seconds"]

    def save(self, model, opt, log, step: int, tokens: int, seconds: float) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        state = opt.state_dict()
        flat, aliases, first = {}, {}, {}
        for k, v in model.state_dict().items():
            same = first.setdefault((v.data_ptr(), v.dtype, tuple(v.shape), v.stride()), k)
            if same != k:  # a tied weight (embedding and LM head): stored once
                aliases[k] = same
            else:
                flat[f"model.{k}"] = v.detach().contiguous()
        for index, values in state["state"].items():
            flat.update({f"optimizer.{index}.{k}": torch.as_tensor(v).contiguous() for k, v in values.items()})
        name = f"state-{step}.safetensors"
        with atomic.file(self.folder / name, seal=False) as tmp:
            save_file(flat, str(tmp))
        atomic.write_text(self.folder / "state.json", seal=False, text=json.dumps(
            {"key": self.key, "step": step, "tokens": tokens, "seconds": seconds, "tensors": name,
             "sha256": checksums.sha256_file(self.folder / name), "aliases": aliases,
             "param_groups": state["param_groups"],
             "log": {k: log[k] for k in ("loss", "lr", "tokens_seen", "step_seconds")}}))
        for old in self.folder.glob("state-*.safetensors"):  # the JSON names the new one now
            if old.name != name:
                old.unlink()


def _optimizer_state(flat: dict, param_groups: list) -> dict:
    state: dict[int, dict] = {}
    for name, value in flat.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": param_groups}


def _batch(sources, rows, context, device):
    data = np.stack([np.asarray(sources[s][o:o + context + 1], dtype=np.int64) for s, o in rows])
    t = torch.from_numpy(data).to(device)
    return t[:, :-1], t[:, 1:]
