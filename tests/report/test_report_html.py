"""report.html in a real headless Chromium (the Debian `chromium` package; `make setup` installs
it where it can): the page loads with no console or script errors, shows the runs table with a
row per run, and every figure decodes (naturalWidth > 0) and is laid out on the page."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from mmfw.report.build import build_report
from tests.report.test_report import cfg, make_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
            "chromium-headless-shell")  # fmt: skip
BROWSER = os.environ.get("MMFW_CHROMIUM") or next(filter(shutil.which, BROWSERS), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None,
    reason=f"no headless Chromium ({', '.join(BROWSERS)} not on PATH); `make setup` installs "
    "Debian's `chromium` when run as root, or set MMFW_CHROMIUM=/path/to/chrome",
)

# What the page shows: the runs table's first column, each image's decode state and layout box.
PROBE = """(() => {
  const h2 = [...document.querySelectorAll('h2')];
  const table = (h2.find(e => e.textContent === 'runs') || {}).nextElementSibling;
  const box = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  return {
    h2: h2.map(e => e.textContent),
    runs: table && table.tagName === 'TABLE'
      ? [...table.rows].slice(1).map(r => r.cells[0].textContent) : null,
    table_shown: !!table && box(table),
    images: [...document.images].map(i => ({alt: i.alt, complete: i.complete,
      width: i.naturalWidth, height: i.naturalHeight, shown: box(i)})),
  };
})()"""


def open_page(url: str, expression: str = PROBE, timeout: float = 30.0) -> tuple[Any, list[str]]:
    """Load ``url`` in headless Chromium over the DevTools protocol (``--remote-debugging-pipe``:
    fd 3 in, fd 4 out, NUL-separated JSON); return ``expression``'s value after the load event
    and every console error, uncaught exception and failed load (Log error) seen on the way."""
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()

    def child() -> None:  # move the pipe ends to fds 3/4 (via fds >= 10: no clash with 3/4)
        a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
        os.dup2(a, 3)
        os.dup2(b, 4)

    profile = Path(tempfile.mkdtemp(prefix="mmfw-chromium-"))
    log = profile / "stderr.log"  # Chromium's own log: shown when it fails to answer
    argv = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]  # fmt: skip
    with log.open("w") as err:
        proc = subprocess.Popen(argv, preexec_fn=child, close_fds=False, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err)  # fmt: skip
    os.close(cmd_r)
    os.close(out_w)
    deadline = time.monotonic() + timeout
    buf, events, ids = b"", [], iter(range(1, 1 << 30))

    def receive(pred) -> dict:
        nonlocal buf
        while True:
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    events.append(msg)
                if pred(msg):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out_r], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer in {timeout}s:\n{_tail(log)}")
            chunk = os.read(out_r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (rc={proc.poll()}):\n{_tail(log)}")
            buf += chunk

    def call(method: str, session: str | None = None, **params) -> dict:
        msg = {"id": next(ids), "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        try:
            os.write(cmd_w, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(f"Chromium exited (rc={proc.wait()}):\n{_tail(log)}") from None
        reply = receive(lambda m: m.get("id") == msg["id"])
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    try:
        targets = call("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        sid = call("Target.attachToTarget", targetId=page, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            call(f"{domain}.enable", sid)
        call("Page.navigate", sid, url=url)
        receive(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == sid)
        value = call("Runtime.evaluate", sid, expression=expression, returnByValue=True)
        call("Browser.close")
        proc.wait(timeout=10)
    finally:
        os.close(cmd_w)
        os.close(out_r)
        if proc.poll() is None:  # only on failure: end the browser this test started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert "exceptionDetails" not in value, value
    return value["result"].get("value"), _errors(events)


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        p = e["params"]
        if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            out.append(
                "console." + p["type"] + ": " + " ".join(str(a.get("value")) for a in p["args"])
            )
        elif e["method"] == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append("exception: " + d.get("exception", {}).get("description", d["text"]))
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.append(f"log: {p['entry']['text']} ({p['entry'].get('url', '')})")
    return out


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""


@pytest.fixture
def report(tmp_path) -> Path:
    """A report with every kind of figure: accuracy bars, accuracy against a key, loss curves,
    per-category accuracy, configured-vs-realized data shares; one run failed."""
    for i, (crops, seed) in enumerate([(9, 0), (9, 1), (25, 0), (25, 1)]):
        acc = 0.5 + 0.1 * i
        run = make_run(tmp_path / "sweep", f"hd{crops}_s{seed}", cfg(seed, crops),
                       {"bench/accuracy": acc, "bench/chance": 0.25, "train/loss": 1 - acc,
                        "data/configured/a": 0.5, "data/configured/b": 0.5,
                        "data/realized/a": 0.6, "data/realized/b": 0.4},
                       losses=[2.0, 1.5, 1 - acc])  # fmt: skip
        (run / "eval" / "bench").mkdir(parents=True)
        (run / "eval" / "bench" / "metrics.json").write_text(
            json.dumps({"accuracy": acc, "per_category": {"small": acc - 0.1, "large": acc}})
        )
    make_run(tmp_path / "sweep", "hd25_s2", cfg(2, 25), None, status="failed",
             error="RuntimeError: <script>alert('not run')</script>")  # fmt: skip
    build_report([tmp_path / "sweep"], tmp_path / "out")
    return tmp_path / "out"


@needs_browser
def test_report_html_loads_clean_with_the_table_and_every_figure(report):
    page, errors = open_page((report / "report.html").resolve().as_uri())
    assert errors == []
    assert sorted(page["runs"]) == ["hd25_s0", "hd25_s1", "hd25_s2", "hd9_s0", "hd9_s1"]
    assert page["table_shown"]
    figures = sorted(f"figures/{p.name}" for p in (report / "figures").glob("*.png"))
    assert len(figures) >= 5  # bars, vs-key, loss, per-category, data shares
    assert sorted(i["alt"] for i in page["images"]) == figures
    bad = [i for i in page["images"] if not (i["complete"] and i["width"] > 0 and i["shown"])]
    assert bad == [], bad
    assert {"groups (runs that differ only in seed: mean ± std, 95% interval)", "per run",
            "runs"} <= set(page["h2"])  # fmt: skip


@needs_browser
def test_the_probe_sees_console_errors_exceptions_and_broken_images(tmp_path):
    """The check above is not vacuous: the same probe reports what a broken page does."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><h2>runs</h2><table><tr><th>run</th></tr></table>"
                   "<img alt='x' src='figures/missing.png'>"
                   "<script>console.error('boom'); undefinedFunction();</script>")  # fmt: skip
    page, errors = open_page(bad.as_uri())
    assert page["runs"] == [] and page["images"][0]["width"] == 0
    kinds = sorted(e.split(":")[0] for e in errors)
    assert kinds == ["console.error", "exception", "log"], errors
