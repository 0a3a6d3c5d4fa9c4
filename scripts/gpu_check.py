"""The GPU device check: ``scripts/gpu_check.sh OUT_DIR`` (``make gpu-check OUT=DIR``).

Steps, each time-boxed and recorded whatever happens (a failing step never stops the next):

  install    the wheels of ``.whl/`` into a temporary ``--target`` site (the machine's torch is
             never touched); mmfw itself is imported from the repository (PYTHONPATH) and its
             console scripts are small shims that ``tests.conftest`` finds through MMFW_BIN
  env        Python, torch/CUDA, the GPU, bf16, package versions and where they import from
  attention  which attention kernels run (SDPA backends, flex_attention, varlen, flash-attn)
  pytest     ``tests/gpu`` with a junit XML; every test's outcome (and skip reason) is listed
  bench      the GPU SFT throughput benchmark (``tests/benchmarks/gpu_sft_bench.py``)

Writes ``results.json``, ``steps.log``, ``pytest.log``, ``junit.xml``, ``bench.log`` and
``bench.json`` into OUT_DIR. ``--dry-run`` is the same on a CPU in CI size: no install unless
``--wheels`` is given, a tiny pytest subset and the benchmark's tiny config. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMA = 1
# Seconds per step on the GPU; the whole check must end within --budget (8 minutes on an H200).
TIMEOUTS = {"install": 90, "env": 60, "attention": 90, "pytest": 330, "bench": 240}
RESERVE = 15  # seconds kept for each later step when an earlier one runs long
GPU_PYTEST = ["tests/gpu", "-m", "not bench"]
DRY_PYTEST = [
    "tests/gpu",
    "tests/scripts/test_gpu_check.py::test_a_step_past_its_timeout_is_killed",
]
SCRIPTS = {
    "mmfw-train": "mmfw.cli.train",
    "mmfw-eval": "mmfw.cli.eval",
    "mmfw-plan": "mmfw.cli.plan",
    "mmfw-report": "mmfw.cli.report",
    "mmfw-export": "mmfw.cli.export",
    "mmfw-consolidate": "mmfw.cli.consolidate",
    "mmfw-data": "mmfw.cli.data",
}
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}


def run_step(cmd: list[str], timeout: float, log: Path, env: dict | None = None) -> dict:
    """Run ``cmd`` in its own process group, output appended to ``log``; on timeout the whole
    group (pytest's mmfw-train children too) is terminated, then killed."""
    t0 = time.monotonic()
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        try:
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as e:
            return {"status": "failed", "returncode": None, "error": str(e), "seconds": 0.0}
        try:
            rc = proc.wait(timeout=max(timeout, 1))
            status = "passed" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, status = proc.returncode, "timeout"
            f.write(f"\n[gpu_check] killed after {timeout:.0f} s\n")
    return {"status": status, "returncode": rc, "seconds": round(time.monotonic() - t0, 1)}


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def junit_outcomes(path: Path) -> list[dict]:
    """One ``{"id", "outcome", "seconds", "message"}`` per test case of a junit XML."""
    if not path.exists():
        return []
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (node.get("message") or node.text or "")[:500]
                break
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        out.append(
            {
                "id": name,
                "outcome": outcome,
                "seconds": float(case.get("time") or 0),
                "message": message,
            }
        )
    return out


def make_shims(bindir: Path, python: str) -> None:
    """mmfw's console scripts for a Python where mmfw is importable but not pip-installed."""
    bindir.mkdir(parents=True, exist_ok=True)
    for name, module in SCRIPTS.items():
        path = bindir / name
        path.write_text(f"#!{python}\nimport sys\nfrom {module} import main\n\nsys.exit(main())\n")
        path.chmod(0o755)


class Check:
    """The steps, their time boxes and ``results.json`` (rewritten after every step)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.deadline = time.monotonic() + args.budget
        self.timeouts = {**TIMEOUTS, **dict(args.timeout)}
        self.site = Path(tempfile.mkdtemp(prefix="mmfw-gpu-site-"))
        path = [str(REPO), str(self.site), os.environ.get("PYTHONPATH", "")]
        self.env = {
            **os.environ,
            **OFFLINE,
            "PYTHONPATH": os.pathsep.join(p for p in path if p),
            "MMFW_BIN": str(self.site / "bin"),
            "MMFW_CACHE": str(self.site / "cache"),
            "WANDB_DIR": str(self.site / "wandb"),
        }
        self.results: dict = {
            "schema": SCHEMA,
            "dry_run": args.dry_run,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "finished": None,
            "repo_commit": _git_commit(),
            "python": args.python,
            "budget_s": args.budget,
            "steps": {},
            "env": None,
            "attention": None,
            "tests": {"summary": {}, "cases": []},
            "bench": None,
        }
        self.save()

    def save(self) -> None:
        tmp = self.out / "results.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=2) + "\n")
        tmp.replace(self.out / "results.json")

    def timeout(self, name: str, later: int) -> float:
        left = self.deadline - time.monotonic() - RESERVE * later
        return max(1.0, min(self.timeouts[name], left))

    def step(self, name: str, cmd: list[str], log: str, later: int) -> dict:
        if self.args.skip and name in self.args.skip:
            rec = {"status": "skipped", "reason": "--skip"}
        else:
            limit = self.timeout(name, later)
            rec = run_step(cmd, limit, self.out / log, self.env)
            rec["timeout_s"] = round(limit, 1)
            rec["log"] = log
        self.results["steps"][name] = rec
        self.save()
        return rec

    def run(self) -> dict:
        py = self.args.python
        make_shims(self.site / "bin", py)
        wheels = sorted(Path(self.args.wheels).glob("*.whl")) if self.args.wheels else []
        if wheels:
            cmd = [py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
            cmd += ["--no-cache-dir", "--upgrade", "--target", str(self.site), *map(str, wheels)]
            rec = self.step("install", cmd, "steps.log", 4)
            rec["wheels"] = [w.name for w in wheels]
        else:
            reason = f"no wheels in {self.args.wheels}" if self.args.wheels else "no --wheels"
            self.results["steps"]["install"] = {"status": "skipped", "reason": reason}
        self.save()
        for name, extra, later in (("env", [], 3), ("attention", ["--attention"], 2)):
            facts = self.site / f"{name}.json"
            self.step(
                name, [py, "scripts/gpu_env.py", *extra, "--json", str(facts)], "steps.log", later
            )
            if facts.exists():
                self.results[name] = json.loads(facts.read_text())
        self.save()
        self._pytest(py)
        self._bench(py)
        self.results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.save()
        shutil.rmtree(self.site, ignore_errors=True)
        return self.results

    def _pytest(self, py: str) -> None:
        junit = self.out / "junit.xml"
        select = DRY_PYTEST if self.args.dry_run else GPU_PYTEST
        cmd = [py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *select]
        rec = self.step("pytest", [*cmd, f"--junitxml={junit}"], "pytest.log", 1)
        # pytest: 1 = some tests failed (recorded per test below), 5 = none collected
        rec["pytest_exit"] = rec.get("returncode")
        try:
            cases = junit_outcomes(junit)
        except ET.ParseError as e:
            cases, rec["error"] = [], f"junit.xml: {e}"
        summary: dict = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for case in cases:
            summary[case["outcome"]] += 1
        self.results["tests"] = {"summary": summary, "cases": cases}
        self.save()

    def _bench(self, py: str) -> None:
        if not (REPO / "tests" / "benchmarks" / "gpu_sft_bench.py").exists():
            self.results["steps"]["bench"] = {"status": "skipped", "reason": "no benchmark"}
            return
        target = self.out / "bench.json"
        target.unlink(missing_ok=True)
        cmd = [py, "-m", "tests.benchmarks.gpu_sft_bench", "--out", str(target)]
        cmd += ["--root", str(self.site / "bench")]  # removed with the site, even after a kill
        if self.args.dry_run:
            cmd.append("--tiny")
        # The benchmark stops its own runs 10 s before this step's time box ends (short boxes,
        # as in the tests: at the same time, so the box wins).
        limit = self.timeout("bench", 0)
        cmd += ["--budget", str(round(limit - 10 if limit > 60 else limit, 1))]
        self.step("bench", cmd, "bench.log", 0)
        if target.exists():
            self.results["bench"] = json.loads(target.read_text())


def _git_commit() -> str | None:
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or None


def _timeout_arg(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    if name not in TIMEOUTS or not seconds:
        raise argparse.ArgumentTypeError(f"--timeout {text!r}: STEP=SECONDS, STEP in {TIMEOUTS}")
    return name, float(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="results folder (created): results.json and the logs")
    parser.add_argument("--dry-run", action="store_true", help="CPU, CI size (see above)")
    parser.add_argument("--wheels", help="folder of .whl files to install (default: .whl/)")
    parser.add_argument("--python", default=sys.executable, help="the Python to check")
    parser.add_argument("--budget", type=float, default=465.0, help="seconds for all steps")
    parser.add_argument("--timeout", type=_timeout_arg, action="append", default=[],
                        help="STEP=SECONDS, a step's own time box")  # fmt: skip
    parser.add_argument("--skip", action="append", choices=sorted(TIMEOUTS), help="skip a step")
    args = parser.parse_args(argv)
    # Absolute: the console-script shims name it in their first line.
    args.python = shutil.which(args.python) or args.python
    if args.wheels is None and not args.dry_run:
        args.wheels = str(REPO / ".whl")
    results = Check(args).run()
    steps = results["steps"]
    print(json.dumps({"steps": {k: v["status"] for k, v in steps.items()},
                      "tests": results["tests"]["summary"]}))  # fmt: skip
    for case in results["tests"]["cases"]:
        if case["outcome"] in ("failed", "error"):
            print(f"{case['outcome']}: {case['id']}: {case['message'][:200]}")
    for name, r in ((results.get("bench") or {}).get("variants") or {}).items():
        print(f"bench {name}: {r['status']} {json.dumps(r.get('medians_after_warmup', {}))}")
    print(f"gpu_check: results in {Path(args.out).resolve() / 'results.json'}")
    return 0 if all(s["status"] in ("passed", "skipped") for s in steps.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
