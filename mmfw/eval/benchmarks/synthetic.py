"""The multiple-choice test split of a synthetic task, generated on first use."""

from __future__ import annotations

from mmfw.data.synthetic.source import ensure_generated
from mmfw.eval.benchmarks.multiple_choice import MultipleChoiceBenchmark


class SyntheticMultipleChoice(MultipleChoiceBenchmark):
    """``test_mc.tsv`` of a generated dataset (or ``path`` when given).

    Yaml keys (besides the multiple-choice ones):
      generator: the task generator config (``${synthetic}``: the run's task).
      cache_dir: where generated datasets live.
    """

    def __init__(self, *, generator, cache_dir: str, **mc) -> None:
        super().__init__(**mc)
        self.generator = generator
        self.cache_dir = cache_dir

    def questions(self):
        if not self.path:
            self.path = str(ensure_generated(self.generator, self.cache_dir) / "test_mc.tsv")
        return super().questions()
