"""Fine-tuning a causal LM checkpoint through the text front door: one Ray Train run from a tiny saved checkpoint.

The checkpoint (a GPT-2 of width 16 and its own byte-level tokenizer, saved with
transformers' ``save_pretrained``) is built here; the engine reads it as it would
a downloaded one, grows its vocabulary by the padding and control tokens, and
trains from its weights.
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from tests.test_text import _corpus, _tiny_checkpoint


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def test_fine_tuning_starts_from_the_checkpoint_and_round_trips(ray_session, tmp_path):
    from transformers import AutoModelForCausalLM

    from engine import TextSynthesizer, load_synthesizer

    folder = tmp_path / "tiny"
    _tiny_checkpoint(folder)
    # A learning rate too small to move anything: the trained weights are the checkpoint's.
    synth = TextSynthesizer(pretrained=folder, model_config={"lr": 1e-12, "block_size": 16, "generation_batch": 8}).fit(
        _corpus(32), label_column="label", max_steps=3, batch_size=8, discriminator=False, show_progress=False
    )
    reference = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    ours = synth._model.unwrapped("lm").state_dict()
    for key, tensor in reference.items():
        torch.testing.assert_close(ours[key][: tensor.shape[0]], tensor, atol=1e-6, rtol=0, msg=key)
    assert synth.describe()["tokenizer"] == {"source": str(folder), "vocab_size": 283}
    texts = synth.sample(6, conditions={"label": "a"}, seed=3, max_new_tokens=8)
    assert len(texts) == 6 and set(texts["label"]) == {"a"}
    loaded = load_synthesizer(synth.save(tmp_path / "model"))
    pd.testing.assert_frame_equal(texts, loaded.sample(6, conditions={"label": "a"}, seed=3, max_new_tokens=8))
