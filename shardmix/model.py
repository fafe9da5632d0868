"""Build, load and save Hugging Face causal LMs, and pick where they run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch


class ModelError(ValueError):
    """A checkpoint that shardmix cannot use as a causal language model."""


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelError("runtime.device is 'cuda' but torch sees no CUDA device")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full fp32 on CPU, where it is also deterministic."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build_llama(arch: dict, tok) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=arch["hidden_size"], intermediate_size=arch["ffn_size"],
        num_hidden_layers=arch["layers"], num_attention_heads=arch["heads"],
        num_key_value_heads=arch["heads"], max_position_embeddings=arch["context"],
        tie_word_embeddings=arch["tie_embeddings"], bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id,
    )
    torch.manual_seed(arch["init_seed"])
    return LlamaForCausalLM(config)


def load_config(path: str | Path):
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # OSError, ValueError, JSON errors: all mean "not a model folder"
        raise ModelError(f"{path}: not a Hugging Face model directory ({e})") from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelError(f"{path}: model type '{config.model_type}' is not a causal language model "
                         "(AutoModelForCausalLM cannot load it)")
    return config


def load_causal_lm(path: str | Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    load_config(path)
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    except Exception as e:
        raise ModelError(f"{path}: could not load as a causal language model ({e})") from None


def skeleton(path: str | Path) -> torch.nn.Module:
    """An fp32 model with the architecture of the checkpoint at `path`; weights are filled later."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(load_config(path), dtype=torch.float32)


def context_length(model) -> int:
    return int(model.config.max_position_embeddings)


def save(model, tok, out_dir: str | Path) -> None:
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tok.save_pretrained(str(out_dir))
