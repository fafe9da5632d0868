"""Build, load and save Hugging Face causal LMs, and pick where they run."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from shardmix import atomic, checksums, faults
from shardmix.tokenizer import TOKENIZER_FILES


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


REMOTE_CODE_FILES = ("config.json", "tokenizer_config.json")


def refuse_remote_code(path: str | Path) -> None:
    """A folder whose config asks transformers to import its own Python (`auto_map`) is refused:
    shardmix loads every model and tokenizer with trust_remote_code=False and says so up front,
    rather than letting transformers ask on a terminal or fail halfway through a run."""
    for name in REMOTE_CODE_FILES:
        file = Path(path) / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            continue  # an unreadable config is reported by whatever reads it
        if isinstance(data, dict) and "auto_map" in data:
            raise ModelError(f"{file}: 'auto_map' asks to run the folder's own Python code "
                             f"({', '.join(sorted(map(str, data['auto_map'])))}); shardmix never runs code from a "
                             "model folder (trust_remote_code=False). Use a model type that transformers ships, "
                             "or remove auto_map if the folder's type is one")


def load_config(path: str | Path):
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    refuse_remote_code(path)
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except Exception as e:  # OSError, ValueError, JSON errors: all mean "not a model folder"
        raise ModelError(f"{path}: not a Hugging Face model directory ({e})") from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelError(f"{path}: model type '{config.model_type}' is not a causal language model "
                         "(AutoModelForCausalLM cannot load it)")
    # BERT-like encoders have an LM-head class for AutoModelForCausalLM, but attend both ways
    # unless configured as decoders: their perplexities would be meaningless
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False) \
            and not getattr(config, "is_encoder_decoder", False):
        raise ModelError(f"{path}: model type '{config.model_type}' with is_decoder=False attends in both "
                         "directions (an encoder); shardmix needs a causal language model")
    return config


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
TORCH_WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def check_pretrained(path: str | Path, tokenizer_path: str | Path) -> dict:
    """Everything about a user's checkpoint that can be checked before any job runs.

    Returns {"convert": True} for a checkpoint saved only as PyTorch .bin files, which a rule
    converts to safetensors once (merging reads safetensors, tensor by tensor)."""
    path, tokenizer_path = Path(path), Path(tokenizer_path)
    config = load_config(path)
    has_safetensors = any((path / f).exists() for f in WEIGHT_FILES)
    has_bin = any((path / f).exists() for f in TORCH_WEIGHT_FILES)
    if not has_safetensors and not has_bin:
        raise ModelError(f"{path}: no weights (model.safetensors or pytorch_model.bin, or their index files)")
    if not any((tokenizer_path / f).exists() for f in TOKENIZER_FILES):
        raise ModelError(f"{tokenizer_path}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); copy the model's "
                         "tokenizer there or set tokenizer.path to a folder that has one")
    from shardmix import tokenizer

    try:
        tok = tokenizer.load(str(tokenizer_path))
    except ValueError as e:
        raise ModelError(str(e)) from None
    vocab = getattr(config, "vocab_size", None) or config.get_text_config().vocab_size
    if len(tok) == 0 or len(tok) > vocab:
        raise ModelError(f"{tokenizer_path}: the tokenizer has {len(tok)} tokens but the model's embedding has "
                         f"{vocab} rows; use the tokenizer the model was trained with")
    return {"convert": not has_safetensors}


def checkpoint_dtype(path: str | Path) -> torch.dtype:
    """The floating-point dtype a checkpoint's weights are stored in (read from its safetensors header)."""
    from shardmix.merging.reader import DTYPES, checkpoint_files, read_header

    for file in checkpoint_files(Path(path)):
        header, _ = read_header(file)
        for info in header.values():
            if DTYPES[info["dtype"]].is_floating_point:
                return DTYPES[info["dtype"]]
    return torch.float32


@torch.no_grad()
def check_causal(model, vocab_size: int) -> None:
    """Changing the last token must not change any earlier prediction."""
    model.eval()
    device = next(model.parameters()).device
    ids = torch.arange(8, device=device).unsqueeze(0) % vocab_size
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % vocab_size
    a, b = model(input_ids=ids).logits[0, :-1], model(input_ids=changed).logits[0, :-1]
    if not torch.allclose(a.float(), b.float(), atol=1e-4, rtol=1e-3):
        raise ModelError(f"{model.config._name_or_path or model.config.model_type}: earlier predictions change "
                         "with a later token; the model is not causal")


def load_causal_lm(path: str | Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    load_config(path)
    checksums.check(path)
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32,
                                                    trust_remote_code=False, use_safetensors=True)
    except Exception as e:
        raise ModelError(f"{path}: could not load as a causal language model ({e})") from None


def skeleton(path: str | Path) -> torch.nn.Module:
    """An fp32 model with the architecture of the checkpoint at `path`; weights are filled later."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(load_config(path), dtype=torch.float32, trust_remote_code=False)


def context_length(model) -> int:
    return int(model.config.max_position_embeddings)


def save(model, tok, out_dir: str | Path, dtype: torch.dtype = torch.float32, extra: dict | None = None,
         label: str = "model") -> None:
    """Save a Hugging Face model directory whole or not at all, weights in `dtype`, plus JSON
    files `extra` (name -> data) such as the training log."""
    with atomic.directory(out_dir) as tmp:
        model.to(dtype).save_pretrained(str(tmp), safe_serialization=True)
        faults.crash_point(f"save:{label}")
        tok.save_pretrained(str(tmp))
        for name, data in (extra or {}).items():
            (tmp / name).write_text(json.dumps(data, indent=2) + "\n")


def convert(path: str | Path, tokenizer_path: str | Path, out_dir: str | Path) -> torch.dtype:
    """Save a PyTorch .bin checkpoint as safetensors in its own dtype, with its tokenizer.
    transformers reads .bin files with torch.load(weights_only=True): tensors only, so a pickled
    payload is refused, never run."""
    from transformers import AutoModelForCausalLM

    from shardmix import tokenizer

    load_config(path)  # refuses a folder that asks to run its own code
    try:
        lm = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype="auto",
                                                  trust_remote_code=False)
    except Exception as e:  # an UnpicklingError for a .bin file that holds anything but tensors
        raise ModelError(f"{path}: could not load its PyTorch checkpoint as plain tensors "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    dtype = next(p.dtype for p in lm.parameters() if p.is_floating_point())
    save(lm, tokenizer.load(str(tokenizer_path)), out_dir, dtype=dtype)
    return dtype
