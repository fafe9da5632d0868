"""A mixture as a mergekit config: `mergekit-yaml FILE OUT` rebuilds the weights shardmix scored.

The models are the shard checkpoints' folders as the workflow names them (relative to the
project folder, where mergekit is to be run); merging is done in float32, as shardmix merges,
and written in the checkpoints' own dtype.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from shardmix import atomic, naming
from shardmix.merging.method import method as merge_method
from shardmix.plan.layout import Layout

DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def stored_dtype(model_dir) -> str:
    """The dtype of a checkpoint's floating tensors (mergekit's out_dtype)."""
    from shardmix.merging.reader import checkpoint_files, read_header

    header, _ = read_header(checkpoint_files(model_dir)[0])
    found = {info["dtype"] for info in header.values() if info["dtype"] in DTYPES}
    if len(found) != 1:
        raise ValueError(f"{model_dir}: tensors of dtypes {sorted(found)}; expected one floating dtype")
    return DTYPES[found.pop()]


def config(mixture: str, shard_dirs: dict[str, str], method="linear", seed_dir: str | None = None,
           dtype: str = "float32") -> dict:
    """mergekit's config for `mixture` (a canonical mixture name) from shard -> checkpoint folder."""
    method = merge_method(method)
    weights = naming.weights(mixture)
    missing = sorted(set(weights) - set(shard_dirs))
    if missing:
        raise KeyError(f"mixture {mixture}: no shard model for {', '.join(missing)}")
    name, parameters = method.mergekit()
    out = {"merge_method": name,
           "models": [{"model": str(shard_dirs[s]), "parameters": {"weight": round(w, 6)}} for s, w in weights.items()],
           "parameters": parameters, "dtype": "float32", "out_dtype": dtype}
    if method.needs_seed:
        if seed_dir is None:
            raise ValueError(f"merge method {method.label} needs the seed model")
        out["base_model"] = str(seed_dir)
    return out


def write(path, mixture: str, shard_dirs: dict[str, str], method="linear", seed_dir=None) -> None:
    cfg = config(mixture, shard_dirs, method, seed_dir, stored_dtype(next(iter(shard_dirs.values()))))
    header = f"# shardmix mixture {mixture} ({merge_method(method).label}); rebuild: mergekit-yaml {Path(path).name} OUT\n"
    atomic.write_text(path, header + yaml.safe_dump(cfg, sort_keys=False))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m shardmix.merging.mergekit",
        description="Write a mixture of a finished run as a mergekit config (run mergekit-yaml from the project folder).")
    parser.add_argument("results", help="the run's results folder (holding models/shards/ and models/seed)")
    parser.add_argument("mixture", help="a mixture name as the scores table writes it, e.g. a+b or a@0.25+b@0.75")
    parser.add_argument("--method", default="linear", help='"linear" or JSON such as \'{"task_arithmetic": 1.5}\'')
    parser.add_argument("--seed", help="the seed model's folder, for task arithmetic (default: <results>/models/seed; "
                                       "a run continued from a pretrained model: its model.path)")
    parser.add_argument("--out", required=True, help="the YAML file to write")
    a = parser.parse_args(argv)
    layout = Layout(a.results)
    method = a.method if a.method == "linear" else json.loads(a.method)
    dirs = {s: layout.shard_model(s) for s in naming.members(a.mixture)}
    for s, d in dirs.items():
        if not Path(d).is_dir():
            parser.error(f"{d}: no shard model {s} in {a.results}")
    write(a.out, a.mixture, dirs, method, a.seed or f"{layout.models}/seed")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
