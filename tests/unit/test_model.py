"""Unit tests of shardmix.model."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import plant_pickle, saved_model, tiny_checkpoint

from shardmix import checksums
from shardmix import model as models
from shardmix import tokenizer as tokenization


def test_a_pickled_checkpoint_is_refused_and_never_run(tmp_path):
    folder = tmp_path / "bin-model"
    lm, tok = saved_model(folder)
    (folder / "model.safetensors").unlink()
    (folder / checksums.SUMS).unlink()  # a user's folder, not one shardmix wrote
    marker = tmp_path / "ran"
    plant_pickle(folder / "pytorch_model.bin", marker)
    assert models.check_pretrained(folder, folder) == {"convert": True}
    with pytest.raises(models.ModelError, match=rf"{folder}: could not load its PyTorch checkpoint as plain tensors"):
        models.convert(folder, folder, tmp_path / "converted")
    assert not marker.exists() and not (tmp_path / "converted").exists()

    torch.save(lm.state_dict(), folder / "pytorch_model.bin")  # plain tensors convert as before
    assert models.convert(folder, folder, tmp_path / "converted") == torch.float32
    assert checksums.verify(tmp_path / "converted") is None and (tmp_path / "converted" / checksums.SUMS).exists()


MODELING = """
open({marker!r}, "w").write("ran")
from transformers import LlamaConfig
class EvilConfig(LlamaConfig):
    model_type = "evil"
"""


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_a_model_folder_that_asks_to_run_its_code_is_refused(tmp_path, where):
    folder = tmp_path / "remote"
    saved_model(folder)
    marker = tmp_path / "ran"
    (folder / "modeling_evil.py").write_text(MODELING.format(marker=str(marker)))
    config = json.loads((folder / where).read_text())
    config["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig", "AutoTokenizer": ["modeling_evil.EvilConfig", None]}
    (folder / where).write_text(json.dumps(config))
    message = rf"{folder / where}: 'auto_map' asks to run the folder's own Python code .*trust_remote_code=False"
    with pytest.raises((models.ModelError, ValueError), match=message):
        models.check_pretrained(folder, folder)
    with pytest.raises((models.ModelError, ValueError), match=message):
        tokenization.load(str(folder)) if where == "tokenizer_config.json" else models.load_causal_lm(folder)
    assert not marker.exists()


def test_checkpoint_that_is_not_a_causal_lm_is_refused(tmp_path):
    from transformers import DistilBertConfig

    DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64).save_pretrained(tmp_path)
    with pytest.raises(models.ModelError, match="model type 'distilbert' is not a causal language model"):
        models.load_causal_lm(tmp_path)
    with pytest.raises(models.ModelError, match="not a Hugging Face model directory"):
        models.load_causal_lm(tmp_path / "empty")




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

    _, lm = tiny_checkpoint(tmp_path, "llama")
    models.check_causal(lm, 300)
    # as a checkpoint saved for masked LM would be: AutoModelForCausalLM loads it, attending both ways
    bert = BertLMHeadModel(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=64, is_decoder=False))
    with pytest.raises(models.ModelError, match="not causal"):
        models.check_causal(bert, 300)


def test_tokenizer_larger_than_the_embedding_or_missing_is_refused(tmp_path):
    path, lm = tiny_checkpoint(tmp_path, "small")
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
