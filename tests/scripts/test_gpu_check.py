"""The GPU device check (``scripts/gpu_check.sh``) in its CPU dry run: every step is recorded
in ``results.json``, a failing step (a broken wheel, a step past its time box) is recorded as
such and the next steps still run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

from tests.conftest import REPO


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_step_past_its_timeout_is_killed(tmp_path):
    check = _gpu_check()
    log = tmp_path / "step.log"
    # The child's own child must die too: the check kills the whole process group.
    sleeper = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])"
    t0 = time.monotonic()
    rec = check.run_step([sys.executable, "-c", sleeper], 2, log)
    assert rec["status"] == "timeout" and time.monotonic() - t0 < 20
    assert "killed after 2 s" in log.read_text()
    failed = check.run_step([sys.executable, "-c", "raise SystemExit(3)"], 20, log)
    assert (failed["status"], failed["returncode"]) == ("failed", 3)


def test_dry_run_records_every_step(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "broken-0.0-py3-none-any.whl").write_text("not a zip")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    # The benchmark's tiny form runs in `make gpu-check DRY_RUN=1`; here it only has to be
    # stopped at its time box (keeps this test inside the default suite's budget).
    cmd = ["bash", "scripts/gpu_check.sh", "--dry-run", str(out), "--wheels", str(wheels)]
    proc = subprocess.run(
        [*cmd, "--timeout", "bench=3"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the broken wheel and the bench
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == 1 and results["dry_run"] is True and results["finished"]
    steps = results["steps"]
    assert list(steps) == ["install", "env", "attention", "pytest", "bench"]
    assert steps["install"]["status"] == "failed"
    assert steps["install"]["wheels"] == ["broken-0.0-py3-none-any.whl"]
    assert steps["env"]["status"] == "passed", (out / "steps.log").read_text()[-3000:]
    assert steps["attention"]["status"] == "passed"
    assert steps["pytest"]["status"] == "passed", (out / "pytest.log").read_text()[-3000:]
    assert steps["bench"]["status"] == "timeout" and steps["bench"]["timeout_s"] == 3
    env_facts = results["env"]
    assert env_facts["torch"]["cuda_available"] is False
    assert env_facts["packages"]["mmfw"]["path"] == str(REPO / "mmfw")
    assert results["attention"]["sdpa_math"]["ok"] is True
    assert results["attention"]["sdpa_flash_attention"] == {
        "ok": False,
        "error": "not run: no CUDA",
    }
    cases = {c["id"].rsplit("::", 1)[-1]: c for c in results["tests"]["cases"]}
    assert cases["test_a_step_past_its_timeout_is_killed"]["outcome"] == "passed"
    skipped = [c for c in cases.values() if c["outcome"] == "skipped"]
    assert skipped and all(c["message"] for c in skipped)  # each skip says why
    assert any("CUDA" in c["message"] for c in skipped)
    summary = results["tests"]["summary"]
    assert summary["passed"] == 1 and summary["skipped"] == len(skipped) and not summary["failed"]
    for name in ("results.json", "steps.log", "pytest.log", "junit.xml", "bench.log"):
        assert (out / name).exists(), name
