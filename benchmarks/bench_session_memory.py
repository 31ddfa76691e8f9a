"""What one session holds after a run: the recorded states, and the drawn frames it used to keep.

Runs ``studio.run.run_steps`` with the shipped pipeline on the first gallery example at
228 x 304 for a few point counts and prints the bytes of the run's states (depth and mask of
every frame) and, for comparison, of its frames drawn as images (what the session kept
before issue 22), plus the wall time and how many frames were streamed.

    PYTHONPATH=. python benchmarks/bench_session_memory.py [--points 1 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sdr_core import load_pipeline
from studio.run import render_frame, run_steps
from studio.scene import load_example, load_examples
from studio.session import SparseChoice, build_sparse, new_session

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1, 100])
    args = parser.parse_args()
    pipe = load_pipeline(device="cpu")
    scene = load_example(pipe, load_examples(ASSETS)[0], 304)
    print("| points | frames | streamed | states MiB | drawn frames MiB | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for n_points in args.points:
        session = new_session(scene)
        inputs = build_sparse(pipe, session, SparseChoice("random points", n_points))
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            updates = list(run_steps(pipe, session, inputs, out_dir=out))
            seconds = time.perf_counter() - start
        record = session.run
        states = sum(s.depth.nbytes + s.mask.nbytes for s in record.states)
        frame = render_frame(scene, record, 0)[0].nbytes
        print(
            f"| {n_points} | {len(record.states)} | {len(updates) - 1} | {states / 2**20:.1f} | "
            f"{len(record.states) * frame / 2**20:.1f} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
