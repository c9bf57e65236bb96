"""The benchmark scripts run end to end at small sizes (``--quick``): every
correctness check in run.py's table passes, robustness.py keeps distinct
pages and hard negatives apart at other scales, and photo_sizes.py times every
size; each leaves nothing in the temp folder. Speeds are not asserted here."""

import os
import subprocess
import sys

from database import ROOT


def run_benchmark(temp_folder, script: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """Runs a benchmark script with ``temp_folder`` as its temp folder, which it must leave empty."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                          env=dict(os.environ, TMPDIR=str(temp_folder)), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    assert os.listdir(temp_folder) == []
    return done


def test_quick_benchmark_prints_the_table_with_every_check_passing(tmp_path):
    done = run_benchmark(tmp_path, "run.py", "--quick", timeout=1200)
    lines = done.stdout.splitlines()
    header = next(k for k, line in enumerate(lines) if line.startswith("work "))
    assert lines[header].split(" | ")[-1].strip() == "correctness"
    rows = lines[header + 2 : lines.index("", header)]
    checks = [row.split(" | ")[-1].strip() for row in rows]
    assert len(checks) >= 13 and checks == [f"ok ({k})" for k in range(1, len(checks) + 1)], \
        "\n".join(lines)


def test_quick_robustness_keeps_pages_and_hard_negatives_apart_at_other_scales(tmp_path):
    done = run_benchmark(tmp_path, "robustness.py", "--quick", "--no-apt", timeout=600)
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| ") and "/" in line]
    pages = [row for row in rows if len(row) == 4]
    photos = [row for row in rows if len(row) == 3]
    assert len(pages) == 4 and len(photos) == 2, done.stdout
    assert all(row[2] == "0 / 45" and row[3] == "10 / 10 |" for row in pages), done.stdout
    assert all(row[1].startswith("0 / ") for row in photos), done.stdout


def test_photo_sizes_times_each_size_and_jpeg_kind(tmp_path):
    done = run_benchmark(tmp_path, "photo_sizes.py", timeout=600)
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| ") and " ms " in line]
    assert [(row[0][2:], row[1]) for row in rows] == [
        (f"{w}×{h}", kind) for w, h in ((640, 480), (1920, 1440), (4000, 3000), (6000, 4000))
        for kind in ("baseline", "progressive")], done.stdout
