"""``codex train --nproc N``: start N ranks on this machine under torchrun's elastic agent.

This is exactly ``torchrun --standalone --nproc-per-node N -m codex_cli ARGS`` (the agent is called
in-process, not re-implemented): each rank runs ``python -m codex_cli`` with the same arguments minus
``--nproc``. torchrun watches the ranks; when one dies it stops the others, and this module turns its
report into one line naming the rank. Ctrl-C reaches the agent, which forwards it to every rank so
they stop together at a step boundary and rank 0 saves an ``interrupt`` checkpoint.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Sequence

from codex_cli.errors import DistributedError

NPROC_FLAG = "--nproc"
INTERRUPTED_EXIT = 128 + signal.SIGINT  # 130: codex train (every rank) after a stop and rank 0's checkpoint
SHUTDOWN_TIMEOUT_S = 30  # how long ranks get to save and exit after Ctrl-C before torchrun kills them


def worker_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``: what every rank runs after ``python -m codex_cli``."""
    args: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == NPROC_FLAG:
            skip = True
        elif not arg.startswith(f"{NPROC_FLAG}="):
            args.append(arg)
    return args


def torchrun_args(nproc: int, argv: Sequence[str], module: str = "codex_cli") -> list[str]:
    """The torchrun command line (after ``torchrun``) that runs ``module`` with ``argv`` on ``nproc`` ranks."""
    return ["--standalone", "--nnodes=1", f"--nproc-per-node={nproc}", "--max-restarts=0",
            f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}", "-m", module, *worker_argv(argv)]


def launch_local(nproc: int, argv: Sequence[str], *, threads: int = 1, module: str = "codex_cli") -> int:
    """Run ``python -m MODULE ARGV`` as ``nproc`` ranks here; return 0, or 128 + signal when interrupted.

    Raises DistributedError naming the rank(s) when a rank fails; the run is stopped, never left hanging.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun would otherwise pick 1 and print a banner; codex's own `threads` setting decides.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads if threads > 0 else 1))
    try:
        run(parse_args(torchrun_args(nproc, argv, module)))
    except ChildFailedError as e:
        codes = {failure.exitcode for failure in e.failures.values()}
        if INTERRUPTED_EXIT in codes and codes <= {INTERRUPTED_EXIT, -signal.SIGTERM}:
            return INTERRUPTED_EXIT  # a signal reached the ranks, not this agent: they stopped and rank 0 saved
        raise failure_error(e.failures, nproc) from e
    except SignalException as e:
        return 128 + int(e.sigval)
    return 0


def failure_error(failures: dict[int, Any], world_size: int) -> DistributedError:
    """One line for torchrun's per-rank failures (``ProcessFailure``: exitcode, pid, timestamp).

    torchrun also lists the ranks it stopped itself (SIGTERM) once another failed; they are named only
    when no other rank failed. A rank blocked in a collective when its peer dies fails too, often within
    the same poll, so several ranks may be named. The error carries the first failed rank's exit code
    when it is a plain exit status (2 for a codex usage or data mistake), else 1.
    """
    causes = {rank: f for rank, f in failures.items() if f.exitcode != -signal.SIGTERM} or dict(failures)
    # Killed by a signal (the OOM killer, kill -9) first: ranks that lost a peer fail after it with exit 1.
    ordered = sorted(causes.items(), key=lambda item: (item[1].timestamp, item[1].exitcode > 0, item[0]))
    parts = [f"rank {rank} {_how(failure.exitcode)} (pid {failure.pid})" for rank, failure in ordered]
    error = DistributedError(
        f"{' and '.join(parts)} in a {world_size}-process run, so every rank was stopped; "
        "see its output above (add --debug for tracebacks)"
    )
    first_code = ordered[0][1].exitcode
    if 0 < first_code < 128:
        error.exit_code = first_code
    return error


def _how(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"
