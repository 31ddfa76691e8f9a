"""What visitors who run a refinement and leave cost the server, a minute after they left.

Starts the real app (``python app.py``, shipped checkpoints, CPU, loopback only) as a child
process, lets one warm-up visitor run a refinement and leave, and takes the server tree's
memory (sum of PSS, see ``load_test.tree_memory``) as the baseline. Then ``--visitors``
gradio_client sessions, ``--concurrent`` at a time, each load an example, run a refinement
with ``--points`` random points, fetch the downloads and close their session (what closing
the tab does: the client's heartbeat connection ends). ``--wait-s`` seconds after the last
one left the memory is taken again; the difference to the baseline is what the visitors
left behind (target, issue 22: at most 300 MiB for 30 visitors after 60 s).

    python benchmarks/visitor_memory.py                       # 30 visitors, 100 points each
    python benchmarks/visitor_memory.py --visitors 10 --points 1
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from load_test import HOST, machine, start_server, stop_server, tree_memory, wait_until_up

MIB = 2**20


def _pss(pid: int) -> int:
    return sum(pss for _, _, pss in tree_memory(pid))


def visit(url: str, example: int, n_points: int, seed: int, long_side: int) -> int:
    """One visitor: load, run, downloads, leave. Returns the frames the run streamed."""
    import gradio_client

    client = gradio_client.Client(url, verbose=False)  # one client = one session
    try:
        sparse = ("random points", n_points, 16, seed)
        client.predict(example, long_side, *sparse, api_name="/load_example")
        job = client.submit(None, *sparse, False, None, api_name="/run")
        frames = sum(1 for _ in job)
        job.result()
        client.predict(api_name="/downloads")
        return frames
    finally:
        client.close()  # the tab is closed


def _visitors(url: str, args: argparse.Namespace, errors: list[str]) -> None:
    """Run ``args.visitors`` visits, ``args.concurrent`` at a time."""
    pending = list(range(args.visitors))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                k = pending.pop(0)
            try:
                visit(url, k % 3, args.points, 100 + k, args.long_side)
            except Exception as error:  # counted, not fatal
                errors.append(f"visitor {k}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=worker) for _ in range(args.concurrent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=3)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--long-side", type=int, default=304)
    parser.add_argument("--wait-s", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=7891)
    args = parser.parse_args()
    url = f"http://{HOST}:{args.port}/"
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "server.log"
        server = start_server(args.port, "cpu", log)
        try:
            wait_until_up(server, url, 180, log)
            visit(url, 0, args.points, 1, args.long_side)  # warm-up: caches, fonts, first run
            time.sleep(5)
            baseline = _pss(server.pid)
            errors: list[str] = []
            start = time.perf_counter()
            _visitors(url, args, errors)
            seconds = time.perf_counter() - start
            left = _pss(server.pid)
            time.sleep(args.wait_s)
            after = _pss(server.pid)
        finally:
            stop_server(server)
    print(f"machine: {machine()}")
    print(
        f"{args.visitors} visitors ({args.concurrent} at a time, {args.points} points, "
        f"{args.long_side} px) in {seconds:.0f} s, errors: {len(errors)}"
    )
    for error in errors[:5]:
        print("  ", error)
    print(f"server tree PSS: baseline {baseline / MIB:.0f} MiB, when the last left "
          f"{left / MIB:.0f} MiB (+{(left - baseline) / MIB:.0f}), {args.wait_s:.0f} s later "
          f"{after / MIB:.0f} MiB (+{(after - baseline) / MIB:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
