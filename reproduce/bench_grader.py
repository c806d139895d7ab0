r"""Math grader timings: cost against input size, and trivial calls among slow ones in threads.

``size``: one call per case, each in its own subprocess under a wall-clock cap (a case over the
cap prints ``> cap``). Cases: ``check`` with a huge gold, ``check`` with a huge boxed answer,
``dapo_reward`` with a huge gold, each on three shapes of text (LaTeX terms, digits, spaced words)
at 1k to 1M characters.

``threads``: ``--threads`` threads each make ``--calls`` calls of ``check``. Every
``--slow-every``-th call is slow (a sympy comparison that runs into its 1 s limit, with a gold no
worker has seen); the rest are trivial: half are decided on strings (``5`` vs ``5``), half need a
short sympy comparison (``1+x`` vs ``x+1``, a different gold each time, so no cache helps). It
prints the latency of the trivial calls (median, p99, max) and of the slow ones.

    OMP_NUM_THREADS=1 .venv/bin/python reproduce/bench_grader.py size
    OMP_NUM_THREADS=1 .venv/bin/python reproduce/bench_grader.py threads --threads 8 --calls 200

The machine's load changes the figures: the output prints the load average and the CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

SHAPES = {
    "latex": "x^{2}+\\frac{1}{2}-",
    "digits": "1",
    "words": "a b ",
}
SIZES = (1_000, 10_000, 30_000, 100_000, 1_000_000)
CASES = {
    "check, huge gold": "verify.check('\\\\boxed{1}', TEXT)",
    "check, huge answer": "verify.check('\\\\boxed{' + TEXT + '}', '1')",
    "dapo_reward, huge gold": "verify.dapo_reward('\\\\boxed{1}', TEXT)",
}
_CHILD = (
    "import time; from dslib import verify; verify.check('\\\\boxed{{x+1}}', '1+x'); "
    "TEXT = ({unit!r} * ({size} // len({unit!r}) + 1))[:{size}]; "
    "t = time.perf_counter(); out = {call}; print(time.perf_counter() - t, repr(out)[:60])"
)


def run_size(cap: float) -> None:
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, cap {cap:.0f} s")
    print(f"| case | shape | {' | '.join(f'{s:,}' for s in SIZES)} |")
    print("|---|---|" + "---|" * len(SIZES))
    for case, call in CASES.items():
        for shape, unit in SHAPES.items():
            cells = []
            for size in SIZES:
                code = _CHILD.format(unit=unit, size=size, call=call)
                try:
                    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                          text=True, timeout=cap + 30)
                    seconds = float(done.stdout.split()[0])
                    cells.append(f"{seconds:.3f} s" if seconds <= cap else f"> {cap:.0f} s")
                except subprocess.TimeoutExpired:
                    cells.append(f"> {cap:.0f} s")
                except (ValueError, IndexError):
                    cells.append("error: " + done.stderr.strip().splitlines()[-1][:40])
            print(f"| {case} | {shape} | {' | '.join(cells)} |", flush=True)


def run_threads(threads: int, calls: int, slow_every: int) -> None:
    from dslib import verify

    verify.warm_up(2)
    verify.check("\\boxed{x+1}", "1+x")  # wait for a first worker
    trivial: list[float] = []
    slow: list[float] = []
    wrong: list[str] = []
    lock = threading.Lock()
    slow_answer = "\\boxed{(x+y+z)^{20}}"

    def worker(t: int) -> None:
        for i in range(calls):
            if i % slow_every == slow_every - 1:
                gold = f"(x+y+z+1)^{{20}} + {t * calls + i}"
                start = time.monotonic()
                verify.check(slow_answer, gold, timeout=1.0)
                with lock:
                    slow.append(time.monotonic() - start)
                continue
            if i % 2:
                response, gold, expected = "\\boxed{5}", "5", True
            else:
                k = t * calls + i
                response, gold, expected = f"\\boxed{{{k}+x}}", f"x+{k}", True
            start = time.monotonic()
            verdict = verify.check(response, gold, timeout=1.0)
            elapsed = time.monotonic() - start
            with lock:
                trivial.append(elapsed)
                if verdict.correct is not expected:
                    wrong.append(f"{response} vs {gold}: {verdict}")

    start = time.monotonic()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wall = time.monotonic() - start
    trivial.sort()

    def p(q: float) -> float:
        return trivial[min(len(trivial) - 1, int(q * len(trivial)))]

    from dslib import _grading_pool

    print(json.dumps({
        "threads": threads, "calls_per_thread": calls, "slow_every": slow_every,
        "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2),
        "pool_size": _grading_pool.POOL.size,
        "workers_started": getattr(_grading_pool.POOL, "started", None),
        "workers_killed": getattr(_grading_pool.POOL, "killed", None), "wall_s": round(wall, 1),
        "trivial_calls": len(trivial), "trivial_median_s": round(statistics.median(trivial), 4),
        "trivial_p99_s": round(p(0.99), 3), "trivial_max_s": round(trivial[-1], 3),
        "slow_calls": len(slow), "slow_max_s": round(max(slow), 3) if slow else None,
        "wrong_verdicts": wrong[:5],
    }, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    size = sub.add_parser("size", help="cost of one call against the input's size")
    size.add_argument("--cap", type=float, default=60.0, help="seconds allowed per case")
    threads = sub.add_parser("threads", help="latency of trivial calls among slow ones")
    threads.add_argument("--threads", type=int, default=8)
    threads.add_argument("--calls", type=int, default=200)
    threads.add_argument("--slow-every", type=int, default=10)
    args = parser.parse_args(argv)
    if args.what == "size":
        run_size(args.cap)
    else:
        run_threads(args.threads, args.calls, args.slow_every)


if __name__ == "__main__":
    main()
