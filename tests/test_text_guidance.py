"""Label guidance, continuation scores and the filter's held-out accuracy, against plain-torch references (no Ray).

A tiny GPT-2 with random weights stands for a trained one: the properties checked
(guided greedy tokens equal the argmax of the guided log-probabilities computed
without the key/value cache; summed log-probabilities equal a full forward pass)
hold for any weights.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def tiny():
    from engine.text.models.causal_lm import CausalLMConfig, CausalLMModel
    from engine.text.transforms import TextLayout

    torch.manual_seed(0)
    # ids: 0 pad, 1 bos, 2 eos, 3 and 4 the two label controls, 5.. words
    layout = TextLayout(vocab_size=40, block_size=16, pad_id=0, bos_id=1, eos_id=2, prefix_length=2)
    model = CausalLMModel(CausalLMConfig(n_layer=1, n_embd=16, n_head=2, dropout=0.0, generation_batch=4), layout)
    for p in model.unwrapped("lm").parameters():  # larger weights: sharper, more label-dependent distributions
        p.data.mul_(8.0)
    return model


def _logp(model, ids: list[int]) -> torch.Tensor:
    """Next-token log-probabilities after ``ids`` by a full forward pass (no cache)."""
    with torch.no_grad():
        return torch.log_softmax(model.unwrapped("lm").eval()(input_ids=torch.as_tensor([ids])).logits[0, -1].float(), -1)


def test_guided_greedy_tokens_follow_the_contrast_formula(tiny):
    from engine.text.models.causal_lm import PLAUSIBLE_LOG_RATIO, GenerationRequest

    # Three labels (controls 3, 4, 5): each text is contrasted with the mean of the two others.
    prefixes = np.asarray([[1, 3], [1, 4], [1, 5]])
    negatives = np.asarray([[[1, 4], [1, 5]], [[1, 3], [1, 5]], [[1, 3], [1, 4]]])
    banned = (0, 1, 3, 4, 5)
    for g in (0.0, 2.0):
        req = GenerationRequest(prefixes, 6, temperature=0.0, banned=banned, guidance=g, negatives=negatives)
        out = tiny.generate(3, req, torch.Generator().manual_seed(0))
        for row, prefix, negs in zip(out, prefixes, negatives):
            text: list[int] = []
            for t in row:
                if t == 0:
                    break
                cond = _logp(tiny, [*prefix, *text])
                other = torch.logsumexp(torch.stack([_logp(tiny, [*n, *text]) for n in negs]), 0) - np.log(2)
                want = cond + g * (cond - other)
                if g:
                    want[cond < cond.max() - PLAUSIBLE_LOG_RATIO] = float("-inf")  # only tokens plausible under the label
                want[list(banned)] = float("-inf")
                assert int(t) == int(want.argmax()), (g, row)
                text.append(int(t))
                if t == 2:
                    break
    plain = tiny.generate(3, GenerationRequest(prefixes, 6, temperature=0.0, banned=banned), torch.Generator())
    guided = tiny.generate(3, GenerationRequest(prefixes, 6, temperature=0.0, banned=banned, guidance=2.0,
                                                negatives=negatives), torch.Generator())
    assert not np.array_equal(plain, guided)  # the contrast changes what is drawn


def test_continuation_logprob_matches_a_full_forward_pass(tiny):
    prefixes = np.asarray([[1, 3], [1, 4]])
    conts = [[5, 6, 7], [8]]
    got = tiny.continuation_logprob(prefixes, conts)
    for score, prefix, cont in zip(got, prefixes, conts):
        seq = [*prefix, *cont, 2]  # the end token is scored too
        want = sum(float(_logp(tiny, seq[:i])[seq[i]]) for i in range(2, len(seq)))
        assert score == pytest.approx(want, abs=1e-4)


def test_filter_reports_accuracy_on_texts_it_did_not_train_on():
    from engine.text.models.discriminator import DiscriminatorConfig, DiscriminatorFilter

    rng = np.random.default_rng(0)
    # Label 0 texts use ids 5-9, label 1 texts ids 10-14; generated texts use ids 15-19.
    labels = np.arange(60) % 2
    real = [list(rng.integers(5 + 5 * y, 10 + 5 * y, size=6)) for y in labels]
    fake = [list(rng.integers(15, 20, size=6)) for _ in range(40)]
    config = DiscriminatorConfig(width=16, heads=2, steps=60, batch_size=16, lr=3e-3, validation_fraction=0.25)
    filt = DiscriminatorFilter.fit(real, labels, fake, vocab_size=20, pad_id=0, num_labels=2, config=config, seed=0)
    assert filt.validation["texts"] == 15 + 10
    assert filt.validation["label_accuracy"] >= 0.9 and filt.validation["real_vs_generated_accuracy"] >= 0.9
    scrambled = DiscriminatorFilter.fit(real, 1 - labels, fake, vocab_size=20, pad_id=0, num_labels=2, config=config, seed=0)
    p = scrambled.score(real[:10], labels[:10])["p_label"]
    assert np.mean(p < 0.5) >= 0.9  # trained on swapped labels, it disagrees with the true ones


def test_label_types_reach_every_position_in_training_blocks_and_generation():
    from engine.text.models.causal_lm import CausalLMConfig, CausalLMModel, GenerationRequest
    from engine.text.transforms import TextLayout, encode_blocks

    layout = TextLayout(vocab_size=40, block_size=6, pad_id=0, bos_id=1, eos_id=2, prefix_length=2, label_types=True)
    seqs = [[1, 3, 7, 8, 2], [1, 4, 9, 2]]
    padded = encode_blocks(seqs, layout)
    assert padded["types"].tolist() == [[3] * 6, [4] * 6]
    packed = encode_blocks(seqs, layout, pack=True)
    assert packed["ids"].tolist() == [[1, 3, 7, 8, 2, 1], [4, 9, 2, 0, 0, 0]]
    assert packed["types"].tolist() == [[3, 3, 3, 3, 3, 4], [4, 4, 4, 0, 0, 0]]  # a text keeps its type across the cut
    assert "types" not in encode_blocks(seqs, TextLayout(40, 6, 0, 1, 2, 2))

    torch.manual_seed(1)
    model = CausalLMModel(CausalLMConfig(n_layer=1, n_embd=16, n_head=2, dropout=0.0), TextLayout(40, 16, 0, 1, 2, 2, None, True))
    for p in model.unwrapped("lm").parameters():
        p.data.mul_(8.0)
    lm = model.unwrapped("lm").eval()
    out = model.generate(2, GenerationRequest(np.asarray([[1, 3], [1, 4]]), 5, temperature=0.0, banned=(0, 1, 3, 4)),
                         torch.Generator())
    for row, control in zip(out, (3, 4)):
        seq = [1, control]
        for t in row:
            with torch.no_grad():
                ids = torch.as_tensor([seq])
                want = lm(input_ids=ids, token_type_ids=torch.full_like(ids, control)).logits[0, -1]
            want[[0, 1, 3, 4]] = float("-inf")
            assert int(t) == int(want.argmax())
            seq.append(int(t))
            if t == 2:
                break
    score = model.continuation_logprob(np.asarray([[1, 3]]), [[5, 6]])[0]
    with torch.no_grad():
        ids = torch.as_tensor([[1, 3, 5, 6, 2]])
        logp = torch.log_softmax(lm(input_ids=ids, token_type_ids=torch.full_like(ids, 3)).logits[0], -1)
    assert score == pytest.approx(float(sum(logp[i - 1, ids[0, i]] for i in range(2, 5))), abs=1e-4)


def test_filter_can_start_from_given_token_embeddings():
    from engine.text.models.discriminator import DiscriminatorConfig, DiscriminatorFilter

    real, fake = [[5, 6, 7]] * 4, [[8, 9]] * 4
    emb = torch.randn(12, 8)
    config = DiscriminatorConfig(width=8, heads=2, steps=1, batch_size=4, lr=1e-12)
    filt = DiscriminatorFilter.fit(real, None, fake, vocab_size=12, pad_id=0, num_labels=0, config=config, seed=0, embeddings=emb)
    torch.testing.assert_close(filt.net.tokens.weight.detach(), emb)
    with pytest.raises(ValueError, match=r"embeddings must be \(12, 8\)"):
        DiscriminatorFilter.fit(real, None, fake, vocab_size=12, pad_id=0, num_labels=0, config=config, seed=0,
                                embeddings=torch.zeros(12, 4))
