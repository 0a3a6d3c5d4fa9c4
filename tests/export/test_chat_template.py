"""The export's jinja chat template renders what mmfw's templates render, for single and
multi-turn conversations, with images, and with a system message replacing the default."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

import mmfw
from mmfw.data.templates.base import Turn
from mmfw.export.chat_template import chat_template
from mmfw.export.hf_processor import export_tokenizer
from tests.helpers import tiny_components


def messages(turns: list[Turn], images: int, system: str | None = None) -> list[dict]:
    out = [{"role": "system", "content": system}] if system is not None else []
    for i, turn in enumerate(turns):
        role = "user" if turn.role == "human" else "assistant"
        if i == 0 and images:
            content = [{"type": "image"}] * images + [{"type": "text", "text": turn.text}]
            out.append({"role": role, "content": content})
        else:
            out.append({"role": role, "content": turn.text})
    return out


@pytest.mark.parametrize("name", ["vicuna_v1", "chatml"])
def test_chat_template_renders_mmfw_text(name, tmp_path):
    _, parts = tiny_components(tmp_path)
    template = instantiate(mmfw.compose([f"template={name}"]).template)
    tok = export_tokenizer(tmp_path / "tokenizer", "<image>", template)
    conversation = [
        Turn("human", "What is it?"),
        Turn("gpt", "A red 'square'."),
        Turn("human", "And now?"),
    ]
    for images in (0, 1, 2):
        first = Turn("human", "<image>" * images + ("\n" if images else "") + conversation[0].text)
        turns = [first, *conversation[1:]]
        want = "".join(s.text for s in template.prompt(turns))
        got = tok.apply_chat_template(
            messages(conversation, images), tokenize=False, add_generation_prompt=True
        )
        assert got == want
        full = [*turns, Turn("gpt", "Blue.")]
        trained = "".join(s.text for s in template.render(full))
        got = tok.apply_chat_template(
            messages([*conversation, Turn("gpt", "Blue.")], images), tokenize=False
        )
        assert got == trained
    template.system = "You're terse."
    want = "".join(s.text for s in template.prompt(conversation[:1]))
    got = tok.apply_chat_template(
        messages(conversation[:1], 0, system="You're terse."),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert got == want


def test_templates_without_a_rendering_get_none():
    template = instantiate(mmfw.compose(["template=plain"]).template)
    assert chat_template(template, "<image>") is None
