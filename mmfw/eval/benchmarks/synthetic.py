"""The test split of a synthetic task, generated on first use: multiple choice
(``test_mc.tsv``), open-ended (``test_open.json``) and with distractor images."""

from __future__ import annotations

from pathlib import Path

from mmfw.data.synthetic.source import ensure_generated
from mmfw.eval.benchmarks.distractor import DistractorBenchmark
from mmfw.eval.benchmarks.multiple_choice import MultipleChoiceBenchmark
from mmfw.eval.benchmarks.open_ended import OpenEndedBenchmark


def generated_file(generator, cache_dir: str, name: str) -> str:
    """Path of ``name`` in the generated dataset (generating it first if needed)."""
    path = Path(ensure_generated(generator, cache_dir)) / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: the synthetic task {generator.name!r} writes no {name}")
    return str(path)


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
            self.path = generated_file(self.generator, self.cache_dir, "test_mc.tsv")
        return super().questions()


class SyntheticOpenEnded(OpenEndedBenchmark):
    """``test_open.json`` of a generated dataset: the test questions without options, scored by
    exact match and short-answer rate. Yaml keys: as ``SyntheticMultipleChoice``, plus the
    open-ended ones (``prompt_suffix``: the response-format prompt, null for none)."""

    def __init__(self, *, generator, cache_dir: str, **open_ended) -> None:
        super().__init__(**open_ended)
        self.generator = generator
        self.cache_dir = cache_dir

    def questions(self):
        if not self.path:
            self.path = generated_file(self.generator, self.cache_dir, "test_open.json")
        return super().questions()


class SyntheticDistractor(DistractorBenchmark):
    """Distractor Resistance on ``test_mc.tsv`` of a generated dataset. Yaml keys: as
    ``SyntheticMultipleChoice``, plus the distractor ones (``num_images``, ``seed``, ...)."""

    def __init__(self, *, generator, cache_dir: str, **distractor) -> None:
        super().__init__(**distractor)
        self.generator = generator
        self.cache_dir = cache_dir

    def requests(self):
        if not self.path:
            self.path = generated_file(self.generator, self.cache_dir, "test_mc.tsv")
        return super().requests()
