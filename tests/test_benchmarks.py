"""The benchmark script runs end to end at small sizes (``--quick``) and every
correctness check in its table passes. Speeds are not asserted here."""

import os
import subprocess
import sys

from database import ROOT

def test_quick_benchmark_prints_the_table_with_every_check_passing():
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick"],
        capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    lines = done.stdout.splitlines()
    header = next(k for k, line in enumerate(lines) if line.startswith("work "))
    assert lines[header].split(" | ")[-1].strip() == "correctness"
    rows = lines[header + 2 : lines.index("", header)]
    checks = [row.split(" | ")[-1].strip() for row in rows]
    assert len(checks) >= 13 and checks == [f"ok ({k})" for k in range(1, len(checks) + 1)], \
        "\n".join(lines)
