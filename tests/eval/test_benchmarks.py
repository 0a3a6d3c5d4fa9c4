"""Benchmarks on a trained tiny model: batch-size invariance, CircularEval on an MMBench-layout
TSV through mmfw-eval, open-ended VQA, distractors, MagnifierBench parquet, bad rows counted,
in-training evaluation at the expected steps, and 2-process evaluation == 1 process."""

from __future__ import annotations

import base64
import csv
import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

import mmfw
from mmfw.data.synthetic.source import ensure_generated
from mmfw.eval.benchmarks.distractor import DistractorBenchmark
from mmfw.eval.benchmarks.multiple_choice import MultipleChoiceBenchmark
from mmfw.runs import load_run
from tests.conftest import REPO, SMALL_TASK, run_cli

TINY = ["experiment=tiny_llava", *SMALL_TASK, "logger=csv", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LLaVA trained 60 steps and its task's files."""
    root = tmp_path_factory.mktemp("bench")
    run = root / "run"
    run_cli("mmfw-train", *TINY, "synthetic.num_train=256", "trainer.max_steps=60",
            "evaluate.at_end=false", f"hydra.run.dir={run}")  # fmt: skip
    data = ensure_generated(
        instantiate(mmfw.compose(TINY).synthetic),
        str(Path(mmfw.compose([]).paths.cache).expanduser()),
    )
    return run, data, root


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def mmbench_tsv(data: Path, out: Path, rows: int = 24) -> Path:
    """The real MMBench layout: index, question, hint (often nan), A-D with nan for missing
    options (2-4 per question), answer, category, l2-category, base64 image."""
    src = list(csv.DictReader((data / "test_mc.tsv").open(), delimiter="\t"))[:rows]
    cols = [
        "index",
        "question",
        "hint",
        "A",
        "B",
        "C",
        "D",
        "answer",
        "category",
        "l2-category",
        "image",
    ]
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, delimiter="\t")
        w.writeheader()
        for i, r in enumerate(src):
            k = 2 + i % 3  # 2, 3 or 4 options, always keeping the answer
            letters = "ABCD"
            keep = [r["answer"]] + [x for x in letters if x != r["answer"]][: k - 1]
            keep = sorted(keep)
            opts = {letters[j]: r[x] for j, x in enumerate(keep)}
            row = {"index": 1000 + i, "question": r["question"], "hint": "nan" if i % 2 else "Look closely.",
                   "answer": letters[keep.index(r["answer"])], "category": f"cat{i % 2}",
                   "l2-category": "perception", "image": _b64(data / r["image_path"])}  # fmt: skip
            row.update({x: opts.get(x, "nan") for x in letters})
            w.writerow(row)
    return out


def test_predictions_do_not_depend_on_the_batch_size(trained):
    run_dir, data, _ = trained
    run = load_run(run_dir)
    preds = {}
    for bs in (1, 8):
        bench = MultipleChoiceBenchmark(
            path=str(data / "test_mc.tsv"), circular=True, batch_size=bs
        )
        rows, metrics = bench.run(run.model, run.processor)
        preds[bs] = [(r["index"], r["pass"], r["output"]) for r in rows]
    assert preds[1] == preds[8]
    assert len(preds[1]) == 24 * 4


def test_circular_eval_on_an_mmbench_layout_tsv(trained):
    run_dir, data, root = trained
    tsv = mmbench_tsv(data, root / "MMBench_DEV_EN_like.tsv")
    run_cli("mmfw-eval", f"run={run_dir}", "benchmark=mc_tsv", f"benchmark.path={tsv}",
            "benchmark.circular=true")  # fmt: skip
    out = run_dir / "eval" / "MMBench_DEV_EN_like"
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert metrics["num_questions"] == 24 and "circular_accuracy" in metrics
    assert metrics["circular_accuracy"] <= metrics["accuracy"]
    assert set(metrics["per_category"]) == {"cat0", "cat1"}
    per_q = {}
    for r in rows:
        per_q.setdefault(r["index"], []).append(r)
        assert {"index", "prompt", "output", "prediction", "answer", "correct", "pass"} <= set(r)
        assert r["prompt"].count("<image>") == 1
    for passes in per_q.values():
        assert len(passes) == len(passes[0]["options"])  # 2-, 3-, 4-option: 2, 3, 4 passes
        texts = {p["options"][p["answer"]] for p in passes}
        assert len(texts) == 1  # the answer letter follows its text around
    assert sorted({len(p) for p in per_q.values()}) == [2, 3, 4]
    assert "Look closely." in rows[0]["prompt"]  # hints go into the prompt, nan hints do not
    assert "nan" not in rows[1]["prompt"]
    right = {q: all(p["correct"] for p in ps) for q, ps in per_q.items()}
    assert metrics["circular_accuracy"] == pytest.approx(sum(right.values()) / len(right))


def test_open_ended_vqa_tsv_with_references_and_bad_rows(trained, tmp_path):
    run_dir, data, _ = trained
    src = list(csv.DictReader((data / "test_mc.tsv").open(), delimiter="\t"))[:10]
    tsv = tmp_path / "vqa.tsv"
    with tsv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["index", "image", "question", "answer"], delimiter="\t")
        w.writeheader()
        for i, r in enumerate(src):
            colour = r[r["answer"]]
            answer = colour if i % 2 else f"{colour}|{colour}|{colour}|the {colour}|blue"
            w.writerow(
                {
                    "index": i,
                    "image": _b64(data / r["image_path"]),
                    "question": r["question"],
                    "answer": answer,
                }
            )
        w.writerow({"index": 98, "image": "bm90IGFuIGltYWdl", "question": "broken?", "answer": "x"})
        w.writerow(
            {"index": 99, "image": _b64(data / src[0]["image_path"]), "question": "", "answer": "x"}
        )
    run_cli("mmfw-eval", f"run={run_dir}", "benchmark=vqa_tsv", f"benchmark.path={tsv}")
    metrics = json.loads((run_dir / "eval" / "vqa" / "metrics.json").read_text())
    rows = [
        json.loads(x)
        for x in (run_dir / "eval" / "vqa" / "predictions.jsonl").read_text().splitlines()
    ]
    assert metrics["num_questions"] == 10 and 0 <= metrics["accuracy"] <= 1
    assert metrics["vqa_questions"] == 5 and "vqa_accuracy" in metrics
    assert metrics["skipped_rows"] == {"bad_image": 1, "no_question": 1}
    assert "\nAnswer the question using a single word or phrase." in rows[0]["prompt"]
    assert all("output" in r and "prediction" in r for r in rows)


def test_distractor_benchmark_per_image_count(trained, tmp_path):
    run_dir, data, _ = trained
    run = load_run(run_dir)
    bench = DistractorBenchmark(
        path=str(data / "test_mc.tsv"), num_images=[1, 3], max_samples=6, batch_size=8
    )
    rows, metrics = bench.run(run.model, run.processor)
    assert {r["num_images"] for r in rows} == {1, 3}
    assert len(rows) == 2 * 6 * 4  # two counts x six questions x four rotations
    for r in rows:
        assert r["prompt"].count("<image>") == r["num_images"]
        assert f"In Image {r['target']}, " in r["prompt"]
    for key in ("n1/accuracy", "n1/circular_accuracy", "n3/circular_accuracy", "circular_accuracy"):
        assert key in metrics


def test_magnifierbench_parquet_mc_and_open(trained, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    run_dir, data, _ = trained
    src = list(csv.DictReader((data / "test_mc.tsv").open(), delimiter="\t"))[:8]
    table = {"id": [], "instruction": [], "images": [], "answer": []}
    for i, r in enumerate(src):
        opts = ", ".join(f"{x}. {r[x]}" for x in "ABCD")
        table["id"].append(f"mag-{i}")
        table["instruction"].append(f"{r['question']} {opts}")
        table["images"].append([{"bytes": (data / r["image_path"]).read_bytes(), "path": None}])
        table["answer"].append(r["answer"])
    pq.write_table(pa.table(table), tmp_path / "test.parquet")
    run_cli(
        "mmfw-eval",
        f"run={run_dir}",
        "benchmark=magnifierbench",
        f"benchmark.path={tmp_path / 'test.parquet'}",
    )
    out = run_dir / "eval" / "test"
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert metrics["num_questions"] == 8 and "open_accuracy" in metrics
    assert sorted({r["form"] for r in rows}) == ["mc", "open"] and len(rows) == 16
    opens = [r for r in rows if r["form"] == "open"]
    assert all("A." not in r["prompt"] for r in opens)
    assert {r["answer"] for r in opens} <= {"red", "green", "blue", "yellow"}


@pytest.mark.slow  # a 3-eval training run (~20 s); make test-full runs it (default suite < 12 min)
def test_in_training_evaluation_logs_at_the_expected_steps(tmp_path):
    from tests.helpers import read_wandb_records

    # The default logger: wandb (offline) plus the CSV copy.
    run_cli("mmfw-train", *[a for a in TINY if a != "logger=csv"], "trainer.max_steps=5",
            "evaluate.every_n_steps=2", "evaluate.max_samples=8", "evaluate.table_rows=3",
            "evaluate.at_end=false", "data.batch_size=8", "trainer.log_every_n_steps=1",
            f"hydra.run.dir={tmp_path}")  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    key = "eval/synthetic_magnifier/accuracy"
    steps = sorted(int(r["step"]) for r in rows if r.get(key))
    assert steps == [2, 4, 5]  # every 2 steps and after the last
    assert all(0 <= float(r[key]) <= 1 for r in rows if r.get(key))
    run = next((tmp_path / "wandb").glob("offline-run-*"))
    tables = []  # (type, rows) of each logged table
    for rec in read_wandb_records(next(run.glob("run-*.wandb"))):
        if rec.WhichOneof("record_type") == "history":
            fields = {
                tuple(i.nested_key)[1]: json.loads(i.value_json)
                for i in rec.history.item
                if tuple(i.nested_key)[:1] == ("eval/synthetic_magnifier/predictions",)
            }
            if fields:
                tables.append((fields["_type"], fields["nrows"]))
    assert tables == [("table-file", 3)] * 3
    media = list(run.glob("files/media/images/**/*.png"))
    assert len(media) >= 3  # the questions' images went into the table


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two gloo processes (~20 s); make test-full runs it (default suite < 12 min)
def test_two_process_evaluation_equals_one_process(trained, tmp_path):
    run_dir, data, _ = trained
    node = {"_target_": "mmfw.eval.benchmarks.multiple_choice.MultipleChoiceBenchmark",
            "path": str(data / "test_mc.tsv"), "circular": True, "batch_size": 8}  # fmt: skip
    OmegaConf.save(OmegaConf.create(node), tmp_path / "bench.yaml")
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_port()}",
         str(REPO / "tests" / "eval" / "ddp_eval.py"), str(run_dir), str(tmp_path / "bench.yaml"),
         str(tmp_path / "two.json")],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    two = json.loads((tmp_path / "two.json").read_text())
    run = load_run(run_dir)
    rows, metrics = instantiate(OmegaConf.load(tmp_path / "bench.yaml")).run(
        run.model, run.processor
    )
    assert two["metrics"] == json.loads(json.dumps(metrics))
    assert [r["output"] for r in two["rows"]] == [r["output"] for r in rows]


def test_bad_mc_rows_are_counted_not_dropped(trained, tmp_path):
    run_dir, data, _ = trained
    tsv = mmbench_tsv(data, tmp_path / "mm.tsv", rows=4)
    lines = tsv.read_text().splitlines()
    head = lines[0].split("\t")
    bad = lines[1].split("\t")
    bad[head.index("answer")] = "E"
    worse = lines[2].split("\t")
    worse[head.index("B")] = "nan"
    worse[head.index("C")] = "nan"
    worse[head.index("D")] = "nan"
    tsv.write_text("\n".join([lines[0], "\t".join(bad), "\t".join(worse), *lines[3:]]) + "\n")
    run = load_run(run_dir)
    rows, metrics = MultipleChoiceBenchmark(path=str(tsv)).run(run.model, run.processor)
    assert metrics["num_questions"] == 2
    assert metrics["skipped_rows"] == {"bad_answer": 1, "too_few_options": 1}
    assert "mm.tsv:2" in metrics["skipped_examples"]["bad_answer"]


def test_images_are_read_from_base64_png_and_jpeg():
    from mmfw.data.formats.vlmeval_tsv import _images

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="JPEG")
    img = _images({"image": base64.b64encode(buf.getvalue()).decode()}, Path("."))[0]
    assert img.size == (8, 8)


def test_synthetic_open_and_distractor_benchmarks_read_the_generated_task(trained):
    run_dir, data, _ = trained
    run = load_run(run_dir)
    cfg = mmfw.compose([*TINY, "+benchmark@benchmarks.o=synthetic_open",
                        "+benchmark@benchmarks.d=synthetic_distractor"])  # fmt: skip
    opened = instantiate(cfg.benchmarks.o, max_samples=5)
    rows, metrics = opened.run(run.model, run.processor)
    assert opened.path == str(data / "test_open.json") and len(rows) == 5
    assert all(r["prompt"].rstrip().endswith("single word or phrase.") or
               "single word or phrase." in r["prompt"] for r in rows)  # fmt: skip
    assert all("A." not in r["prompt"] for r in rows)  # asked without options
    assert metrics["short_answer_rate"] == sum(r["short"] for r in rows) / 5
    distract = instantiate(cfg.benchmarks.d, max_samples=3, num_images=[2])
    rows, metrics = distract.run(run.model, run.processor)
    assert distract.path == str(data / "test_mc.tsv") and "n2/circular_accuracy" in metrics


def test_short_answers_are_a_word_or_phrase():
    from mmfw.eval.protocols.open_ended import is_short_answer

    assert is_short_answer("Red.") and is_short_answer("top left")
    assert not is_short_answer("The small object in the picture is red.")
    assert not is_short_answer("") and not is_short_answer("...")


def test_a_run_is_evaluated_at_another_resolution_setting(trained, tmp_path):
    run_dir, _, _ = trained
    run = load_run(run_dir, resolution={"size": 32})
    assert run.config.resolution.size == 32
    assert run.processor.strategy.size == 32
    image = Image.new("RGB", (64, 64))
    assert run.processor.strategy(image)[0].shape[-1] == 32  # the views are 32 px now
    with pytest.raises(ValueError, match="no key nope"):
        load_run(run_dir, resolution={"nope": 1})
