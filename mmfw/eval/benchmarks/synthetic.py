"""The multiple-choice test split of a synthetic task, generated on first use."""

from __future__ import annotations

from mmfw.data.synthetic.source import ensure_generated
from mmfw.eval.benchmarks.multiple_choice import MultipleChoiceBenchmark
from mmfw.eval.protocols.multiple_choice import MC_SUFFIX


class SyntheticMultipleChoice(MultipleChoiceBenchmark):
    """``test_mc.tsv`` of a generated dataset (or ``path`` when given).

    Yaml keys (besides the multiple-choice ones):
      generator: the task generator config (``${synthetic}``: the run's task).
      cache_dir: where generated datasets live.
    """

    def __init__(
        self,
        *,
        generator,
        cache_dir: str,
        path: str | None = None,
        image_root: str | None = None,
        prompt_suffix: str = MC_SUFFIX,
        max_samples: int | None = None,
        batch_size: int = 16,
        max_new_tokens: int = 8,
    ) -> None:
        super().__init__(
            path=path,
            image_root=image_root,
            prompt_suffix=prompt_suffix,
            max_samples=max_samples,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
        )
        self.generator = generator
        self.cache_dir = cache_dir

    def questions(self):
        if not self.path:
            self.path = str(ensure_generated(self.generator, self.cache_dir) / "test_mc.tsv")
        return super().questions()
