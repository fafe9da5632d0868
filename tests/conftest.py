"""Shared fixtures: the corpus the tests read and a tiny project run through Snakemake once per
test session (helpers.py holds the functions they are made with)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import (
    ADDED_SHARD,
    SHARDS,
    copy_project,
    grown_config,
    ran_jobs,
    snakemake,
    stdlib_documents,
    tiny_config,
    write_config,
    write_jsonl,
)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_jsonl(data / "corpus.jsonl", [d for pkg in SHARDS + [ADDED_SHARD] for d in stdlib_documents(pkg)])
    # a source added later: its `logging` shard is used, `unittest` is split but left out
    write_jsonl(data / "more.jsonl", [d for pkg in ("unittest", ADDED_SHARD) for d in stdlib_documents(pkg, 30_000)])
    write_jsonl(data / "extra.jsonl", stdlib_documents("urllib", 12_000))
    return data


@pytest.fixture
def cfg(data_dir) -> dict:
    """A fresh copy of the tiny config, to change in a test."""
    return tiny_config(data_dir)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory, data_dir) -> Path:
    """A project copy that has run the whole workflow on the tiny config."""
    workdir = copy_project(tmp_path_factory.mktemp("run") / "project")
    write_config(workdir, tiny_config(data_dir))
    snakemake(workdir)
    return workdir


@pytest.fixture(scope="session")
def grown(tmp_path_factory, pipeline, data_dir):
    """The finished tiny run with a second corpus source added and run again, in the same
    checkout (times and .snakemake kept): (project, jobs the run ran, result files it rewrote)."""
    work = tmp_path_factory.mktemp("grown") / "project"
    shutil.copytree(pipeline, work, symlinks=True)
    write_config(work, grown_config(data_dir))
    before = {p: p.stat().st_mtime_ns for p in (work / "results").rglob("*") if p.is_file()}
    jobs = ran_jobs(snakemake(work))
    return work, jobs, [p for p, t in before.items() if p.stat().st_mtime_ns != t]
