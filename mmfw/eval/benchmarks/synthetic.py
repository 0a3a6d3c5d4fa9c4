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


class _Generated:
    """Mixin: ``path`` defaults to the file ``FILE`` of the generated dataset.

    Yaml keys (besides the benchmark's own):
      generator: the task generator config (``${synthetic}``: the run's task).
      cache_dir: where generated datasets live.
    """

    FILE = ""

    def __init__(self, *, generator, cache_dir: str, **benchmark) -> None:
        super().__init__(**benchmark)
        self.generator = generator
        self.cache_dir = cache_dir

    def _default_path(self) -> None:
        if not self.path:
            self.path = generated_file(self.generator, self.cache_dir, self.FILE)


class SyntheticMultipleChoice(_Generated, MultipleChoiceBenchmark):
    """``test_mc.tsv`` of a generated dataset (or ``path`` when given); keys as ``_Generated``
    plus the multiple-choice ones."""

    FILE = "test_mc.tsv"

    def questions(self):
        self._default_path()
        return super().questions()


class SyntheticOpenEnded(_Generated, OpenEndedBenchmark):
    """``test_open.json`` of a generated dataset: the test questions without options, scored by
    exact match and short-answer rate. Keys as ``_Generated`` plus the open-ended ones
    (``prompt_suffix``: the response-format prompt, null for none)."""

    FILE = "test_open.json"

    def questions(self):
        self._default_path()
        return super().questions()


class SyntheticDistractor(_Generated, DistractorBenchmark):
    """Distractor Resistance on ``test_mc.tsv`` of a generated dataset. Keys as ``_Generated``
    plus the distractor ones (``num_images``, ``seed``, ...)."""

    FILE = "test_mc.tsv"

    def requests(self):
        self._default_path()
        return super().requests()
