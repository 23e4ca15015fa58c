"""A transformer causal language model (GPT-2 from a config, or any transformers causal LM fine-tuned).

The network is transformers' own: ``GPT2LMHeadModel`` built from a config of the
sizes given (training from scratch), or the architecture of a pretrained
checkpoint (``from_pretrained``: a local folder or a hub id, the local cache
first) with its vocabulary grown by the engine's padding and control tokens.
Only the maths lives here: the next-token loss on padded or packed blocks, and
seeded sampling (temperature, top-k, nucleus) with the key/value cache. The
training loop owns devices, DDP, schedules and mixed precision.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.contract import TorchSynthModel
from engine.core.errors import ArtifactError
from engine.core.params import Bool, Float, Int, ModelConfig, OrNone, Pair, invalid_parameter, param
from engine.text.transforms import TextLayout

DEFAULT_MAX_POSITIONS = 1024
# Guided draws keep the tokens within 100x of the likeliest one's probability. Measured on sentence
# polarity (bench/text.py --model, one saved model): a 10x cut left distinct-2 at 0.26 against the
# real 0.72 and lowered train-on-synthetic accuracy; with a 1000x cut the toy test's guided draws
# lost their labels (tests/test_text.py).
PLAUSIBLE_LOG_RATIO = float(np.log(100.0))


@dataclass
class CausalLMConfig(ModelConfig):
    """Hyperparameters of the causal language model (sizes apply when training from scratch)."""

    n_layer: int = param(4, Int(min=1), "transformer blocks")
    n_embd: int = param(256, Int(min=8), "width of the residual stream")
    n_head: int = param(4, Int(min=1), "attention heads (must divide n_embd)")
    dropout: float = param(0.1, Float(ge=0, lt=1), "dropout on embeddings, attention and residuals")
    vocab_size: int = param(4096, Int(min=260), "tokens of the byte-level BPE trained on the corpus (ignored when fine-tuning)")
    block_size: int | None = param(None, OrNone(Int(min=8)), "longest sequence in tokens; None: 99% of the texts whole")
    pack: bool = param(False, Bool(), "pack short texts into full blocks instead of padding each")
    label_embedding: bool = param(True, Bool(), "add the first label's control-token embedding at every position (GPT-2 "
                                  "token types), so every token sees its label; GPT-2 architectures only")
    lr: float = param(5e-4, Float(gt=0), "AdamW learning rate")
    weight_decay: float = param(0.01, Float(ge=0), "AdamW weight decay")
    betas: tuple[float, float] = param((0.9, 0.95), Pair(Float(ge=0, lt=1)), "AdamW betas")
    grad_clip: float = param(1.0, Float(gt=0), "largest gradient norm")
    generation_batch: int = param(64, Int(min=1), "sequences generated together (fixed, so that samples do not depend on it)")

    def check_combination(self) -> None:
        if self.n_embd % self.n_head:
            raise invalid_parameter("CausalLM", "n_head", f"a divisor of n_embd={self.n_embd}", self.n_head)


@dataclass
class GenerationRequest:
    """What :meth:`CausalLMModel.generate` draws: one prefix per sequence and the sampling rule.

    ``prefixes`` are ``(n, P)`` token ids (begin token, control tokens, prompt), all of one
    length; ``banned`` ids are never drawn (padding, begin and control tokens).

    ``negatives`` ``(n, M, P)`` are contrast prefixes (the same text asked for the other labels)
    and ``guidance`` their weight: each token is drawn from
    ``log p(t | prefix) + guidance * (log p(t | prefix) - log mean_m p(t | negative_m))``, among
    the tokens with at least a hundredth of the likeliest token's probability under ``prefix``; it
    favours the tokens that tell the requested label from the others (0: plain sampling).
    """

    prefixes: np.ndarray
    max_new_tokens: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    banned: tuple[int, ...] = field(default_factory=tuple)
    guidance: float = 0.0
    negatives: np.ndarray | None = None


def max_positions(hf_config: Mapping[str, Any] | None) -> int:
    """The longest sequence a checkpoint's architecture takes."""
    if not hf_config:
        return DEFAULT_MAX_POSITIONS
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        if isinstance(hf_config.get(key), int):
            return int(hf_config[key])
    return DEFAULT_MAX_POSITIONS


def pretrained_hf_config(folder: Any, vocab_size: int) -> dict[str, Any]:
    """A checkpoint's transformers config as a dict, its vocabulary grown to ``vocab_size`` when smaller."""
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"The pretrained folder {str(folder)!r} has no config transformers can read ({exc}).") from None
    d = cfg.to_dict()
    d["vocab_size"] = max(int(d.get("vocab_size") or 0), int(vocab_size))
    return d


def _build_network(config: CausalLMConfig, layout: TextLayout) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    if layout.hf_config is None:
        cfg = GPT2Config(
            vocab_size=layout.vocab_size, n_positions=layout.block_size, n_embd=config.n_embd, n_layer=config.n_layer,
            n_head=config.n_head, resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout,
            bos_token_id=layout.bos_id, eos_token_id=layout.eos_id, pad_token_id=layout.pad_id,
        )
        return GPT2LMHeadModel(cfg)
    d = dict(layout.hf_config)
    cfg = AutoConfig.for_model(d.pop("model_type"), **d)
    return AutoModelForCausalLM.from_config(cfg)


class CausalLMModel(TorchSynthModel):
    """A causal LM on the model contract: ``{"ids", "mask"}`` blocks in, token ids out."""

    name: ClassVar[str] = "gpt2"
    config_class: ClassVar[type] = CausalLMConfig
    layout_class: ClassVar[type] = TextLayout
    supports_grad_accumulation: ClassVar[bool] = True
    supports_fp16: ClassVar[bool] = True

    def __init__(self, config: CausalLMConfig, layout: TextLayout):
        super().__init__(config, layout)
        self.nets["lm"] = _build_network(config, layout)

    @classmethod
    def from_pretrained(cls, source: str, config: CausalLMConfig, layout: TextLayout) -> CausalLMModel:
        """A model of ``layout.hf_config`` (read from ``source`` by the front door) whose weights are ``source``'s.

        The checkpoint is read with transformers (local folder, else the hub cache, else the hub);
        rows of a vocabulary grown by our padding and control tokens keep their fresh initialisation.
        """
        from transformers import AutoModelForCausalLM

        from engine.core.pretrained import pretrained_folder

        folder = pretrained_folder(source)
        try:
            hf = AutoModelForCausalLM.from_pretrained(str(folder))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"The pretrained checkpoint {str(source)!r} cannot be read by transformers ({exc}).") from None
        model = cls(config, layout)
        target = model.unwrapped("lm").state_dict()
        for key, tensor in hf.state_dict().items():
            if key not in target:
                raise ArtifactError(f"The pretrained weights at {source!r} do not fit their own config: unexpected tensor {key!r}.")
            dest = target[key]
            if dest.shape == tensor.shape:
                dest.copy_(tensor)
            elif dest.dim() == tensor.dim() and dest.shape[1:] == tensor.shape[1:] and tensor.shape[0] < dest.shape[0]:
                dest[: tensor.shape[0]].copy_(tensor)  # a vocabulary grown by our tokens: their rows stay fresh
            else:
                raise ArtifactError(f"The pretrained tensor {key!r} at {source!r} has shape {tuple(tensor.shape)}; expected {tuple(dest.shape)}.")
        model.unwrapped("lm").load_state_dict(target)
        return model

    # -------------------------------------------------------------- training
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        params = [p for p in self.nets["lm"].parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]  # no weight decay on biases and norms
        rest = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        return {"lm": torch.optim.AdamW(groups, lr=c.lr, betas=c.betas)}

    def train_step(self, batch: Mapping[str, torch.Tensor], optimizers: Mapping[str, torch.optim.Optimizer],
                   generator: torch.Generator) -> dict[str, float]:
        ids, mask = batch["ids"], batch["mask"].bool()
        length = int(mask.sum(dim=1).max())  # trim the padding every row of this batch shares
        ids, mask = ids[:, :length], mask[:, :length]  # (B, T)
        types = {"token_type_ids": batch["types"][:, :length]} if "types" in batch else {}
        logits = self.nets["lm"](input_ids=ids, attention_mask=mask.long(), **types).logits  # (B, T, V)
        targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)  # next tokens; padding predicts nothing
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)
        opt = optimizers["lm"]
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        if self.accumulation.last:
            self.unscale_gradients(opt)
            torch.nn.utils.clip_grad_norm_(self.nets["lm"].parameters(), self.config.grad_clip)
        opt.step()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def loss_on(self, blocks: Mapping[str, np.ndarray], batch_size: int = 64) -> float:
        """Mean next-token loss on encoded blocks (for held-out texts), in evaluation mode."""
        lm = self.unwrapped("lm")
        was = lm.training
        lm.eval()
        total, count = 0.0, 0
        try:
            for s in range(0, len(blocks["ids"]), batch_size):
                ids = torch.as_tensor(blocks["ids"][s : s + batch_size], device=self.device)
                mask = torch.as_tensor(blocks["mask"][s : s + batch_size], device=self.device)
                types = {"token_type_ids": torch.as_tensor(blocks["types"][s : s + batch_size], device=self.device)} \
                    if "types" in blocks else {}
                logits = lm(input_ids=ids, attention_mask=mask.long(), **types).logits
                targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                       ignore_index=-100, reduction="sum")
                total += float(loss)
                count += int((targets != -100).sum())
        finally:
            lm.train(was)
        return total / max(count, 1)

    @torch.no_grad()
    def continuation_logprob(self, prefixes: np.ndarray, continuations: list[list[int]], batch_size: int = 64) -> np.ndarray:
        """``log p(continuation | prefix)`` per row (``(n,)``, summed over the continuation's tokens and its end token
        when it has room), in evaluation mode. ``prefixes`` are ``(n, P)`` ids of one length, as for ``generate``."""
        prefixes = np.asarray(prefixes, dtype=np.int64)
        room = self.layout.block_size if self.layout.hf_config is None else max_positions(self.layout.hf_config)
        p = prefixes.shape[1]
        lm = self.unwrapped("lm")
        was = lm.training
        lm.eval()
        out = np.zeros(len(continuations))
        try:
            for s in range(0, len(continuations), batch_size):
                rows = [list(c) + [self.layout.eos_id] for c in continuations[s : s + batch_size]]
                rows = [r[: room - p] for r in rows]
                t = max(1, max(len(r) for r in rows))
                ids = torch.full((len(rows), p + t), self.layout.pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), p + t), dtype=torch.bool)
                ids[:, :p] = torch.as_tensor(prefixes[s : s + len(rows)])
                mask[:, :p] = True
                for i, r in enumerate(rows):
                    ids[i, p : p + len(r)] = torch.as_tensor(r, dtype=torch.long)
                    mask[i, p : p + len(r)] = True
                ids, mask = ids.to(self.device), mask.to(self.device)
                types = self._types(ids[:, :p], ids.shape[1])
                logits = lm(input_ids=ids, attention_mask=mask.long(), **types).logits[:, p - 1 : -1].float()  # predicts ids[:, p:]
                logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, p:, None]).squeeze(-1)  # (B, T)
                out[s : s + len(rows)] = (logp * mask[:, p:]).sum(dim=1).cpu().numpy()
        finally:
            lm.train(was)
        return out

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, num_rows: int, conditions: GenerationRequest, generator: torch.Generator) -> np.ndarray:
        """``(num_rows, max_new_tokens)`` int64 token ids after each prefix; ``pad_id`` after the end token.

        Every draw comes from ``generator`` on the CPU, in chunks of ``generation_batch``
        sequences, so a seed gives the same tokens on any device and any number of actors.
        """
        req = conditions
        prefixes = np.asarray(req.prefixes, dtype=np.int64)
        if prefixes.shape[0] != num_rows:
            raise ValueError(f"generate needs one prefix per sequence: {prefixes.shape[0]} prefixes for {num_rows}.")
        room = self.layout.block_size if self.layout.hf_config is None else max_positions(self.layout.hf_config)
        new = max(0, min(req.max_new_tokens, room - prefixes.shape[1]))
        guided = req.guidance > 0 and req.negatives is not None and np.asarray(req.negatives).shape[1] > 0
        negatives = np.asarray(req.negatives, dtype=np.int64) if guided else None
        if guided and (negatives.shape[0] != num_rows or negatives.shape[2] != prefixes.shape[1]):
            raise ValueError(f"negatives must be (n, M, {prefixes.shape[1]}) for {num_rows} prefixes; got {negatives.shape}.")
        out = np.full((num_rows, req.max_new_tokens), self.layout.pad_id, dtype=np.int64)
        lm = self.unwrapped("lm")
        was = lm.training
        lm.eval()
        try:
            chunk = self.config.generation_batch
            for start in range(0, num_rows, chunk):
                block = torch.as_tensor(prefixes[start : start + chunk])
                neg = None if negatives is None else torch.as_tensor(negatives[start : start + chunk])
                out[start : start + len(block), :new] = self._sample(lm, block, new, req, generator, neg).numpy()
        finally:
            lm.train(was)
        return out

    def _sample(self, lm: torch.nn.Module, prefix: torch.Tensor, steps: int, req: GenerationRequest,
                generator: torch.Generator, negatives: torch.Tensor | None = None) -> torch.Tensor:
        b = prefix.shape[0]
        tokens = torch.full((b, steps), self.layout.pad_id, dtype=torch.long)
        done = torch.zeros(b, dtype=torch.bool)
        if steps == 0:
            return tokens
        # transformers 5 names the key/value cache `cache`; earlier versions and some families `past_key_values`.
        cache_arg = "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
        m = 0 if negatives is None else negatives.shape[1]
        if m:
            # The contrast prefixes run in the same batch, after the B requested ones: (B * (1 + M), P).
            prefix = torch.cat([prefix, negatives.reshape(b * m, -1)])
        types = self._types(prefix.to(self.device), prefix.shape[1])
        out = lm(input_ids=prefix.to(self.device), use_cache=True, **types)
        step_types = {k: v[:, :1] for k, v in types.items()}  # each row keeps its type
        banned = torch.as_tensor(sorted(set(req.banned)), dtype=torch.long)
        for t in range(steps):
            logits = out.logits[:, -1].float().cpu()  # (B, V): drawn on the CPU for device-independent samples
            if m:
                logp = torch.log_softmax(logits, dim=-1)
                cond, neg = logp[:b], logp[b:].reshape(b, m, -1)  # contrast row i * m + j belongs to text i
                contrast = torch.logsumexp(neg, dim=1) - float(np.log(m))  # log of the mean over the other labels
                # Only tokens the requested label itself finds plausible (at least a hundredth of its likeliest
                # token's probability) may be drawn: the contrast alone would favour tokens unlikely under
                # every label, whose log-ratio is noise.
                plausible = cond >= cond.max(dim=-1, keepdim=True).values - PLAUSIBLE_LOG_RATIO
                logits = (cond + req.guidance * (cond - contrast)).masked_fill(~plausible, float("-inf"))
            logits[:, banned] = float("-inf")
            nxt = draw_tokens(logits, req.temperature, req.top_k, req.top_p, generator)
            tokens[:, t] = torch.where(done, torch.full_like(nxt, self.layout.pad_id), nxt)
            done |= nxt == self.layout.eos_id
            if bool(done.all()) or t == steps - 1:
                break
            fed = torch.cat([nxt, nxt.repeat_interleave(m)]) if m else nxt  # contrast rows continue with their text's token
            out = lm(input_ids=fed[:, None].to(self.device), use_cache=True, **{cache_arg: out[cache_arg]}, **step_types)
        return tokens

    def _types(self, prefix: torch.Tensor, length: int) -> dict[str, torch.Tensor]:
        """``token_type_ids`` (B, length) for rows starting with ``prefix`` (the first control at every position), or none."""
        if not (self.layout.label_types and self.layout.prefix_length > 1 and prefix.shape[1] > 1):
            return {}
        return {"token_type_ids": prefix[:, 1:2].expand(-1, length).contiguous()}

    # ----------------------------------------------------------------- state
    def _tied(self, module: torch.nn.Module) -> set[str]:
        """State keys that share storage with an earlier key (GPT-2's output layer is its input embedding)."""
        seen, tied = set(), set()
        for key, t in module.state_dict().items():
            ptr = t.data_ptr()
            if ptr in seen:
                tied.add(key)
            seen.add(ptr)
        return tied

    def state_tensors(self) -> dict[str, torch.Tensor]:
        # safetensors refuses tensors that share memory: a tied weight is saved once and re-tied on load.
        lm = self.unwrapped("lm")
        tied = self._tied(lm)
        return {f"lm.{k}": t.detach().cpu().contiguous() for k, t in lm.state_dict().items() if k not in tied}

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        lm = self.unwrapped("lm")
        sub = {k[3:]: v for k, v in tensors.items() if k.startswith("lm.")}
        missing, unexpected = lm.load_state_dict(sub, strict=False)
        untied = set(missing) - self._tied(lm)
        if untied or unexpected:
            raise RuntimeError(f"weights do not fit the network: missing {sorted(untied)[:5]}, unexpected {sorted(unexpected)[:5]}")
        if hasattr(lm, "tie_weights"):
            lm.tie_weights()


def draw_tokens(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row of ``logits`` (B, V): greedy at temperature 0, else sampled after top-k and nucleus cuts."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens before it already hold top_p of the mass (the first always stays).
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
