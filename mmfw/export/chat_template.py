"""A jinja chat template (transformers' ``apply_chat_template``) that renders exactly the
prompt text of an mmfw template, so ``AutoProcessor`` users prompt the model as it was trained.

Messages may hold a string or a list of ``{"type": "image"}`` / ``{"type": "text", "text": ...}``
items; images come first, one image token each, then a newline and the text, which is how
mmfw's benchmarks and the LLaVA data put ``<image>`` in a question.
"""

from __future__ import annotations

import json

from mmfw.data.templates.base import ChatTemplate
from mmfw.data.templates.chatml import ChatMLTemplate
from mmfw.data.templates.separator import SeparatorTemplate


def _q(text: str) -> str:
    """A jinja string literal (json quoting survives apostrophes such as ``user's``)."""
    return json.dumps(text)


def _content(image_token: str) -> str:
    """Jinja that sets ``text`` to a message's content rendered as mmfw writes it."""
    return (
        "{%- if m['content'] is string -%}{%- set text = m['content'] -%}{%- else -%}"
        "{%- set n = m['content'] | selectattr('type', 'equalto', 'image') | list | length -%}"
        "{%- set words = m['content'] | selectattr('type', 'equalto', 'text') "
        "| map(attribute='text') | join('\\n') -%}"
        f"{{%- set text = ({_q(image_token)} * n) ~ ('\\n' if n > 0 else '') ~ words -%}}"
        "{%- endif -%}"
    )


def _system(default: str) -> str:
    """Jinja that sets ``system`` (a leading system message replaces the template's) and
    ``msgs`` (the messages after it)."""
    return (
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set m = messages[0] -%}" + _content("") + "{%- set system = text -%}"
        "{%- set msgs = messages[1:] -%}"
        f"{{%- else -%}}{{%- set system = {_q(default)} -%}}{{%- set msgs = messages -%}}"
        "{%- endif -%}"
    )


def _conversation(
    default_system: str, image_token: str, system: str, turn: str, generation: str
) -> str:
    """The shared frame: the system block (jinja expression ``system`` using the variable
    ``system``), each message (``turn``, using ``m`` and ``text``), then the generation prompt."""
    return (
        _system(default_system)
        + f"{{%- if system -%}}{{{{ {system} }}}}{{%- endif -%}}"
        + "{%- for m in msgs -%}"
        + _content(image_token)
        + turn
        + "{%- endfor -%}"
        + f"{{%- if add_generation_prompt -%}}{{{{ {_q(generation)} }}}}{{%- endif -%}}"
    )


def chat_template(template: ChatTemplate, image_token: str) -> str | None:
    """The jinja template for ``template``, or None where mmfw has no rendering for its kind."""
    nl = "\n"
    if isinstance(template, SeparatorTemplate):
        t = template
        turn = (
            "{%- if m['role'] == 'user' -%}"
            f"{{{{ {_q(t.user + ': ')} ~ text ~ {_q(t.sep)} }}}}"
            f"{{%- else -%}}{{{{ {_q(t.assistant + ': ')} ~ text ~ {_q(t.sep2)} }}}}"
            "{%- endif -%}"
        )
        return _conversation(
            t.system, image_token, f"system ~ {_q(t.sep)}", turn, t.assistant + ":"
        )
    if isinstance(template, ChatMLTemplate):
        t = template
        turn = (
            f"{{%- set role = {_q(t.user)} if m['role'] == 'user' else {_q(t.assistant)} -%}}"
            f"{{{{ {_q(t.start)} ~ role ~ {_q(nl)} ~ text ~ {_q(t.end + nl)} }}}}"
        )
        head = f"{_q(t.start + 'system' + nl)} ~ system ~ {_q(t.end + nl)}"
        return _conversation(t.system, image_token, head, turn, t.start + t.assistant + nl)
    return None
