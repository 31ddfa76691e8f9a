"""Coverage-guided fuzzing of the RGB-D readers with atheris (libFuzzer for Python).

Not collected by pytest (the name does not start with ``test_``); the short, always-on
fuzzing lives in ``tests/test_fuzz_readers.py`` and this harness applies the same oracle
for as long as wanted. atheris is optional (``pip install atheris``; a wheel exists for
CPython 3.11 on x86-64 Linux):

    PYTHONPATH=. python tests/fuzz_atheris_readers.py -max_total_time=300 -rss_limit_mb=3072

The first input byte picks the file extension, the rest is the file. Only ``sdr_core``
is instrumented (Pillow, numpy and libhdf5 run uninstrumented), so coverage feedback comes
from the readers' own Python branches. A valid result must pass the same checks as in
the pytest fuzzer; any exception other than ``RGBDFileError`` is reported as a crash, and
``-rss_limit_mb`` turns a memory blow-up into one.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

# Imported first and inside the hook, so the readers are instrumented when
# test_fuzz_readers imports them below.
with atheris.instrument_imports(include=["sdr_core"]):
    from sdr_core.data import io  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_fuzz_readers import MAGICS, SEEDS, _readers_for, read_cleanly  # noqa: E402

SUFFIXES = sorted(MAGICS)
WORK_DIR = Path(tempfile.mkdtemp(prefix="sdr_atheris_"))


def one_input(data: bytes) -> None:
    """Write ``data[1:]`` under the extension chosen by ``data[0]`` and read it."""
    if not data:
        return
    suffix = SUFFIXES[data[0] % len(SUFFIXES)]
    path = WORK_DIR / f"upload{suffix}"
    path.write_bytes(data[1:])
    for reader in _readers_for(suffix):
        read_cleanly(reader, path)


def _write_corpus(folder: Path) -> None:
    """Seed the corpus with one valid file per format (prefixed by its extension byte)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in SEEDS.items():
        index = SUFFIXES.index(Path(name).suffix)
        (folder / name).write_bytes(bytes([index]) + payload)


def main() -> None:
    """Run libFuzzer with a seed corpus unless corpus folders are given."""
    args = list(sys.argv)
    if not any(Path(a).is_dir() for a in args[1:]):
        corpus = WORK_DIR / "corpus"
        _write_corpus(corpus)
        args.append(str(corpus))
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
