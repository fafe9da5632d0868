"""Unit tests of shardmix.merging."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import saved_models, tiny_tokenizer

from shardmix import merging
from shardmix import model as models
from shardmix import naming


def test_weighted_merge_and_task_arithmetic_match_a_direct_computation(tmp_path):
    seed_dir, *dirs = saved_models(tmp_path)
    states = [models.load_causal_lm(d).state_dict() for d in [seed_dir, *dirs]]
    weights = [0.5, 0.3, 0.2]
    target = models.skeleton(seed_dir)
    merging.merge_into(target, dirs, weights)
    for name, value in target.state_dict().items():
        direct = sum(w * s[name] for w, s in zip(weights, states[1:]))
        assert torch.allclose(value, direct, atol=1e-6), name
    method = merging.method({"task_arithmetic": 1.5})
    assert method.label == "task_arithmetic:1.5"
    merging.merge_into(target, dirs, weights, method, seed_dir)
    for name, value in target.state_dict().items():
        seed = states[0][name]
        direct = seed + 1.5 * sum(w * (s[name] - seed) for w, s in zip(weights, states[1:]))
        assert torch.allclose(value, direct, atol=1e-5), name
    merging.merge_into(target, dirs)  # no weights: the uniform average
    for name, value in target.state_dict().items():
        assert torch.allclose(value, sum(s[name] for s in states[1:]) / 3, atol=1e-6), name
    with pytest.raises(merging.MergeError, match="needs the seed"):
        merging.merge_into(target, dirs, weights, method)


def test_resident_pool_builds_every_mixture_as_the_streamed_merge(tmp_path):
    """A batch's mixtures built from the running sum, in update order, equal streamed merges:
    uniform subsets of every size, weighted ones and task arithmetic, one after another."""
    seed_dir, *dirs = saved_models(tmp_path, 4)
    streamed, resident = models.skeleton(seed_dir), models.skeleton(seed_dir)
    ta = merging.method({"task_arithmetic": 1.5})
    linear = merging.method("linear")
    plans = [([dirs[0]], [1.0], linear, None), (dirs[:2], [0.5, 0.5], linear, None),
             (dirs[:3], [1 / 3] * 3, linear, None), (dirs, [0.25] * 4, linear, None),
             (dirs[1:3], [0.75, 0.25], linear, None), (dirs[1:3], [0.5, 0.5], ta, seed_dir),
             (dirs[:3], [0.2, 0.3, 0.5], ta, seed_dir), (dirs[2:], [0.5, 0.5], linear, None)]
    coefs = [merging.coefficients(dict(zip(map(str, p[0]), p[1])))[0] for p in plans]
    order = merging.update_order(coefs)
    assert sorted(order) == list(range(len(plans)))
    shard_pool = merging.ResidentPool(resident, [*dirs, seed_dir], torch.device("cpu"))
    for i in order:
        shard_pool.build(*plans[i])
        merging.merge_into(streamed, *plans[i])
        for name, value in resident.state_dict().items():
            assert torch.allclose(value, streamed.state_dict()[name], atol=1e-6), (i, name)
    # adding one member to a uniform subset costs one update; in all fewer than re-adding each member
    assert shard_pool.updates < sum(len(p[0]) for p in plans)
    assert merging.update_order([{"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0}, {"a": 1.0, "b": 1.0}]) == [1, 2, 0]


def test_merging_models_of_different_shapes_names_the_tensor(tmp_path):
    tok = tiny_tokenizer()
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32,
            "tie_embeddings": True, "init_seed": 0}
    models.save(models.build_llama(arch, tok), tok, tmp_path / "a")
    models.save(models.build_llama({**arch, "ffn_size": 48}, tok), tok, tmp_path / "b")
    target = models.skeleton(tmp_path / "a")
    with pytest.raises(merging.MergeError, match=r"b: tensor model\.layers\.0\.mlp\.\w+_proj\.weight has shape"):
        merging.merge_into(target, [tmp_path / "a", tmp_path / "b"])
    before = copy.deepcopy(target.state_dict())
    models.save(models.build_llama({**arch, "layers": 2}, tok), tok, tmp_path / "c")
    with pytest.raises(merging.MergeError, match="hold different tensors"):
        merging.merge_into(target, [tmp_path / "a", tmp_path / "c"])
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_an_exported_mixture_rebuilds_the_same_weights_with_mergekit(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    from safetensors.torch import load_file

    from shardmix.merging import mergekit

    seed_dir, *dirs = saved_models(tmp_path)
    shards = {f"s{i}": str(d) for i, d in enumerate(dirs)}
    target = models.skeleton(seed_dir)
    for mixture, method in (("s0@0.2+s1@0.3+s2@0.5", "linear"), ("s0+s2", {"task_arithmetic": 1.5})):
        config = tmp_path / "mix.yaml"
        mergekit.write(config, mixture, shards, method, str(seed_dir))
        assert mergekit.config(mixture, shards, method, str(seed_dir))["merge_method"] in ("linear", "task_arithmetic")
        out = tmp_path / "rebuilt"
        shutil.rmtree(out, ignore_errors=True)
        cli = shutil.which("mergekit-yaml", path=os.path.dirname(sys.executable))
        subprocess.run([cli, str(config), str(out), "--no-copy-tokenizer"], check=True, capture_output=True)
        members = [shards[s] for s in naming.members(mixture)]
        merging.merge_into(target, members, list(naming.weights(mixture).values()), method, seed_dir)
        rebuilt = load_file(out / "model.safetensors")
        ours = target.state_dict()
        assert rebuilt and all(torch.allclose(ours[k], v, atol=1e-6) for k, v in rebuilt.items())
