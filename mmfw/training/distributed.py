"""Process layout of a run: ranks from the environment, and the local launcher of ``mmfw-train``.

Lightning's own subprocess launcher re-runs ``sys.argv``, which under ``mmfw-train -m`` would
start a whole sweep in every child. mmfw launches the local ranks of one job itself, with that
job's own overrides, then hands Lightning an environment where ``LOCAL_RANK`` is set (so
Lightning treats the processes as created externally, as under torchrun or SLURM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LAUNCHED_BY_MMFW = "MMFW_LOCAL_LAUNCH"


def global_rank() -> int:
    """This process's global rank as the launcher (torchrun, SLURM, mmfw) set it; 0 alone."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    local = int(os.environ.get("LOCAL_RANK", 0) or 0)
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)) or 0)
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", 1) or 1)
    return node * per_node + local


def is_rank_zero() -> bool:
    return global_rank() == 0


def launched_externally() -> bool:
    """True when another tool created this job's processes (torchrun, SLURM srun, mmfw itself)."""
    if "LOCAL_RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        return True
    ntasks = os.environ.get("SLURM_NTASKS")
    return ntasks is not None and ntasks.isdigit() and int(ntasks) > 1


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_local_ranks(
    processes: int, num_nodes: int, run_dir: Path, overrides: list[str]
) -> list[subprocess.Popen]:
    """Start local ranks 1..processes-1 of this node as ``mmfw-train`` children running the
    same job in ``run_dir``; this process becomes local rank 0. Returns the children."""
    env_common = {
        "MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "MASTER_PORT": os.environ.get("MASTER_PORT", str(free_port())),
        "NODE_RANK": os.environ.get("NODE_RANK", "0"),
        "WORLD_SIZE": str(processes * num_nodes),
        "LOCAL_WORLD_SIZE": str(processes),
        LAUNCHED_BY_MMFW: "1",
    }
    os.environ.update(env_common)
    os.environ["LOCAL_RANK"] = "0"
    children = []
    for local_rank in range(1, processes):
        env = {**os.environ, "LOCAL_RANK": str(local_rank)}
        command = [
            sys.executable,
            "-m",
            "mmfw.cli.train",
            *composition_args(),
            *overrides,
            f"hydra.run.dir={run_dir}",
            "hydra.output_subdir=null",
            f"hydra.job.name=rank{local_rank}",
            "hydra/hydra_logging=disabled",
        ]
        children.append(subprocess.Popen(command, env=env))
    _watch(children)
    _forward_sigterm(children)
    return children


def composition_args() -> list[str]:
    """Where this Hydra job's config comes from besides mmfw's ``conf/`` (``--config-dir``,
    ``--config-name``, ``hydra.searchpath``), so the local ranks compose the same config."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    hc = HydraConfig.get()
    args, searched = [], []
    for source in hc.runtime.config_sources:
        if source.provider == "command-line":
            args += ["--config-dir", source.path]
        elif str(source.provider).startswith("hydra.searchpath"):
            searched.append(f"'{source.schema}://{source.path}'")
    if hc.job.config_name not in (None, "train"):
        args += ["--config-name", hc.job.config_name]
    if searched:
        args.append(f"hydra.searchpath=[{','.join(searched)}]")
    return args


def _forward_sigterm(children: list[subprocess.Popen]) -> None:
    """SIGTERM to rank 0 reaches every local rank, as torchrun and SLURM deliver it, so all
    ranks stop at the same step and save together."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        if signal.getsignal(signal.SIGTERM) is not handler:
            return  # called from Lightning's handler chain: it stops the run gracefully
        if callable(previous):
            previous(signum, frame)
        else:  # outside a fit: terminate as SIGTERM would
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


def _watch(children: list[subprocess.Popen]) -> None:
    """If a child rank dies with an error, stop the whole job instead of hanging in a
    collective that will never complete."""

    def loop() -> None:
        while True:
            for child in children:
                code = child.poll()
                if code not in (None, 0):
                    print(
                        f"mmfw: local rank process {child.pid} exited with {code}; stopping the job",
                        file=sys.stderr,
                    )
                    for other in children:
                        if other.poll() is None:
                            other.kill()
                    os.kill(os.getpid(), signal.SIGKILL)
            if all(c.poll() is not None for c in children):
                return
            time.sleep(1)

    threading.Thread(target=loop, daemon=True, name="mmfw-rank-watch").start()


def watch_parent() -> None:
    """In a child rank: exit when the launching rank 0 is gone (killed, crashed), instead of
    waiting in a collective until its timeout."""
    if os.environ.get(LAUNCHED_BY_MMFW) != "1" or os.environ.get("LOCAL_RANK") in (None, "0"):
        return
    parent = os.getppid()

    def loop() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=loop, daemon=True, name="mmfw-parent-watch").start()


def wait_for_children(children: list[subprocess.Popen], timeout: float = 600) -> None:
    """Wait for the local ranks of a finished job (they exit right after training)."""
    deadline = time.monotonic() + timeout
    for child in children:
        child.wait(timeout=max(1.0, deadline - time.monotonic()))


@contextmanager
def local_ranks(
    processes: int, num_nodes: int, run_dir: Path, overrides: list[str]
) -> Iterator[None]:
    """``mmfw-train``'s launcher: with ``processes`` > 1 and no external launcher (torchrun,
    SLURM), start local ranks 1.. as children; this process is rank 0 inside the block. A
    job that ends normally waits for them and forgets its rank variables (the next job of a
    sweep launches anew); on an error the children see rank 0 gone and exit."""
    children = []
    if processes > 1 and not launched_externally():
        children = launch_local_ranks(processes, num_nodes, run_dir, overrides)
    yield
    wait_for_children(children)
    clear_launch_env()


def clear_launch_env() -> None:
    """Forget the previous job's rank variables (the next job of a sweep launches anew)."""
    if os.environ.pop(LAUNCHED_BY_MMFW, None):
        for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_PORT"):
            os.environ.pop(key, None)
