"""Unit tests of shardmix.sharding."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, paragraph_documents, tiny_tokenizer, token_sums, whole_documents, write_jsonl

from shardmix import corpus, export, sharding
from shardmix import tokens as token_files
from shardmix.corpus import CorpusError, Document

DOCS = paragraph_documents()


METHODS = [("field", {}), ("field_units", {"unit_tokens": 1500}), ("random", {"k": 3})]


def _spec(method="field", **kw):
    return {"method": method, "field": "domain", "unit_tokens": 1000, "k": 3, "chunk_tokens": 16,
            "heldout_fraction": 0.2, "seed_fraction": 0.3, "seed": 0, **kw}




def _docs():
    return [Document(d["text"], {"domain": d["domain"]}, f"c.jsonl:{i}") for i, d in enumerate(DOCS, 1)]


@pytest.mark.parametrize("method,kw", METHODS)
def test_the_streamed_split_writes_the_token_files_of_the_in_memory_split(tmp_path, method, kw):
    """tests/data/split_before_streaming.json: manifests and token-file sums the in-memory split
    (before 2026-11-30) wrote for these documents; the streamed split adds only the indexes."""
    before = json.loads((DATA / "split_before_streaming.json").read_text())[method]
    manifest = sharding.split_source(_docs(), tiny_tokenizer(), _spec(method, **kw), tmp_path / "tokens",
                                     tmp_path / "manifest.json", {})
    assert manifest == before["manifest"]
    old = dict(reversed(line.split("  ")) for line in before["sums"].splitlines())
    now = token_sums(tmp_path / "tokens")
    assert {n: s for n, s in now.items() if n in old} == old
    assert sorted(set(now) - set(old)) == sorted(n.replace(".npy", ".docs.npy") for n in old)
    assert not (tmp_path / "tokens.scratch").exists()


@pytest.mark.parametrize("method,kw", METHODS)
def test_parts_read_by_separate_jobs_gather_into_the_shards_of_one_job(tmp_path, method, kw):
    source = write_jsonl(tmp_path / "c.jsonl", DOCS)
    spec = {"path": str(source)}
    one = sharding.split_source(corpus.read_documents(spec), tiny_tokenizer(), _spec(method, **kw), tmp_path / "one",
                                tmp_path / "one.json", {})
    parts = corpus.parts(spec, source.stat().st_size // 5 + 1)
    assert len(parts) == 5 and all(len(p) == 1 and p[0].count == 5 for p in parts)
    dirs = []
    for i, part in enumerate(parts):
        sharding.tokenize_part(corpus.read_pieces(spec, part), tiny_tokenizer(), _spec(method, **kw), tmp_path / f"p{i}")
        dirs.append(tmp_path / f"p{i}")
    gathered = sharding.split_parts(dirs, _spec(method, **kw), len(tiny_tokenizer()), tmp_path / "gathered",
                                    tmp_path / "gathered.json", {}, tmp_path / "scratch")
    assert gathered == one
    assert token_sums(tmp_path / "gathered") == token_sums(tmp_path / "one")


def test_each_token_file_indexes_its_documents(tmp_path):
    """Every document end (its end-of-text id) ends a run of the index; the other ends are where
    the draw cut a document; each document's pieces together are the whole document."""
    spec = _spec("field")
    sharding.split_source(_docs(), tiny_tokenizer(), spec, tmp_path / "tokens", tmp_path / "manifest.json", {})
    eos = tiny_tokenizer().eos_token_id
    files = sorted((tmp_path / "tokens").glob("*.npy"))
    ends_of_documents = 0
    for path in [p for p in files if not p.name.endswith(".docs.npy")]:
        ids = np.load(path)
        ends = token_files.document_ends(path)
        assert ends[-1] == len(ids) and np.all(np.diff(ends) > 0)
        assert set(np.flatnonzero(ids == eos) + 1) <= set(ends.tolist())
        cut = [e for e in ends if ids[e - 1] != eos]
        ends_of_documents += len(ends) - len(cut)
    assert ends_of_documents == sum(1 for d in DOCS if d["text"])
    # the document index of every shard file: documents plus cuts, never more than a chunk apart from a cut
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert all(info["documents"] > 0 for info in manifest["shards"].values())


def _read_megatron(prefix: Path) -> list[np.ndarray]:
    """Megatron-Core's reader (megatron/core/datasets/indexed_dataset.py, _IndexReader and
    _MMapBinReader) reimplemented from its documented layout: 9-byte header, version, dtype code,
    sequence and document counts, int32 lengths, int64 byte pointers, int64 document indices."""
    codes = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32,
             8: np.uint16}
    with open(f"{prefix}.idx", "rb") as f:
        assert f.read(9) == b"MMIDIDX\x00\x00"
        assert struct.unpack("<Q", f.read(8))[0] == 1
        dtype = codes[struct.unpack("<B", f.read(1))[0]]
        sequences = struct.unpack("<Q", f.read(8))[0]
        documents = struct.unpack("<Q", f.read(8))[0]
        offset = f.tell()
    index = np.memmap(f"{prefix}.idx", mode="r", order="C")
    lengths = np.frombuffer(index, np.int32, sequences, offset)
    pointers = np.frombuffer(index, np.int64, sequences, offset + lengths.nbytes)
    document_indices = np.frombuffer(index, np.int64, documents, offset + lengths.nbytes + pointers.nbytes)
    assert document_indices[0] == 0 and document_indices[-1] == sequences
    data = np.memmap(f"{prefix}.bin", mode="r", order="C")
    return [np.frombuffer(data, dtype, int(n), int(p)) for n, p in zip(lengths, pointers)]


def test_exported_shards_read_back_with_megatrons_indexed_dataset_layout(tmp_path):
    sharding.split_source(_docs(), tiny_tokenizer(), _spec("field"), tmp_path / "tokens", tmp_path / "manifest.json", {})
    files = [tmp_path / "tokens/json.train.npy", tmp_path / "tokens/http.train.npy"]
    assert export.main([*map(str, files), "--out", str(tmp_path / "out/mix")]) == 0
    sequences = _read_megatron(tmp_path / "out/mix")
    expected = [np.asarray(ids) for path in files
                for ids in np.split(np.load(path), token_files.document_ends(path)[:-1].astype(np.int64))]
    assert len(sequences) == len(expected) > 10
    assert all(np.array_equal(a, b) for a, b in zip(sequences, expected))
    # a folder without indexes: documents end after each end-of-text id
    token_files.index_path(files[0]).unlink()
    assert export.main([str(files[0]), "--out", str(tmp_path / "noindex")]) == 1
    assert export.main([str(files[0]), "--out", str(tmp_path / "noindex"), "--eos-id",
                        str(tiny_tokenizer().eos_token_id)]) == 0
    pieces = _read_megatron(tmp_path / "noindex")
    assert np.array_equal(np.concatenate(pieces), np.load(files[0]))
    assert all(p[-1] == tiny_tokenizer().eos_token_id for p in pieces[:-1])


WHOLE_DOCS = whole_documents()


def _split(tmp_path, **kw):
    docs = [Document(d["text"], {"domain": d["domain"]}, f"c.jsonl:{i}") for i, d in enumerate(WHOLE_DOCS, 1)]
    return sharding.split_source(docs, tiny_tokenizer(), _spec(**kw), tmp_path / "tokens", tmp_path / "manifest.json", {})


def test_split_keeps_every_token_once_and_seed_apart_from_heldout(tmp_path):
    manifest = _split(tmp_path)
    assert set(manifest["shards"]) == {"json", "http"}
    parts = {(s, p): np.load(tmp_path / f"tokens/{s}.{p}.npy") for s in ("json", "http") for p in ("train", "heldout")}
    seed = np.load(tmp_path / "tokens/seed.npy")
    total = sum(len(v) for v in parts.values()) + len(seed)
    assert total == manifest["total_tokens"]
    for s in ("json", "http"):
        info = manifest["shards"][s]
        share = info["heldout_tokens"] / (info["train_tokens"] + info["heldout_tokens"] + info["seed_tokens"])
        assert 0.1 < share < 0.3
    # the split of a shard depends only on its own name and tokens
    again = _split(tmp_path / "again")
    assert again == manifest


def test_field_units_cut_big_domains_into_equal_base_units(tmp_path):
    manifest = _split(tmp_path, method="field_units", unit_tokens=1500)
    units = sorted(n for n in manifest["shards"] if n.startswith("http-"))
    assert len(units) >= 2
    sizes = [sum(manifest["shards"][u][k] for k in ("train_tokens", "heldout_tokens", "seed_tokens")) for u in units]
    assert max(sizes) - min(sizes) <= 1
    assert "json" in manifest["shards"] or any(n.startswith("json-") for n in manifest["shards"])


def test_random_split_makes_k_shards(tmp_path):
    manifest = _split(tmp_path, method="random", k=3)
    assert set(manifest["shards"]) <= {"random-00", "random-01", "random-02"}
    assert len(manifest["shards"]) >= 2


def test_missing_shard_field_is_named(tmp_path):
    docs = [Document("x", {"domain": "a"}, "c.jsonl:1"), Document("y", {"topic": "b"}, "c.jsonl:2")]
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: no field 'domain' to shard by"):
        sharding.tokenize_part(docs, tiny_tokenizer(), {"method": "field", "field": "domain"}, tmp_path)


def test_two_shards_with_the_same_sanitised_name_are_refused(tmp_path):
    docs = [Document("x", {"domain": "web text"}, "c.jsonl:1"), Document("y", {"domain": "web/text"}, "c.jsonl:7")]
    with pytest.raises(CorpusError, match=r"c\.jsonl:7: shard keys 'web text' and 'web/text' both become "
                                          r"the shard name 'web_text'"):
        sharding.tokenize_part(docs, tiny_tokenizer(), {"method": "field", "field": "domain"}, tmp_path)


def test_shard_keys_that_collide_across_parts_are_refused_naming_the_later_place(tmp_path):
    """Parts tokenized by separate jobs: the gather still refuses two keys sharing a file name."""
    spec = {"method": "field", "field": "domain", "chunk_tokens": 16, "heldout_fraction": 0.2, "seed_fraction": 0.0,
            "seed": 0}
    sharding.tokenize_part([Document("x", {"domain": "web text"}, "a.jsonl:1")], tiny_tokenizer(), spec, tmp_path / "p0")
    sharding.tokenize_part([Document("y", {"domain": "web/text"}, "b.jsonl:9")], tiny_tokenizer(), spec, tmp_path / "p1")
    with pytest.raises(CorpusError, match=r"b\.jsonl:9: shard keys 'web text' and 'web/text' both become"):
        sharding.split_parts([tmp_path / "p0", tmp_path / "p1"], spec, len(tiny_tokenizer()), tmp_path / "tokens",
                             tmp_path / "manifest.json", {}, tmp_path / "scratch")
    assert not (tmp_path / "tokens").exists() and not (tmp_path / "manifest.json").exists()


def test_shard_names_that_differ_only_in_case_are_refused(tmp_path):
    docs = [Document("a", {"domain": "MAN8"}, "c.jsonl:1"), Document("b", {"domain": "man8"}, "c.jsonl:2")]
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: shard names 'MAN8' and 'man8' differ only in case"):
        sharding.tokenize_part(docs, tiny_tokenizer(), {"method": "field", "field": "domain"}, tmp_path)
