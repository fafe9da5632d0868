"""Reading and splitting big sources: the streamed split against the in-memory split it
replaced, parts read by separate jobs against one job, document indexes, the Megatron export,
and the tokenizer's sample."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import (SHARDS, copy_project, planned_jobs, snakemake, stdlib_documents, tiny_config, write_config,
                      write_jsonl)
from test_bad_input import _tok

from shardmix import corpus, export, sharding
from shardmix import tokens as token_files
from shardmix.corpus import CorpusError, Document
from shardmix.sampling import Sample

# documents of three packages cut at blank lines (many documents of every size), one empty
DOCS = [{"text": p, "domain": d["domain"]} for pkg in ("json", "http", "email")
        for d in stdlib_documents(pkg, 12_000) for p in d["text"].split("\n\n")]
DOCS.insert(5, {"text": "", "domain": "json"})
METHODS = [("field", {}), ("field_units", {"unit_tokens": 1500}), ("random", {"k": 3})]


def _spec(method, **kw):
    return {"method": method, "field": "domain", "unit_tokens": 1000, "k": 3, "chunk_tokens": 16,
            "heldout_fraction": 0.2, "seed_fraction": 0.3, "seed": 0, **kw}


def _sums(folder: Path) -> dict:
    return dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines())


def _docs():
    return [Document(d["text"], {"domain": d["domain"]}, f"c.jsonl:{i}") for i, d in enumerate(DOCS, 1)]


@pytest.mark.parametrize("method,kw", METHODS)
def test_the_streamed_split_writes_the_token_files_of_the_in_memory_split(tmp_path, method, kw):
    """tests/data/split_before_streaming.json: manifests and token-file sums the in-memory split
    (before 2026-11-30) wrote for these documents; the streamed split adds only the indexes."""
    before = json.loads((Path(__file__).parent / "data/split_before_streaming.json").read_text())[method]
    manifest = sharding.split_source(_docs(), _tok(), _spec(method, **kw), tmp_path / "tokens",
                                     tmp_path / "manifest.json", {})
    assert manifest == before["manifest"]
    old = dict(reversed(line.split("  ")) for line in before["sums"].splitlines())
    now = _sums(tmp_path / "tokens")
    assert {n: s for n, s in now.items() if n in old} == old
    assert sorted(set(now) - set(old)) == sorted(n.replace(".npy", ".docs.npy") for n in old)
    assert not (tmp_path / "tokens.scratch").exists()


@pytest.mark.parametrize("method,kw", METHODS)
def test_parts_read_by_separate_jobs_gather_into_the_shards_of_one_job(tmp_path, method, kw):
    source = write_jsonl(tmp_path / "c.jsonl", DOCS)
    spec = {"path": str(source)}
    one = sharding.split_source(corpus.read_documents(spec), _tok(), _spec(method, **kw), tmp_path / "one",
                                tmp_path / "one.json", {})
    parts = corpus.parts(spec, source.stat().st_size // 5 + 1)
    assert len(parts) == 5 and all(len(p) == 1 and p[0].count == 5 for p in parts)
    dirs = []
    for i, part in enumerate(parts):
        sharding.tokenize_part(corpus.read_pieces(spec, part), _tok(), _spec(method, **kw), tmp_path / f"p{i}")
        dirs.append(tmp_path / f"p{i}")
    gathered = sharding.split_parts(dirs, _spec(method, **kw), len(_tok()), tmp_path / "gathered",
                                    tmp_path / "gathered.json", {}, tmp_path / "scratch")
    assert gathered == one
    assert _sums(tmp_path / "gathered") == _sums(tmp_path / "one")


def test_slices_of_a_file_hold_each_line_once_and_name_lines_by_their_number_in_the_file(tmp_path):
    records = [{"text": f"line {i}", "domain": "a"} for i in range(1, 1001)]
    path = write_jsonl(tmp_path / "c.jsonl", records)
    spec = {"path": str(path)}
    parts = corpus.parts(spec, 3000)
    texts = [d.text for part in parts for d in corpus.read_pieces(spec, part)]
    assert len(parts) > 5 and texts == [r["text"] for r in records]
    lines = path.read_bytes().splitlines(keepends=True)
    lines[876] = b"{broken\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(CorpusError, match=rf"{path}:877: not valid JSON"):
        for part in parts:
            list(corpus.read_pieces(spec, part))
    # a key clash found when the parts are gathered names the line too
    lines[876] = json.dumps({"text": "x", "domain": "b"}).encode() + b"\n"
    lines[10] = json.dumps({"text": "y", "domain": "B"}).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    spec_ = {"method": "field", "field": "domain", "chunk_tokens": 16, "heldout_fraction": 0.2, "seed_fraction": 0.0,
             "seed": 0}
    dirs = [tmp_path / f"p{i}" for i in range(len(parts))]
    for part, out in zip(parts, dirs):
        sharding.tokenize_part(corpus.read_pieces(spec, part), _tok(), spec_, out)
    with pytest.raises(CorpusError, match=rf"{path}:877: shard names 'B' and 'b' differ only in case"):
        sharding.split_parts(dirs, spec_, len(_tok()), tmp_path / "t", tmp_path / "m.json", {}, tmp_path / "s")


def test_a_folder_or_a_glob_of_jsonl_files_is_one_source_in_name_order(tmp_path):
    for i in range(3):
        write_jsonl(tmp_path / "data" / f"part-{i}.jsonl", DOCS[i * 50:(i + 1) * 50])
    with gzip.open(tmp_path / "data" / "part-3.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(d) + "\n" for d in DOCS[150:200])
    expected = [d["text"] for d in DOCS[:200]]
    for path in (tmp_path / "data", tmp_path / "data" / "part-*.jsonl*", tmp_path / "**" / "*.jsonl*"):
        assert [d.text for d in corpus.read_documents({"path": str(path)})] == expected, path
    files = sorted((tmp_path / "data").iterdir())
    whole = corpus.parts({"path": str(tmp_path / "data")}, sum(f.stat().st_size for f in files))
    assert [[Path(p.file).name for p in part] for part in whole] == [[f.name for f in files]]  # small files grouped
    sliced = corpus.parts({"path": str(tmp_path / "data")}, max(f.stat().st_size for f in files) // 2)
    assert all(len(part) == 1 and part[0].count >= 2 for part in sliced[:-1])
    assert sliced[-1] == [corpus.Piece(str(files[-1]))]  # a gzip file is read whole
    texts = [d.text for part in sliced for d in corpus.read_pieces({"path": str(tmp_path / "data")}, part)]
    assert texts == expected
    with pytest.raises(CorpusError, match="matches no file"):
        list(corpus.read_documents({"path": str(tmp_path / "nothing-*.jsonl")}))


def test_each_token_file_indexes_its_documents(tmp_path):
    """Every document end (its end-of-text id) ends a run of the index; the other ends are where
    the draw cut a document; each document's pieces together are the whole document."""
    spec = _spec("field")
    sharding.split_source(_docs(), _tok(), spec, tmp_path / "tokens", tmp_path / "manifest.json", {})
    eos = _tok().eos_token_id
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
    sharding.split_source(_docs(), _tok(), _spec("field"), tmp_path / "tokens", tmp_path / "manifest.json", {})
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
                        str(_tok().eos_token_id)]) == 0
    pieces = _read_megatron(tmp_path / "noindex")
    assert np.array_equal(np.concatenate(pieces), np.load(files[0]))
    assert all(p[-1] == _tok().eos_token_id for p in pieces[:-1])


def test_the_tokenizer_sample_reads_windows_spread_over_a_big_file(tmp_path):
    records = [{"text": f"document {i} " + "word " * 40, "domain": "a"} for i in range(40_000)]
    path = write_jsonl(tmp_path / "big.jsonl", records)
    size = path.stat().st_size
    limit = size // 20
    sample = Sample([{"path": str(path)}], limit)
    texts = list(sample.texts())
    numbers = [int(t.split()[1]) for t in texts]
    assert 0.8 * limit <= sample.kept_bytes <= limit  # text, without the JSON around it
    assert sample.read_bytes <= 1.1 * limit  # only its windows
    assert min(numbers) < 4_000 and max(numbers) > 36_000  # spread over the whole file
    assert list(Sample([{"path": str(path)}], limit).texts()) == texts  # seeded
    small = Sample([{"path": str(path)}], 10 * size)
    assert sum(1 for _ in small.texts()) == len(records)  # a corpus within the budget: every document


def test_a_source_in_parts_runs_one_job_per_part_and_matches_a_single_job(tmp_path):
    data = tmp_path / "data"
    for pkg in SHARDS:
        write_jsonl(data / "corpus" / f"{pkg}.jsonl", stdlib_documents(pkg))
    write_jsonl(data / "extra.jsonl", stdlib_documents("urllib", 12_000))
    runs = {}
    for label, part_mb in (("parts", 0.02), ("one", 256)):
        work = copy_project(tmp_path / label)
        config = tiny_config(data)
        config["corpus"]["path"] = str(data / "corpus")
        config["runtime"] = {"split_part_mb": part_mb}
        write_config(work, config)
        target = "results/corpus/corpus/manifest.json"
        jobs = planned_jobs(snakemake(work, "--dry-run", target))
        snakemake(work, target)
        runs[label] = (jobs, _sums(work / "results/corpus/corpus/tokens"))
        assert not (work / "results/corpus/corpus/parts").exists() or \
            not any((work / "results/corpus/corpus/parts").iterdir())  # temporary
        config["runtime"]["split_part_mb"] = 0.01  # another part size: the split stands
        write_config(work, config)
        assert planned_jobs(snakemake(work, "--dry-run", target)) == {}
        if label == "parts":  # a forced re-split reads the recorded parts again
            forced = planned_jobs(snakemake(work, "--dry-run", target, "--forcerun", "split_source"))
            assert forced == {"split_source": 1, "split_part": jobs["split_part"]}
            snakemake(work, target, "--forcerun", "split_source")
            assert _sums(work / "results/corpus/corpus/tokens") == runs[label][1]
    assert runs["parts"][0].get("split_part", 0) >= 3 and "split_part" not in runs["one"][0]
    assert runs["parts"][1] == runs["one"][1]
