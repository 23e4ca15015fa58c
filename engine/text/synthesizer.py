"""The text front door: ``TextSynthesizer``.

``fit`` reads a corpus (texts and optional label columns), learns a tokenizer
(a byte-level BPE on the corpus, or the pretrained checkpoint's own, with one
control token per label value), encodes ``[bos, controls, text, eos]`` blocks
and trains a causal language model in the engine's one Ray Train loop; then it
trains the discriminator that filters generations and hashes the training
n-grams for the memorisation guard. ``sample`` returns exactly the texts asked
for, each with its labels, none a copy of a training text.

Example::

    synth = TextSynthesizer(model="gpt2", model_config={"n_layer": 4, "n_embd": 256})
    synth.fit(df, text_column="text", label_column="label", max_steps=2000)
    texts = synth.sample(1000, conditions={"label": "pos"}, temperature=0.9, top_p=0.95, seed=7)
    report = synth.evaluate(real, texts)
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from engine.core.errors import InvalidConditionError, InvalidOptionError, SynthError
from engine.core.seeds import seed_streams
from engine.core.synthesizer import FrontDoorOption, Synthesizer, check_count, check_seed, reading
from engine.store.artifact import Artifact
from engine.text.io import read_corpus
from engine.text.memorization import DEFAULT_NGRAM, MemorizationGuard
from engine.text.models.causal_lm import CausalLMModel, GenerationRequest, max_positions, pretrained_hf_config
from engine.text.models.discriminator import DiscriminatorConfig, DiscriminatorFilter
from engine.text.tokenization import TOKENIZER_FILE, TextTokenizer
from engine.text.transforms import TextLayout, auto_block_size, encode_blocks, sequences

MAX_ROUNDS = 8  # generation rounds to replace refused candidates before giving up


class GenerationError(SynthError, RuntimeError):
    """The model could not produce the texts asked for (every candidate was a copy, or empty)."""


class TextSynthesizer(Synthesizer):
    """Learn a text corpus with a causal language model and generate new texts like it, by label.

    Args:
        model: ``"gpt2"`` (a GPT-2 built from ``model_config``, or the architecture of ``pretrained``).
        model_config: hyperparameters (see ``CausalLMConfig``: sizes, ``vocab_size``, ``block_size``,
            ``pack``, learning rate...).
        pretrained: a local folder or hub id of a transformers causal LM to fine-tune (hub ids are
            read from the local cache first); its own tokenizer is used, grown by control tokens.
        memorization_ngram: generated texts sharing this many consecutive words with a training text
            (or copying one) are refused and counted.
        temperature, top_k, top_p, max_new_tokens: default sampling rule (each may be given per call).
        guidance: contrastive label guidance at sampling: each token's log-probability under the
            requested label plus ``guidance`` times its excess over the other labels' (0: none).
        filter: rank candidates with the discriminator and keep the best (when one was trained).
        oversample: candidates drawn per kept text when filtering.
        num_workers, use_gpu, cpus_per_worker: how Ray Train scales training.
    """

    modality = "text"
    default_epochs = {"gpt2": 10}
    default_batch_size = {"gpt2": 32}

    def __init__(
        self,
        model: str = "gpt2",
        *,
        model_config: Mapping[str, Any] | None = None,
        pretrained: str | os.PathLike[str] | None = None,
        memorization_ngram: int = DEFAULT_NGRAM,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        max_new_tokens: int | None = None,
        guidance: float = 0.0,
        filter: bool = True,
        oversample: int = 2,
        num_workers: int = 1,
        use_gpu: bool | None = None,
        cpus_per_worker: float | None = None,
    ):
        super().__init__(model, model_config=model_config, num_workers=num_workers, use_gpu=use_gpu,
                         cpus_per_worker=cpus_per_worker, pretrained=pretrained)
        self.memorization_ngram = check_count(memorization_ngram, "memorization_ngram")
        self.temperature, self.top_k, self.top_p = _sampling_rule(temperature, top_k, top_p)
        self.max_new_tokens = None if max_new_tokens is None else check_count(max_new_tokens, "max_new_tokens")
        self.guidance = _check_guidance(guidance)
        self.filter = bool(filter)
        self.oversample = check_count(oversample, "oversample")
        self._model: CausalLMModel | None = None
        self._tokenizer: TextTokenizer | None = None
        self.discriminator_: DiscriminatorFilter | None = None
        self.guard_: MemorizationGuard | None = None
        self.text_column_ = "text"
        self.label_combos_: list[tuple[list[str], int]] = []  # label values seen together, and how often
        self.last_sample_stats_: dict[str, int] = {}

    # ------------------------------------------------------------ interfaces
    @classmethod
    def cli_options(cls) -> tuple[FrontDoorOption, ...]:
        return (
            FrontDoorOption("text_column", "the column holding the texts (default 'text')", stage="fit"),
            FrontDoorOption("label_column", "label column(s) to condition on", stage="fit", many=True),
            FrontDoorOption("max_steps", "train for this many optimisation steps instead of epochs", stage="fit", type=int),
            FrontDoorOption("temperature", "sampling temperature (0: greedy)", stage="sample", type=float),
            FrontDoorOption("top_k", "sample among the k likeliest tokens (0: all)", stage="sample", type=int),
            FrontDoorOption("top_p", "nucleus sampling mass", stage="sample", type=float),
            FrontDoorOption("max_new_tokens", "longest generated text, in tokens", stage="sample", type=int),
            FrontDoorOption("guidance", "contrastive label guidance weight (0: none)", stage="sample", type=float),
        )

    # ------------------------------------------------------------ fitting
    def fit(
        self,
        data: Any,
        *,
        text_column: str = "text",
        label_column: str | Sequence[str] | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        discriminator: bool = True,
        discriminator_config: Mapping[str, Any] | None = None,
        discriminator_samples: int = 256,
        show_progress: bool = True,
        **train_options: Any,
    ) -> TextSynthesizer:
        """Train on ``data`` (DataFrame, CSV/Parquet/JSON lines/.txt path, folder, dict, list, HF dataset).

        ``train_options`` go to the training loop (``max_steps``, ``lr_schedule``, ``warmup_steps``,
        ``grad_accumulation_steps``, ``mixed_precision``, ``checkpoint_every``, ``storage_path``...).
        ``discriminator`` trains the filter on ``discriminator_samples`` generated texts.
        """
        if isinstance(label_column, Sequence) and not isinstance(label_column, str) and len(label_column) == 0:
            label_column = None
        corpus = read_corpus(data, text_column=text_column, label_column=label_column, min_label_count=2)
        disc_config = DiscriminatorConfig(**dict(discriminator_config or {})) if discriminator else None
        check_count(discriminator_samples, "discriminator_samples", minimum=2)
        config = self._config_object()
        controls = {c: sorted(set(v)) for c, v in corpus.labels.items()}
        folder = None
        if self.pretrained is not None:
            from engine.core.pretrained import pretrained_folder

            folder = pretrained_folder(self.pretrained)
            tokenizer = TextTokenizer.from_pretrained(folder, controls)
            hf_config = pretrained_hf_config(folder, tokenizer.vocab_size)
        else:
            tokenizer = TextTokenizer.train(corpus.texts, config.vocab_size, controls)
            hf_config = None
        seqs = sequences(tokenizer, corpus.texts, corpus.labels)
        limit = max_positions(hf_config)
        block = config.block_size or auto_block_size(seqs, limit)
        if block > limit:
            raise InvalidOptionError(f"The 'block_size' parameter must be at most {limit} (the model's positions). Got {block} instead.")
        # Token types carry the label to every position; GPT-2's embeddings take them (other families may not).
        typed = config.label_embedding and bool(controls) and (hf_config is None or hf_config.get("model_type") == "gpt2")
        layout = TextLayout(tokenizer.vocab_size, block, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id,
                            1 + len(controls), hf_config, typed)
        blocks = encode_blocks(seqs, layout, pack=config.pack)
        model = self._train_torch(layout=layout, data=blocks, epochs=epochs, batch_size=batch_size, seed=seed,
                                  show_progress=show_progress, **train_options)
        self._model, self._tokenizer = model, tokenizer
        self.text_column_ = corpus.text_column
        combos = pd.DataFrame(corpus.labels).value_counts(sort=False) if corpus.labels else None
        self.label_combos_ = [] if combos is None else [([str(v) for v in k], int(c)) for k, c in combos.items()]
        self.guard_ = MemorizationGuard.fit(corpus.texts, self.memorization_ngram)
        self.discriminator_ = None
        if disc_config is not None:
            self.discriminator_ = self._fit_discriminator(corpus, disc_config, discriminator_samples, seed)
        return self

    def _fit_discriminator(self, corpus: Any, config: DiscriminatorConfig, n: int, seed: int) -> DiscriminatorFilter:
        """Train the filter on the corpus against ``n`` unfiltered generations (labels in the training mix)."""
        model, tok = self._require_fitted()
        labels = self._plan_labels(n, None, np.random.default_rng(seed))
        fake = self._generate_ids(n, labels, None, self._rule({}), seed_streams(seed, 1_000_003)[0])
        columns = list(tok.controls)
        real_labels, k = None, 0
        if columns:
            values = list(tok.controls[columns[0]])
            real_labels = np.asarray([values.index(v) for v in corpus.labels[columns[0]]])
            k = len(values)
        return DiscriminatorFilter.fit(
            tok.encode(corpus.texts), real_labels, [_until_end(f, tok.eos_id) for f in fake],
            vocab_size=tok.vocab_size, pad_id=tok.pad_id, num_labels=k, config=config, seed=seed,
        )

    def _require_fitted(self) -> tuple[CausalLMModel, TextTokenizer]:
        if self._model is None or self._tokenizer is None:
            raise self._not_fitted()
        return self._model, self._tokenizer

    @property
    def label_columns_(self) -> list[str]:
        return list(self._tokenizer.controls) if self._tokenizer is not None else []

    # ------------------------------------------------------------ sampling
    def sample(
        self,
        num_samples: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
        guidance: float | None = None,
        filter: bool | None = None,
        seed: int | None = None,
        stream: int = 0,
    ) -> pd.DataFrame:
        """Exactly ``num_samples`` new texts (a DataFrame: the text column, then the label columns).

        Args:
            conditions: ``{"label": "pos"}`` (every text of that label), ``{"label": {"pos": 0.3, "neg": 0.7}}``
                (a mixture: shares, or counts adding up to ``num_samples``); columns not named follow the
                training mix. None: the training mix.
            prompt: text every generation starts with (kept in the output).
            temperature, top_k, top_p, max_new_tokens, guidance, filter: override the defaults set at construction.
            seed: the same seed gives the same texts.
        """
        model, tok = self._require_fitted()
        n = check_count(num_samples)
        gen, rng = seed_streams(check_seed(seed), stream)
        labels = self._plan_labels(n, conditions, rng)
        rule = self._rule({"temperature": temperature, "top_k": top_k, "top_p": top_p, "max_new_tokens": max_new_tokens,
                           "guidance": guidance})
        use_filter = (self.filter if filter is None else bool(filter)) and self.discriminator_ is not None
        texts = self._generate_texts(n, labels, prompt, rule, gen, use_filter)
        return pd.DataFrame({self.text_column_: texts, **labels})

    def _rule(self, given: Mapping[str, Any]) -> dict[str, Any]:
        t = self.temperature if given.get("temperature") is None else given["temperature"]
        k = self.top_k if given.get("top_k") is None else given["top_k"]
        p = self.top_p if given.get("top_p") is None else given["top_p"]
        t, k, p = _sampling_rule(t, k, p)
        m = given.get("max_new_tokens") or self.max_new_tokens
        model, _ = self._require_fitted()
        m = check_count(m, "max_new_tokens") if m is not None else model.layout.block_size - model.layout.prefix_length
        g = _check_guidance(self.guidance if given.get("guidance") is None else given["guidance"])
        return {"temperature": t, "top_k": k, "top_p": p, "max_new_tokens": m, "guidance": g}

    def _plan_labels(self, n: int, conditions: Mapping[str, Any] | None, rng: np.random.Generator) -> dict[str, list[str]]:
        """The label values of each of ``n`` texts: the training mix, with the columns ``conditions`` names overridden."""
        _, tok = self._require_fitted()
        columns = list(tok.controls)
        conditions = dict(conditions or {})
        unknown = [c for c in conditions if c not in columns]
        if unknown:
            known = ", ".join(map(repr, columns)) or "none (it was trained without labels)"
            raise InvalidConditionError(f"Unknown condition column {unknown[0]!r}; this model's label columns are {known}.")
        if not columns:
            return {}
        counts = np.asarray([c for _, c in self.label_combos_], dtype=np.float64)
        picks = rng.choice(len(counts), size=n, p=counts / counts.sum())
        out = {c: [self.label_combos_[i][0][j] for i in picks] for j, c in enumerate(columns)}
        for column, wanted in conditions.items():
            out[column] = _condition_values(column, wanted, list(tok.controls[column]), n, rng)
        return out

    def _generate_ids(self, n: int, labels: Mapping[str, Sequence[str]], prompt: str | None, rule: Mapping[str, Any],
                      gen: torch.Generator) -> np.ndarray:
        model, _ = self._require_fitted()
        return model.generate(n, self._request(labels, prompt, rule, n), gen)

    def _request(self, labels: Mapping[str, Sequence[str]], prompt: str | None, rule: Mapping[str, Any],
                 n: int) -> GenerationRequest:
        model, tok = self._require_fitted()
        columns = list(tok.controls)
        prompt_ids = tok.encode([prompt])[0] if prompt else []
        rows = n
        prefixes = np.asarray(
            [[tok.bos_id, *(tok.controls[c][labels[c][i]] for c in columns), *prompt_ids] for i in range(rows)], dtype=np.int64
        ).reshape(rows, -1)
        if prefixes.shape[1] >= model.layout.block_size and model.layout.hf_config is None:
            raise InvalidOptionError(
                f"The prompt is {len(prompt_ids)} tokens long; with the label tokens it fills the model's "
                f"{model.layout.block_size}-token block. Use a shorter prompt."
            )
        banned = (*sorted(tok.special_ids), *tok.unseen)  # the end token is allowed back below
        negatives = None
        guidance = float(rule.get("guidance", 0.0))
        if guidance > 0 and columns and len(tok.controls[columns[0]]) > 1:
            # The same prefix asking for each other value of the first label column: what guidance contrasts with.
            ids = list(tok.controls[columns[0]].values())
            negatives = np.repeat(prefixes[:, None, :], len(ids) - 1, axis=1).copy()
            for i in range(rows):
                negatives[i, :, 1] = [v for v in ids if v != prefixes[i, 1]]
        req = GenerationRequest(prefixes, int(rule["max_new_tokens"]), float(rule["temperature"]), int(rule["top_k"]),
                                float(rule["top_p"]), tuple(int(b) for b in banned if b != tok.eos_id), guidance, negatives)
        return req

    def _generate_texts(self, n: int, labels: dict[str, list[str]], prompt: str | None, rule: Mapping[str, Any],
                        gen: torch.Generator, use_filter: bool) -> list[str]:
        """One text per planned row: candidates drawn in rounds, copies and empty texts refused, the best kept."""
        model, tok = self._require_fitted()
        k = self.oversample if use_filter else 1
        columns = list(tok.controls)
        first = list(tok.controls[columns[0]]) if columns else []
        result: list[str | None] = [None] * n
        pending = list(range(n))
        stats = {"candidates": 0, "copies_refused": 0, "ngram_overlaps_refused": 0, "empty_refused": 0, "kept": 0}
        prefix_text = prompt or ""
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            slots = [i for i in pending for _ in range(k)]
            slot_labels = {c: [labels[c][i] for i in slots] for c in columns}
            req = self._request(slot_labels, prompt, rule, len(slots))
            ids = [_until_end(r, tok.eos_id) for r in model.generate(len(slots), req, gen)]
            texts = [(prefix_text + tok.decode(r)).strip() if prefix_text else tok.decode(r).strip() for r in ids]
            reasons = self.guard_.reasons(texts) if self.guard_ is not None else [None] * len(texts)
            scores = np.zeros(len(texts))
            if use_filter:
                lab = np.asarray([first.index(v) for v in slot_labels[columns[0]]]) if columns else None
                scores = self.discriminator_.score(ids, lab)["score"]
            stats["candidates"] += len(texts)
            best: dict[int, tuple[float, str]] = {}
            for j, (slot, text, reason) in enumerate(zip(slots, texts, reasons)):
                if reason == "copy":
                    stats["copies_refused"] += 1
                elif reason == "ngram":
                    stats["ngram_overlaps_refused"] += 1
                elif not text or text == prefix_text.strip():
                    stats["empty_refused"] += 1
                elif slot not in best or scores[j] > best[slot][0]:
                    best[slot] = (float(scores[j]), text)
            for slot, (_, text) in best.items():
                result[slot] = text
            pending = [i for i in pending if result[i] is None]
        stats["kept"] = n - len(pending)
        self.last_sample_stats_ = stats
        if pending:
            raise GenerationError(
                f"After {MAX_ROUNDS} rounds, {len(pending)} of {n} texts were still refused ({stats}): the model copies its "
                "training texts or ends at once. Train longer or on more texts, raise the temperature, or raise "
                "memorization_ngram."
            )
        return [t for t in result if t is not None]

    def sample_table(self, num_rows: int, *, conditions: Any = None, seed: int, stream: int = 0, row_offset: int = 0) -> pa.Table:
        """One shard of the sharded sampler (or one chunk of an HTTP answer): texts and labels as an Arrow table."""
        del row_offset  # texts carry no identifiers to keep unique across shards
        n = check_count(num_rows, "num_rows")
        frame = self.sample(n, conditions=self.coerce_conditions(conditions), seed=seed, stream=stream)
        return pa.Table.from_pandas(frame, preserve_index=False)

    def parse_conditions(self, conditions: Any) -> Any:
        """Check ``conditions`` against the labels learned, before a sharded run starts."""
        self._plan_labels(1, self.coerce_conditions(conditions), np.random.default_rng(0))
        return conditions

    def coerce_conditions(self, conditions: Any) -> Any:
        """A bare label (``"pos"``) stands for the one label column; a mapping is itself."""
        if conditions is None or isinstance(conditions, Mapping):
            return conditions or None
        columns = self.label_columns_
        if len(columns) == 1:
            return {columns[0]: conditions}
        raise InvalidConditionError(f"Conditions must name their label column ({', '.join(map(repr, columns))}); got {conditions!r}.")

    def describe(self) -> dict[str, Any]:
        model, tok = self._require_fitted()
        return {
            **super().describe(),
            "text_column": self.text_column_,
            "labels": {c: list(v) for c, v in tok.controls.items()},
            "tokenizer": {"source": tok.source, "vocab_size": tok.vocab_size},
            "block_size": model.layout.block_size,
            "discriminator": self.discriminator_ is not None,
            "memorization_ngram": self.memorization_ngram,
        }

    def to_device(self, device: str) -> str:
        model, _ = self._require_fitted()
        model.to(torch.device(device))
        return str(model.device)

    # ------------------------------------------------------- mixtures and augmentation
    def condition_values(self, column: str) -> list[Any]:
        """The values of the label column ``column`` learned at fit (what a mixture or ``rebalance`` draws)."""
        _, tok = self._require_fitted()
        if column not in tok.controls:
            known = ", ".join(map(repr, tok.controls)) or "none (it was trained without labels)"
            raise InvalidOptionError(f"Unknown label column {column!r}; this model's label columns are {known}.")
        return list(tok.controls[column])

    def read_samples(self, data: Any) -> pa.Table:
        """A corpus (what ``fit`` reads) as ``sample_table`` gives texts: the text column, then the label columns."""
        self._require_fitted()
        corpus = read_corpus(data, text_column=self.text_column_, label_column=self.label_columns_ or None)
        return pa.Table.from_pandas(corpus.to_frame(), preserve_index=False)

    def from_table(self, table: pa.Table) -> pd.DataFrame:
        """Texts as ``sample`` returns them: a DataFrame."""
        return table.to_pandas()

    def class_fidelity(self, real: Any, synthetic: Any, column: str) -> dict[str, float]:
        """Per value ``v`` of the label column ``column``: the share of synthetic texts generated as ``v`` that a
        classifier trained on the real texts (TF-IDF + logistic regression, as the report's label fidelity) labels ``v``.

        1.0: every synthetic text of the value reads like the real texts of that value;
        a generator that ignores its labels scores about the share of the value in the real texts.
        """
        from engine.text.metrics import label_fidelity_per_class

        self.condition_values(column)
        real_frame = read_corpus(real, text_column=self.text_column_, label_column=column).to_frame()
        syn_frame = read_corpus(synthetic, text_column=self.text_column_, label_column=column).to_frame()
        return label_fidelity_per_class(real_frame[self.text_column_].tolist(), real_frame[column].tolist(),
                                        syn_frame[self.text_column_].tolist(), syn_frame[column].tolist())

    # ------------------------------------------------------------ evaluate
    def evaluate(self, real_data: Any, synthetic_data: Any = None, *, holdout: Any = None, num_samples: int | None = None,
                 seed: int = 0, **options: Any):
        """Score synthetic texts (generated here when not given) against real ones: a :class:`~engine.text.metrics.TextReport`.

        The memorisation counts use this model's guard (its training texts); the label column is the first one learned.
        """
        from engine.text.metrics import evaluate_texts

        self._require_fitted()
        real = read_corpus(real_data, text_column=self.text_column_, label_column=self.label_columns_ or None)
        if synthetic_data is None:
            synthetic_data = self.sample(num_samples or min(len(real), 500), seed=seed)
        label = self.label_columns_[0] if self.label_columns_ else None
        return evaluate_texts(real.to_frame(), synthetic_data, text_column=self.text_column_, label_column=label,
                              holdout=holdout, guard=self.guard_, **options)

    # ------------------------------------------------------------ save/load
    def _artifact(self) -> Artifact:
        model, tok = self._require_fitted()
        tensors = dict(model.state_tensors())
        guard = self.guard_
        if guard is not None:
            tensors["guard.texts"] = torch.from_numpy(guard.texts.copy())
            tensors["guard.ngrams"] = torch.from_numpy(guard.ngrams.copy())
        if self.discriminator_ is not None:
            tensors.update({f"discriminator.{k}": v for k, v in self.discriminator_.tensors().items()})
        return Artifact(
            model=self.model,
            config={
                "pretrained": self.pretrained,
                "sampling": {"memorization_ngram": self.memorization_ngram, "temperature": self.temperature,
                             "top_k": self.top_k, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                             "guidance": self.guidance, "filter": self.filter, "oversample": self.oversample},
            },
            schema=model.layout.to_dict(),
            preprocessor={"tokenizer": tok.to_dict(), "text_column": self.text_column_,
                          "label_combos": [[v, c] for v, c in self.label_combos_], "guard_n": None if guard is None else guard.n},
            model_state={"discriminator": None if self.discriminator_ is None else self.discriminator_.to_dict()},
            tensors=tensors,
            files={TOKENIZER_FILE: tok.to_file_bytes()},
        )

    @classmethod
    def _from_artifact(cls, art: Artifact) -> TextSynthesizer:
        cfg = art.config
        with reading("config.json"):
            synth = cls(art.model, model_config=cfg.get("model_config", {}), **cfg.get("scaling", {}), **cfg.get("sampling", {}))
            synth.pretrained = cfg.get("pretrained")
        with reading(f"files/{TOKENIZER_FILE} and preprocessor.json"):
            if TOKENIZER_FILE not in art.files:
                raise KeyError(f"files/{TOKENIZER_FILE} is missing")
            tok = TextTokenizer.from_saved(art.files[TOKENIZER_FILE], art.preprocessor["tokenizer"])
            synth.text_column_ = str(art.preprocessor["text_column"])
            synth.label_combos_ = [([str(v) for v in vs], int(c)) for vs, c in art.preprocessor.get("label_combos", [])]
        with reading("weights.safetensors"):
            model = CausalLMModel(synth._config_object(), TextLayout.from_dict(art.schema))
            model.load_state_tensors({k: v for k, v in art.tensors.items() if k.startswith("lm.")})
            n = art.preprocessor.get("guard_n")
            if n is not None:
                synth.guard_ = MemorizationGuard.from_arrays(n, art.tensors["guard.texts"].numpy(), art.tensors["guard.ngrams"].numpy())
        with reading("model_state.json (discriminator)"):
            meta = art.model_state.get("discriminator")
            if meta is not None:
                prefix = "discriminator."
                synth.discriminator_ = DiscriminatorFilter.from_saved(
                    meta, {k[len(prefix):]: v for k, v in art.tensors.items() if k.startswith(prefix)}
                )
        synth._model, synth._tokenizer = model, tok
        return synth


def _until_end(ids: Sequence[int], eos_id: int) -> list[int]:
    """Token ids up to (not including) the first end token."""
    out = []
    for t in ids:
        if int(t) == eos_id:
            break
        out.append(int(t))
    return out


def _sampling_rule(temperature: Any, top_k: Any, top_p: Any) -> tuple[float, int, float]:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 100:
        raise InvalidOptionError(f"The 'temperature' parameter must be a number in [0, 100] (0: greedy). Got {temperature!r} instead.")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise InvalidOptionError(f"The 'top_k' parameter must be an integer >= 0 (0: no cut). Got {top_k!r} instead.")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise InvalidOptionError(f"The 'top_p' parameter must be a number in (0, 1]. Got {top_p!r} instead.")
    return float(temperature), int(top_k), float(top_p)


def _check_guidance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise InvalidOptionError(f"The 'guidance' parameter must be a number in [0, 100] (0: none). Got {value!r} instead.")
    return float(value)


def _condition_values(column: str, wanted: Any, known: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """The ``n`` values of ``column`` a condition asks for: one value, or a mixture (shares or exact counts)."""
    def check(value: Any) -> str:
        text = str(value)
        if text not in known:
            raise InvalidConditionError(f"Unknown value {value!r} for the label column {column!r}; its values are {', '.join(map(repr, known))}.")
        return text

    if not isinstance(wanted, Mapping):
        return [check(wanted)] * n
    values = [check(v) for v in wanted]
    weights = np.asarray(list(wanted.values()), dtype=np.float64)
    if len(values) == 0 or not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
        raise InvalidConditionError(f"A mixture for {column!r} needs non-negative shares or counts with a positive sum; got {dict(wanted)!r}.")
    integral = all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) for w in wanted.values())
    if integral and int(weights.sum()) == n:
        counts = weights.astype(int)
    else:
        # Exact counts from shares by largest remainder, so 1000 texts at 0.3/0.7 are exactly 300/700.
        raw = weights / weights.sum() * n
        counts = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
            counts[i] += 1
    out = [v for v, c in zip(values, counts) for _ in range(int(c))]
    rng.shuffle(out)
    return out
