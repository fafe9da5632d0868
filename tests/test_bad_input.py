"""Each kind of bad input fails with an error that names the file, line or key."""

from __future__ import annotations

import copy
import gzip
import json
import re
import shutil

import pytest
import torch
from conftest import copy_project, planned_jobs, snakemake, stdlib_documents, tiny_config, write_config, write_jsonl

from shardmix import config as shardmix_config
from shardmix import merging, sharding
from shardmix import model as models
from shardmix.corpus import CorpusError, Document, read_documents


@pytest.fixture
def cfg(data_dir):
    return tiny_config(data_dir)


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


def test_missing_shard_field_is_named(tmp_path):
    docs = [Document("x", {"domain": "a"}, "c.jsonl:1"), Document("y", {"topic": "b"}, "c.jsonl:2")]
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: no field 'domain' to shard by"):
        sharding.tokenize_part(docs, _tok(), {"method": "field", "field": "domain"}, tmp_path)


def test_two_shards_with_the_same_sanitised_name_are_refused(tmp_path):
    docs = [Document("x", {"domain": "web text"}, "c.jsonl:1"), Document("y", {"domain": "web/text"}, "c.jsonl:7")]
    with pytest.raises(CorpusError, match=r"c\.jsonl:7: shard keys 'web text' and 'web/text' both become "
                                          r"the shard name 'web_text'"):
        sharding.tokenize_part(docs, _tok(), {"method": "field", "field": "domain"}, tmp_path)


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


def test_checkpoint_that_is_not_a_causal_lm_is_refused(tmp_path):
    from transformers import DistilBertConfig

    DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64).save_pretrained(tmp_path)
    with pytest.raises(models.ModelError, match="model type 'distilbert' is not a causal language model"):
        models.load_causal_lm(tmp_path)
    with pytest.raises(models.ModelError, match="not a Hugging Face model directory"):
        models.load_causal_lm(tmp_path / "empty")


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


def test_merging_models_of_different_shapes_names_the_tensor(tmp_path):
    tok = _tok()
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


_TOK = None


def _tok():
    """A small byte-level BPE tokenizer trained on standard-library source."""
    global _TOK
    if _TOK is None:
        import tempfile

        from shardmix import tokenizer

        texts = [d["text"] for d in stdlib_documents("json", 20_000)]
        _TOK = tokenizer.train_bpe(texts, 300, tempfile.mkdtemp())
    return _TOK


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


def _checkpoint(tmp_path, name, vocab_tok=None, **arch):
    tok = _tok()
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32, "tie_embeddings": True,
            "init_seed": 0, **arch}
    lm = models.build_llama(arch, tok)
    models.save(lm, tok, tmp_path / name)
    return tmp_path / name, lm


def test_bidirectional_encoder_with_an_lm_head_is_refused(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(
        tmp_path / "bert")
    with pytest.raises(models.ModelError, match="model type 'bert' with is_decoder=False attends in both directions"):
        models.load_config(tmp_path / "bert")
    BertConfig(is_decoder=True).save_pretrained(tmp_path / "bert-decoder")
    assert models.load_config(tmp_path / "bert-decoder").is_decoder


def test_the_causal_probe_tells_a_causal_model_from_an_encoder(tmp_path):
    from transformers import BertConfig, BertLMHeadModel

    _, lm = _checkpoint(tmp_path, "llama")
    models.check_causal(lm, 300)
    # as a checkpoint saved for masked LM would be: AutoModelForCausalLM loads it, attending both ways
    bert = BertLMHeadModel(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=64, is_decoder=False))
    with pytest.raises(models.ModelError, match="not causal"):
        models.check_causal(bert, 300)


def test_tokenizer_larger_than_the_embedding_or_missing_is_refused(tmp_path):
    path, lm = _checkpoint(tmp_path, "small")
    assert models.check_pretrained(path, path) == {"convert": False}
    small_vocab = tmp_path / "small-vocab"
    shutil.copytree(path, small_vocab)
    config = json.loads((small_vocab / "config.json").read_text())
    config["vocab_size"] = 100
    (small_vocab / "config.json").write_text(json.dumps(config))
    with pytest.raises(models.ModelError, match=r"the tokenizer has 300 tokens but the model's embedding has 100 rows"):
        models.check_pretrained(small_vocab, small_vocab)
    bare = tmp_path / "bare"
    shutil.copytree(path, bare, ignore=shutil.ignore_patterns("tokenizer*", "special_tokens*"))
    with pytest.raises(models.ModelError, match=rf"{bare}: no tokenizer files"):
        models.check_pretrained(bare, bare)
    torch_only = tmp_path / "bin"
    shutil.copytree(path, torch_only, ignore=shutil.ignore_patterns("model.safetensors"))
    torch.save(lm.state_dict(), torch_only / "pytorch_model.bin")
    assert models.check_pretrained(torch_only, torch_only) == {"convert": True}
    (torch_only / "pytorch_model.bin").unlink()
    with pytest.raises(models.ModelError, match="no weights"):
        models.check_pretrained(torch_only, torch_only)


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


def test_shard_keys_that_collide_across_parts_are_refused_naming_the_later_place(tmp_path):
    """Parts tokenized by separate jobs: the gather still refuses two keys sharing a file name."""
    spec = {"method": "field", "field": "domain", "chunk_tokens": 16, "heldout_fraction": 0.2, "seed_fraction": 0.0,
            "seed": 0}
    sharding.tokenize_part([Document("x", {"domain": "web text"}, "a.jsonl:1")], _tok(), spec, tmp_path / "p0")
    sharding.tokenize_part([Document("y", {"domain": "web/text"}, "b.jsonl:9")], _tok(), spec, tmp_path / "p1")
    with pytest.raises(CorpusError, match=r"b\.jsonl:9: shard keys 'web text' and 'web/text' both become"):
        sharding.split_parts([tmp_path / "p0", tmp_path / "p1"], spec, len(_tok()), tmp_path / "tokens",
                             tmp_path / "manifest.json", {}, tmp_path / "scratch")
    assert not (tmp_path / "tokens").exists() and not (tmp_path / "manifest.json").exists()


def test_shard_names_that_differ_only_in_case_are_refused(tmp_path):
    docs = [Document("a", {"domain": "MAN8"}, "c.jsonl:1"), Document("b", {"domain": "man8"}, "c.jsonl:2")]
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: shard names 'MAN8' and 'man8' differ only in case"):
        sharding.tokenize_part(docs, _tok(), {"method": "field", "field": "domain"}, tmp_path)


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


def test_a_weighted_validation_sample_that_cannot_be_drawn_says_why():
    from shardmix import mixtures

    scored = {"a+b": "subset", "a+c": "subset", "a@0.25+b@0.25+c@0.5": "weighted"}
    sample = {"count": 3, "sizes": [2], "seed": 0, "weighted": 2}
    with pytest.raises(mixtures.MixtureError, match=r"validation.random.weighted asks for 2 weighted mixtures of 2 "
                                                     r"members .* scores only 0 such \(its weighted mixtures have 3 "
                                                     "members\\)"):
        mixtures.validation_sample(scored, sample, ["a", "b", "c"])
    sample["sizes"] = [2, 3]
    sample["weighted"] = 1
    assert "a@0.25+b@0.25+c@0.5" in mixtures.validation_sample(scored, sample, ["a", "b", "c"])


def test_huge_documents_train_the_tokenizer_in_pieces_and_others_whole():
    from shardmix import tokenizer

    small = "x = 1\n" * 1000
    assert tokenizer.training_pieces(small) == [small]
    huge = "def f():\n    return 1\n" * (3 * tokenizer.TRAIN_PIECE_CHARS // 22)
    pieces = tokenizer.training_pieces(huge)
    assert "".join(pieces) == huge and len(pieces) >= 3
    assert all(len(p) <= tokenizer.TRAIN_PIECE_CHARS and p.endswith("\n") for p in pieces[:-1])


def test_one_pass_over_the_data_is_not_reported_as_cycling():
    from shardmix.training import _reuse

    assert _reuse(1656, 1655) == ("its share (1656 windows of context + 1 tokens) is 1 more than its 1655 windows; "
                                  "1 of them are drawn twice")
    assert _reuse(3000, 1000) == "its share (3000 windows) exceeds its 1000 windows; cycling its data 3.00 times"


def _readme_config() -> str:
    from conftest import ROOT

    text = (ROOT / "README.md").read_text()
    return text.split("## Your own corpus and model", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]


def test_the_readme_example_config_plans_as_written(tmp_path):
    """The README's own config, its data made where it points and its model path swapped for a
    tiny local model: a dry run plans its splits and nothing fails."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    model, _ = _checkpoint(tmp_path, "my-lm")
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
    (work / "my.yaml").write_text(_readme_config().replace("/models/my-lm", str(model)))
    proc = snakemake(work, "--dry-run", "--configfile", "my.yaml")
    # the split is a checkpoint: a dry run plans the first source's; the rest follow once it ran
    assert planned_jobs(proc) == {"split_source": 1, "all": 1}


def test_make_run_writes_the_report_into_the_configs_results_folder(tmp_path, cfg):
    import subprocess
    import sys

    from conftest import ROOT

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

    model, _ = _checkpoint(tmp_path, "lm")
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
