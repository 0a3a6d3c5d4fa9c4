"""Distractor Resistance (mPLUG-Owl3): multiple-choice accuracy as 1..N irrelevant images are
added, scored with CircularEval, one set of metrics per image count."""

from __future__ import annotations

from mmfw.data.templates.base import Turn
from mmfw.eval.benchmarks.base import Benchmark, Request
from mmfw.eval.benchmarks.multiple_choice import mc_row, read_mc, score_mc
from mmfw.eval.generation import Generated
from mmfw.eval.protocols import distractor
from mmfw.eval.protocols.circular import passes, rotate, rotated_answer
from mmfw.eval.protocols.multiple_choice import MC_SUFFIX, format_multiple_choice


class DistractorBenchmark(Benchmark):
    """Yaml keys (besides those of every benchmark):
      path, image_root: a multiple-choice TSV / parquet (MMBench-dev in the paper).
      num_images: the image counts N to evaluate (paper: 1, 5, 10, 20, 50, 100, 200, 400).
      seed: the draw of distractors and target positions.
      circular: CircularEval (the paper's protocol; default true).
      prompt_suffix: after the options.
    Metrics per N: ``n<N>/accuracy`` (first pass), ``n<N>/circular_accuracy``; ``accuracy`` and
    ``circular_accuracy`` are their means over the counts.
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        image_root: str | None = None,
        num_images: list[int] = (1, 2, 4),
        seed: int = 0,
        circular: bool = True,
        prompt_suffix: str | None = MC_SUFFIX,
        **common,
    ) -> None:
        common.setdefault("max_new_tokens", 8)
        super().__init__(**common)
        self.path = path
        self.image_root = image_root
        self.num_images = [int(n) for n in num_images]
        self.seed = int(seed)
        self.circular = bool(circular)
        self.prompt_suffix = prompt_suffix

    def requests(self) -> list[Request]:
        if not self.path:
            raise ValueError(
                "benchmark.path is not set: give a multiple-choice TSV or parquet file"
            )
        questions = self.limit(read_mc(self.path, self.image_root, self.problems))
        out = []
        for n in self.num_images:
            for sample in distractor.build(questions, n, self.seed):
                q = sample.question
                for shift in passes(q.options, self.circular):
                    options = rotate(q.options, shift)
                    text = format_multiple_choice(
                        sample.text,
                        list(options.values()),
                        hint=q.hint,
                        suffix=self.prompt_suffix or "",
                    )
                    answer = (
                        None if q.answer is None else rotated_answer(q.options, q.answer, shift)
                    )
                    meta = {"index": q.index, "pass": shift, "options": options, "answer": answer,
                            "num_images": n, "target": sample.target, "category": q.category,
                            "question": q.question}  # fmt: skip
                    out.append(Request([Turn("human", text)], sample.images, meta))
        return out

    def row(self, request: Request, generated: Generated) -> dict:
        return mc_row(request.meta, generated, extra=("num_images", "target"))

    def score(self, rows: list[dict]) -> dict:
        out: dict = {"num_images": self.num_images}
        per = {}
        for n in self.num_images:
            per[n] = score_mc([r for r in rows if r["num_images"] == n], self.circular)
            for key in ("accuracy", "circular_accuracy", "num_questions"):
                if key in per[n]:
                    out[f"n{n}/{key}"] = per[n][key]
        for key in ("accuracy", "circular_accuracy"):
            values = [m[key] for m in per.values() if key in m]
            if values:
                out[key] = sum(values) / len(values)
        return out
