"""Unit tests of shardmix.corpus."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from helpers import paragraph_documents, tiny_tokenizer, whole_documents, write_jsonl

from shardmix import corpus, sharding
from shardmix.corpus import CorpusError, read_documents

DOCS = paragraph_documents()


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
        sharding.tokenize_part(corpus.read_pieces(spec, part), tiny_tokenizer(), spec_, out)
    with pytest.raises(CorpusError, match=rf"{path}:877: shard names 'B' and 'b' differ only in case"):
        sharding.split_parts(dirs, spec_, len(tiny_tokenizer()), tmp_path / "t", tmp_path / "m.json", {}, tmp_path / "s")


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


WHOLE_DOCS = whole_documents()


def _texts(spec):
    return [(d.text, d.meta.get("domain", d.meta.get("dir"))) for d in read_documents(spec)]


def test_every_corpus_format_reads_the_same_documents(tmp_path):
    import datasets
    import pandas as pd

    expected = [(d["text"], d["domain"]) for d in WHOLE_DOCS]
    write_jsonl(tmp_path / "c.jsonl", WHOLE_DOCS)
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(d) + "\n" for d in WHOLE_DOCS)
    pd.DataFrame(WHOLE_DOCS).to_parquet(tmp_path / "c.parquet")
    datasets.Dataset.from_list(WHOLE_DOCS).save_to_disk(str(tmp_path / "hf"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(WHOLE_DOCS)}).save_to_disk(str(tmp_path / "hfdict"))
    for name in ("c.jsonl", "c.jsonl.gz", "c.parquet", "hf", "hfdict"):
        assert _texts({"path": str(tmp_path / name)}) == expected, name
    folder = tmp_path / "txt"
    for i, d in enumerate(WHOLE_DOCS):
        (folder / d["domain"]).mkdir(parents=True, exist_ok=True)
        (folder / d["domain"] / f"{i:03d}.txt").write_text(d["text"])
    assert sorted(_texts({"path": str(folder)})) == sorted(expected)


def test_text_field_is_configurable(tmp_path):
    write_jsonl(tmp_path / "c.jsonl", [{"body": "hello", "domain": "a"}])
    assert _texts({"path": str(tmp_path / "c.jsonl"), "text_field": "body"}) == [("hello", "a")]


def test_jsonl_line_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"text": "fine"}\n\n{"text": "broken"\n')
    with pytest.raises(CorpusError, match=r"c\.jsonl\.gz:3: not valid JSON"):
        list(read_documents({"path": str(path)}))


def test_jsonl_line_without_text_field_is_named(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a"}, {"body": "b", "domain": "x"}])
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: no text field 'text' \(keys: body, domain\)"):
        list(read_documents({"path": str(path)}))


def test_non_utf8_jsonl_names_the_file_and_line_or_decodes_with_encoding(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: not valid utf-8 text \(byte 0xe9 at column 14\); set the "
                                          r"source's `encoding`"):
        list(read_documents({"path": str(path)}))
    assert [d.text for d in read_documents({"path": str(path), "encoding": "latin-1"})] == ["fine", "café"]
    folder = tmp_path / "txt" / "web"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"one\ntwo\nthr\xffee\n")
    with pytest.raises(CorpusError, match=r"a\.txt:3: not valid utf-8 text"):
        list(read_documents({"path": str(tmp_path / "txt")}))


def test_a_damaged_or_mislabelled_gzip_file_is_named_with_its_line(tmp_path):
    records = [{"text": f"line {i} " * 40, "domain": "a"} for i in range(400)]
    good = tmp_path / "c.jsonl.gz"
    with gzip.open(good, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    assert len(list(read_documents({"path": str(good)}))) == 400
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorpusError, match=rf"{truncated}:\d+: the compressed file ends before its end \(truncated\?\)"):
        list(read_documents({"path": str(truncated)}))
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text(json.dumps(records[0]) + "\n")
    with pytest.raises(CorpusError, match=rf"{plain}:1: the compressed file is not valid gzip .*name it without .gz"):
        list(read_documents({"path": str(plain)}))
