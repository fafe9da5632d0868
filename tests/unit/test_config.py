"""Unit tests of shardmix.config."""

from __future__ import annotations

import re

import pytest
from helpers import ROOT, autoscale_config, selection_config, tiny_config

from shardmix import config as shardmix_config


def test_the_paper_size_example_settings_are_a_valid_config(data_dir):
    import yaml

    from shardmix import config

    example = yaml.safe_load((ROOT / "examples/paper-130m.yaml").read_text())
    cfg = config.check({**tiny_config(data_dir), **example})
    assert cfg["shard_training"]["batch_size"] * cfg["model"]["context"] == 1024 * 2048
    assert cfg["shard_training"]["batch_size"] % cfg["runtime"]["micro_batch_size"] == 0
    assert cfg["runtime"]["compile"] == "auto" and cfg["runtime"]["gpus_per_job"] == 1






def test_bad_autoscale_settings_are_named_by_key(data_dir):
    from shardmix.config import ConfigError, check

    for change, key in (({"scales": [8192, 4096]}, "autoscale.scales"),
                        ({"factors": [3.0, 1.0]}, "autoscale.factors"),
                        ({"check": 4096}, "autoscale.predict' / 'autoscale.check"),
                        ({"domains": ["json", "json"]}, "autoscale.domains[1]")):
        config = autoscale_config(data_dir)
        config["autoscale"].update(change)
        with pytest.raises(ConfigError, match=re.escape(key)):
            check(config)




def _config_error(config):
    from shardmix import config as shardmix_config

    with pytest.raises(shardmix_config.ConfigError) as err:
        shardmix_config.check(config, source="my.yaml")
    return str(err.value)


def test_selection_config_errors_name_the_key(data_dir):
    config = selection_config(data_dir, [{"name": "extra_urllib"}])
    config["selection"]["tokens"] = 100
    assert "key 'selection.tokens': 100 is less than the shard budget" in _config_error(config)
    config = selection_config(data_dir, [{"name": "extra_urllib"}, {"name": "extra_urllib"}])
    assert "key 'selection.targets[1].name'" in _config_error(config)
    config = selection_config(data_dir, [{"name": "mine", "path": str(data_dir / "extra.jsonl")}])
    from shardmix import config as shardmix_config

    assert "mine" in [e["name"] for e in shardmix_config.check(config)["eval_sets"]]




@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["sharding"].update(heldout_fractoin=0.1),
     "unknown key 'sharding.heldout_fractoin' (did you mean 'heldout_fraction'?)"),
    (lambda c: c.update(mixtures_typo={}), "unknown key 'mixtures_typo'"),
    (lambda c: c["sharding"].update(heldout_fraction=0.9), "key 'sharding.heldout_fraction': 0.9 is greater than"),
    (lambda c: c["shard_training"].update(lr=-1), "key 'shard_training.lr': -1 is less than or equal"),
    (lambda c: c["sharding"].update(method="by_magic"), "key 'sharding.method': 'by_magic' is not one of"),
    (lambda c: c["model"].update(heads=3), "key 'model.heads': hidden_size 32 is not divisible by 3 heads"),
    (lambda c: c["eval_sets"].append(dict(c["eval_sets"][0])), "key 'eval_sets': name 'extra_urllib' is used twice"),
    (lambda c: c["eval_sets"][0].update(name="a b"), "key 'eval_sets[0].name': 'a b' is not a safe file name"),
    (lambda c: c["model"].update(source="pretrained"), "key 'model.path' is required"),
])
def test_config_errors_name_the_file_and_key(cfg, mutate, expected):
    mutate(cfg)
    with pytest.raises(shardmix_config.ConfigError) as err:
        shardmix_config.check(cfg, source="my.yaml")
    assert str(err.value).startswith("my.yaml: ")
    assert expected in str(err.value)


def test_valid_config_gets_defaults(cfg):
    full = shardmix_config.check(cfg)
    assert full["runtime"]["device"] == "auto"
    assert full["tokenizer"]["source"] == "train"
    assert full["shard_training"]["schedule"] == "constant"
    assert cfg.get("runtime") is None  # the caller's dict is left alone


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c.update(corpus=[{"path": "a.jsonl"}]), "key 'corpus[0].name' is required"),
    (lambda c: c.update(corpus=[{"name": "a", "path": "a.jsonl"}, {"name": "a", "path": "b.jsonl"}]),
     "key 'corpus': source name 'a' is used twice"),
    (lambda c: c.update(corpus=[{"name": "a", "path": "a.jsonl"}, {"name": "b", "path": "b.jsonl"}]),
     "key 'sharding.include': with several corpus sources"),
    (lambda c: c.update(foundation=["web"]), "key 'foundation' names source 'web'"),
])
def test_source_list_errors_name_the_key(cfg, mutate, expected):
    mutate(cfg)
    with pytest.raises(shardmix_config.ConfigError, match=re.escape(expected)):
        shardmix_config.check(cfg, source="my.yaml")


def test_command_line_overrides_given_as_text_are_read_as_numbers(cfg):
    cfg["runtime"] = {"gpus_per_job": "0", "train_threads": "2", "device": "cpu"}
    cfg["evaluation"]["max_tokens"] = "null"
    full = shardmix_config.check(cfg)
    assert full["runtime"]["gpus_per_job"] == 0 and full["runtime"]["train_threads"] == 2
    assert full["evaluation"]["max_tokens"] is None
    cfg["runtime"]["gpus_per_job"] = "one"
    with pytest.raises(shardmix_config.ConfigError, match="'one' is not of type 'integer'"):
        shardmix_config.check(cfg)


def test_a_pretrained_model_sets_no_seed_data_aside_unless_asked(cfg):
    cfg["model"] = {"source": "pretrained", "path": "/models/lm"}
    cfg["tokenizer"] = {"source": "pretrained"}
    cfg["sharding"].pop("seed_fraction")
    assert shardmix_config.check(cfg)["sources"][0]["sharding"]["seed_fraction"] == 0
    cfg["sharding"]["seed_fraction"] = 0.2
    assert shardmix_config.check(cfg)["sources"][0]["sharding"]["seed_fraction"] == 0.2
    cfg["model"] = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32}
    cfg["tokenizer"] = {"vocab_size": 512}
    cfg["sharding"].pop("seed_fraction")
    assert shardmix_config.check(cfg)["sources"][0]["sharding"]["seed_fraction"] == 0.5  # a seed to pretrain


def test_run_only_keys_in_their_old_sections_are_read_under_runtime_with_a_message(cfg, capsys):
    cfg["shard_training"].update(checkpoint_every=7, micro_batch_size=4)
    cfg["evaluation"]["resident_mb"] = 123
    checked = shardmix_config.check(cfg, source="old.yaml")
    assert (checked["runtime"]["checkpoint_every"], checked["runtime"]["micro_batch_size"],
            checked["runtime"]["resident_mb"]) == (7, 4, 123)
    assert "checkpoint_every" not in checked["shard_training"] and "resident_mb" not in checked["evaluation"]
    err = capsys.readouterr().err
    assert "old.yaml: key 'shard_training.checkpoint_every' is deprecated: write it as 'runtime.checkpoint_every'" in err
    # where runtime names the key too, runtime's value stands and the old one is said to be ignored
    cfg = {**cfg, "runtime": {"checkpoint_every": 9}, "seed_training": {**cfg["seed_training"], "checkpoint_every": 1}}
    assert shardmix_config.check(cfg, source="old.yaml")["runtime"]["checkpoint_every"] == 9
    assert "'seed_training.checkpoint_every' is deprecated and ignored" in capsys.readouterr().err


def test_the_minimal_example_is_a_valid_config():
    import yaml

    checked = shardmix_config.check(yaml.safe_load((ROOT / "examples/minimal.yaml").read_text()), "minimal.yaml")
    assert checked["results"] == "results/minimal" and checked["validation"]["random"] is None
