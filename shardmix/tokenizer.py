"""Train a byte-level BPE tokenizer, or load a local Hugging Face one."""

from __future__ import annotations

from typing import Iterable

import numpy as np

EOS = "<|endoftext|>"
# files of which a folder holds at least one when it holds a Hugging Face tokenizer
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model")


def train_bpe(texts: Iterable[str], vocab_size: int, out_dir: str):
    """Train byte-level BPE and save it where AutoTokenizer.from_pretrained finds it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=None)
    fast.save_pretrained(out_dir)
    return fast


def load(path: str):
    from transformers import AutoTokenizer

    from shardmix.model import ModelError, refuse_remote_code

    try:
        refuse_remote_code(path)
    except ModelError as e:
        raise ValueError(str(e)) from None
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as e:  # transformers raises OSError/ValueError/... for a folder it cannot use
        raise ValueError(f"{path}: not a Hugging Face tokenizer directory ({e})") from None
    if tok.eos_token_id is None:
        raise ValueError(f"{path}: tokenizer has no end-of-text token to separate documents")
    return tok


# A fast tokenizer keeps offsets, strings and word ids for every token of the texts of one
# call, tens of bytes of memory per byte of text: long documents are cut into pieces, and each
# call gets at most BATCH_CHARS characters, so memory stays bounded whatever a document's size.
PIECE_CHARS = 1 << 16
BATCH_CHARS = 1 << 19


# Training holds a document's pre-tokenized words at once (about 100 bytes per byte of text):
# documents longer than this are fed in pieces. Shorter ones, nearly all, go in whole, so the
# tokenizer of a corpus without huge documents is what it always was.
TRAIN_PIECE_CHARS = 1 << 20


def training_pieces(text: str) -> list[str]:
    return _pieces(text, TRAIN_PIECE_CHARS)


def _pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """`text` cut after a newline (or, failing that, a space) near every `size` characters."""
    pieces, start = [], 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n", start + size // 2, end)
        if cut < 0:
            cut = text.rfind(" ", start + size // 2, end)
        end = cut + 1 if cut >= 0 else end
        pieces.append(text[start:end])
        start = end
    pieces.append(text[start:])
    return pieces


def _ids_of(tok, pieces: list[str]) -> list[list[int]]:
    """Ids of each piece, as tok(pieces, add_special_tokens=False) gives them. A fast
    tokenizer's Rust core is called directly: transformers' per-call work (attention masks, a
    BatchEncoding) costs about a tenth of the tokenizing; truncation and padding are switched off
    as transformers does on every call."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return tok(pieces, add_special_tokens=False)["input_ids"]
    if backend.truncation is not None:
        backend.no_truncation()
    if backend.padding is not None:
        backend.no_padding()
    return [e.ids for e in backend.encode_batch(pieces, add_special_tokens=False)]


def encode_flat(tok, texts: list[str], dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """The ids of all texts, each followed by the end-of-text token, as one array; and each
    text's number of ids (with its end-of-text)."""
    parts: list[list[list[int]]] = [[] for _ in texts]
    group, group_chars = [], 0

    def flush():
        for (doc, _), ids in zip(group, _ids_of(tok, [p for _, p in group])):
            parts[doc].append(ids)
        group.clear()

    for doc, text in enumerate(texts):
        for piece in _pieces(text) if text else []:
            if group and group_chars + len(piece) > BATCH_CHARS:
                flush()
                group_chars = 0
            group.append((doc, piece))
            group_chars += len(piece)
    if group:
        flush()
    eos, flat = tok.eos_token_id, []
    lengths = np.empty(len(texts), np.int64)
    for doc, pieces in enumerate(parts):
        before = len(flat)
        for ids in pieces:
            flat.extend(ids)
        flat.append(eos)
        lengths[doc] = len(flat) - before
    return np.array(flat, dtype=dtype), lengths


def encode_documents(tok, texts: list[str], dtype=np.int64) -> list[np.ndarray]:
    """Token ids of each text, each followed by the end-of-text token."""
    ids, lengths = encode_flat(tok, texts, dtype)
    return np.split(ids, np.cumsum(lengths)[:-1]) if len(texts) else []


def token_byte_lengths(tok) -> np.ndarray:
    """UTF-8 bytes each token stands for; special tokens count 0. Used for bits per byte."""
    n = len(tok)
    lengths = np.zeros(n, dtype=np.int64)
    special = set(tok.all_special_ids)
    byte_level = _byte_level_alphabet()
    pieces = tok.convert_ids_to_tokens(list(range(n)))
    for i, piece in enumerate(pieces):
        if i in special or piece is None:
            continue
        if all(ch in byte_level for ch in piece):
            lengths[i] = len(piece)  # one alphabet character per byte
        else:
            lengths[i] = len(tok.decode([i]).encode("utf-8"))
    return lengths


def _byte_level_alphabet() -> set[str]:
    from tokenizers import pre_tokenizers

    return set(pre_tokenizers.ByteLevel.alphabet())

