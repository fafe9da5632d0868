"""Unit tests of shardmix.checksums."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import saved_model

from shardmix import checksums, merging
from shardmix import model as models
from shardmix import scores, tokens


def test_seals_find_a_flipped_bit_quickly_after_a_write_and_fully_when_read(tmp_path):
    folder = tmp_path / "m"
    saved_model(folder)
    assert checksums.scan(tmp_path) == [] and checksums.verify(folder) is None
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the tensor data: the header still matches the size
    before = weights.stat()
    weights.write_bytes(bytes(data))
    found = checksums.scan(tmp_path)
    assert [(d.path, d.why) for d in found] == [(folder, f"model.safetensors does not match its checksum in "
                                                         f"{checksums.SUMS}")]
    # bit rot that keeps the modification time escapes the quick scan, never the full check on use
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert checksums.scan(tmp_path) == []
    lm = models.skeleton(folder)
    with pytest.raises(checksums.DamagedArtifact, match=rf"{folder}: damaged \(model.safetensors does not match its "
                                                        r"checksum in SHA256SUMS\); rerun snakemake, which rebuilds it"):
        merging.merge_into(lm, [folder])
    # marked for the next run: its scan now finds what only the full check could
    assert [d.path for d in checksums.scan(tmp_path)] == [folder]


def test_a_damaged_token_file_or_score_batch_is_named_and_found_by_the_next_scan(tmp_path):
    from shardmix import atomic

    with atomic.directory(tmp_path / "tokens") as out:
        tokens.save(out / "a.train.npy", np.arange(1000), 512)
    assert tokens.load(tmp_path / "tokens/a.train.npy")[999] == 999
    path = tmp_path / "tokens/a.train.npy"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(checksums.DamagedArtifact, match=r"tokens: damaged \(a.train.npy does not match"):
        tokens.load(path)

    batch = tmp_path / "g0/b.csv"
    atomic.write_text(batch, ",".join(scores.COLUMNS) + "\nm,seed,,,,s,1,1,1.0,2.7,1.0\n")
    assert len(scores.read_batch(batch)) == 1
    batch.write_text("")  # emptied, as a full disk or a bad copy leaves it
    with pytest.raises(checksums.DamagedArtifact, match=rf"{batch}: damaged \(does not match its checksum in "
                                                        r"b.csv.sha256\); rerun snakemake"):
        scores.read_batch(batch)
    assert {d.path for d in checksums.scan(tmp_path)} == {tmp_path / "tokens", batch}
    unsealed = tmp_path / "g0/old.csv"  # written before seals existed: still checked for what it holds
    unsealed.write_text("model,kind\n")
    with pytest.raises(checksums.DamagedArtifact, match=rf"{unsealed}: damaged score batch \(no column shards.*"
                                                        rf"moved to {unsealed}.damaged"):
        scores.read_batch(unsealed)
    assert not unsealed.exists()  # set aside: the next run sees the batch missing and scores it again
