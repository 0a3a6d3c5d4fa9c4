"""lmms-eval runs an mmfw run on a local task (``make test-lmms``).

lmms-eval 0.7.3 pins other versions of wandb, av and protobuf than mmfw and imports
``filelock._api``, which filelock 4 no longer has, so it lives outside mmfw's environment:
``make test-lmms`` installs it into ``.lmms-site`` (plus filelock<4 in ``.lmms-site/_filelock3``)
and points ``MMFW_LMMS_SITE`` there. Without it this test is skipped, with that reason.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate

import mmfw
from mmfw.data.synthetic.source import ensure_generated
from tests.conftest import REPO, SMALL_TASK, run_cli

SITE = os.environ.get("MMFW_LMMS_SITE")
pytestmark = pytest.mark.skipif(
    not SITE, reason="lmms-eval lives outside mmfw's environment: run `make test-lmms`"
)

SCRIPT = """
import json, sys
sys.path.insert(0, {fl3!r}); sys.path.append({site!r})
from lmms_eval.evaluator import simple_evaluate
from lmms_eval.tasks import TaskManager
res = simple_evaluate(model="mmfw", model_args="run={run}", tasks=["mmfw_local_mc"],
                      task_manager=TaskManager(include_path={tasks!r}), batch_size=8, device="cpu")
print("RESULT", json.dumps({{"accuracy": float(res["results"]["mmfw_local_mc"]["accuracy,none"])}}))
"""


def test_lmms_eval_runs_an_mmfw_run_on_a_local_task(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tiny = ["experiment=tiny_llava", *SMALL_TASK, "logger=csv", "trainer.enable_progress_bar=false"]
    run = tmp_path / "run"
    run_cli(
        "mmfw-train", *tiny, "trainer.max_steps=60", "evaluate.at_end=false", f"hydra.run.dir={run}"
    )
    data = ensure_generated(
        instantiate(mmfw.compose(tiny).synthetic),
        str(Path(mmfw.compose([]).paths.cache).expanduser()),
    )
    rows = list(csv.DictReader((data / "test_mc.tsv").open(), delimiter="\t"))[:16]
    table = {"question": [r["question"] for r in rows],
             "options": [[r[x] for x in "ABCD"] for r in rows],
             "answer": [r["answer"] for r in rows],
             "image": [{"bytes": (data / r["image_path"]).read_bytes(), "path": None} for r in rows]}  # fmt: skip
    pq.write_table(pa.table(table), tmp_path / "test.parquet")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "utils.py").write_text(
        (REPO / "tests" / "eval" / "lmms_task" / "utils.py").read_text()
    )
    (tasks / "mmfw_local_mc.yaml").write_text(
        "task: mmfw_local_mc\ndataset_path: parquet\ndataset_kwargs:\n  data_files:\n"
        f"    test: {tmp_path / 'test.parquet'}\ntest_split: test\noutput_type: generate_until\n"
        "doc_to_visual: !function utils.doc_to_visual\ndoc_to_text: !function utils.doc_to_text\n"
        "doc_to_target: answer\ngeneration_kwargs:\n  max_new_tokens: 4\n"
        "process_results: !function utils.process_results\nmetric_list:\n"
        "  - metric: accuracy\n    aggregation: mean\n    higher_is_better: true\n"
    )
    code = SCRIPT.format(fl3=str(Path(SITE) / "_filelock3"), site=SITE, run=run, tasks=str(tasks))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lmms_acc = json.loads(out.stdout.split("RESULT", 1)[1])["accuracy"]
    # The same questions through mmfw's own evaluation give the same accuracy.
    tsv = tmp_path / "same.tsv"
    with tsv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    run_cli(
        "mmfw-eval",
        f"run={run}",
        "benchmark=mc_tsv",
        f"benchmark.path={tsv}",
        f"benchmark.image_root={data}",
    )
    ours = json.loads((run / "eval" / "same" / "metrics.json").read_text())["accuracy"]
    assert lmms_acc == pytest.approx(ours)
