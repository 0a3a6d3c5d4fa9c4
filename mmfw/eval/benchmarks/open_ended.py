"""Open-ended short answers (LLaVA's "single word or phrase" benchmarks): exact match after
the VQAv2 normalisation, VQA accuracy where a question has several references, and an
optional judge."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mmfw.data.formats.vlmeval_tsv import OpenQuestion, read_open_tsv
from mmfw.data.templates.base import IMAGE_PLACEHOLDER, Turn
from mmfw.eval.benchmarks.base import Benchmark, Request
from mmfw.eval.generation import Generated
from mmfw.eval.protocols.open_ended import (
    OPEN_SUFFIX,
    exact_match,
    is_short_answer,
    vqa_accuracy,
)


def read_open_llava_json(path: str, image_root: str | None, problems) -> list[OpenQuestion]:
    """Questions of a LLaVA JSON/JSONL file: the first human turn asks, the first gpt turn is
    the reference answer (``|``-separated alternatives allowed)."""
    from PIL import Image

    from mmfw.data.formats.llava_json import RecordError, parse_record
    from mmfw.data.record_index import IndexedRecords
    from mmfw.eval.protocols.open_ended import reference_answers

    root = Path(image_root) if image_root else Path(path).parent
    records = IndexedRecords(path)
    out = []
    for i in range(len(records)):
        where = f"{Path(path).name}:record {i}"
        try:
            record = parse_record(records[i])
        except RecordError as e:
            problems.add(e.reason, f"{where}: {e}")
            continue
        question = record.turns[0].text.replace(IMAGE_PLACEHOLDER, "").strip()
        try:
            images = []
            for rel in record.images:
                with Image.open(root / rel) as img:
                    img.load()
                    images.append(img.copy())
        except OSError as e:
            problems.add("bad_image", f"{where}: cannot read the image ({e})")
            continue
        answer = record.turns[1].text if len(record.turns) > 1 else None
        out.append(OpenQuestion(record.id or str(i), question, reference_answers(answer), images))
    return out


def read_open(path: str, image_root: str | None, problems) -> list[OpenQuestion]:
    suffix = Path(path).suffix
    if suffix == ".parquet":
        from mmfw.data.formats.parquet_bench import read_open_parquet

        return read_open_parquet(path, problems)
    if suffix in (".json", ".jsonl"):
        return read_open_llava_json(path, image_root, problems)
    return read_open_tsv(path, image_root, problems)


def open_prompt(question: str, images: list, suffix: str | None) -> tuple[list[Turn], list]:
    text = question if not suffix else f"{question}\n{suffix}"
    if images:
        text = IMAGE_PLACEHOLDER * len(images) + "\n" + text
    return [Turn("human", text)], images


class OpenEndedBenchmark(Benchmark):
    """Open-ended questions from a TSV (``index, image, question, answer``), a LLaVA JSON/JSONL
    file or a parquet file (HF datasets layout).

    Yaml keys (besides those of every benchmark):
      path, image_root: the file and the folder its image paths are relative to.
      prompt_suffix: after the question (LLaVA: "Answer the question using a single word or
        phrase."); null or "" for none.
      judge: optional, a callable (question, prediction, references) -> bool, e.g. an LLM judge
        (``_target_: my.module.Judge``); its verdicts give ``judge_accuracy``. Off by default.
    Metrics: ``accuracy`` (exact match after normalisation, over questions with references),
    ``vqa_accuracy`` (min(#matching references / 3, 1), over questions with several
    references), both per category; ``short_answer_rate`` (share of outputs that are a word or
    phrase of at most three words after normalisation: response-format compliance).
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        image_root: str | None = None,
        prompt_suffix: str | None = OPEN_SUFFIX,
        judge=None,
        **common,
    ) -> None:
        common.setdefault("max_new_tokens", 16)
        super().__init__(**common)
        self.path = path
        self.image_root = image_root
        self.prompt_suffix = prompt_suffix
        self.judge = judge

    def questions(self) -> list[OpenQuestion]:
        if not self.path:
            raise ValueError(
                "benchmark.path is not set: give the benchmark's TSV/JSON/parquet file"
            )
        return self.limit(read_open(self.path, self.image_root, self.problems))

    def requests(self) -> list[Request]:
        out = []
        for q in self.questions():
            turns, images = open_prompt(q.question, q.images, self.prompt_suffix)
            meta = {
                "index": q.index,
                "question": q.question,
                "answers": q.answers,
                "category": q.category,
            }
            out.append(Request(turns, images, meta))
        return out

    def row(self, request: Request, generated: Generated) -> dict:
        return open_row(request.meta, generated, self.judge)

    def score(self, rows: list[dict]) -> dict:
        return score_open(rows)


def open_row(meta: dict, generated: Generated, judge=None, prefix: str = "") -> dict:
    refs = meta["answers"]
    row = {
        "index": meta["index"],
        "prompt": generated.prompt,
        "output": generated.output,
        "prediction": generated.text,
        "answer": refs[0] if len(refs) == 1 else (refs or None),
        "correct": exact_match(generated.text, refs) if refs else None,
        "short": is_short_answer(generated.text),
        "category": meta.get("category"),
    }
    if len(refs) > 1:
        row["vqa_accuracy"] = vqa_accuracy(generated.text, refs)
    if judge is not None and refs:
        row["judge_correct"] = bool(judge(meta["question"], generated.text, refs))
    return {f"{prefix}{k}" if k not in ("index", "category") else k: v for k, v in row.items()}


def score_open(rows: list[dict], prefix: str = "") -> dict:
    scored = [r for r in rows if r[f"{prefix}correct"] is not None]
    out: dict = {"num_questions": len(rows)}
    if rows:
        out["short_answer_rate"] = sum(bool(r.get(f"{prefix}short")) for r in rows) / len(rows)
    if not scored:
        return {**out, "answers": "none"}
    by_cat: dict[str, list[bool]] = defaultdict(list)
    for r in scored:
        by_cat[str(r["category"])].append(bool(r[f"{prefix}correct"]))
    out.update(
        {
            "answers": "all" if len(scored) == len(rows) else "partial",
            "accuracy": sum(r[f"{prefix}correct"] for r in scored) / len(scored),
            "per_category": {k: sum(v) / len(v) for k, v in sorted(by_cat.items())},
        }
    )
    multi = [r[f"{prefix}vqa_accuracy"] for r in scored if f"{prefix}vqa_accuracy" in r]
    if multi:
        out["vqa_accuracy"] = sum(multi) / len(multi)
        out["vqa_questions"] = len(multi)
    judged = [r[f"{prefix}judge_correct"] for r in scored if f"{prefix}judge_correct" in r]
    if judged:
        out["judge_accuracy"] = sum(judged) / len(judged)
    return out
