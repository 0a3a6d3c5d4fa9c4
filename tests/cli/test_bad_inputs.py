"""Ordinary mistakes across mmfw-train, mmfw-eval, mmfw-plan and mmfw-report: each exits
non-zero, names the key or file in the first lines of stderr, prints no traceback, and leaves
every existing run directory exactly as it was."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from hydra.utils import instantiate

import mmfw
from mmfw.config import CONF_DIR
from mmfw.data.synthetic.source import ensure_generated
from tests.conftest import SMALL_TASK, run_cli

TINY = ["experiment=tiny_llava", *SMALL_TASK, "logger=csv", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished run, a sweep, the synthetic dataset and some broken input files."""
    root = tmp_path_factory.mktemp("bad")
    run = root / "finished"
    run_cli("mmfw-train", *TINY, "data.batch_size=4", "trainer.max_steps=2",
            "benchmarks.synthetic_magnifier.max_samples=4", f"hydra.run.dir={run}")  # fmt: skip
    sweep = root / "sweep"
    run_cli("mmfw-train", "-m", *TINY, "data.batch_size=4", "trainer.max_steps=1",
            "evaluate.at_end=false", "seed=0,1", f"hydra.sweep.dir={sweep}")  # fmt: skip
    data = ensure_generated(instantiate(mmfw.compose(["experiment=tiny_llava", *SMALL_TASK]).synthetic),
                            str(Path(mmfw.compose([]).paths.cache).expanduser()))  # fmt: skip
    files = {"run": run, "sweep": sweep, "data": data, "root": root}
    (root / "empty_dir").mkdir()
    (root / "broken.json").write_text('[{"id": "a", "conversations": [')
    (root / "not_a_list.json").write_text('{"id": "a"}')
    (root / "empty.json").write_text("[]")
    rows = list(csv.reader((data / "test_mc.tsv").open(), delimiter="\t"))
    with (root / "no_question.tsv").open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerows([[c for i, c in enumerate(r) if i != 1] for r in rows[:5]])
    (root / "truncated.ckpt").write_bytes((run / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    (root / "a_file").write_text("x")
    # A source whose image records all miss their images (wrong image_root) but whose
    # text-only records would train; a user's config folder (hydra.searchpath).
    qa = [{"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "red"}]
    mixed = json.loads((data / "train.json").read_text())[:40]
    mixed += [{"id": f"text-{i}", "conversations": qa} for i in range(8)]
    (root / "mixed.json").write_text(json.dumps(mixed))
    for group, name, choice in (
        ("data", "my_mix", "synthetic_magnifier"),
        ("benchmark", "my_bench", "mc_tsv"),
    ):
        (root / "conf" / group).mkdir(parents=True, exist_ok=True)
        (root / "conf" / group / f"{name}.yaml").write_text(
            (Path(CONF_DIR) / group / f"{choice}.yaml").read_text()
        )
    for name, value in files.items():
        files[name] = value
    return {k: str(v) for k, v in files.items()}


def snapshot(*dirs: str) -> dict[str, str]:
    """Every file under the run directories with the hash of its bytes."""
    out = {}
    for d in dirs:
        for p in sorted(Path(d).rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# (command, arguments with {placeholders}, text the first lines of stderr must contain)
CASES = [
    ("mmfw-train", ["trainer.max_stepz=3"], "did you mean trainer.max_steps"),
    ("mmfw-train", ["connector=mlp3x_gelu"], "did you mean connector=mlp2x_gelu"),
    ("mmfw-train", ["stage=alignn"], "did you mean stage=align"),
    ("mmfw-train", ["dat.batch_size=4"], "did you mean data"),
    ("mmfw-train", ["trainer.max_steps=-5"], "trainer.max_steps=-5"),
    ("mmfw-train", ["trainer.max_steps=abc"], "trainer.max_steps='abc'"),
    ("mmfw-train", ["trainer.max_steps=-1", "trainer.max_epochs=-1"], "never ends"),
    ("mmfw-train", ["data.batch_size=0"], "data.batch_size=0"),
    ("mmfw-train", ["data.batch_size=2.5"], "data.batch_size=2.5"),
    ("mmfw-train", ["data.global_batch_size=10", "data.batch_size=4"], "data.global_batch_size=10"),
    ("mmfw-train", ["data.num_workers=-1"], "data.num_workers=-1"),
    ("mmfw-train", ["data.max_length=0"], "data.max_length=0"),
    ("mmfw-train", ["data.max_skipped_fraction=2"], "data.max_skipped_fraction=2"),
    ("mmfw-train", ["data.loss_reduction=mean"], "data.loss_reduction='mean': use token"),
    ("mmfw-train", ["data.max_tokens_per_batch=0"], "data.max_tokens_per_batch=0"),
    ("mmfw-train", ["fusion=tiny_hyper_attention", "data.packing=true"], "one sample per row"),
    ("mmfw-train", ["stage.lr=-1"], "stage.lr=-1"),
    ("mmfw-train", ["stage.lr=fast"], "stage.lr='fast'"),
    ("mmfw-train", ["+stage.trainable.vision=true"], "stage.trainable key 'vision'"),
    ("mmfw-train", ["stage.init_from=/nope/run"], "stage.init_from='/nope/run'"),
    ("mmfw-train", ["optim.warmup_ratio=1.5"], "optim.warmup_ratio=1.5"),
    ("mmfw-train", ["optim.weight_decay=-0.1"], "optim.weight_decay=-0.1"),
    ("mmfw-train", ["resolution.size=-3"], "resolution.size=-3"),
    (
        "mmfw-train",
        ["resolution=tiny_anyres", "resolution.pinpoints=[[0,64]]"],
        "resolution.pinpoints",
    ),
    ("mmfw-train", ["trainer=gpu"], "trainer.accelerator='gpu'"),
    ("mmfw-train", ["trainer.devices=0"], "trainer.devices=0"),
    ("mmfw-train", ["trainer.num_nodes=0"], "trainer.num_nodes=0"),
    ("mmfw-train", ["trainer.precision=fp8"], "trainer.precision='fp8'"),
    ("mmfw-train", ["checkpoint.every_n_train_steps=0"], "checkpoint.every_n_train_steps=0"),
    (
        "mmfw-train",
        ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.gpu=tpu9"],
        "trainer.gpu='tpu9'",
    ),
    ("mmfw-train", ["resume=/nope.ckpt"], "resume='/nope.ckpt'"),
    ("mmfw-train", ["resume={root}/truncated.ckpt"], "the checkpoint is incomplete or corrupt"),
    ("mmfw-train", ["name=a/b"], "name='a/b'"),
    (
        "mmfw-train",
        ["logger=wandb", "logger.wandb.mode=sometimes"],
        "logger.wandb.mode='sometimes'",
    ),
    ("mmfw-train", ["llm.pretrained=/models/nope"], "llm.pretrained='/models/nope'"),
    ("mmfw-train", ["encoder.pretrained=./nope"], "encoder.pretrained='./nope'"),
    ("mmfw-train", ["data=llava_json"], "data.sources.main.path is not set"),
    (
        "mmfw-train",
        ["data=llava_json", "data.sources.main.path=/nope.json"],
        "data.sources.main.path='/nope.json'",
    ),
    (
        "mmfw-train",
        [
            "data=llava_json",
            "data.sources.main.path={data}/train.json",
            "data.sources.main.image_root=/nope/images",
        ],
        "data.sources.main.image_root='/nope/images'",
    ),  # fmt: skip
    (
        "mmfw-train",
        ["data=llava_json", "data.sources.main.path={root}/broken.json"],
        "broken.json: invalid JSON",
    ),
    (
        "mmfw-train",
        ["data=llava_json", "data.sources.main.path={root}/not_a_list.json"],
        "not_a_list.json: expected a JSON list",
    ),
    (
        "mmfw-train",
        ["data=llava_json", "data.sources.main.path={root}/empty.json"],
        "holds no records",
    ),
    (
        "mmfw-train",
        [
            "data=llava_json",
            "data.sources.main.path={data}/train.json",
            "data.sources.main.image_root={root}/empty_dir",
        ],
        "missing_image",
    ),  # fmt: skip
    (
        "mmfw-train",
        [
            "data=llava_json",
            "data.sources.main.path={root}/mixed.json",
            "data.sources.main.image_root={root}/empty_dir",
        ],
        "data.sources.main.image_root='{root}/empty_dir': check image_root",
    ),  # fmt: skip
    (
        "mmfw-train",
        ["synthetic.num_train=64", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=3"],
        "fewer than one global batch of 96",
    ),
    (
        "mmfw-train",
        ["hydra.searchpath=[file://{root}/conf]", "data=my_mix", "trainer.max_steps=-5"],
        "trainer.max_steps=-5",
    ),  # the user's data=my_mix composes: the error is the next one
    (
        "mmfw-train",
        ["hydra.searchpath=[file://{root}/conf]", "data=my_mixx"],
        "did you mean data=my_mix?",
    ),
    ("mmfw-train", ["hydra.searchpath=[file://{root}/conf]", "data=my_mixx"], "conf: my_mix"),
    ("mmfw-train", ["--experiment", "tiny_llava"], "no dashes: experiment=tiny_llava"),
    ("mmfw-train", ["-m", "--cfg", "job"], "-m/--multirun cannot be combined with --cfg"),
    (
        "mmfw-train",
        ["resolution.image_size=[[1920,1080]"],
        "override 'resolution.image_size=[[1920,1080]': the brackets are unbalanced",
    ),
    (
        "mmfw-train",
        ["+benchmark@benchmarks.mmb=mc_tsv", "benchmarks.mmb.path=/nope.tsv"],
        "benchmarks.mmb.path='/nope.tsv'",
    ),
    ("mmfw-train", ["hydra.run.dir={run}"], "already holds a finished run"),
    (
        "mmfw-train",
        ["connector=linear", "hydra.run.dir={run}", "resume=auto"],
        "cannot resume: this run holds connector=mlp2x_gelu; you asked for connector=linear",
    ),
    ("mmfw-train", ["trainer.nan_policy=ignore"], "trainer.nan_policy='ignore'"),
    ("mmfw-train", ["trainer.zero_target_batches=0"], "trainer.zero_target_batches=0"),
    ("mmfw-train", ["-m", "seed=0,1", "hydra.sweep.dir={sweep}"], "already holds 2 run(s)"),
    ("mmfw-train", ["-m", "trainer.max_steps=1,-7"], "trainer.max_steps=-7"),
    ("mmfw-eval", ["run=/nope/run"], "run='/nope/run'"),
    ("mmfw-eval", ["run={root}/empty_dir"], "not an mmfw run directory"),
    ("mmfw-eval", ["run={run}", "ckpt=/nope.ckpt"], "ckpt='/nope.ckpt'"),
    ("mmfw-eval", ["run={run}", "ckpt={root}/truncated.ckpt"], "incomplete or corrupt"),
    ("mmfw-eval", ["run={run}", "benchmark=mc_tsv"], "benchmark.path is not set"),
    (
        "mmfw-eval",
        ["run={run}", "benchmark=mc_tsv", "benchmark.path=/nope.tsv"],
        "benchmark.path='/nope.tsv'",
    ),
    (
        "mmfw-eval",
        ["run={run}", "benchmark=mc_tsv", "benchmark.path={root}/no_question.tsv"],
        "['question'] are missing",
    ),
    ("mmfw-eval", ["run={run}", "benchmark=mcq"], "did you mean benchmark=mc_tsv"),
    ("mmfw-eval", ["run={run}", "device=cuda"], "device='cuda'"),
    ("mmfw-eval", ["run={run}", "benchmark.max_samples=0"], "benchmark.max_samples=0"),
    ("mmfw-eval", ["run={run}", "name=a/b"], "name='a/b'"),
    ("mmfw-eval", ["rn={run}"], "did you mean run"),
    (
        "mmfw-eval",
        ["run={run}", "hydra.searchpath=[file://{root}/conf]", "benchmark=my_bnch"],
        "did you mean benchmark=my_bench?",
    ),
    ("mmfw-eval", ["--run={run}"], "no dashes: run="),
    ("mmfw-plan", ["plan.image_sizes=[[-25,12]]"], "plan.image_sizes entry [-25, 12]"),
    ("mmfw-plan", ["plan.image_sizes=[[0,5]]"], "plan.image_sizes entry [0, 5]"),
    ("mmfw-plan", ["plan.image_sizes=[abc]"], "plan.image_sizes entry 'abc'"),
    ("mmfw-plan", ["plan.data_samples=-1"], "plan.data_samples=-1"),
    ("mmfw-plan", ["plan.format=yaml"], "plan.format='yaml'"),
    ("mmfw-plan", ["plan.imagesizes=[[64,64]]"], "did you mean plan.image_sizes"),
    ("mmfw-plan", ["plan.gpu_memory_gb=-4"], "plan.gpu_memory_gb=-4"),
    (
        "mmfw-plan",
        ["hydra.searchpath=[file://{root}/conf]", "data=my_mixx"],
        "did you mean data=my_mix?",
    ),
    ("mmfw-plan", ["--resolution", "hd9"], "no dashes: resolution=hd9"),
    ("mmfw-plan", ["plan.image_sizes=[[1920,1080]"], "the brackets are unbalanced"),
    ("mmfw-report", ["/nope/runs"], "/nope/runs"),
    ("mmfw-report", ["{root}/empty_dir"], "no mmfw runs"),
    ("mmfw-report", ["{run}", "--out", "{root}/a_file/report"], "a_file"),
]


# Found once the data is read, in the run dir Hydra made (it records the failure): the rest
# are refused before any run dir exists.
FOUND_IN_THE_DATA = ("invalid JSON", "expected a JSON list", "missing_image", "check image_root")


# Cases that build a model before they fail, covered faster in-process elsewhere (the
# all-images-missing probe: tests/data/test_probe.py): make test-full runs them here too.
SLOW = ("mixed.json",)


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        pytest.param(*case, marks=pytest.mark.slow)
        if any(s in " ".join(case[1]) for s in SLOW)
        else case
        for case in CASES
    ],
    ids=[f"{c}:{' '.join(a)[:60]}" for c, a, _ in CASES],
)
def test_bad_input_is_named_without_traceback_and_changes_nothing(
    world, command, args, expected, tmp_path
):
    args = [a.format(**world) for a in args]
    expected = expected.format(**world)
    base = (
        TINY
        if command == "mmfw-train"
        else (["experiment=tiny_llava"] if command == "mmfw-plan" else [])
    )
    if command == "mmfw-train" and not any(a.startswith(("hydra.run.dir", "-m")) for a in args):
        base = [*base, f"hydra.run.dir={tmp_path / 'new'}"]
    before = snapshot(world["run"], world["sweep"])
    out = run_cli(command, *base, *args, check=False)
    assert out.returncode != 0, out.stdout[-2000:]
    head = "\n".join(out.stderr.strip().splitlines()[:6])
    assert expected in head, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert snapshot(world["run"], world["sweep"]) == before
    if command == "mmfw-train" and not any(late in expected for late in FOUND_IN_THE_DATA):
        assert not (tmp_path / "new").exists()  # refused before Hydra made the run dir


def test_resume_auto_on_a_fresh_directory_says_so_and_trains(tmp_path):
    out = run_cli("mmfw-train", *TINY, "data.batch_size=4", "trainer.max_steps=1", "evaluate.at_end=false",
                  "resume=auto", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert "has no checkpoint yet; starting from step 0" in out.stdout
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "finished"


def test_report_on_one_run_succeeds(world, tmp_path):
    out = run_cli("mmfw-report", world["run"], "--out", str(tmp_path))
    assert "report:" in out.stdout and (tmp_path / "report.json").exists()
    run = json.loads((tmp_path / "report.json").read_text())["runs"][0]
    assert run["status"] == "finished"
