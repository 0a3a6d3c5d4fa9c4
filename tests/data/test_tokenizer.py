"""TokenizerFactory: a locally trained BPE with the special tokens, saved and reused."""

from __future__ import annotations

from mmfw.data.tokenizer import TokenizerFactory


def test_trained_tokenizer_has_specials_and_is_reused(tmp_path):
    texts = ["What colour is the small object? red", "A. red\nB. blue"] * 20
    factory = TokenizerFactory(vocab_size=300, min_frequency=1)
    tok = factory.load_or_build(tmp_path / "tok", lambda: texts)
    ids = tok("USER: <image>\nred</s>", add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids("<image>") in ids
    assert ids[-1] == tok.eos_token_id
    assert tok.pad_token_id is not None and tok.bos_token_id is not None
    assert (
        tok.decode(tok("any text, even unseen: ü", add_special_tokens=False)["input_ids"])
        == "any text, even unseen: ü"
    )

    def fail():
        raise AssertionError("must not retrain")

    again = TokenizerFactory(vocab_size=999).load_or_build(tmp_path / "tok", fail)
    assert again.get_vocab() == tok.get_vocab()
