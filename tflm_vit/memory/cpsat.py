"""The CP-SAT placement problem, solved in a child process.

OR-Tools and TensorFlow each bring their own protobuf runtime; loaded into one process
they can crash it. The planner therefore sends plain data (JSON on stdin) here and reads
the offsets back: `python <this file>`.

Problem: one offset per group (16-byte units); each member at a fixed displacement
from it, with its size; pairs of buffers from different groups that are alive together
must not overlap; minimise the head, which cannot go below `lower` (the bound).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def solve(problem: dict) -> dict:
    from ortools.sat.python import cp_model

    sizes, group_of, upper = problem["sizes"], problem["group_of"], problem["upper"]
    disp = problem["disp"]
    m = cp_model.CpModel()
    off = [m.NewIntVar(0, upper, f"g{g}") for g in range(problem["groups"])]
    height = m.NewIntVar(min(problem["lower"], upper), upper, "head")
    for i, size in enumerate(sizes):
        m.Add(off[group_of[i]] + disp[i] + size <= height)
    for i, j in problem["conflicts"]:
        gi, gj = group_of[i], group_of[j]
        below = m.NewBoolVar("")
        m.Add(off[gi] + disp[i] + sizes[i] <= off[gj] + disp[j]).OnlyEnforceIf(below)
        m.Add(off[gj] + disp[j] + sizes[j] <= off[gi] + disp[i]).OnlyEnforceIf(below.Not())
    for g, hint in enumerate(problem["hints"]):
        m.AddHint(off[g], hint)
    m.Minimize(height)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = problem["time_limit_s"]
    solver.parameters.num_workers = 2
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return {"status": "none"}
    return {"status": "optimal" if status == cp_model.OPTIMAL else "feasible",
            "offsets": [solver.Value(v) for v in off]}


def solve_in_child(problem: dict) -> dict:
    # Run as a script, not `-m tflm_vit.memory.cpsat`: it needs nothing of the package,
    # and -m would import whatever `tflm_vit` the working directory holds.
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)],
                          input=json.dumps(problem), capture_output=True, text=True,
                          timeout=problem["time_limit_s"] + 120)
    if proc.returncode != 0:
        return {"status": "error", "detail": proc.stderr.strip()[-2000:]}
    return json.loads(proc.stdout)


if __name__ == "__main__":
    print(json.dumps(solve(json.loads(sys.stdin.read()))))
