"""The text modality: tokenizer, label-conditional causal LM through the one Ray Train loop, filters, metrics, errors.

One Ray Train run for the whole file (the module fixture ``trained``): a tiny GPT-2
(2 layers, width 32) on a constructed corpus where the label decides the words, so
that a model which ignores its control tokens scores at chance on the conditioning test.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.core.errors import ArtifactError, InvalidConditionError, InvalidDataError, InvalidOptionError

WORDS = {
    "a": "red apple sweet fruit tree garden".split(),
    "b": "dark stone cold river mountain night".split(),
}
TINY = {"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 320, "lr": 1e-2, "dropout": 0.0, "generation_batch": 32}


def _corpus(n: int = 64, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = ["a" if i % 2 == 0 else "b" for i in range(n)]
    return pd.DataFrame({"text": [" ".join(rng.choice(WORDS[y], size=6)) for y in labels], "label": labels})


def _word_label(text: str) -> str:
    """The label whose words dominate ``text`` ("?" on a tie): the judge of the conditioning test."""
    ws = text.split()
    a, b = sum(w in WORDS["a"] for w in ws), sum(w in WORDS["b"] for w in ws)
    return "a" if a > b else "b" if b > a else "?"


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def trained(ray_session, tmp_path_factory):
    """The one training run of this file: the synthesizer and where it was saved."""
    from engine import TextSynthesizer

    synth = TextSynthesizer(model_config=TINY).fit(
        _corpus(), label_column="label", max_steps=60, batch_size=16, report_every_steps=20, seed=0,
        show_progress=False, discriminator_config={"steps": 30, "width": 16}, discriminator_samples=32,
    )
    return synth, Path(synth.save(tmp_path_factory.mktemp("text") / "model"))


def test_tokenizer_round_trip_and_saved_copy():
    from engine.text.tokenization import TextTokenizer, control_token

    texts = ["The café's naïve crème brûlée — 42 times!", "plain ascii text, with commas"] * 10 + ["a b c d e f g"] * 10
    tok = TextTokenizer.train(texts, 290, {"label": ["x", "y"]})
    for t in texts + ["unseen wörds ∑ and emoji 🙂"]:
        assert tok.decode(tok.encode([t])[0]) == t  # byte-level: every string survives
    # Control tokens are single tokens, and text that spells one out is not turned into it.
    assert tok.tokenizer.token_to_id(control_token("label", "x")) == tok.controls["label"]["x"]
    again = TextTokenizer.from_saved(tok.to_file_bytes(), json.loads(json.dumps(tok.to_dict())))
    assert again.encode(texts) == tok.encode(texts) and again.controls == tok.controls
    with pytest.raises(InvalidDataError, match="too small for a tokenizer of vocab_size=5000"):
        TextTokenizer.train(texts, 5000)


def test_tokens_the_corpus_never_contains_are_never_drawn(trained):
    """An undertrained model drawn at a high temperature emits byte tokens its ASCII corpus never had (stray
    ``\ufffd`` in the text) unless the tokenizer's unseen ids are banned; they survive save/load too."""
    synth, path = trained
    tok = synth._tokenizer
    assert tok.tokenizer.token_to_id("Ã") in tok.unseen  # byte 0xC3: the lead byte of most accented letters
    allowed = set("".join(_corpus()["text"]))
    out = synth.sample(60, seed=5, filter=False, temperature=4.0, top_k=0, top_p=1.0)
    stray = sorted({c for t in out["text"] for c in t} - allowed)
    assert not stray, stray
    from engine import TextSynthesizer

    assert TextSynthesizer.load(path)._tokenizer.unseen == tok.unseen


def test_training_lowers_the_loss_and_labels_steer_generation(trained):
    synth, _ = trained
    losses = [row["loss"] for row in synth.history_]
    assert losses[-1] < 0.7 * losses[0], losses
    out = synth.sample(40, conditions={"label": {"a": 20, "b": 20}}, seed=1, filter=False)
    assert len(out) == 40 and list(out.columns) == ["text", "label"]
    assert (out["label"] == "a").sum() == 20
    match = np.mean([_word_label(t) == y for t, y in zip(out["text"], out["label"])])
    # Chance is 0.5 (or less, with ties): a model blind to its control tokens fails this.
    assert match >= 0.8, list(zip(out["text"], out["label"]))
    guided = synth.sample(40, conditions={"label": {"a": 20, "b": 20}}, seed=1, filter=False, guidance=2.0)
    assert np.mean([_word_label(t) == y for t, y in zip(guided["text"], guided["label"])]) >= 0.8
    assert not guided["text"].equals(out["text"])  # the guided draw is another draw
    one = synth.sample(12, conditions={"label": "b"}, seed=2, temperature=0.7, top_k=20, top_p=0.9)
    assert set(one["label"]) == {"b"} and len(one) == 12
    mixed = synth.sample(30, seed=3)
    assert set(mixed["label"]) == {"a", "b"}  # no condition: the training mix


def test_save_load_gives_the_same_texts_and_keeps_the_tokenizer(trained):
    from engine import load_synthesizer

    synth, path = trained
    assert (path / "files" / "tokenizer.json").is_file()
    loaded = load_synthesizer(path)
    a = synth.sample(16, conditions={"label": "a"}, seed=5)
    pd.testing.assert_frame_equal(a, loaded.sample(16, conditions={"label": "a"}, seed=5))
    assert not a.equals(synth.sample(16, conditions={"label": "a"}, seed=6))
    for name, t in synth._model.state_tensors().items():
        assert torch.equal(t, loaded._model.state_tensors()[name]), name
    assert loaded.describe()["labels"] == {"label": ["a", "b"]} and loaded.discriminator_ is not None


def test_memorization_guard_catches_copies_and_long_overlaps():
    from engine.text.memorization import MemorizationGuard

    train = ["The quick brown fox jumps over the lazy dog near the river bank", "short one"]
    guard = MemorizationGuard.fit(train, n=8)
    candidates = [
        "the QUICK brown fox   jumps over the lazy dog near the river bank",  # a copy up to case and spacing
        "Yesterday the quick brown fox jumps over the lazy dog again",  # shares 8 words in a row
        "the quick brown fox jumps over a sleepy cat",  # 6 words in a row only
        "Short one",  # a short copy
        "something else entirely",
    ]
    assert guard.reasons(candidates) == ["copy", "ngram", None, "copy", None]
    assert guard.counts(candidates) == {"checked": 5, "copies": 2, "ngram_overlaps": 1}


def test_sampling_drops_and_counts_copies(trained):
    from engine.text.memorization import MemorizationGuard

    synth, path = trained
    from engine import load_synthesizer

    s = load_synthesizer(path)
    first = s.sample(10, conditions={"label": "a"}, seed=11, filter=False)
    # Pretend the first draws were training texts: the same seed now draws them first and must refuse them.
    s.guard_ = MemorizationGuard.fit(list(first["text"]), n=8)
    again = s.sample(10, conditions={"label": "a"}, seed=11, filter=False)
    assert len(again) == 10 and not set(again["text"]) & set(first["text"])
    assert s.last_sample_stats_["copies_refused"] >= 10


def test_text_metrics_on_known_cases():
    from engine.text.metrics import bleu, distinct_n, evaluate_texts, self_bleu

    assert bleu(["the cat sat on the mat today"], ["the cat sat on the mat today"]) == pytest.approx(100)
    assert bleu(["one two three four five"], ["six seven eight nine ten"]) == pytest.approx(0)
    assert self_bleu(["a b c d e"] * 3) == pytest.approx(100)
    assert distinct_n(["a b a b"], 1) == 0.5 and distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    real = _corpus(40, seed=1)
    copies = real.iloc[:10].copy()
    report = evaluate_texts(real, copies, label_column="label", holdout=_corpus(20, seed=2))
    assert report.memorization["copies"] == 10 and report.memorization["rate"] == 1.0
    assert report.label_fidelity == 1.0 and report.tstr_accuracy == pytest.approx(1.0)
    assert report.frechet_distance is not None and report.frechet_floor is not None and not report.details["errors"]
    shuffled = pd.DataFrame({"text": [" ".join(WORDS[y][::-1]) for y in real["label"]], "label": ["b" if y == "a" else "a" for y in real["label"]]})
    assert evaluate_texts(real, shuffled, label_column="label", embeddings=False).label_fidelity == 0.0
    assert "<table>" in report.to_html() and json.loads(report.to_json())["memorization"]["copies"] == 10


def test_evaluate_through_the_synthesizer(trained, tmp_path):
    synth, _ = trained
    report = synth.evaluate(_corpus(), embeddings=False, num_samples=20)
    assert report.details["num_synthetic"] == 20 and report.label_fidelity is not None
    assert report.memorization["checked"] == 20


def test_sharded_sampling_matches_in_process_shards(trained, tmp_path):
    from engine.batch.sharded import sample_to_parquet

    synth, path = trained
    res = sample_to_parquet(path, tmp_path / "out", num_rows=10, rows_per_shard=6, seed=4, num_actors=1, conditions={"label": "b"})
    shards = [pd.read_parquet(f) for f in res.files]
    assert [len(s) for s in shards] == [6, 4]
    for i, shard in enumerate(shards):
        expected = synth.sample_table(len(shard), conditions={"label": "b"}, seed=4, stream=i).to_pandas()
        pd.testing.assert_frame_equal(shard.reset_index(drop=True), expected)


def _tiny_checkpoint(folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(list(_corpus()["text"]), trainers.BpeTrainer(
        vocab_size=280, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>").save_pretrained(folder)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=280, n_positions=32, n_embd=16, n_layer=1, n_head=2)).save_pretrained(folder)


def test_pretrained_checkpoint_loads_with_its_tokenizer_and_weights(tmp_path):
    from transformers import AutoModelForCausalLM

    from engine.text.models.causal_lm import CausalLMConfig, CausalLMModel, pretrained_hf_config
    from engine.text.tokenization import TextTokenizer
    from engine.text.transforms import TextLayout

    folder = tmp_path / "tiny"
    _tiny_checkpoint(folder)
    tok = TextTokenizer.from_pretrained(folder, {"label": ["a", "b"]})
    assert tok.vocab_size == 280 + 3  # its own tokens, our padding token and two control tokens
    assert tok.bos_id == tok.eos_id == 0  # the checkpoint's one end-of-text token serves both
    layout = TextLayout(tok.vocab_size, 32, tok.pad_id, tok.bos_id, tok.eos_id, 2, pretrained_hf_config(folder, tok.vocab_size))
    model = CausalLMModel.from_pretrained(str(folder), CausalLMConfig(), layout)
    reference = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.as_tensor([tok.encode(["red apple sweet fruit"])[0]])
    with torch.no_grad():
        ours = model.unwrapped("lm").eval()(input_ids=ids).logits[..., :280]
        theirs = reference(input_ids=ids).logits
    torch.testing.assert_close(ours, theirs)
    assert model.unwrapped("lm").get_input_embeddings().weight.shape[0] == 283


def test_bad_inputs_are_named(trained, tmp_path):
    from engine import TextSynthesizer

    synth, _ = trained
    fit = TextSynthesizer(model_config=TINY)
    with pytest.raises(InvalidDataError, match="text column 'body' is not in the corpus"):
        fit.fit(_corpus(), text_column="body")
    with pytest.raises(InvalidDataError, match="non-empty strings; 1 of 4 rows"):
        fit.fit(pd.DataFrame({"text": ["ok", " ", "fine", "good"]}))
    with pytest.raises(InvalidDataError, match="label 'c' of column 'label' has 1 example"):
        fit.fit(pd.DataFrame({"text": ["x y", "y z", "z w"], "label": ["a", "a", "c"]}), label_column="label")
    with pytest.raises(InvalidDataError, match="does not exist"):
        fit.fit(tmp_path / "nowhere.csv")
    with pytest.raises(InvalidDataError, match="too small for a tokenizer"):
        TextSynthesizer(model_config={**TINY, "vocab_size": 4000}).fit(_corpus(), show_progress=False)
    with pytest.raises(ArtifactError, match="not in the local hub cache"):
        TextSynthesizer(pretrained="nobody/no-such-model").fit(_corpus())
    with pytest.raises(InvalidConditionError, match="Unknown value 'c' for the label column 'label'"):
        synth.sample(3, conditions={"label": "c"})
    with pytest.raises(InvalidConditionError, match="Unknown condition column 'mood'"):
        synth.sample(3, conditions={"mood": "a"})
    with pytest.raises(InvalidOptionError, match="'top_p' parameter must be"):
        synth.sample(3, top_p=0)
    with pytest.raises(InvalidOptionError, match="'guidance' parameter must be"):
        synth.sample(3, guidance=-1)
    with pytest.raises(InvalidOptionError, match="'n_head' parameter of CausalLM must be a divisor"):
        TextSynthesizer(model_config={"n_embd": 32, "n_head": 3})


def test_cli_fits_and_samples_a_text_model_by_label(ray_session, tmp_path, capsys):
    """``synth fit`` / ``synth sample`` end to end for text, in this process (the command is under test: a tiny
    model, 20 steps, no filter). The sampled file holds exactly the rows and label asked for, and the same seed
    gives the texts the saved model gives through the Python API."""
    from engine import TextSynthesizer
    from engine.cli import main

    corpus = tmp_path / "reviews.csv"
    _corpus().to_csv(corpus, index=False)
    config = json.dumps(TINY)
    assert main(["fit", str(corpus), "--model", "gpt2", "--label-column", "label", "--max-steps", "20",
                 "--model-config", config, "--cpus-per-worker", "1", "--quiet", "--out", str(tmp_path / "m")]) == 0
    out = tmp_path / "b.jsonl"
    assert main(["sample", str(tmp_path / "m"), "--rows", "6", "--label", "b", "--seed", "3", "--max-new-tokens", "10",
                 "--out", str(out)]) == 0
    assert "wrote 6" in capsys.readouterr().out
    rows = pd.read_json(out, lines=True, dtype=False)
    expected = TextSynthesizer.load(tmp_path / "m").sample(6, conditions={"label": "b"}, seed=3, max_new_tokens=10)
    assert list(rows.columns) == ["text", "label"] and (rows["label"] == "b").all()
    assert rows["text"].tolist() == expected["text"].tolist()
