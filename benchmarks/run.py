"""Benchmarks: each workflow against the reference method, in the same run.

    python benchmarks/run.py [--quick] [--keep] [--only exact|near|scale|dedup ...]

Builds its own data (files, a private MongoDB as the tests start it, a
FiftyOne dataset and sklearn similarity index), then runs every timed step in
its own subprocess, so that its peak memory (``ru_maxrss``: the resident set
of the whole process, Python and imports included) is the step's own. Prints
one table and exits 1 if any correctness check fails; unmet speed goals are
printed, not failed. ``--quick`` runs small sizes, as a smoke test.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import steps  # noqa: E402

COLUMNS = ("work", "size", "reference", "ours", "ratio", "peak MB", "goal", "correctness")


def run_step(name: str, workdir: str, quick: bool) -> dict:
    """Runs one step of :mod:`steps` in a fresh Python process."""
    print(f"[{time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)
    cmd = [sys.executable, os.path.join(HERE, "steps.py"), name, workdir] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 600 else f"{value / 60:.1f} min"


def _row(work, size, ref, ours, ratio, peak, goal, ok, note) -> dict:
    """A table row; the correctness note is printed below the table."""
    row = dict(zip(COLUMNS, (work, size, ref, ours, ratio, peak, goal, "ok" if ok else "FAIL")))
    return dict(row, note=note)


def exact_rows(workdir: str, quick: bool) -> list:
    size = steps.sizes(quick)
    run_step("exact_setup", workdir, quick)
    bare = run_step("exact_bare", workdir, quick)
    ref = run_step("exact_ref", workdir, quick)
    ours = run_step("exact_ours", workdir, quick)
    add = run_step("exact_incremental", workdir, quick)
    rehash = run_step("exact_rehash", workdir, quick)
    n, kb = size["files"], size["file_kb"]
    speedup = ref["seconds"] / ours["seconds"]
    vs_bare = ours["seconds"] / bare["seconds"]
    return [
        _row("exact: hash + write filehash, vs compute_filehash in iter_samples(autosave)",
             f"{n} files x {kb} KB", _seconds(ref["seconds"]), _seconds(ours["seconds"]),
             f"{speedup:.1f}x", ours["peak_mb"], f">=3x: {'met' if speedup >= 3 else 'NOT met'}",
             ours["correct"], ours["note"]),
        _row("exact: same, vs a bare read + BLAKE3 loop (1 thread, no DB)",
             f"{n} files x {kb} KB", _seconds(bare["seconds"]), _seconds(ours["seconds"]),
             f"{vs_bare:.2f}x slower", ours["peak_mb"],
             f"<=1.5x: {'met' if vs_bare <= 1.5 else 'NOT met'}", bare["correct"], bare["note"]),
        _row("exact: rerun after adding files, vs full rehash",
             f"{n} + {size['new_files']} files", _seconds(rehash["seconds"]), _seconds(add["seconds"]),
             f"{rehash['seconds'] / add['seconds']:.1f}x", add["peak_mb"],
             f"reads only new: {'met' if add['correct'] else 'NOT met'}", add["correct"], add["note"]),
    ]


def pool_rows(workdir: str, quick: bool) -> list:
    """The exact find's reader pool: on local files, and behind a simulated
    latency per open."""
    size = steps.sizes(quick)
    run_step("pool_setup", workdir, quick)
    one = run_step("pool_local_one", workdir, quick)
    auto = run_step("pool_local_auto", workdir, quick)
    four = run_step("pool_local_four", workdir, quick)
    slow_one = run_step("pool_latency_one", workdir, quick)
    slow_auto = run_step("pool_latency_auto", workdir, quick)
    local = f"{size['files']} files x {size['file_kb']} KB"
    slow_size = f"{slow_auto['files']} files x {size['file_kb']} KB"
    ms = steps.LATENCY * 1000
    slow_speedup = slow_one["seconds"] / slow_auto["seconds"]
    ideal = slow_auto["files"] * steps.LATENCY / slow_auto["readers"]
    return [
        _row(f"exact, local files: automatic reader pool (chose {auto['readers']}), vs num_readers=1",
             local, _seconds(one["seconds"]), _seconds(auto["seconds"]),
             f"{one['seconds'] / auto['seconds']:.2f}x", auto["peak_mb"],
             f"chooses 1: {'met' if auto['readers'] == 1 else 'NOT met'}",
             auto["correct"] and one["correct"], auto["note"]),
        _row("exact, local files: 4 readers, vs num_readers=1",
             local, _seconds(one["seconds"]), _seconds(four["seconds"]),
             f"{one['seconds'] / four['seconds']:.2f}x", four["peak_mb"], "-", four["correct"], four["note"]),
        _row(f"exact, {ms:.0f} ms per open (simulated): automatic pool (chose {slow_auto['readers']}), "
             "vs num_readers=1", slow_size, _seconds(slow_one["seconds"]), _seconds(slow_auto["seconds"]),
             f"{slow_speedup:.1f}x", slow_auto["peak_mb"], f">=10x: {'met' if slow_speedup >= 10 else 'NOT met'}",
             slow_auto["correct"] and slow_one["correct"],
             f"{slow_auto['note']}; 1 reader would need {slow_auto['files'] * steps.LATENCY:.1f} s of waits, "
             f"{slow_auto['readers']} readers {ideal:.2f} s"),
    ]


def near_rows(workdir: str, quick: bool) -> list:
    size = steps.sizes(quick)
    run_step("near_setup", workdir, quick)
    ref = run_step("near_ref", workdir, quick)
    cold = run_step("near_ours", workdir, quick)  # fills the embedding cache
    ours = run_step("near_ours", workdir, quick)
    check = run_step("near_check", workdir, quick)
    exact = run_step("near_exact_path", workdir, quick)
    bare = run_step("near_bare", workdir, quick)
    frac_ref = run_step("near_fraction_ref", workdir, quick)
    frac = run_step("near_fraction_ours", workdir, quick)
    data = f"{size['near_n']} x {size['near_dim']}-d"
    speedup = ref["seconds"] / ours["seconds"]
    fast = speedup >= 5 and ours["peak_mb"] <= 1536
    vs_bare = exact["seconds"] / bare["seconds"]
    frac_speedup = frac_ref["seconds"] / frac["seconds"]
    return [
        _row(f"near, thresh {steps.THRESHOLD}: operator ({check['method']} search, cache warm), "
             "vs load_brain_results + find_duplicates",
             data, _seconds(ref["seconds"]), _seconds(ours["seconds"]), f"{speedup:.1f}x",
             ours["peak_mb"], f">=5x, <=1.5 GB: {'met' if fast else 'NOT met'} (ref peak {ref['peak_mb']} MB)",
             check["correct"], check["note"]),
        _row("near, same: first run, embedding cache cold",
             data, _seconds(ref["seconds"]), _seconds(cold["seconds"]),
             f"{ref['seconds'] / cold['seconds']:.1f}x", cold["peak_mb"], "-", True, "same groups as warm run"
             if cold["groups"] == ours["groups"] else "different groups from the warm run"),
        _row("near, exact search path, vs bare blocked matmul",
             data, _seconds(bare["seconds"]), _seconds(exact["seconds"]), f"{vs_bare:.2f}x slower",
             exact["peak_mb"], f"<=1.2x: {'met' if vs_bare <= 1.2 else 'NOT met'}",
             exact["correct"], exact["note"]),
        _row("near, fraction 0.1: operator (cache warm), vs find_duplicates(fraction) alone",
             frac_ref["size"], _seconds(frac_ref["seconds"]), _seconds(frac["seconds"]),
             f"{frac_speedup:.1f}x", frac["peak_mb"], f">=20x: {'met' if frac_speedup >= 20 else 'NOT met'}",
             frac["num_dups"] == frac_ref["num_dups"],
             f"{frac['num_dups']} duplicates, brain {frac_ref['num_dups']}"),
    ]


def scale_rows(workdir: str, quick: bool) -> list:
    size = steps.sizes(quick)
    run_step("scale_setup", workdir, quick)
    ours = run_step("scale_ours", workdir, quick)
    check = run_step("scale_check", workdir, quick)
    emb_mb = size["scale_n"] * size["scale_dim"] * 4 / 2**20
    fits = ours["seconds"] <= 600 and ours["peak_mb"] <= emb_mb + 1024
    return [
        _row(f"near at scale: faiss search + grouping, thresh {steps.THRESHOLD}",
             f"{size['scale_n']} x {size['scale_dim']}-d", "not feasible", _seconds(ours["seconds"]), "-",
             ours["peak_mb"], f"<=10 min, <= {emb_mb:.0f} + 1024 MB: {'met' if fits else 'NOT met'}",
             check["correct"], check["note"]),
    ]


def dedup_rows(workdir: str, quick: bool) -> list:
    size = steps.sizes(quick)
    run_step("dedup_setup", workdir, quick)
    views = run_step("views_size", workdir, quick)
    ref = run_step("dedup_ref", workdir, quick)
    ours = run_step("dedup_ours", workdir, quick)
    num_dups = size["dedup_groups"] * (size["group_size"] - 1)
    return [
        _row("deduplicate: operator (one bulk delete), vs one delete per group",
             f"{num_dups} dups in {size['dedup_groups']} groups, {size['views_n']} samples",
             _seconds(ref["seconds"]), _seconds(ours["seconds"]), f"{ref['seconds'] / ours['seconds']:.1f}x",
             ours["peak_mb"], f"<=10 s: {'met' if ours['seconds'] <= 10 else 'NOT met'}",
             ours["correct"] and ref["correct"], ours["note"]),
        _row("stored size of the saved views, vs select(duplicate ids)",
             views["size"], f"{views['ref_bytes']} B", f"{views['max_bytes']} B", "-", "-",
             f"constant, <1 KB: {'met' if views['correct'] else 'NOT met'}", views["correct"], views["note"]),
    ]


CASES = dict(exact=exact_rows, pool=pool_rows, near=near_rows, scale=scale_rows, dedup=dedup_rows)


def print_table(rows: list) -> None:
    """The table, then each row's correctness note."""
    cells = [dict(r, correctness=f"{r['correctness']} ({k})") for k, r in enumerate(rows, 1)]
    widths = {c: max(len(c), *(len(str(r[c])) for r in cells)) for c in COLUMNS}
    print(" | ".join(c.ljust(widths[c]) for c in COLUMNS))
    print("-+-".join("-" * widths[c] for c in COLUMNS))
    for r in cells:
        print(" | ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS))
    print()
    for k, r in enumerate(rows, 1):
        print(f"({k}) {r['note']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="run only these cases")
    args = parser.parse_args()
    os.environ.pop("FIFTYONE_DATABASE_URI", None)  # always a private, fresh database
    steps.start_database()
    workdir = tempfile.mkdtemp(prefix="dedup-bench-")
    os.environ[steps.CACHE_ENV] = os.path.join(workdir, "embedding-cache")
    started = time.time()
    try:
        rows = []
        for name, build in CASES.items():
            if not args.only or name in args.only:
                try:
                    rows += build(workdir, args.quick)
                except subprocess.CalledProcessError as e:  # report it, run the other cases
                    rows.append(_row(f"{name}: a step failed", "-", "-", "-", "-", "-", "-", False,
                                     f"step {e.cmd[2]} exited with {e.returncode}"))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'quick' if args.quick else 'full'} run, {_seconds(time.time() - started)}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"peak MB = ru_maxrss of the step's own process when its timed work ended\n")
    print_table(rows)
    return 0 if all(r["correctness"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
