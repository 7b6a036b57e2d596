"""Run the benchmarks: ``python -m bench [NAME ...] [--runs N] [--quick]`` (or ``python bench/run.py ...``).

Every benchmark generates its data in a temp folder, measures the product and its raw baseline in the same run
(interleaved), prints figure / baseline / ratio / verdict and ends up in bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, BenchResult, Context, machine, markdown_table, print_result

# name -> (module, target number in issue #7, or issue#number)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "workspace": ("bench.workspace", "1"),
    "snapshot": ("bench.snapshot", "2"),
    "apply": ("bench.apply", "3"),
    "fire": ("bench.fire", "4"),
    "events": ("bench.events", "5"),
    "tui-stream": ("bench.tui_stream", "5"),
    "backlog": ("bench.backlog", "6"),
    "startup": ("bench.startup", "6"),
    "sandbox": ("bench.sandbox", "#11.8"),
}
DEFAULT_RUNS, QUICK_RUNS = 5, 2
RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help=f"samples per figure (default {DEFAULT_RUNS}; --quick: {QUICK_RUNS})",
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples and shorter streams (~3 minutes)")
    parser.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="where to generate data (default: the system temp folder; e.g. /dev/shm for a RAM disk)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated data (its path is printed)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        for name, (module, target) in BENCHMARKS.items():
            print(f"{name:<12} target {target}  {importlib.import_module(module).TITLE}")
        return 0
    runs = args.runs or (QUICK_RUNS if args.quick else DEFAULT_RUNS)
    names = args.names or list(BENCHMARKS)
    ctx = Context(runs=runs, quick=args.quick, tmp=args.tmp, keep=args.keep)
    print(
        f"always-on benchmarks: {', '.join(names)}; {runs} samples each (median); data in {ctx.root}",
        flush=True,
    )
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    load = load_at_start[0]
    if load > 0.5 * (os.cpu_count() or 1):
        print(
            f"warning: the machine is busy (load average {load:.1f} on {os.cpu_count()} CPUs); "
            "figures will be noisy",
            flush=True,
        )
    started = time.perf_counter()
    results: list[BenchResult] = []
    try:
        for name in names:
            module = importlib.import_module(BENCHMARKS[name][0])
            print(f"\n-- running {name} ...", flush=True)
            t0 = time.perf_counter()
            try:
                result = module.run(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
                traceback.print_exc()
                result = BenchResult(name=name, title=module.TITLE, error=f"{type(exc).__name__}: {exc}")
            result.seconds = time.perf_counter() - t0
            results.append(result)
            print_result(result)
    finally:
        ctx.cleanup()
    total = time.perf_counter() - started
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "load_average_at_start": load_at_start,
        "machine": machine(),
        "runs": runs,
        "quick": args.quick,
        "seconds": round(total, 1),
        "benchmarks": {
            r.name: {**r.model_dump(mode="json"), "issue_target": BENCHMARKS[r.name][1]} for r in results
        },
    }
    previous = {}
    if args.out.exists() and args.names:  # running one benchmark keeps the others' last results
        try:
            previous = json.loads(args.out.read_text()).get("benchmarks", {})
        except (ValueError, OSError):
            previous = {}
    payload["benchmarks"] = {**previous, **payload["benchmarks"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    misses = [f"{r.name}: {f.label}" for r in results for f in r.figures if not f.passed]
    errors = [r.name for r in results if r.error]
    print(f"\n{markdown_table(results)}\n")
    print(f"done in {total:.0f} s; results in {args.out}")
    if misses:
        print("targets missed:\n  " + "\n  ".join(misses))
    if errors:
        print(f"benchmarks that failed to run: {', '.join(errors)}")
    if args.keep:
        print(f"generated data kept in {ctx.root}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
