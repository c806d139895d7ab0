"""Worker processes for the sympy stage of the math grader (docs/paper-notes.md#evaluation).

Why processes: sympy cannot be interrupted from another thread, and math_verify's own timeout uses
``signal.alarm``, which only works in the main thread. Each worker is a plain
``python -c ... serve()`` subprocess (no fork of a process that may hold CUDA or threads, and no
re-import of the caller's ``__main__``) that answers one JSON line per request. Inside it an alarm
bounds Python-level work; here, a reply that does not come by the hard deadline gets the worker
killed and replaced in the background. Callers from any thread share a small pool, first come,
first served (:class:`Pool` says what concurrency costs); a worker that is killed, dies, or is
inherited through ``fork`` is never reused.
"""

from __future__ import annotations

import atexit
import collections
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

#: seconds allowed for a worker to import sympy and signal it is ready.
STARTUP_TIMEOUT = 60.0
#: seconds the parent waits beyond the worker's own alarm before it kills the worker.
GRACE = 0.3
#: seconds of alarm for parsing a gold answer the worker has not seen (cached afterwards).
GOLD_TIMEOUT = 5.0
#: comparisons whose answer the parent remembers (answers are short, so this is a few MB at most).
RESULTS_KEPT = 8192

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])
_BOOT = (
    "import sys; sys.path.insert(0, {path!r}); "
    "from dslib._grading_sympy import serve; serve()"
)


class WorkerError(RuntimeError):
    """The worker could not be started or answered nonsense."""


class Worker:
    """One sympy worker subprocess speaking JSON lines."""

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        debug = os.environ.get("DSLIB_GRADER_DEBUG")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT.format(path=_PACKAGE_PARENT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if debug else subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        self.pid = os.getpid()  # the process that owns the pipes
        self.buffer = b""
        self.next_id = 0
        self.golds: set[str] = set()  # gold forms this worker has parsed (and cached)
        line = self._read_line(time.monotonic() + STARTUP_TIMEOUT)
        if line is None or b"ready" not in line:
            self.kill()
            raise WorkerError("the grader worker did not start")

    def _read_line(self, until: float) -> bytes | None:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self.buffer:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker died
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def request(self, golds: list[str], preds: list[str], timeout: float) -> str | None:
        """The worker's verdict string, or None when it had to be killed (hard timeout)."""
        self.next_id += 1
        new_gold = any(g not in self.golds for g in golds)
        message = {"id": self.next_id, "golds": golds, "preds": preds, "timeout": timeout,
                   "gold_timeout": GOLD_TIMEOUT}
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            self.kill()
            return None
        until = time.monotonic() + timeout + GRACE + (GOLD_TIMEOUT if new_gold else 0.0)
        while True:
            line = self._read_line(until)
            if line is None:
                self.kill()
                return None
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            if reply.get("id") in (self.next_id, None):
                if len(self.golds) < 100_000:
                    self.golds.update(golds)
                return str(reply.get("result"))

    def alive(self) -> bool:
        return self.proc.poll() is None and self.pid == os.getpid()

    def kill(self) -> None:
        if self.pid != os.getpid():
            return  # inherited through fork: the parent owns that process
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:
            pass


def default_size() -> int:
    """``$DSLIB_GRADER_WORKERS`` if set (a whole number >= 1), else the CPU count within 2..8."""
    fallback = max(2, min(8, os.cpu_count() or 1))
    env = os.environ.get("DSLIB_GRADER_WORKERS", "").strip()
    if not env:
        return fallback
    if env.isdigit() and int(env) >= 1:
        return int(env)
    warnings.warn(f"DSLIB_GRADER_WORKERS={env!r} is not a whole number >= 1; using {fallback} "
                  "grader workers", RuntimeWarning, stacklevel=2)
    return fallback


class Pool:
    """Idle workers shared by all threads; grows up to ``size`` when callers overlap.

    Callers are served first come, first served: a caller that finds every worker busy waits in
    a queue and takes the next worker that comes free (while fewer than ``size`` exist, one more
    starts in the background meanwhile), so no caller is overtaken by later ones. Answers already
    given (``equal``,
    ``different``, ``unparseable``) are remembered per (golds, predictions) and answered again
    without a worker; a ``timeout`` is not remembered.

    What concurrency costs: each worker is a process of about 70 MB that takes a second or two of
    CPU to start (once; again after it is killed at a hard deadline). With T threads calling at
    once and ``size`` workers, a call waits for at most ceil((T - size) / size) calls ahead of it,
    each bounded by its ``timeout + GRACE`` (plus ``GOLD_TIMEOUT`` for a gold new to that worker).
    Time limits are wall-clock, so more workers than free cores leave each comparison less CPU
    within its budget: size the pool to the cores you can spare.
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = size or default_size()
        self.lock = threading.Condition()
        self.idle: list[Worker] = []
        self.total = 0  # workers alive or starting
        self.starting = 0
        self.queue: collections.deque[object] = collections.deque()  # waiting callers, in order
        self.results: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.started = 0  # workers started, for reports
        self.killed = 0  # workers killed at a hard deadline or found dead
        self.failed_at = -math.inf  # when a background start last failed
        self.pid = os.getpid()

    def _reset_after_fork(self) -> None:
        self.idle, self.total, self.starting, self.pid = [], 0, 0, os.getpid()
        self.queue = collections.deque()

    def _spawn_in_background(self) -> None:
        def start() -> None:
            try:
                worker = Worker()
            except Exception:
                with self.lock:
                    self.starting -= 1
                    self.total -= 1
                    self.failed_at = time.monotonic()  # no background retry for a while
                    self.lock.notify_all()
                return
            with self.lock:
                self.starting -= 1
                self.started += 1
                self.idle.append(worker)
                self.lock.notify_all()

        self.starting += 1
        self.total += 1
        threading.Thread(target=start, name="dslib-grader-start", daemon=True).start()

    def _take(self) -> Worker | bool | None:
        """For the caller at the head of the queue: an idle worker, True (start one), or None.

        With no worker at all the caller starts one itself (a failure reaches it as
        :class:`WorkerError`). With every worker busy and fewer than ``size``, one more starts in
        the background and the caller takes whichever worker comes free first, so it never waits
        for a start-up that a finishing comparison would beat.
        """
        while self.idle:
            worker = self.idle.pop()
            if worker.alive():
                return worker
            self.total -= 1
            self.killed += 1
        if self.total == 0:
            self.total += 1
            return True
        if self.total < self.size and time.monotonic() - self.failed_at > STARTUP_TIMEOUT:
            self._spawn_in_background()
        return None

    def acquire(self) -> Worker:
        """The next free worker, in the order callers arrived (see the class docstring)."""
        ticket = object()
        with self.lock:
            if self.pid != os.getpid():
                self._reset_after_fork()
            self.queue.append(ticket)
            try:
                while True:
                    got = self._take() if self.queue[0] is ticket else None
                    if got is not None:
                        break
                    if not self.lock.wait(timeout=STARTUP_TIMEOUT):
                        raise WorkerError("no grader worker became free")
            finally:
                self.queue.remove(ticket)
                self.lock.notify_all()  # the next caller in the queue is now at its head
        if isinstance(got, Worker):
            return got
        try:
            worker = Worker()  # started by the caller itself: nothing to wait for
        except Exception:
            with self.lock:
                self.total -= 1
                self.lock.notify_all()
            raise
        with self.lock:
            self.started += 1
        return worker

    def release(self, worker: Worker, *, ok: bool) -> None:
        with self.lock:
            if self.pid != os.getpid():
                return
            if ok and worker.alive():
                self.idle.append(worker)
            else:
                worker.kill()
                self.total -= 1
                self.killed += 1
                self._spawn_in_background()  # a warm replacement for the next caller
            self.lock.notify_all()

    def warm(self, n: int = 1) -> None:
        """Start workers in the background until ``n`` exist; ``size`` grows to ``n`` if smaller."""
        with self.lock:
            if self.pid != os.getpid():
                self._reset_after_fork()
            self.size = max(self.size, n)
            for _ in range(max(0, n - self.total)):
                self._spawn_in_background()

    def close(self) -> None:
        with self.lock:
            if self.pid != os.getpid():
                return
            for worker in self.idle:
                worker.kill()
            self.total -= len(self.idle)
            self.idle = []

    def compare(self, golds: list[str], preds: list[str], timeout: float) -> str:
        """Run one comparison on a worker: the worker's verdict, or ``timeout`` if it was killed."""
        key = json.dumps([golds, preds])
        with self.lock:
            if key in self.results:
                self.results.move_to_end(key)
                return self.results[key]
        worker = self.acquire()
        result = None
        try:
            result = worker.request(golds, preds, timeout)
        finally:
            self.release(worker, ok=result is not None)
        if result is None:
            return "timeout"
        if result != "timeout":
            with self.lock:
                self.results[key] = result
                if len(self.results) > RESULTS_KEPT:
                    self.results.popitem(last=False)
        return result


POOL = Pool()
atexit.register(POOL.close)
