"""MagnifierBench-style evaluation (OtterHD): the same questions asked as multiple choice and
open-ended; the open answer is judged against the text of the correct option."""

from __future__ import annotations

from mmfw.eval.benchmarks.base import Request
from mmfw.eval.benchmarks.multiple_choice import MultipleChoiceBenchmark, score_mc
from mmfw.eval.benchmarks.open_ended import open_prompt
from mmfw.eval.generation import Generated
from mmfw.eval.protocols.open_ended import normalize_answer


def mentions(prediction: str, reference: str) -> bool:
    """The normalised reference equals the normalised prediction or appears in it as whole
    words ("a red mug" answers "red"). The paper judged with GPT-4; this is the judge-free
    default, and ``judge`` replaces it."""
    pred, ref = f" {normalize_answer(prediction)} ", f" {normalize_answer(reference)} "
    return ref.strip() != "" and ref in pred


class MagnifierBenchmark(MultipleChoiceBenchmark):
    """MagnifierBench as published (a parquet file with ``instruction``, ``images``,
    ``answer``) or any multiple-choice TSV / parquet.

    Yaml keys: those of the multiple-choice benchmark, plus
      open_suffix: after the open-ended question (null: none, as OtterHD asked it).
      judge: optional callable (question, prediction, references) -> bool for the open answers.
    Metrics: ``accuracy`` (and ``circular_accuracy``) of the multiple-choice form and
    ``open_accuracy`` of the open-ended form.
    """

    def __init__(self, *, open_suffix: str | None = None, judge=None, **mc) -> None:
        mc.setdefault(
            "prompt_suffix", "Answer with the option letter from the given choices directly."
        )
        mc.setdefault("max_new_tokens", 16)
        super().__init__(**mc)
        self.open_suffix = open_suffix
        self.judge = judge

    def requests(self) -> list[Request]:
        out = [Request(r.turns, r.images, {**r.meta, "form": "mc"}) for r in super().requests()]
        for q in self.questions():
            turns, images = open_prompt(q.question, q.images, self.open_suffix)
            reference = None if q.answer is None else q.options[q.answer]
            meta = {"index": q.index, "form": "open", "answer": reference, "question": q.question,
                    "category": q.category}  # fmt: skip
            out.append(Request(turns, images, meta))
        return out

    def questions(self):
        if not hasattr(self, "_questions"):  # read once for both forms (rows counted once)
            self._questions = super().questions()
        return self._questions

    def row(self, request: Request, generated: Generated) -> dict:
        meta = request.meta
        if meta["form"] == "mc":
            return {"form": "mc", **super().row(request, generated)}
        ref = meta["answer"]
        if ref is None:
            correct = None
        elif self.judge is not None:
            correct = bool(self.judge(meta["question"], generated.text, [ref]))
        else:
            correct = mentions(generated.text, ref)
        return {
            "form": "open",
            "index": meta["index"],
            "prompt": generated.prompt,
            "output": generated.output,
            "prediction": generated.text,
            "answer": ref,
            "correct": correct,
            "category": meta["category"],
        }

    def score(self, rows: list[dict]) -> dict:
        out = score_mc([r for r in rows if r["form"] == "mc"], self.circular)
        open_rows = [r for r in rows if r["form"] == "open" and r["correct"] is not None]
        if open_rows:
            out["open_accuracy"] = sum(r["correct"] for r in open_rows) / len(open_rows)
        return out
