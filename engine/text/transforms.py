"""Texts to token-id blocks and back: the encoded form a causal language model trains on.

A text with labels becomes ``[bos, <|col=value|>..., tokens of the text..., eos]``;
the control tokens ahead of the text are what lets the model be asked for a
label at sampling time. Sequences are right-padded to ``block_size`` with a
padding mask, or packed (concatenated and cut into full blocks) when many
texts are much shorter than a block.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.text.tokenization import TextTokenizer


@dataclass(frozen=True)
class TextLayout:
    """What the encoded token blocks look like, and the architecture of the network that reads them.

    Attributes:
        vocab_size: tokens of the tokenizer (special and control tokens included).
        block_size: the longest sequence the model sees (prefix, text and end token).
        pad_id, bos_id, eos_id: special token ids.
        prefix_length: tokens before a text: the begin token and one control token per label column.
        hf_config: a pretrained checkpoint's transformers config (as a dict, vocabulary
            resized to ``vocab_size``); None builds a GPT-2 from the model's own config.
        label_types: every token also carries its text's first control token as a GPT-2
            token type (the control's embedding added at every position), so the label
            reaches every position directly, not only through attention to the prefix.
    """

    vocab_size: int
    block_size: int
    pad_id: int
    bos_id: int
    eos_id: int
    prefix_length: int = 1
    hf_config: dict[str, Any] | None = None
    label_types: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size, "block_size": self.block_size, "pad_id": self.pad_id,
            "bos_id": self.bos_id, "eos_id": self.eos_id, "prefix_length": self.prefix_length,
            "hf_config": self.hf_config, "label_types": self.label_types,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextLayout:
        return cls(
            int(d["vocab_size"]), int(d["block_size"]), int(d["pad_id"]), int(d["bos_id"]), int(d["eos_id"]),
            int(d.get("prefix_length", 1)), d.get("hf_config"), bool(d.get("label_types", False)),
        )


def sequences(tokenizer: TextTokenizer, texts: Sequence[str], labels: Mapping[str, Sequence[str]]) -> list[list[int]]:
    """``[bos, controls..., text tokens..., eos]`` for every text."""
    encoded = tokenizer.encode(texts)
    columns = list(tokenizer.controls)
    out = []
    for i, ids in enumerate(encoded):
        controls = tokenizer.control_ids({c: labels[c][i] for c in columns})
        out.append([tokenizer.bos_id, *controls, *ids, tokenizer.eos_id])
    return out


def encode_blocks(seqs: Sequence[Sequence[int]], layout: TextLayout, *, pack: bool = False) -> dict[str, np.ndarray]:
    """Token blocks ``{"ids": int64 (N, T), "mask": bool (N, T)}`` with ``T = layout.block_size``
    (and ``"types"``, int64 (N, T), each token's first control token, when ``layout.label_types``).

    Padded: one text per row, cut at ``block_size`` (a text cut short loses its end token).
    Packed: the texts one after the other, cut into full rows (the last padded); each
    row may hold the end of one text and the start of the next, as in GPT-2's training.
    """
    t = layout.block_size
    typed = layout.label_types and layout.prefix_length > 1
    if pack:
        stream = np.fromiter((tok for s in seqs for tok in s), dtype=np.int64)
        rows = -(-len(stream) // t)
        ids = np.full((rows, t), layout.pad_id, dtype=np.int64)
        ids.reshape(-1)[: len(stream)] = stream
        mask = np.zeros((rows, t), dtype=bool)
        mask.reshape(-1)[: len(stream)] = True
        out = {"ids": ids, "mask": mask}
        if typed:  # a text's type follows it across the cut into the next row
            types = np.full((rows, t), layout.pad_id, dtype=np.int64)
            types.reshape(-1)[: len(stream)] = np.fromiter((s[1] for s in seqs for _ in s), dtype=np.int64)
            out["types"] = types
        return out
    ids = np.full((len(seqs), t), layout.pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), t), dtype=bool)
    types = np.full((len(seqs), t), layout.pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        n = min(len(s), t)
        ids[i, :n] = s[:n]
        mask[i, :n] = True
        if typed:
            types[i, :] = s[1]
    return {"ids": ids, "mask": mask, **({"types": types} if typed else {})}


def auto_block_size(seqs: Sequence[Sequence[int]], limit: int) -> int:
    """A block that holds 99% of the sequences whole, at most ``limit`` (the model's positions)."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64)
    return int(min(limit, max(4, np.percentile(lengths, 99))))
