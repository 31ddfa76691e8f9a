"""Native CPU backend: the decomposed attention (see :mod:`.fast`) as fused C kernels.

The C source (``_native/mspn_native.c``: plain C, GCC vector extensions, pthreads, no torch
headers) is compiled on first use with the system C compiler and loaded through ctypes. The
build is cached under ``~/.cache/sdr_core/native/`` (or a per-user temporary directory when
that is not writable) in a file whose name hashes the source, the compiler, its flags, the
machine and the CPU's feature flags, so a stale or foreign build is never loaded. Two
processes compiling at once each write a private temporary file and rename it into place.

Any failure (no compiler, compile error, load error) makes :func:`can_run_native` return
False, logs the reason once, and the front door simply does not offer ``"native"``.

Contract and limits:

- Inference only: tensors requiring grad (with grad mode on) raise RuntimeError.
- CPU tensors only. Computation is float32; other floating dtypes (float64, half) are cast to
  float32 and the results cast back to the input dtype, so a float64 caller gets float32
  accuracy (about 1e-6 relative), not float64.
- Every call returns fresh tensors; nothing is reused across calls.
- Threads: the kernels use ``torch.get_num_threads()`` threads, read at every call.
- Vector width: 16 lanes where the CPU has AVX-512, 8 elsewhere (one register either way;
  wider vectors than the registers made GCC's code 3-6x slower on an AVX2 CPU). The
  environment variable ``SDR_NATIVE_LANES`` (8 or 16), read once at the first build, forces
  one width, e.g. to test the other build on this CPU.
- Logits more than 87 below the pixel's maximum contribute exp(-87) ~ 1.6e-38 instead of a
  smaller number, invisible next to the max term. NaN inputs give NaN outputs, as in torch.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from ._window import AffineQK, check_maps, check_qk
from .reference import AttendFn

logger = logging.getLogger(__name__)

__all__ = [
    "NativeAttention",
    "can_run_native",
    "guidance_window_term_native",
    "prepare_native",
    "window_attention_native",
]

_SOURCE = Path(__file__).with_name("_native") / "mspn_native.c"
_ABI = 3  # must equal MSPN_NATIVE_ABI in the C source
_BASE_FLAGS = ("-O3", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared", "-pthread")
_ARCH_FLAGS = ("-march=native",)
_COMPILE_TIMEOUT_S = 120
_LANES_VARIABLE = "SDR_NATIVE_LANES"


def lanes_flags() -> tuple[str, ...]:
    """``-DMSPN_LANES=N`` when ``SDR_NATIVE_LANES`` forces a vector width, else nothing.

    Any value but 8 or 16 is ignored with a warning naming it (the CPU's own width is used).
    """
    value = os.environ.get(_LANES_VARIABLE, "").strip()
    if not value:
        return ()
    if value not in ("8", "16"):
        logger.warning("%s must be 8 or 16, got %r: ignored", _LANES_VARIABLE, value)
        return ()
    return (f"-DMSPN_LANES={value}",)


class _NativeLibrary:
    """The loaded shared library with typed entry points."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        if self.lib.mspn_native_abi() != _ABI:
            raise OSError(f"{path} has ABI {self.lib.mspn_native_abi()}, expected {_ABI}")
        self.lanes = int(self.lib.mspn_native_lanes())
        ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        self.advise_hugepages = self.lib.mspn_advise_hugepages
        self.advise_hugepages.restype = cint
        self.advise_hugepages.argtypes = [ptr, i64]
        self.guidance = self.lib.mspn_guidance
        self.guidance.restype = cint
        # q0, k0, u_q, u_k; B, E, H, W, p; rows_outer (layout flag); T0, alpha, beta; threads
        self.guidance.argtypes = [ptr] * 4 + [i64] * 5 + [cint] + [ptr] * 3 + [cint]
        self.train_t0 = self.lib.mspn_train_t0
        self.train_t0.restype = cint
        self.train_t0.argtypes = [ptr, ptr, i64, i64, i64, i64, i64, ptr, cint]
        self.train_t0_backward = self.lib.mspn_train_t0_backward
        self.train_t0_backward.restype = cint
        self.train_t0_backward.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, i64, ptr, ptr, cint]
        self.train_attend = self.lib.mspn_train_attend
        self.train_attend.restype = cint
        self.train_attend.argtypes = [ptr, ptr, ptr, ctypes.c_float, ptr, ptr, ptr]
        self.train_attend.argtypes += [i64, i64, i64, i64, ptr, ptr, cint]
        self.train_attend_backward = self.lib.mspn_train_attend_backward
        self.train_attend_backward.restype = cint
        self.train_attend_backward.argtypes = [ptr, ptr, ptr, ctypes.c_float, ptr, ptr, ptr]
        self.train_attend_backward.argtypes += [ptr, ptr, i64, i64, i64, i64]
        self.train_attend_backward.argtypes += [ptr] * 8 + [cint]
        self.attend = self.lib.mspn_attend
        self.attend.restype = cint
        # T0, alpha, beta, gamma; depth, mask, bias; B, H, W, p; refined, next mask; threads
        self.attend.argtypes = [ptr] * 3 + [ctypes.c_float] + [ptr] * 3 + [i64] * 4
        self.attend.argtypes += [ptr] * 2 + [cint]
        self.iterate = self.lib.mspn_iterate
        self.iterate.restype = cint
        # T0, alpha, beta, gamma; values, mask, bias, target, measured, init, sparse;
        # B, H, W, p; next values, next mask, metres; threads
        self.iterate.argtypes = [ptr] * 3 + [ctypes.c_float] + [ptr] * 7 + [i64] * 4
        self.iterate.argtypes += [ptr] * 3 + [cint]


def _find_compiler() -> str | None:
    for name in ("gcc", "cc"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _cpu_fingerprint() -> str:
    """The CPU feature flags (``-march=native`` output depends on them), best effort."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    return line.strip()
    except OSError:
        pass
    return platform.processor()


def build_key(source: bytes, compiler: str, flags: tuple[str, ...]) -> str:
    """Hash naming a build: source, compiler, flags, machine and CPU features."""
    digest = hashlib.sha256()
    for part in (
        source,
        compiler.encode(),
        " ".join(flags).encode(),
        platform.machine().encode(),
        _cpu_fingerprint().encode(),
    ):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:20]


def _cache_dirs() -> list[Path]:
    dirs = []
    with contextlib.suppress(RuntimeError, KeyError):  # no home directory
        dirs.append(Path.home() / ".cache" / "sdr_core" / "native")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    dirs.append(Path(tempfile.gettempdir()) / f"sdr_core-native-{uid}")
    return dirs


def _writable_dir(candidates: list[Path]) -> Path:
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=directory, delete=True)  # noqa: SIM115
            probe.close()
            return directory
        except OSError:
            continue
    raise OSError(f"no writable cache directory among {[str(d) for d in candidates]}")


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> None:
    """Compile to a private temporary name in target's directory, then rename atomically."""
    fd, tmp_name = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp.so", dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run(
            [compiler, *flags, "-o", tmp_name, str(_SOURCE), "-lm"],
            capture_output=True,
            text=True,
            timeout=_COMPILE_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            detail = result.stderr.strip()[-2000:]
            raise OSError(f"{compiler} failed ({result.returncode}): {detail}")
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _build(compiler: str, flags: tuple[str, ...]) -> Path:
    key = build_key(_SOURCE.read_bytes(), compiler, flags)
    directory = _writable_dir(_cache_dirs())
    target = directory / f"mspn_native-{key}.so"
    if not target.exists():
        _compile(compiler, flags, target)
    return target


@functools.lru_cache(maxsize=1)
def _library() -> _NativeLibrary | None:
    """Build (or reuse) and load the library once per process; None, logged, on failure."""
    compiler = _find_compiler()
    if compiler is None:
        logger.info("native attention backend unavailable: no C compiler (gcc/cc) on PATH")
        return None
    errors = []
    lanes = lanes_flags()
    # -march=native first; a compiler that rejects it still gets a portable build.
    for flags in (_BASE_FLAGS + _ARCH_FLAGS + lanes, _BASE_FLAGS + lanes):
        try:
            return _NativeLibrary(_build(compiler, flags))
        except (OSError, subprocess.SubprocessError, AttributeError) as error:
            errors.append(f"{' '.join(flags)}: {error}")
    logger.info("native attention backend unavailable: %s", " | ".join(errors))
    return None


def can_run_native() -> bool:
    """Whether the native kernels compiled and loaded in this process (cached)."""
    return _library() is not None


def _require_library() -> _NativeLibrary:
    lib = _library()
    if lib is None:
        raise RuntimeError("the native attention backend is unavailable (see the log)")
    return lib


def _check_no_grad(*tensors: torch.Tensor) -> None:
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        raise RuntimeError(
            "the native attention backend is inference-only: a tensor requires grad. Use "
            "backend='fast' for training, or run under torch.no_grad()/torch.inference_mode()."
        )


def _as_f32(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.device.type != "cpu":
        raise ValueError(f"native attention runs on CPU; {name} is on {t.device}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {t.dtype}")
    return t.detach().to(torch.float32).contiguous()


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _check_rc(rc: int, what: str) -> None:
    if rc == 2:
        raise MemoryError(f"native {what}: out of memory")
    if rc != 0:
        raise RuntimeError(f"native {what} failed with code {rc}")


class NativeAttention:
    """One layer's prepared attention, computed once per image.

    Holds T0 (blocked B x H x ceil(W/V) x p^2 x V, V the library's lanes), alpha, beta and
    gamma; called per
    iteration as the backends' ``attend``, or :meth:`iterate` for a whole iteration.
    """

    def __init__(self, qk: AffineQK, window: int) -> None:
        lib = _require_library()
        _check_no_grad(qk.query_base, qk.key_base, qk.query_depth, qk.key_depth)
        check_qk(qk, window)
        b, e, h, w = qk.query_base.shape
        q0 = _as_f32(qk.query_base, "query_base")
        k0 = _as_f32(qk.key_base, "key_base")
        uq = _as_f32(qk.query_depth, "query_depth")
        uk = _as_f32(qk.key_depth, "key_depth")
        lanes = lib.lanes
        chunks = (w + lanes - 1) // lanes
        self.shape = (b, h, w)
        self.window = window
        self.term = torch.empty(b, h, chunks, window * window, lanes, dtype=torch.float32)
        # Fresh and untouched: huge pages make its first touch ~10x fewer page faults.
        lib.advise_hugepages(self.term.data_ptr(), self.term.numel() * 4)
        self.alpha = torch.empty(b, h, w, dtype=torch.float32)
        self.beta = torch.empty(b, h, w, dtype=torch.float32)
        # gamma = u_q . u_k, accumulated in double then rounded once.
        self.gamma = float(torch.dot(uq.double(), uk.double()))
        rc = lib.guidance(
            q0.data_ptr(),
            k0.data_ptr(),
            uq.data_ptr(),
            uk.data_ptr(),
            b,
            e,
            h,
            w,
            window,
            0,
            self.term.data_ptr(),
            self.alpha.data_ptr(),
            self.beta.data_ptr(),
            _threads(),
        )
        _check_rc(rc, "guidance term")

    def standard_term(self) -> torch.Tensor:
        """T0 in the fast backend's layout, B x p^2 x H x W (a copy)."""
        b, h, w = self.shape
        term = self.term.permute(0, 3, 1, 2, 4).reshape(b, self.window**2, h, -1)
        return term[..., :w].contiguous()

    def _prepared(self) -> tuple[int, int, int, float]:
        """The kernels' first arguments: T0, alpha, beta (pointers) and gamma."""
        return self.term.data_ptr(), self.alpha.data_ptr(), self.beta.data_ptr(), self.gamma

    def attend(
        self, depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eqs. 7-9, 11 for one iteration: ``(refined, next_mask)``, B x 1 x H x W each."""
        lib = _require_library()
        _check_no_grad(depth, mask, rel_pos_bias)
        check_maps(self.shape, self.window, depth, mask, rel_pos_bias)
        b, h, w = self.shape
        p = self.window
        out_dtype = depth.dtype
        d = _as_f32(depth, "depth")
        m = _as_f32(mask, "mask")
        bias = _as_f32(rel_pos_bias, "rel_pos_bias")
        refined = torch.empty(b, 1, h, w, dtype=torch.float32)
        next_mask = torch.empty(b, 1, h, w, dtype=torch.float32)
        rc = lib.attend(
            *self._prepared(),
            d.data_ptr(),
            m.data_ptr(),
            bias.data_ptr(),
            b,
            h,
            w,
            p,
            refined.data_ptr(),
            next_mask.data_ptr(),
            _threads(),
        )
        _check_rc(rc, "attention")
        if out_dtype != torch.float32:
            return refined.to(out_dtype), next_mask.to(out_dtype)
        return refined, next_mask

    __call__ = attend

    def iterate(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        rel_pos_bias: torch.Tensor,
        target: torch.Tensor,
        measured: torch.Tensor,
        to_metres: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One whole MSPN iteration, eqs. 6-11, in one native call (float32 in and out).

        Computes ``D~ = where(measured, target, values)`` (eq. 6), the attention on D~ and M
        (eqs. 7-9, 11), ``D' = where(measured, target, (1 - M) D~ + M R)`` (eq. 10) and
        ``M' = where(measured, M, m)``: what ``MSPNLayer.step`` computes with ``attend`` and
        torch operations, without any torch operation between two iterations (torch's
        OpenMP workers spin after each parallel region and would compete with the kernel's
        threads for the cores: about 2.5 ms of a 5 ms iteration on 2 cores). Pixels whose
        windows the mask has not reached are copied without computing their attention: with
        every key's mask 0, m = 0 and D' = D~ exactly (finite depths).

        Args:
            values: B x 1 x H x W, the layer's domain (metres, or log(D / D0)).
            mask: B x 1 x H x W in [0, 1] (M_n).
            rel_pos_bias: (2p-1) x (2p-1) relative position bias.
            target: B x 1 x H x W, S in the layer's domain (used where measured).
            measured: B x 1 x H x W bool (M0 of eq. 5).
            to_metres: ``(D0, S)`` in metres when ``values`` are log ratios: the call also
                returns ``where(measured, S, D0 * exp(D'))``.

        Returns:
            ``(D', M', metres)``; ``metres`` is None without ``to_metres``.
        """
        lib = _require_library()
        _check_no_grad(values, mask, rel_pos_bias, target)
        check_maps(self.shape, self.window, values, mask, rel_pos_bias)
        maps = {"target": target, "measured": measured}
        if to_metres is not None:
            maps.update(init_depth=to_metres[0], sparse=to_metres[1])
        for name, tensor in maps.items():
            if tuple(tensor.shape) != tuple(values.shape):
                raise ValueError(f"{name} must be {tuple(values.shape)}, got {tuple(tensor.shape)}")
        if measured.dtype != torch.bool:
            raise ValueError(f"measured must be a bool tensor, got {measured.dtype}")
        b, h, w = self.shape
        v, m = _as_f32(values, "values"), _as_f32(mask, "mask")
        bias, tgt = _as_f32(rel_pos_bias, "rel_pos_bias"), _as_f32(target, "target")
        meas = measured.contiguous()
        init = sparse = metres = None
        if to_metres is not None:
            init, sparse = _as_f32(to_metres[0], "D0"), _as_f32(to_metres[1], "sparse")
            metres = torch.empty(b, 1, h, w, dtype=torch.float32)
        next_values = torch.empty(b, 1, h, w, dtype=torch.float32)
        next_mask = torch.empty(b, 1, h, w, dtype=torch.float32)
        rc = lib.iterate(
            *self._prepared(),
            v.data_ptr(),
            m.data_ptr(),
            bias.data_ptr(),
            tgt.data_ptr(),
            meas.data_ptr(),
            None if init is None else init.data_ptr(),
            None if sparse is None else sparse.data_ptr(),
            b,
            h,
            w,
            self.window,
            next_values.data_ptr(),
            next_mask.data_ptr(),
            None if metres is None else metres.data_ptr(),
            _threads(),
        )
        _check_rc(rc, "iteration")
        return next_values, next_mask, metres


def guidance_window_term_native(qk: AffineQK, window: int) -> torch.Tensor:
    """T0 = q0(p) . k0(p_t) computed natively, in the fast backend's B x p^2 x H x W layout."""
    return NativeAttention(qk, window).standard_term()


def prepare_native(qk: AffineQK, window: int) -> AttendFn:
    """Precompute one layer's guidance term natively; return the per-iteration attention.

    Args:
        qk: affine query/key features (CPU; any floating dtype, computed in float32).
        window: odd window size p; H and W must be at least p.

    Returns:
        A :class:`NativeAttention`: called as ``attend(depth, mask, rel_pos_bias) ->
        (refined, next_mask)``, all B x 1 x H x W in the dtype of ``depth``, fresh tensors at
        every call; its :meth:`NativeAttention.iterate` runs a whole iteration (eqs. 6-11).

    Raises:
        RuntimeError: the backend is unavailable, or a tensor requires grad.
        ValueError: bad shapes, a non-CPU tensor, or a non-floating dtype.
    """
    return NativeAttention(qk, window)


def window_attention_native(
    qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``window_attention_reference``, natively (one-shot)."""
    return prepare_native(qk, window)(depth, mask, rel_pos_bias)
