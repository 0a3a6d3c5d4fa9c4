"""Multiple-choice benchmarks from VLMEvalKit-style TSV files (MMBench format)."""

from __future__ import annotations

from collections import defaultdict

from mmfw.data.formats.vlmeval_tsv import MCQuestion, read_mc_tsv
from mmfw.data.templates.base import IMAGE_PLACEHOLDER, Turn
from mmfw.eval.generation import generate_answers
from mmfw.eval.protocols.multiple_choice import MC_SUFFIX, format_multiple_choice, parse_choice


class MultipleChoiceBenchmark:
    """Asks each question with lettered options and scores the parsed letter.

    Yaml keys:
      path: the TSV file (columns index, question, A, B, ..., answer, image or image_path).
      image_root: folder of ``image_path`` values (default: the TSV's folder).
      prompt_suffix: appended after the options (LLaVA: "Answer with the option's letter
        from the given choices directly.").
      max_samples: evaluate only the first N questions (null: all).
      batch_size: questions per generation batch.
      max_new_tokens: generation budget per answer.
    """

    def __init__(
        self,
        *,
        path: str | None,
        image_root: str | None = None,
        prompt_suffix: str = MC_SUFFIX,
        max_samples: int | None = None,
        batch_size: int = 16,
        max_new_tokens: int = 8,
    ) -> None:
        self.path = path
        self.image_root = image_root
        self.prompt_suffix = prompt_suffix
        self.max_samples = max_samples
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens

    def questions(self) -> list[MCQuestion]:
        if not self.path:
            raise ValueError("benchmark.path is not set: give the benchmark's TSV file")
        qs = read_mc_tsv(self.path, self.image_root)
        return qs[: self.max_samples] if self.max_samples else qs

    def prompt(self, q: MCQuestion) -> tuple[list[Turn], list]:
        text = format_multiple_choice(
            q.question, list(q.options.values()), hint=q.hint, suffix=self.prompt_suffix
        )
        text = IMAGE_PLACEHOLDER * len(q.images) + "\n" + text if q.images else text
        return [Turn("human", text)], q.images

    def run(self, model, processor) -> tuple[list[dict], dict]:
        """Predictions (one dict per question) and metrics."""
        qs = self.questions()
        answers = generate_answers(
            model,
            processor,
            [self.prompt(q) for q in qs],
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
        )
        predictions = []
        for q, text in zip(qs, answers, strict=True):
            letter = parse_choice(text, q.options)
            predictions.append(
                {
                    "index": q.index,
                    "question": q.question,
                    "options": q.options,
                    "output": text,
                    "prediction": letter,
                    "answer": q.answer,
                    # No reference answer (MMBench TEST files): a prediction to submit, not scored.
                    "correct": None if q.answer is None else letter == q.answer,
                    "category": q.category,
                }
            )
        return predictions, score(predictions, qs)


def score(predictions: list[dict], questions: list[MCQuestion]) -> dict:
    """Accuracy overall and per category over the questions that have an answer; unparsed
    outputs; the chance level. Without any answer: ``answers: none`` and no accuracy, since
    there is nothing to score (the predictions are for the official server)."""
    n = len(predictions)
    scored = [(p, q) for p, q in zip(predictions, questions, strict=True) if q.answer is not None]
    base = {
        "num_questions": n,
        "unparsed": sum(p["prediction"] == "other" for p in predictions),
    }
    if not scored:
        return {**base, "answers": "none"}
    correct = sum(p["correct"] for p, _ in scored)
    by_cat: dict[str, list[bool]] = defaultdict(list)
    for p, _ in scored:
        by_cat[str(p["category"])].append(p["correct"])
    return {
        **base,
        "answers": "all" if len(scored) == n else "partial",
        "scored": len(scored),
        "unanswered": n - len(scored),
        "accuracy": correct / len(scored),
        "correct": correct,
        "chance": sum(1 / len(q.options) for _, q in scored) / len(scored),
        "per_category": {k: sum(v) / len(v) for k, v in sorted(by_cat.items())},
    }
