"""The processor of an export: image processor + tokenizer (image token, BOS, chat template).

Measured parity with mmfw's preprocessing (docs/hf_export.md §3): the torchvision-backed
``LlavaImageProcessor`` / ``LlavaNextImageProcessor`` configured as below give the same pixel
values to ~2e-7; the PIL-backed variants do not (1e-2), so the export names the former.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mmfw.export.chat_template import chat_template
from mmfw.export.hf_support import HFArchitecture

RESAMPLE = {"bicubic": 3, "bilinear": 2}  # PIL.Image.Resampling values transformers stores


def export_tokenizer(tokenizer_dir: Path, image_token: str, template, out: Path | None = None):
    """The run's tokenizer with ``image_token`` registered as transformers' image token, a
    BOS added on encoding where mmfw adds one, and the chat template; saved to ``out``."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        str(tokenizer_dir), extra_special_tokens={"image_token": image_token}
    )
    bos = tok.bos_token_id
    if bos is not None and tok("x")["input_ids"][:1] != [bos]:
        # mmfw puts BOS in front of every sample itself; transformers' processors rely on the
        # tokenizer to do it.
        tok._tokenizer.post_processor = TemplateProcessing(
            single=f"{tok.bos_token} $A",
            pair=f"{tok.bos_token} $A $B",
            special_tokens=[(tok.bos_token, bos)],
        )
    jinja = chat_template(template, image_token)
    if jinja is None:
        warnings.warn(
            f"template {type(template).__name__} has no chat-template rendering: the export has "
            "no chat_template; prompts must be written out in full",
            stacklevel=2,
        )
    else:
        tok.chat_template = jinja
    if out is not None:
        tok.save_pretrained(str(out))
    return tok


def image_processor(arch: HFArchitecture):
    """``LlavaImageProcessor`` (pad or resize to a square) or ``LlavaNextImageProcessor``."""
    from transformers import LlavaImageProcessor, LlavaNextImageProcessor

    s = arch.image_size
    common = {
        "resample": RESAMPLE[arch.interpolation],
        "image_mean": arch.image_mean,
        "image_std": arch.image_std,
        "do_convert_rgb": True,
    }
    if arch.format == "hf_llava_next":
        return LlavaNextImageProcessor(
            size={"shortest_edge": s},
            crop_size={"height": s, "width": s},
            image_grid_pinpoints=arch.pinpoints,
            do_center_crop=False,
            **common,
        )
    # crop_size is also what the processor counts image tokens from (its default is 224).
    return LlavaImageProcessor(
        do_pad=not arch.resize_only,
        size={"height": s, "width": s},
        crop_size={"height": s, "width": s},
        do_center_crop=False,
        **common,
    )


def build_processor(arch: HFArchitecture, tokenizer, patch_size: int):
    """``LlavaProcessor`` / ``LlavaNextProcessor`` that expands the image token exactly as
    mmfw's token accounting does (CLIP's CLS counts as one additional token, then dropped)."""
    from transformers import LlavaNextProcessor, LlavaProcessor

    cls = LlavaNextProcessor if arch.format == "hf_llava_next" else LlavaProcessor
    return cls(
        image_processor=image_processor(arch),
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy=arch.select_strategy,
        chat_template=tokenizer.chat_template,
        image_token=tokenizer.image_token,
        num_additional_image_tokens=1 if arch.has_cls else 0,
    )
