"""Fixtures shared by the studio tests: a tiny pipeline, a 30 x 40 scene in every format."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from helpers import TINY
from PIL import Image

from sdr_core import build_untrained_pipeline
from sdr_core.data import io
from studio.scene import load_scene
from studio.session import new_session

H, W = 30, 40


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 30 x 40 image with GT in every format the app reads."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    gt = (1.0 + 4.0 * rng.random((H, W))).astype(np.float32)
    gt[0, :5] = 0.0  # a few missing pixels
    Image.fromarray(rgb).save(folder / "image.png")
    io.write_depth_png(folder / "depth_mm.png", gt, units="mm")
    io.write_depth_png(folder / "depth_kitti.png", gt, units="kitti")
    np.save(folder / "depth.npy", gt)
    np.save(folder / "zeros.npy", np.zeros((H, W), np.float32))
    np.save(folder / "small.npy", gt[:20])
    Image.fromarray((gt * 40).astype(np.uint8)).save(folder / "depth_8bit.png")
    (folder / "broken.png").write_bytes(b"not an image at all")
    with h5py.File(folder / "nyu.h5", "w") as h5:
        h5["rgb"] = np.transpose(rgb, (2, 0, 1))
        h5["depth"] = gt
    np.save(folder / "init.npy", np.full((H, W), 2.5, np.float32))
    return {"folder": folder, "rgb": rgb, "gt": gt}


@pytest.fixture
def scene(pipe, files):
    folder = files["folder"]
    return load_scene(pipe, folder / "image.png", folder / "depth_mm.png", long_side=64)


@pytest.fixture
def session(scene):
    return new_session(scene)
