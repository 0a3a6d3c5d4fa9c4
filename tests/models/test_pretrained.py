"""Real weights from a local path: encoder.pretrained, llm.pretrained (+ its tokenizer)."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, CLIPVisionModel

from mmfw.build import build_components, build_tokenizer
from tests.helpers import tiny_components, tiny_config


def test_local_pretrained_encoder_llm_and_tokenizer(tmp_path):
    # A "downloaded" checkpoint: a tiny model + tokenizer saved the Hugging Face way.
    _, parts = tiny_components(tmp_path / "src")
    llm_dir, enc_dir = tmp_path / "llm", tmp_path / "clip"
    parts.model.llm.save_pretrained(llm_dir)
    parts.model.encoder.model.save_pretrained(enc_dir)
    plain = parts.tokenizer.__class__.from_pretrained(str(tmp_path / "src" / "tokenizer"))
    plain.save_pretrained(llm_dir)

    cfg = tiny_config(f"llm.pretrained={llm_dir}", f"encoder.pretrained={enc_dir}")
    assert cfg.tokenizer.pretrained == str(llm_dir)  # the tokenizer follows the LLM
    tok = build_tokenizer(cfg, tmp_path / "run" / "tokenizer", lambda: [])
    loaded = build_components(cfg, tok).model

    ref_llm = AutoModelForCausalLM.from_pretrained(llm_dir)
    ref_enc = CLIPVisionModel.from_pretrained(enc_dir)
    for (n, a), (_, b) in zip(
        loaded.llm.state_dict().items(), ref_llm.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), n
    for (n, a), (_, b) in zip(
        loaded.encoder.model.state_dict().items(), ref_enc.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), n
    assert loaded.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.json").exists()
