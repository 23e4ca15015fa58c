"""Tokenizers of the text modality: a byte-level BPE trained on the user's corpus, or a checkpoint's own.

Either way the engine holds one ``tokenizers.Tokenizer`` (the fast tokenizer
behind transformers' tokenizers) plus the ids of its special tokens: padding,
begin and end of text, and one *control token* per (label column, value), e.g.
``<|label=pos|>``, which the language model reads before a text to condition
on its label. The whole tokenizer saves as one ``tokenizer.json`` (an extra
file of the artifact) and a few ids in JSON.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.errors import ArtifactError, InvalidDataError, InvalidOptionError

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"
TOKENIZER_FILE = "tokenizer.json"


def control_token(column: str, value: str) -> str:
    """The control token that asks for ``column = value``: ``<|label=pos|>``."""
    return f"<|{column}={value}|>"


def byte_alphabet_size() -> int:
    from tokenizers import pre_tokenizers

    return len(pre_tokenizers.ByteLevel.alphabet())


@dataclass
class TextTokenizer:
    """A ``tokenizers.Tokenizer`` with the special and control token ids the models use.

    Attributes:
        tokenizer: the fast tokenizer.
        pad_id, bos_id, eos_id: special token ids (a checkpoint without a padding or
            begin token gets ours added; one whose begin and end tokens are one token
            keeps it so).
        controls: label column -> value -> control token id, in the order learned.
        source: ``"trained"`` or the pretrained folder it came from.
        unseen: ids a tokenizer learned from scratch has but its corpus never produces (the
            byte alphabet's unused bytes, merges always absorbed by longer ones): never drawn,
            since an undertrained model would otherwise emit stray bytes (``\ufffd`` in the text).
    """

    tokenizer: Any
    pad_id: int
    bos_id: int
    eos_id: int
    controls: dict[str, dict[str, int]] = field(default_factory=dict)
    source: str = "trained"
    unseen: tuple[int, ...] = ()

    # ------------------------------------------------------------ building
    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int, controls: Mapping[str, Sequence[str]] | None = None,
              *, min_frequency: int = 2) -> TextTokenizer:
        """A byte-level BPE of ``vocab_size`` tokens learned on ``texts`` (special and control tokens included).

        Raises :class:`InvalidDataError` when the corpus is too small to learn that many
        tokens (too few repeated pairs), naming the size it reached.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        specials = [PAD, BOS, EOS] + [control_token(c, v) for c, vs in (controls or {}).items() for v in vs]
        floor = byte_alphabet_size() + len(specials)
        if vocab_size <= floor:
            raise InvalidOptionError(
                f"The 'vocab_size' parameter must be larger than the {byte_alphabet_size()} byte tokens plus "
                f"{len(specials)} special and control tokens ({floor}). Got {vocab_size!r} instead."
            )
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
        )
        tok.train_from_iterator(list(texts), trainer=trainer)
        reached = tok.get_vocab_size()
        if reached < vocab_size:
            raise InvalidDataError(
                f"The corpus ({len(texts)} texts) is too small for a tokenizer of vocab_size={vocab_size}: byte-level BPE "
                f"found pairs repeated at least {min_frequency} times for only {reached} tokens. Use "
                f"model_config={{'vocab_size': {reached}}} or less, or a larger corpus."
            )
        out = cls._with_ids(tok, controls or {}, source="trained")
        used = {i for ids in out.encode(texts) for i in ids}
        known = used | out.special_ids  # the property builds a fresh set: once, not per vocabulary id
        out.unseen = tuple(i for i in range(out.vocab_size) if i not in known)
        return out

    @classmethod
    def from_pretrained(cls, folder: str | Path, controls: Mapping[str, Sequence[str]] | None = None) -> TextTokenizer:
        """The tokenizer of a pretrained checkpoint folder, with our padding and control tokens added."""
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
        except (OSError, ValueError, TypeError) as exc:
            raise ArtifactError(f"The pretrained folder {str(folder)!r} has no tokenizer transformers can read ({exc}).") from None
        tok = getattr(hf, "backend_tokenizer", None)
        if tok is None:
            raise ArtifactError(f"The tokenizer of {str(folder)!r} has no fast (tokenizers) version; the text modality needs one.")
        from tokenizers import AddedToken, Tokenizer

        tok = Tokenizer.from_str(tok.to_str())  # a private copy: added tokens must not leak into a cached tokenizer
        bos = hf.bos_token or hf.eos_token
        eos = hf.eos_token or hf.bos_token
        pad = hf.pad_token
        added = [t for t in (PAD if pad is None else None, BOS if bos is None else None, EOS if eos is None else None) if t]
        if added:
            tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in added])
        return cls._with_ids(tok, controls or {}, source=str(folder), bos=bos or BOS, eos=eos or EOS, pad=pad or PAD)

    @classmethod
    def _with_ids(cls, tok: Any, controls: Mapping[str, Sequence[str]], *, source: str,
                  bos: str = BOS, eos: str = EOS, pad: str = PAD) -> TextTokenizer:
        from tokenizers import AddedToken

        wanted = [control_token(c, v) for c, vs in controls.items() for v in vs]
        missing = [t for t in wanted if tok.token_to_id(t) is None]
        if missing:
            tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])
        ids = {c: {str(v): int(tok.token_to_id(control_token(c, v))) for v in vs} for c, vs in controls.items()}
        return cls(tok, int(tok.token_to_id(pad)), int(tok.token_to_id(bos)), int(tok.token_to_id(eos)), ids, source)

    # ------------------------------------------------------------ using
    @property
    def special_ids(self) -> frozenset[int]:
        """Padding, begin, end and control token ids: tokens no text of the corpus contains."""
        return frozenset({self.pad_id, self.bos_id, self.eos_id, *(i for vs in self.controls.values() for i in vs.values())})

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, texts: Iterable[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(map(int, ids)), skip_special_tokens=True)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return self.tokenizer.decode_batch([list(map(int, ids)) for ids in batch], skip_special_tokens=True)

    def control_ids(self, labels: Mapping[str, str]) -> list[int]:
        """The control token ids of one text's labels, in the order the columns were learned."""
        out = []
        for column, known in self.controls.items():
            value = labels[column]
            out.append(known[value])
        return out

    # ------------------------------------------------------------ saving
    def to_file_bytes(self) -> bytes:
        return self.tokenizer.to_str().encode()

    def to_dict(self) -> dict[str, Any]:
        return {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id, "controls": self.controls, "source": self.source,
                "unseen": list(self.unseen)}

    @classmethod
    def from_saved(cls, blob: bytes, meta: Mapping[str, Any]) -> TextTokenizer:
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_str(blob.decode())
        except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
            raise ArtifactError(f"{TOKENIZER_FILE} cannot be read: {exc}") from None
        controls = {str(c): {str(v): int(i) for v, i in vs.items()} for c, vs in dict(meta["controls"]).items()}
        return cls(tok, int(meta["pad_id"]), int(meta["bos_id"]), int(meta["eos_id"]), controls, str(meta.get("source", "trained")),
                   tuple(int(i) for i in meta.get("unseen", ())))
