"""Bad input and damage met by a whole run: named before any job, or by the job that meets it, nothing computed lost."""

from __future__ import annotations

import gzip
import json
import re
import shutil

from helpers import (
    ROOT,
    copy_project,
    copy_run,
    planned_jobs,
    saved_model,
    snakemake,
    stdlib_documents,
    tiny_checkpoint,
    tiny_config,
    write_config,
    write_jsonl,
)


def test_a_remote_code_model_stops_the_workflow_before_any_job(tmp_path, data_dir):
    folder = tmp_path / "remote"
    saved_model(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    cfg = tiny_config(data_dir)
    cfg["model"] = {"source": "pretrained", "path": str(folder)}
    cfg["tokenizer"] = {"source": "pretrained"}
    work = copy_project(tmp_path / "p")
    write_config(work, cfg)
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode != 0
    assert "'auto_map' asks to run the folder's own Python code" in proc.stdout + proc.stderr




def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _damage_model(work):
    _flip(work / "results/models/shards/json/model.safetensors")


def _damage_tokens(work):
    path = work / "results/corpus/corpus/tokens/json.train.npy"
    path.write_bytes(path.read_bytes()[:-64])


def _damage_batch(work):
    (work / "results/scores/g0/email.000.csv").write_text("model,kind\n")


def _damage_groups(work):
    (work / "results/scores/eval_groups.json").write_text('{"groups": [["json", "ema')


def _damage_eval_set(work):
    _flip(work / "results/eval_sets/extra_urllib.npy")


DAMAGES = [  # (damage, what the dry run names, a job it must plan)
    (_damage_model, "results/models/shards/json: damaged (model.safetensors does not match", "train_shard"),
    (_damage_tokens, "results/corpus/corpus/tokens: damaged (json.train.npy does not match", "split_source"),
    (_damage_batch, "results/scores/g0/email.000.csv: damaged (does not match its checksum", "evaluate_batch"),
    (_damage_groups, "results/scores/eval_groups.json: damaged (does not match its checksum", "record_eval_groups"),
    (_damage_eval_set, "results/eval_sets/extra_urllib.npy: damaged (does not match its checksum",
     "tokenize_eval_set"),
]


def test_a_dry_run_after_damage_names_each_artifact_and_plans_its_rebuild(pipeline, tmp_path):
    work = copy_run(pipeline, tmp_path / "damaged")
    for damage, _, _ in DAMAGES:  # all at once: one dry run (they are found independently)
        damage(work)
    proc = snakemake(work, "--dry-run")
    jobs = planned_jobs(proc)
    for _, named, rule in DAMAGES:
        assert f"WARNING: {named}" in proc.stderr, (named, proc.stderr[-3000:])
        assert jobs.get(rule), (rule, jobs)


def test_a_damaged_score_batch_is_scored_again_to_the_same_table(pipeline, tmp_path):
    work = copy_run(pipeline, tmp_path / "damaged")
    _damage_batch(work)
    proc = snakemake(work, "results/scores.csv")  # the table only: what follows it is other tests' business
    assert "rule evaluate_batch" in proc.stdout + proc.stderr
    assert (work / "results/scores.csv").read_bytes() == (pipeline / "results/scores.csv").read_bytes()
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(snakemake(work, "--dry-run", "results/scores.csv"))


def test_a_damaged_record_read_when_planning_is_named(pipeline, tmp_path):
    work = copy_run(pipeline, tmp_path / "damaged")
    (work / "results/corpus/foundation.json").write_text("{")
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode != 0
    assert "results/corpus/foundation.json: damaged" in proc.stdout + proc.stderr
    assert "Set `foundation` to those sources" in proc.stdout + proc.stderr
    shutil.copy(pipeline / "results/corpus/foundation.json", work / "results/corpus/foundation.json")
    (work / "results/corpus/corpus/manifest.json").write_text("{")
    proc = snakemake(work, "--dry-run", check=False)
    assert "results/corpus/corpus/manifest.json: damaged" in proc.stdout + proc.stderr
    assert "Delete results/corpus/corpus and rerun" in proc.stdout + proc.stderr




def test_config_error_stops_the_workflow_before_any_job(tmp_path, cfg):
    work = copy_project(tmp_path / "p")
    cfg["shard_training"]["tokenz"] = 5
    write_config(work, cfg)
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "config.yaml: unknown key 'shard_training.tokenz' (did you mean 'tokens'?)" in out
    assert not (work / "results").exists()


def test_missing_corpus_path_is_named_before_any_job(tmp_path, cfg):
    work = copy_project(tmp_path / "p")
    cfg["corpus"]["path"] = str(tmp_path / "nowhere.jsonl")
    write_config(work, cfg)
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    assert f"corpus.path: {tmp_path / 'nowhere.jsonl'} does not exist" in proc.stdout + proc.stderr


def test_bad_corpus_line_fails_the_job_and_its_log_names_the_line(tmp_path, cfg, data_dir):
    corpus = tmp_path / "corpus.jsonl"
    shutil.copy(data_dir / "corpus.jsonl", corpus)
    with open(corpus, "a") as f:
        f.write('{"text": "unterminated\n')
    lines = sum(1 for _ in open(corpus))
    cfg["corpus"]["path"] = str(corpus)
    work = copy_project(tmp_path / "p")
    write_config(work, cfg)
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    log = (work / "logs/train_tokenizer.log").read_text()
    assert f"{corpus}:{lines}: not valid JSON" in log
    assert "logs/train_tokenizer.log" in proc.stdout + proc.stderr


def test_shard_with_too_little_text_is_refused_and_nothing_is_lost(pipeline, tmp_path, data_dir):
    work = tmp_path / "p"
    shutil.copytree(pipeline, work, symlinks=True)
    before = sorted(p.name for p in (work / "results/models/shards").iterdir())
    cfg = tiny_config(data_dir)
    cfg["shard_training"]["tokens"] = 10_000_000
    write_config(work, cfg)
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    # every shard that does not fit, in one message, with the keys that would make them fit
    assert "3 shard(s) too small for shard_training.tokens = 10000000" in text
    for shard in ("json", "email", "http"):
        assert re.search(rf"  {shard} \(corpus\): \d+ training tokens, \d+ held-out tokens", text), shard
    assert "lower shard_training.tokens to at most" in text and "leave them out with sharding.include" in text
    assert sorted(p.name for p in (work / "results/models/shards").iterdir()) == before
    assert (work / "results/scores.csv").exists()


def test_pretrained_seed_that_is_not_a_causal_lm_stops_the_workflow(tmp_path, cfg):
    from transformers import DistilBertConfig

    ckpt = tmp_path / "distilbert"
    DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64).save_pretrained(ckpt)
    cfg["model"] = {"source": "pretrained", "path": str(ckpt)}
    cfg["tokenizer"] = {"source": "pretrained"}
    work = copy_project(tmp_path / "p")
    write_config(work, cfg)
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    assert f"{ckpt}: model type 'distilbert' is not a causal language model" in proc.stdout + proc.stderr




def test_an_empty_source_is_named_by_its_key_and_file(tmp_path, cfg, data_dir):
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"text": "", "domain": "json"}])
    cfg["corpus"] = [{"name": "corpus", "path": str(data_dir / "corpus.jsonl"), "sharding": {"include": ["json"]}},
                     {"name": "blank", "path": str(empty)}]
    cfg["sharding"].pop("include")
    work = copy_project(tmp_path / "p")
    write_config(work, cfg)
    proc = snakemake(work, "results/corpus/blank/manifest.json", check=False)
    assert proc.returncode != 0
    log = (work / "logs/split_source/blank.log").read_text()
    assert f"ERROR: corpus[1].path: {empty} holds no text (no document with a non-empty 'text' field)" in log


def _documented_config() -> str:
    """The example config of docs/configuring.md."""
    return (ROOT / "docs/configuring.md").read_text().split("```yaml", 1)[1].split("```", 1)[0]


def test_the_documented_example_config_plans_as_written(tmp_path):
    """docs/configuring.md's example config, its data made where it points and its model path swapped for a
    tiny local model: a dry run plans its splits and nothing fails."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    model, _ = tiny_checkpoint(tmp_path, "my-lm")
    work = copy_project(tmp_path / "p")
    docs = [d for pkg in ("json", "email") for d in stdlib_documents(pkg, 20_000)]
    data = work / "data"
    data.mkdir()
    with gzip.open(data / "web.jsonl.gz", "wt") as f:
        for d, domain in zip(docs, ["news", "forums"] * len(docs)):
            f.write(json.dumps({"text": d["text"], "domain": domain}) + "\n")
    pq.write_table(pa.table({"text": [d["text"] for d in docs], "language": ["python"] * len(docs)}),
                   data / "code.parquet")
    write_jsonl(data / "benchmark.jsonl", stdlib_documents("http", 8_000))
    (work / "my.yaml").write_text(_documented_config().replace("/models/my-lm", str(model)))
    proc = snakemake(work, "--dry-run", "--configfile", "my.yaml")
    # the split is a checkpoint: a dry run plans the first source's; the rest follow once it ran
    assert planned_jobs(proc) == {"split_source": 1, "all": 1}


def test_make_run_writes_the_report_into_the_configs_results_folder(tmp_path, cfg):
    import subprocess
    import sys


    cfg["results"] = "runs/mine"
    (tmp_path / "my.yaml").write_text(json.dumps(cfg))
    out = subprocess.run([sys.executable, "-m", "shardmix.config", "results", str(tmp_path / "my.yaml")], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "runs/mine"
    assert '--report "$$($(BIN)/python -m shardmix.config results $(CONFIG))/report.html"' in \
        (ROOT / "Makefile").read_text()


def test_a_model_folder_without_a_tokenizer_trains_with_tokenizer_path(tmp_path, cfg):
    """model.path without tokenizer files and tokenizer.path elsewhere: shard models are trained
    and saved with that tokenizer, not an empty one read from the model folder."""
    from transformers import AutoTokenizer

    from shardmix import checksums

    model, _ = tiny_checkpoint(tmp_path, "lm")
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    for f in model.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.move(str(f), tok_dir / f.name)
    (model / checksums.SUMS).unlink()  # a user's folder
    cfg["model"] = {"source": "pretrained", "path": str(model)}
    cfg["tokenizer"] = {"source": "pretrained", "path": str(tok_dir)}
    cfg["sharding"]["include"] = ["json"]
    cfg["evaluation"]["min_tokens"] = 64
    work = copy_project(tmp_path / "p")
    write_config(work, cfg)
    snakemake(work, "results/corpus/corpus/manifest.json")  # the split first: it names the shards
    snakemake(work, "results/models/shards/json")
    saved = AutoTokenizer.from_pretrained(str(work / "results/models/shards/json"), local_files_only=True)
    expected = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    assert len(saved) == len(expected) == 300
    assert saved("def hello(): pass")["input_ids"] == expected("def hello(): pass")["input_ids"] != []
