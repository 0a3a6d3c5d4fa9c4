"""Multiple choice (MMBench / MagnifierBench style), optionally with CircularEval."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mmfw.data.formats.vlmeval_tsv import MCQuestion, read_mc_tsv
from mmfw.data.templates.base import IMAGE_PLACEHOLDER, Turn
from mmfw.eval.benchmarks.base import Benchmark, Request
from mmfw.eval.generation import Generated
from mmfw.eval.protocols.circular import circular_accuracy, passes, rotate, rotated_answer
from mmfw.eval.protocols.multiple_choice import MC_SUFFIX, format_multiple_choice, parse_choice


def read_mc(path: str, image_root: str | None, problems) -> list[MCQuestion]:
    """A VLMEvalKit TSV or a parquet file (HF datasets layout), by extension."""
    if Path(path).suffix == ".parquet":
        from mmfw.data.formats.parquet_bench import read_mc_parquet

        return read_mc_parquet(path, problems)
    return read_mc_tsv(path, image_root, problems)


def mc_prompt(
    q: MCQuestion, options: dict[str, str], suffix: str | None
) -> tuple[list[Turn], list]:
    """LLaVA's MMBench prompt: image placeholders, [hint], question, lettered options, suffix."""
    text = format_multiple_choice(
        q.question, list(options.values()), hint=q.hint, suffix=suffix or ""
    )
    if q.images:
        text = IMAGE_PLACEHOLDER * len(q.images) + "\n" + text
    return [Turn("human", text)], q.images


class MultipleChoiceBenchmark(Benchmark):
    """Questions of a VLMEvalKit TSV (MMBench layout: index, question, hint, A..H, answer,
    image base64 or image_path, category) or a parquet file.

    Yaml keys (besides those of every benchmark):
      path: the TSV / parquet file.
      image_root: folder of ``image_path`` values (default: the file's folder).
      prompt_suffix: text after the options (LLaVA: "Answer with the option's letter from
        the given choices directly."); null or "" for none.
      circular: MMBench's CircularEval: each N-option question is asked N times with the
        options rotated; it counts only if every pass is right (``circular_accuracy``;
        ``accuracy`` stays the first, unrotated pass).
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        image_root: str | None = None,
        prompt_suffix: str | None = MC_SUFFIX,
        circular: bool = False,
        **common,
    ) -> None:
        common.setdefault("max_new_tokens", 8)
        super().__init__(**common)
        self.path = path
        self.image_root = image_root
        self.prompt_suffix = prompt_suffix
        self.circular = bool(circular)

    def questions(self) -> list[MCQuestion]:
        if not self.path:
            raise ValueError("benchmark.path is not set: give the benchmark's TSV or parquet file")
        return self.limit(read_mc(self.path, self.image_root, self.problems))

    def requests(self) -> list[Request]:
        out = []
        for q in self.questions():
            for shift in passes(q.options, self.circular):
                options = rotate(q.options, shift)
                turns, images = mc_prompt(q, options, self.prompt_suffix)
                answer = None if q.answer is None else rotated_answer(q.options, q.answer, shift)
                meta = {"index": q.index, "pass": shift, "options": options, "answer": answer,
                        "question": q.question, "category": q.category}  # fmt: skip
                out.append(Request(turns, images, meta))
        return out

    def row(self, request: Request, generated: Generated) -> dict:
        return mc_row(request.meta, generated)

    def score(self, rows: list[dict]) -> dict:
        return score_mc(rows, self.circular)


def mc_row(meta: dict, generated: Generated, extra: tuple[str, ...] = ()) -> dict:
    """A multiple-choice prediction row; ``extra``: more ``meta`` keys to carry."""
    letter = parse_choice(generated.text, meta["options"])
    return {
        "index": meta["index"],
        **{key: meta[key] for key in extra},
        "pass": meta["pass"],
        "prompt": generated.prompt,
        "output": generated.output,
        "prediction": letter,
        "answer": meta["answer"],
        # No reference answer (MMBench TEST files): a prediction to submit, not scored.
        "correct": None if meta["answer"] is None else letter == meta["answer"],
        "question": meta["question"],
        "options": meta["options"],
        "category": meta["category"],
    }


def score_mc(rows: list[dict], circular: bool) -> dict:
    """``accuracy`` over first passes, per category, unparsed outputs, chance and, with
    CircularEval, ``circular_accuracy`` (overall and per category). Without any reference
    answer: ``answers: none`` and no accuracy (predictions for an official server)."""
    first = [r for r in rows if r.get("pass", 0) == 0]
    scored = [r for r in first if r["answer"] is not None]
    base = {"num_questions": len(first), "unparsed": sum(r["prediction"] == "other" for r in rows)}
    if not scored:
        return {**base, "answers": "none"}
    by_cat: dict[str, list[bool]] = defaultdict(list)
    for r in scored:
        by_cat[str(r["category"])].append(bool(r["correct"]))
    out = {
        **base,
        "answers": "all" if len(scored) == len(first) else "partial",
        "scored": len(scored),
        "unanswered": len(first) - len(scored),
        "accuracy": sum(r["correct"] for r in scored) / len(scored),
        "correct": sum(r["correct"] for r in scored),
        "chance": sum(1 / len(r["options"]) for r in scored) / len(scored),
        "per_category": {k: sum(v) / len(v) for k, v in sorted(by_cat.items())},
    }
    if circular:
        out["circular_accuracy"], _ = circular_accuracy(rows)
        out["circular_per_category"] = {
            cat: circular_accuracy([r for r in rows if str(r["category"]) == cat])[0]
            for cat in sorted(by_cat)
        }
    return out
