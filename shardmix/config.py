"""Validate a shardmix config against schemas/config.schema.yaml and fill its defaults."""

from __future__ import annotations

import copy
import sys
import difflib
from pathlib import Path

import jsonschema
import yaml

from shardmix.naming import safe_name

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config that would make the workflow fail or silently do the wrong thing."""


def load_schema() -> dict:
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


def _resolve(node: dict, schema: dict) -> dict:
    ref = node.get("$ref")
    if ref:
        target = schema
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        merged = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **merged}
    return node


def _fill_defaults(instance, node: dict, schema: dict):
    node = _resolve(node, schema)
    if isinstance(instance, dict):
        for key, sub in node.get("properties", {}).items():
            if not isinstance(sub, dict):
                continue
            sub = _resolve(sub, schema)
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                _fill_defaults(instance[key], sub, schema)
    elif isinstance(instance, list) and isinstance(node.get("items"), dict):
        for item in instance:
            _fill_defaults(item, node["items"], schema)


_LITERALS = {"true": True, "false": False, "null": None, "~": None}


def _coerce(instance, node: dict, schema: dict):
    """Snakemake's `--config key={a: 1}` hands nested values over as strings; read a string as
    the number, boolean or null its schema asks for, so a command-line override validates."""
    node = _resolve(node, schema)
    if isinstance(instance, dict):
        for key, value in instance.items():
            sub = node.get("properties", {}).get(key)
            if isinstance(sub, dict):
                instance[key] = _coerce(value, sub, schema)
        return instance
    if isinstance(instance, list) and isinstance(node.get("items"), dict):
        return [_coerce(item, node["items"], schema) for item in instance]
    if not isinstance(instance, str):
        return instance
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    text = instance.strip()
    if text.lower() in _LITERALS:
        value = _LITERALS[text.lower()]
        if (value is None and "null" in types) or (isinstance(value, bool) and "boolean" in types):
            return value
    for kind, parse in (("integer", int), ("number", float)):
        if kind in types:
            try:
                return parse(text)
            except ValueError:
                pass
    return instance


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _describe(error: jsonschema.ValidationError, schema: dict, source: str) -> str:
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(_resolve(error.schema, schema).get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            prefix = "" if where == "(top level)" else f"{where}."
            hints.append(f"'{prefix}{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return (f"{source}: unknown key {', '.join(hints)}; "
                f"allowed keys here: {', '.join(allowed)}")
    return f"{source}: key '{where}': {error.message}"


def fill_defaults(config: dict) -> dict:
    """A copy of a checked config with the defaults of settings added since it was checked (and
    run-only keys moved to runtime since, moved there)."""
    schema = load_schema()
    cfg = copy.deepcopy(config)
    _move_run_only_keys(cfg, source=None)
    _fill_defaults(cfg, schema, schema)
    return cfg


# run-only keys that used to sit in result sections: (old section, key) -> the runtime key now
MOVED_TO_RUNTIME = {(section, key): key for section in ("seed_training", "shard_training")
                    for key in ("log_every", "checkpoint_every", "checkpoint_minutes", "micro_batch_size")}
MOVED_TO_RUNTIME[("evaluation", "resident_mb")] = "resident_mb"


def _move_run_only_keys(cfg: dict, source: str | None) -> None:
    """Old configs keep working: a run-only key found in its former section moves to `runtime`,
    with a message naming `source` (none for a run record; where both name a value, runtime's wins)."""
    for (section, key), new in MOVED_TO_RUNTIME.items():
        part = cfg.get(section)
        if not isinstance(part, dict) or key not in part:
            continue
        value = part.pop(key)
        runtime = cfg.setdefault("runtime", {})
        if not isinstance(runtime, dict):
            continue
        if new in runtime and runtime[new] != value:
            if source is not None:
                    print(f"{source}: key '{section}.{key}' is deprecated and ignored: 'runtime.{new}' is set too",
                      file=sys.stderr)
            continue
        runtime[new] = value
        if source is not None:
            print(f"{source}: key '{section}.{key}' is deprecated: write it as 'runtime.{new}' (it is read as that)",
                  file=sys.stderr)


def check(config: dict, source: str = "config.yaml") -> dict:
    """Return a checked copy of `config` with every default filled in.

    Raises ConfigError naming the config file and the offending key.
    """
    schema = load_schema()
    cfg = copy.deepcopy(dict(config))
    _move_run_only_keys(cfg, source)
    cfg = _coerce(cfg, schema, schema)
    if isinstance(cfg.get("model"), dict) and cfg["model"].get("source") == "pretrained" \
            and isinstance(cfg.get("sharding", {}), dict):
        # nothing trains a seed: no text set aside for one unless asked
        cfg.setdefault("sharding", {}).setdefault("seed_fraction", 0.0)
    _fill_defaults(cfg, schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("\n".join(_describe(e, schema, source) for e in errors[:5]))
    cfg["sources"] = _sources(cfg, schema, source)
    # checks the schema cannot state, one function per section, in the order of the sections
    for check_section in (_eval_sets, _model, _tokenizer, _shard_training, _search, _validation):
        check_section(cfg, source)
    if cfg["selection"]:
        _selection(cfg, schema, source)
    if cfg["autoscale"]:
        _autoscale(cfg["autoscale"], source)
    cfg["results"] = cfg["results"].rstrip("/") or "/"
    return cfg


def _sources(cfg: dict, schema: dict, source: str) -> list[dict]:
    """`corpus` as a list of complete sources, each with its own full `sharding`."""
    listed = isinstance(cfg["corpus"], list)
    entries = cfg["corpus"] if listed else [{"name": "corpus", **cfg["corpus"]}]
    source_schema = schema["$defs"]["corpus_source"]
    out = []
    for i, entry in enumerate(entries):
        key = f"corpus[{i}]" if listed else "corpus"
        if "name" not in entry:
            raise ConfigError(f"{source}: key '{key}.name' is required when corpus is a list of sources")
        if safe_name(entry["name"]) != entry["name"]:
            raise ConfigError(f"{source}: key '{key}.name': {entry['name']!r} is not a safe file name "
                              f"(use letters, digits, '.', '_' or '-', e.g. {safe_name(entry['name'])!r})")
        spec = copy.deepcopy(entry)
        _fill_defaults(spec, source_schema, schema)
        spec["sharding"] = {**cfg["sharding"], **entry.get("sharding", {})}
        spec["key"] = key
        out.append(spec)
    names = [s["name"] for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: key 'corpus': source name {dupes[0]!r} is used twice")
    if len(out) > 1 and cfg["sharding"]["include"] is not None:
        raise ConfigError(f"{source}: key 'sharding.include': with several corpus sources, list each "
                          "source's shards under corpus[i].sharding.include")
    unknown = [n for n in cfg["foundation"] or [] if n not in names]
    if unknown:
        raise ConfigError(f"{source}: key 'foundation' names source {unknown[0]!r}, which corpus does not "
                          f"list (sources: {', '.join(names)})")
    return out


def _eval_sets(cfg: dict, source: str) -> None:
    names = [e["name"] for e in cfg["eval_sets"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: key 'eval_sets': name {dupes[0]!r} is used twice")
    for i, name in enumerate(names):
        if safe_name(name) != name:
            raise ConfigError(f"{source}: key 'eval_sets[{i}].name': {name!r} is not a safe file name "
                              f"(use letters, digits, '.', '_' or '-', e.g. {safe_name(name)!r})")


def _tokenizer(cfg: dict, source: str) -> None:
    tok = cfg["tokenizer"]
    if tok["source"] == "pretrained" and not tok["path"] and cfg["model"]["source"] != "pretrained":
        raise ConfigError(f"{source}: key 'tokenizer.path' is required when tokenizer.source is 'pretrained'")
    if cfg["model"]["source"] == "pretrained" and tok["source"] == "train":
        raise ConfigError(f"{source}: key 'tokenizer.source': a pretrained model needs its own tokenizer; "
                          "set tokenizer.source to 'pretrained' (tokenizer.path defaults to model.path)")


def _model(cfg: dict, source: str) -> None:
    model = cfg["model"]
    if model["source"] == "pretrained" and not model["path"]:
        raise ConfigError(f"{source}: key 'model.path' is required when model.source is 'pretrained'")
    if model["hidden_size"] % model["heads"]:
        raise ConfigError(f"{source}: key 'model.heads': hidden_size {model['hidden_size']} "
                          f"is not divisible by {model['heads']} heads")


def _shard_training(cfg: dict, source: str) -> None:
    if cfg["shard_training"].get("tokens") is None:
        raise ConfigError(f"{source}: key 'shard_training.tokens' must be set: every shard gets the same budget")


def _search(cfg: dict, source: str) -> None:
    targets = [t["name"] for t in cfg["search"]["targets"]]
    for i, name in enumerate(targets):
        if safe_name(name) != name or targets.count(name) > 1:
            raise ConfigError(f"{source}: key 'search.targets[{i}].name': {name!r} is used twice or is not a safe "
                              f"file name (use letters, digits, '.', '_' or '-')")


def _validation(cfg: dict, source: str) -> None:
    if cfg["validation"]["search"] and not cfg["search"]["targets"]:
        raise ConfigError(f"{source}: key 'validation.search': there is nothing to validate; list search.targets")


def _selection(cfg: dict, schema: dict, source: str) -> None:
    """Fill in the selected shard size; a target given as a file becomes an eval set of the run
    (its ppl is what the selection is judged by)."""
    sel = cfg["selection"]
    budget = cfg["shard_training"]["tokens"]
    if sel["tokens"] is None:
        sel["tokens"] = budget
    elif sel["tokens"] < budget:
        raise ConfigError(f"{source}: key 'selection.tokens': {sel['tokens']} is less than the shard budget "
                          f"(shard_training.tokens = {budget}); a selected shard is trained like any other")
    if sel["pool"]["values"] is not None and sel["pool"]["field"] is None:
        raise ConfigError(f"{source}: key 'selection.pool.values' needs 'selection.pool.field' (the field to filter on)")
    names = [t["name"] for t in sel["targets"]]
    eval_sets = {e["name"]: e for e in cfg["eval_sets"]}
    item = schema["properties"]["eval_sets"]["items"]
    for i, target in enumerate(sel["targets"]):
        key = f"selection.targets[{i}]"
        name = target["name"]
        if safe_name(name) != name or names.index(name) != i:
            raise ConfigError(f"{source}: key '{key}.name': {name!r} is used twice or is not a safe file name "
                              "(use letters, digits, '.', '_' or '-')")
        if "path" not in target:
            continue
        if name in eval_sets:
            if eval_sets[name]["path"] != target["path"]:
                raise ConfigError(f"{source}: key '{key}.path': eval set {name!r} already reads "
                                  f"{eval_sets[name]['path']}; drop the path or rename the target")
            continue
        entry = {"name": name, "path": target["path"], "text_field": target["text_field"]}
        _fill_defaults(entry, item, schema)
        cfg["eval_sets"].append(entry)
    _eval_sets(cfg, source)  # the targets given as files joined them


def _autoscale(asc: dict, source: str) -> None:
    """Domains named once; scales that grow; every projected scale beyond the small ones."""
    names = [d if isinstance(d, str) else d["name"] for d in asc["domains"]]
    for i, name in enumerate(names):
        if safe_name(name) != name or names.index(name) != i:
            raise ConfigError(f"{source}: key 'autoscale.domains[{i}]': {name!r} is used twice or is not a safe file "
                              "name (use letters, digits, '.', '_' or '-')")
    small, large = asc["scales"]
    if small >= large:
        raise ConfigError(f"{source}: key 'autoscale.scales': {asc['scales']} must be two budgets in growing order")
    if any(abs(f - 1) < 1e-9 for f in asc["factors"]):
        raise ConfigError(f"{source}: key 'autoscale.factors': a factor of 1 is the uniform run itself; "
                          "give factors above and below 1 (AutoScale: 3 and 1/3)")
    beyond = [s for s in asc["predict"] + [asc["check"] or large + 1] if s <= large]
    if beyond:
        raise ConfigError(f"{source}: key 'autoscale.predict' / 'autoscale.check': {beyond[0]} is not larger than "
                          f"the second small scale ({large}); projections go beyond the scales DDO ran at")
    if asc["check"] and asc["check"] not in asc["predict"]:
        asc["predict"] = sorted(asc["predict"] + [asc["check"]])


def tokenizer_dir(cfg: dict, results: str) -> str:
    tok = cfg["tokenizer"]
    if tok["source"] == "train":
        return f"{results}/tokenizer"
    return tok["path"] or cfg["model"]["path"]


if __name__ == "__main__":  # `python -m shardmix.config results my.yaml`: the config's results folder (make run)
    if len(sys.argv) != 3 or sys.argv[1] != "results":
        sys.exit("usage: python -m shardmix.config results <config.yaml>")
    with open(sys.argv[2]) as f:
        print(check(yaml.safe_load(f) or {}, source=sys.argv[2])["results"])
