"""Load test: the real app (app.py, shipped checkpoints) under concurrent sessions, loopback only.

Starts ``python app.py --host 127.0.0.1`` as a child process, then drives it with
``--sessions`` gradio_client sessions at once, each running ``--runs`` refinements in turn
(load an example, then stream ``/run`` to the end) with its own inputs: example, number of
random points and seed differ for every run. Reports completed runs, errors, time to first
frame and total time per run (p50/p95, from submitting ``/run``; queueing included), the
peak memory of the server with its children (sum of PSS, sampled every 0.25 s; also the
sum of RSS and the server's own VmHWM), and the load average.

Content check: after the load phase the server is stopped and every run's inputs are run
again alone, in this process, through the same library calls the app makes; each run's
downloaded ``refined_depth_m.npy`` must match its own re-run (max |diff| <= --tolerance-m)
and no other run's, and its ``metrics.json`` must report its own number of points.

Bounded: at most 16 sessions x 10 runs, an overall ``--timeout-s`` after which unfinished
runs are cancelled and counted as errors, and the server is always stopped.

    python benchmarks/load_test.py                      # 8 sessions x 5 runs at 228x304
    python benchmarks/load_test.py --sessions 2 --runs 1 --json out.json
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOST = "127.0.0.1"  # loopback only: the server is never reachable from outside
DOWNLOADS_FILES = 1  # index of the files among /downloads' outputs (after /run)
POINTS = (20, 50, 100, 200, 500)  # random points, cycled over the runs


@dataclass
class RunResult:
    """One refinement: its inputs, timings (s from submitting /run) and what came back."""

    session: int
    run: int
    example: int
    n_points: int
    seed: int
    first_frame_s: float | None = None
    total_s: float | None = None
    frames: int = 0
    error: str | None = None
    files: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- memory


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
            return comm.read().strip()
    except OSError:
        return "?"


def _pss_kb(pid: int) -> int:
    """Proportional set size: resident pages, each shared page split among its sharers."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _status_kb(pid, "VmRSS")


def tree_memory(pid: int) -> list[tuple[str, int, int]]:
    """(name, RSS bytes, PSS bytes) of ``pid`` and each of its descendants.

    psutil when it is installed, else /proc. RSS counts a page once per process that maps
    it: a child caught between fork and exec (the server starts ffmpeg for each MP4) shows
    the whole server again. PSS shares such pages out, so its sum is the real footprint.
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        found = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                memory = process.memory_full_info()
                found.append((process.name(), memory.rss, memory.pss))
        return found
    children, pending, found = _children_map(), [pid], []
    while pending:
        current = pending.pop()
        rss = _status_kb(current, "VmRSS") * 1024
        found.append((_name(current), rss, _pss_kb(current) * 1024))
        pending.extend(children.get(current, []))
    return found


class Monitor(threading.Thread):
    """Samples the server tree's memory and the 1-minute load average every `period_s`."""

    def __init__(self, pid: int, period_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.period_s = pid, period_s
        self.peak_rss = 0  # sum of RSS over the tree
        self.peak_pss = 0  # sum of PSS over the tree
        self.peak_breakdown: dict[str, list[int]] = {}  # name -> [processes, PSS] at peak
        self.peak_load = os.getloadavg()[0]
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            processes = tree_memory(self.pid)
            self.peak_rss = max(self.peak_rss, sum(rss for _, rss, _ in processes))
            pss = sum(pss for _, _, pss in processes)
            if pss > self.peak_pss:
                self.peak_pss, self.peak_breakdown = pss, {}
                for name, _, size in processes:
                    count, total = self.peak_breakdown.get(name, [0, 0])
                    self.peak_breakdown[name] = [count + 1, total + size]
            self.peak_load = max(self.peak_load, os.getloadavg()[0])
            self.samples += 1
            self._halt.wait(self.period_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# ----------------------------------------------------------------------------- server


def start_server(port: int, device: str, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "app.py", "--host", HOST, "--port", str(port), "--device", device],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_up(server: subprocess.Popen, url: str, timeout_s: float, log_path: Path) -> float:
    import gradio_client

    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if server.poll() is not None:
            raise SystemExit(f"app.py exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            gradio_client.Client(url, verbose=False)
            return time.perf_counter() - start
        except Exception:  # not listening yet
            time.sleep(1.0)
    raise SystemExit(f"app.py did not answer within {timeout_s} s:\n{log_path.read_text()}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


# ----------------------------------------------------------------------------- sessions


def plan(sessions: int, runs: int, n_examples: int) -> list[list[RunResult]]:
    """Distinct inputs for every run: examples rotate, points cycle, seeds never repeat."""
    return [
        [
            RunResult(
                session=k,
                run=j,
                example=(k + j * sessions) % n_examples,
                n_points=POINTS[(k + j) % len(POINTS)],
                seed=1000 * k + j,
            )
            for j in range(runs)
        ]
        for k in range(sessions)
    ]


def run_session(
    url: str, runs: list[RunResult], long_side: int, barrier: threading.Barrier, deadline: float
) -> None:
    import gradio_client

    client = gradio_client.Client(url, verbose=False)  # one client = one session
    barrier.wait()
    for result in runs:
        if time.perf_counter() > deadline:
            result.error = "not started: overall timeout"
            continue
        sparse = ("random points", result.n_points, 16, result.seed)
        try:
            client.predict(result.example, long_side, *sparse, api_name="/load_example")
            submitted = time.perf_counter()
            job = client.submit(None, *sparse, False, None, api_name="/run")
            for _ in job:  # streamed: one item per frame
                if result.first_frame_s is None:
                    result.first_frame_s = time.perf_counter() - submitted
                result.frames += 1
                if time.perf_counter() > deadline:
                    job.cancel()
                    raise TimeoutError("overall timeout")
            job.result()  # raises the app's error, if any
            result.total_s = time.perf_counter() - submitted
            outputs = job.outputs()
            result.frames = max(result.frames, len(outputs))
            downloads = client.predict(api_name="/downloads")[DOWNLOADS_FILES]
            result.files = {Path(f).name: str(f) for f in downloads}
        except Exception as error:  # any failure is a reported error, not a crash
            result.error = f"{type(error).__name__}: {error}"


# ----------------------------------------------------------------------------- content check


def check_content(results: list[RunResult], long_side: int, tolerance_m: float) -> dict[str, Any]:
    """Re-run every completed run's inputs alone and match the downloaded depth to it."""
    from sdr_core import load_pipeline
    from studio.scene import load_example, load_examples
    from studio.session import SparseChoice, build_sparse, new_session

    pipeline = load_pipeline(device="cpu")
    examples = load_examples(REPO / "assets")
    done = [r for r in results if r.error is None]
    expected, own_error, mixups, wrong_counts = [], [], [], []
    for result in done:
        scene = load_example(pipeline, examples[result.example], long_side)
        session = new_session(scene)
        choice = SparseChoice("random points", result.n_points, 16, result.seed)
        inputs = build_sparse(pipeline, session, choice)
        steps = pipeline.refine_steps(scene.image, inputs.sparse, scene.init_depth)
        final = collections.deque(steps, maxlen=1)[0]
        expected.append((final.depth, inputs.n_points))
    for i, result in enumerate(done):
        depth = np.load(result.files["refined_depth_m.npy"], allow_pickle=False)
        metrics = json.loads(Path(result.files["metrics.json"]).read_text())
        if metrics.get("n_points") != expected[i][1]:
            wrong_counts.append((result.session, result.run))
        matches = [
            j
            for j, (other, _) in enumerate(expected)
            if other.shape == depth.shape and np.abs(other - depth).max() <= tolerance_m
        ]
        own = expected[i][0]
        own_error.append(float(np.abs(own - depth).max()) if own.shape == depth.shape else np.inf)
        if matches != [i]:
            mixups.append({"run": (result.session, result.run), "matches": matches})
    return {
        "checked": len(done),
        "mixups": mixups,
        "wrong_point_counts": wrong_counts,
        "max_abs_diff_to_own_rerun_m": max(own_error, default=0.0),
    }


# ----------------------------------------------------------------------------- report


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    memory_gb = _status_kb_meminfo() / 2**20
    import torch

    return (
        f"{model}, {os.cpu_count()} logical cores, {memory_gb:.0f} GB RAM; Python "
        f"{platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    )


def _status_kb_meminfo() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            return int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50:.2f} / {p95:.2f}"


def report(summary: dict[str, Any]) -> str:
    content = summary["content"]
    matched = content["checked"] - len(content["mixups"])
    rows = [
        ("sessions x runs", f"{summary['sessions']} x {summary['runs']}"),
        ("processing size (long side)", f"{summary['long_side']} px"),
        ("completed runs / errors", f"{summary['completed']} / {summary['errors']}"),
        ("time to first frame, p50 / p95 (s)", summary["first_frame_p50_p95"]),
        ("total time per run, p50 / p95 (s)", summary["total_p50_p95"]),
        ("wall time of the load phase (s)", f"{summary['wall_s']:.1f}"),
        ("peak memory, server + children (sum of PSS)", f"{summary['peak_pss_gib']:.2f} GiB"),
        ("peak RSS of the server process (VmHWM)", f"{summary['server_vmhwm_gib']:.2f} GiB"),
        ("peak sum of RSS, server + children", f"{summary['peak_rss_sum_gib']:.2f} GiB"),
        ("load average: before / peak / after", summary["load_average"]),
        ("runs whose depth matches their own re-run alone", f"{matched} / {content['checked']}"),
        (
            "max abs difference to the own re-run (m)",
            f"{content['max_abs_diff_to_own_rerun_m']:.1e}",
        ),
        (
            "cross-session mix-ups / wrong point counts",
            f"{len(content['mixups'])} / {len(content['wrong_point_counts'])}",
        ),
    ]
    lines = ["| measure | value |", "|---|---:|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent sessions (<= 16)")
    parser.add_argument("--runs", type=int, default=5, help="refinements per session (<= 10)")
    parser.add_argument("--long-side", type=int, default=304, help="processing long side, px")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--port", type=int, default=0, help="0 = a free loopback port")
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="bound on the load phase")
    parser.add_argument("--startup-timeout-s", type=float, default=300.0)
    parser.add_argument("--tolerance-m", type=float, default=1e-4, help="content check")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not (1 <= args.sessions <= 16 and 1 <= args.runs <= 10):
        parser.error("--sessions must be 1-16 and --runs 1-10")
    return args


def _load_phase(
    args: argparse.Namespace, sessions: list[list[RunResult]]
) -> tuple[float, Monitor, int, float, float]:
    """Serve the app and drive it: (wall s, memory monitor, server VmHWM bytes, load before,
    load after)."""
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import free_port

    port = args.port or free_port()
    url = f"http://{HOST}:{port}/"
    log_path = Path(tempfile.mkdtemp(prefix="load_test_")) / "server.log"
    load_before = os.getloadavg()[0]
    server = start_server(port, args.device, log_path)
    try:
        startup_s = wait_until_up(server, url, args.startup_timeout_s, log_path)
        print(f"server up in {startup_s:.1f} s at {url} (log: {log_path})", flush=True)
        monitor = Monitor(server.pid)
        monitor.start()
        barrier = threading.Barrier(args.sessions)
        started = time.perf_counter()
        deadline = started + args.timeout_s
        threads = [
            threading.Thread(
                target=run_session, args=(url, runs, args.long_side, barrier, deadline)
            )
            for runs in sessions
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(deadline - time.perf_counter(), 0) + 60)
        wall_s = time.perf_counter() - started
        monitor.stop()
        vmhwm = _status_kb(server.pid, "VmHWM") * 1024
    finally:
        stop_server(server)
    return wall_s, monitor, vmhwm, load_before, os.getloadavg()[0]


def _summary(
    args: argparse.Namespace,
    results: list[RunResult],
    phase: tuple[float, Monitor, int, float, float],
    content: dict[str, Any],
) -> dict[str, Any]:
    wall_s, monitor, vmhwm, load_before, load_after = phase
    errors = [r for r in results if r.error is not None]
    return {
        "sessions": args.sessions,
        "runs": args.runs,
        "long_side": args.long_side,
        "completed": len(results) - len(errors),
        "errors": len(errors),
        "error_messages": sorted({r.error for r in errors}),
        "first_frame_p50_p95": _percentiles(
            [r.first_frame_s for r in results if r.first_frame_s is not None]
        ),
        "total_p50_p95": _percentiles([r.total_s for r in results if r.total_s is not None]),
        "wall_s": wall_s,
        "peak_pss_gib": monitor.peak_pss / 2**30,
        "peak_rss_sum_gib": monitor.peak_rss / 2**30,
        "peak_pss_breakdown": {
            name: f"{count} process(es), {size / 2**30:.2f} GiB"
            for name, (count, size) in monitor.peak_breakdown.items()
        },
        "rss_samples": monitor.samples,
        "server_vmhwm_gib": vmhwm / 2**30,
        "load_average": f"{load_before:.2f} / {monitor.peak_load:.2f} / {load_after:.2f}",
        "content": content,
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def main() -> None:
    args = _arguments()
    from studio.scene import load_examples

    sessions = plan(args.sessions, args.runs, len(load_examples(REPO / "assets")))
    phase = _load_phase(args, sessions)
    results = [r for runs in sessions for r in runs]
    for result in results:
        if result.error is None and not result.files:
            result.error = "did not finish"
    print(f"load phase done in {phase[0]:.1f} s; checking content ...", flush=True)
    content = check_content(results, args.long_side, args.tolerance_m)
    summary = _summary(args, results, phase, content)
    print(report(summary))
    print(f"\nMachine: {summary['machine']}")
    print(f"At the memory peak (PSS): {summary['peak_pss_breakdown']}")
    if summary["errors"]:
        print("Errors:", *summary["error_messages"], sep="\n  ")
    if args.json is not None:
        summary["runs_detail"] = [asdict(r) for r in results]
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    ok = not summary["errors"] and not content["mixups"] and not content["wrong_point_counts"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
