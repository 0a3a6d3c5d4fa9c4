"""An lmms-eval model backed by an mmfw run, so lmms-eval's tasks evaluate mmfw models.

With lmms-eval 0.7 installed (the optional ``lmms`` extra), mmfw registers itself through the
``lmms_eval.models`` entry point:

    python -m lmms_eval --model mmfw --model_args run=runs/tiny_llava/<stamp>,batch_size=8 \\
        --tasks <task> --output_path out/

``model_args``: ``run`` (the run directory), ``ckpt`` (last | a checkpoint), ``device``,
``batch_size``, ``max_new_tokens`` (default when a task gives none). Prompts go through the
run's own chat template and resolution strategy; a task's ``<image>`` placeholders are kept,
and images without one are put in front, as mmfw-eval does.
"""

from __future__ import annotations

from mmfw.data.templates.base import IMAGE_PLACEHOLDER, Turn

try:  # lmms-eval is optional: without it this module only offers ``manifest``
    from lmms_eval.api.model import lmms as _LMMBase
except ImportError:  # pragma: no cover - exercised where lmms-eval is absent
    _LMMBase = object


def manifest():
    """The ``lmms_eval.models`` entry point: mmfw's model manifest."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="mmfw", simple_class_path="mmfw.eval.lmms.MMFWModel")


def _flatten(visuals) -> list:
    out = []
    for v in visuals or []:
        if isinstance(v, (list, tuple)):
            out += _flatten(v)
        elif v is not None:
            out.append(v)
    return out


def _to_rgb(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    raise ValueError(f"mmfw's lmms-eval model takes images only, got {type(image).__name__}")


class MMFWModel(_LMMBase):
    """lmms-eval's simple-model interface (``generate_until``, ``loglikelihood``)."""

    is_simple = True

    def __init__(
        self,
        run: str,
        ckpt: str = "last",
        device: str = "cpu",
        batch_size: int | str = 8,
        max_new_tokens: int | str = 32,
        **_ignored,
    ) -> None:
        super().__init__()
        from mmfw.runs import load_run

        loaded = load_run(run, ckpt=ckpt, device=device)
        self.model, self.processor = loaded.model, loaded.processor
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)

    def _prompt(self, context: str, images: list) -> tuple[list[Turn], list]:
        text = context
        missing = len(images) - text.count(IMAGE_PLACEHOLDER)
        if missing > 0:
            text = IMAGE_PLACEHOLDER * missing + "\n" + text
        return [Turn("human", text)], images

    def _visuals(self, doc_to_visual, doc_id, task, split) -> list:
        doc = self.task_dict[task][split][doc_id]
        return [_to_rgb(v) for v in _flatten(doc_to_visual(doc))]

    def generate_until(self, requests) -> list[str]:
        from mmfw.eval.generation import generate

        out: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = [r.args for r in requests[start : start + self.batch_size]]
            prompts, kwargs = [], chunk[0][1] or {}
            for context, _gen, doc_to_visual, doc_id, task, split in chunk:
                prompts.append(
                    self._prompt(context, self._visuals(doc_to_visual, doc_id, task, split))
                )
            until = kwargs.get("until") or []
            got = generate(
                self.model,
                self.processor,
                prompts,
                batch_size=self.batch_size,
                max_new_tokens=int(kwargs.get("max_new_tokens", self.max_new_tokens)),
                stop=[until] if isinstance(until, str) else list(until),
            )
            out += [g.text for g in got]
        return out

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        """Log-probability of each continuation after its context (and whether greedy
        decoding would produce it), from one forward pass of the prompt + continuation."""
        import torch

        tok = self.processor.tokenizer
        device = next(self.model.parameters()).device
        out = []
        for req in requests:
            context, doc_to_target, doc_to_visual, doc_id, task, split = req.args
            doc = self.task_dict[task][split][doc_id]
            continuation = doc_to_target(doc) if callable(doc_to_target) else doc_to_target
            if isinstance(continuation, list):
                continuation = continuation[0]
            turns, images = self._prompt(context, self._visuals(doc_to_visual, doc_id, task, split))
            sample = self.processor.prompt_sample(turns, images)
            cont = tok(str(continuation), add_special_tokens=False)["input_ids"]
            ids = torch.tensor([sample.input_ids + cont], device=device)
            with torch.no_grad():
                logits = self.model(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    images=[t.to(device) for t in sample.images],
                    layouts=sample.layouts,
                ).logits[0]
            start = len(sample.input_ids)
            logprobs = torch.log_softmax(logits[start - 1 : -1].float(), dim=-1)
            target = torch.tensor(cont, device=device)
            total = float(logprobs.gather(-1, target[:, None]).sum())
            greedy = bool((logprobs.argmax(-1) == target).all())
            out.append((total, greedy))
        return out

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("mmfw's lmms-eval model answers single-round tasks")
