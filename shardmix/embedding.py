"""Embeddings of candidate and target units, without a hub.

Default: the mean-pooled last hidden states of the run's seed model, the one model every run
has, reading the units' token ids directly. Or a local Hugging Face encoder folder: the units
are decoded with the run's tokenizer and re-encoded with the encoder's own (truncated to its
length), then mean-pooled over real tokens.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from shardmix import model as models


class EmbeddingError(ValueError):
    """An embedding model shardmix cannot use (named by its config key)."""


def check_encoder(path: str | Path, key: str = "selection.embedding.model"):
    """The encoder's config, or an error naming the key: a missing folder, a folder that is no
    model, or a causal LM (it reads left to right; leave the key unset to use the seed that way)."""
    from transformers import AutoConfig

    path = Path(path)
    if not path.is_dir():
        raise EmbeddingError(f"{key}: {path} is not a folder")
    try:
        models.refuse_remote_code(path)
    except models.ModelError as e:
        raise EmbeddingError(f"{key}: {e}") from None
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except Exception as e:  # OSError, ValueError, JSON errors: all mean "not a model folder"
        raise EmbeddingError(f"{key}: {path} is not a Hugging Face model folder ({e})") from None
    causal = [a for a in (config.architectures or []) if a.endswith(("ForCausalLM", "LMHeadModel"))]
    if getattr(config, "is_decoder", False) or causal:
        raise EmbeddingError(f"{key}: {path} holds a causal language model ({config.model_type}), not an "
                             "encoder; leave the key unset to embed with the run's seed model")
    return config


class Embedder:
    """Mean-pooled, L2-normalised embeddings of token units [n, unit_tokens] of the run's tokenizer."""

    def __init__(self, seed_dir: str, run_tokenizer, encoder: str | None, device: torch.device,
                 batch_size: int = 32):
        self.device, self.batch_size, self.run_tok = device, batch_size, run_tokenizer
        self.encoder_tok = None
        if encoder is None:
            self.model = models.load_causal_lm(seed_dir).base_model
            self.source = f"seed model {seed_dir}"
        else:
            from transformers import AutoModel, AutoTokenizer

            check_encoder(encoder)
            try:
                self.encoder_tok = AutoTokenizer.from_pretrained(encoder, local_files_only=True, trust_remote_code=False)
                self.model = AutoModel.from_pretrained(encoder, local_files_only=True, dtype=torch.float32,
                                                       trust_remote_code=False)
            except Exception as e:
                raise EmbeddingError(f"selection.embedding.model: cannot load {encoder} as an encoder ({e})") from None
            self.source = f"encoder {encoder}"
        self.model.to(device).eval()
        self.width = int(self.model.config.hidden_size)

    @torch.no_grad()
    def __call__(self, units: np.ndarray, log=None) -> np.ndarray:
        out = np.zeros((len(units), self.width), dtype=np.float32)
        start, last_report = time.perf_counter(), 0.0
        for i in range(0, len(units), self.batch_size):
            out[i:i + self.batch_size] = self._batch(units[i:i + self.batch_size])
            now = time.perf_counter() - start
            if log and now - last_report > 30:
                log(f"embedded {i + self.batch_size}/{len(units)} units ({now:.0f} s)")
                last_report = now
        return out

    def _batch(self, units: np.ndarray) -> np.ndarray:
        if self.encoder_tok is None:
            ids = torch.as_tensor(np.asarray(units, dtype=np.int64), device=self.device)
            mask = torch.ones_like(ids)
        else:
            texts = self.run_tok.batch_decode(np.asarray(units, dtype=np.int64).tolist())
            enc = self.encoder_tok(texts, truncation=True, padding=True, return_tensors="pt").to(self.device)
            ids, mask = enc["input_ids"], enc["attention_mask"]
        with models.autocast(self.device):
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
