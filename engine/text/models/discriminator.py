"""The discriminator that filters generations: a small transformer classifier of real vs generated text and of label.

Trained after the generator, on the driver, against the generator's own
samples (a GAN's discriminator step without the generator's adversarial step:
the language model is not updated through it). At sampling time it scores
candidates: ``log p(real) + log p(requested label)``; the front door keeps the
best-scored ones, so the kept texts look more like real ones and carry their label.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.params import Float, Int, ModelConfig, param


@dataclass
class DiscriminatorConfig(ModelConfig):
    """Hyperparameters of the filtering discriminator."""

    width: int = param(64, Int(min=8), "embedding width (a multiple of heads)")
    layers: int = param(1, Int(min=1), "transformer encoder layers")
    heads: int = param(2, Int(min=1), "attention heads")
    max_length: int = param(64, Int(min=4), "tokens of a text it reads (the rest is cut)")
    steps: int = param(200, Int(min=1), "optimisation steps")
    batch_size: int = param(32, Int(min=2), "texts per step (half real, half generated)")
    lr: float = param(1e-3, Float(gt=0), "Adam learning rate")
    validation_fraction: float = param(0.1, Float(ge=0, lt=1), "share of the real and generated texts kept out of training to "
                                       "measure the filter's accuracy (none when fewer than 20 texts)")


class TextDiscriminator(nn.Module):
    """Token ids ``(B, T)`` and their mask -> a realness logit ``(B,)`` and label logits ``(B, K)``."""

    def __init__(self, vocab_size: int, num_labels: int, config: DiscriminatorConfig):
        super().__init__()
        w = config.width
        self.tokens = nn.Embedding(vocab_size, w)
        self.positions = nn.Embedding(config.max_length, w)
        layer = nn.TransformerEncoderLayer(w, config.heads, 2 * w, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.real_head = nn.Linear(w, 1)
        self.label_head = nn.Linear(w, max(num_labels, 1))
        self.num_labels = num_labels

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.encoder(self.tokens(ids) + self.positions(pos), src_key_padding_mask=~mask)  # (B, T, W)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, W)
        return self.real_head(pooled).squeeze(-1), self.label_head(pooled)


def pad_ids(seqs: Sequence[Sequence[int]], max_length: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences cut to ``max_length`` and right-padded: ids ``(B, T)`` and mask (an empty text keeps one pad token)."""
    t = max(1, min(max_length, max((len(s) for s in seqs), default=1)))
    ids = torch.full((len(seqs), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.bool)
    for i, s in enumerate(seqs):
        s = list(s)[:t]
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : max(len(s), 1)] = True
    return ids, mask


@dataclass
class DiscriminatorFilter:
    """A trained :class:`TextDiscriminator` with what it needs to score texts."""

    net: TextDiscriminator
    config: DiscriminatorConfig
    vocab_size: int
    pad_id: int
    history: list[dict[str, float]]
    validation: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, real: Sequence[Sequence[int]], real_labels: np.ndarray | None, fake: Sequence[Sequence[int]], *,
            vocab_size: int, pad_id: int, num_labels: int, config: DiscriminatorConfig, seed: int,
            embeddings: torch.Tensor | None = None) -> DiscriminatorFilter:
        """Train on real token sequences (with label indices, or None) against generated ones.

        ``config.validation_fraction`` of the real and of the generated texts are held out of
        training; the filter's accuracies on them go in ``validation`` (label agreement on the
        held-out real texts, real-vs-generated on both).
        ``embeddings`` ``(vocab_size, config.width)`` start the token embeddings (the language
        model's own: what it learned of the words), instead of a random start.
        """
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        real_val, fake_val = _held_out(len(real), config.validation_fraction, rng), _held_out(len(fake), config.validation_fraction, rng)
        val_real = [real[i] for i in real_val]
        val_labels = None if real_labels is None else np.asarray(real_labels)[real_val]
        val_fake = [fake[i] for i in fake_val]
        keep_real = np.setdiff1d(np.arange(len(real)), real_val)
        keep_fake = np.setdiff1d(np.arange(len(fake)), fake_val)
        real = [real[i] for i in keep_real]
        real_labels = None if real_labels is None else np.asarray(real_labels)[keep_real]
        fake = [fake[i] for i in keep_fake]
        net = TextDiscriminator(vocab_size, num_labels, config)
        if embeddings is not None:
            if tuple(embeddings.shape) != (vocab_size, config.width):
                raise ValueError(f"embeddings must be ({vocab_size}, {config.width}); got {tuple(embeddings.shape)}.")
            with torch.no_grad():
                net.tokens.weight.copy_(embeddings.detach().float().cpu())
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        half = max(1, config.batch_size // 2)
        history = []
        net.train()
        for step in range(config.steps):
            r = rng.integers(len(real), size=half)
            f = rng.integers(len(fake), size=half)
            ids, mask = pad_ids([real[i] for i in r] + [fake[i] for i in f], config.max_length, pad_id)
            real_logit, label_logits = net(ids, mask)
            target = torch.cat([torch.ones(half), torch.zeros(half)])
            loss_real = F.binary_cross_entropy_with_logits(real_logit, target)
            loss = loss_real
            if num_labels and real_labels is not None:
                # The label head learns from real texts only: it judges whether a text carries its label.
                loss_label = F.cross_entropy(label_logits[:half], torch.as_tensor(real_labels[r], dtype=torch.long))
                loss = loss + loss_label
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 50 == 0 or step == config.steps - 1:
                history.append({"step": step, "loss": float(loss.detach()), "loss_real_vs_generated": float(loss_real.detach())})
        net.eval()
        out = cls(net, config, vocab_size, pad_id, history)
        if len(val_real) and len(val_fake):
            r, f = out.score(val_real, val_labels), out.score(val_fake)
            out.validation = {"texts": len(val_real) + len(val_fake),
                              "real_vs_generated_accuracy": float(np.mean(np.r_[r["p_real"] > 0.5, f["p_real"] <= 0.5]))}
            if num_labels and val_labels is not None:
                out.validation["label_accuracy"] = float(np.mean(out.probabilities(val_real)[1].argmax(1) == val_labels))
        return out

    @torch.no_grad()
    def probabilities(self, seqs: Sequence[Sequence[int]], batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """``p(real)`` per text ``(n,)`` and the label probabilities ``(n, K)`` (``K`` is 1 without labels)."""
        self.net.eval()
        p_real, p_labels = [np.zeros(0)], [np.zeros((0, max(self.net.num_labels, 1)))]
        for s in range(0, len(seqs), batch):
            ids, mask = pad_ids(seqs[s : s + batch], self.config.max_length, self.pad_id)
            real_logit, label_logits = self.net(ids, mask)
            p_real.append(torch.sigmoid(real_logit).numpy())
            p_labels.append(label_logits.softmax(-1).numpy())
        return np.concatenate(p_real), np.concatenate(p_labels)

    def score(self, seqs: Sequence[Sequence[int]], labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per text: ``p_real``, ``p_label`` (of the requested label index; 1 without labels) and ``score``
        (the sum of their logs: what the filter ranks by)."""
        pr, probs = self.probabilities(seqs)
        if self.net.num_labels and labels is not None:
            pl = probs[np.arange(len(pr)), np.asarray(labels, dtype=np.int64)]
        else:
            pl = np.ones(len(pr))
        return {"p_real": pr, "p_label": pl, "score": np.log(pr + 1e-9) + np.log(pl + 1e-9)}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}

    def to_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "vocab_size": self.vocab_size, "pad_id": self.pad_id,
                "num_labels": self.net.num_labels, "history": self.history, "validation": self.validation}

    @classmethod
    def from_saved(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> DiscriminatorFilter:
        config = DiscriminatorConfig(**meta["config"])
        net = TextDiscriminator(int(meta["vocab_size"]), int(meta["num_labels"]), config)
        net.load_state_dict(tensors)
        net.eval()
        return cls(net, config, int(meta["vocab_size"]), int(meta["pad_id"]), list(meta.get("history", [])),
                   dict(meta.get("validation", {})))


def _held_out(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``fraction`` of ``n`` texts kept out of training (none below 20 texts: too few to measure and train)."""
    k = int(round(n * fraction)) if n >= 20 else 0
    return np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
