"""Behaviour pins: one refinement and one evaluation row of a seeded untrained pipeline.

The values were recorded before the studio refactor (issue 16) moved the run's starting
state, the layer-2 restart and the method table into the library; these tests say that the
numbers did not move. They use the tiny random pipeline of ``helpers.TINY`` (seed 0), never
the shipped checkpoints, which are retrained from time to time. The tolerance (1e-5) only
absorbs float rounding of the compiled CPU kernels on another machine; the refactor itself
was checked bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY

from sdr_core import build_untrained_pipeline, evaluate
from sdr_core.checkpoints import save_module
from sdr_core.sparse import random_points

TOL = 1e-5

# (layer, iteration, mean depth in metres, mean mask) of every iteration
STEPS = [
    (1, 1, 5.284243, 0.018769), (1, 2, 5.281689, 0.031475), (1, 3, 5.278384, 0.043306),
    (1, 4, 5.274538, 0.054634), (1, 5, 5.270331, 0.065596), (1, 6, 5.265883, 0.076257),
    (1, 7, 5.261269, 0.086644), (1, 8, 5.256536, 0.096772), (1, 9, 5.251712, 0.106653),
    (1, 10, 5.246816, 0.116298), (1, 11, 5.241858, 0.125718), (1, 12, 5.236847, 0.134924),
    (2, 1, 5.236847, 0.008204), (2, 2, 5.236862, 0.009729), (2, 3, 5.236896, 0.011246),
    (2, 4, 5.236941, 0.012763), (2, 5, 5.236994, 0.014279), (2, 6, 5.237049, 0.015796),
]  # fmt: skip
# final depth (metres) at rows 0, 6, .., 24 and columns 0, 8, .., 32
FINAL = [
    [5.212809, 4.939674, 5.253525, 5.253002, 5.290723],
    [5.253412, 5.262448, 5.319888, 5.327164, 5.116976],
    [5.275197, 5.215825, 5.281342, 5.330864, 4.828444],
    [5.323621, 5.338802, 5.425988, 5.345219, 5.265800],
    [5.277352, 5.083793, 5.285558, 5.271763, 5.261470],
]
# one evaluation row per method: 10 points (four metrics), 4 lines and the hole (RMSE, m)
ROWS = {
    "mspn": ((2.532479667, 2.473577611, 0.943922006, 0.01344086), 2.43436895, 2.717182957),
    "mspn_layer1": ((2.532437373, 2.472877112, 0.943726267, 0.014784946), 2.436216752, 2.717744352),
    "mspn_no_mask": (
        (2.175901657, 2.094203083, 0.800488473, 0.043010753), 1.612580064, 2.310900443
    ),
    "mspn_no_mask_trained": (
        (2.419279624, 2.370115604, 0.902572059, 0.01344086), 2.056023294, 2.591088406
    ),
    "mspn_faithful": (
        (2.348790089, 2.276769599, 0.86855827, 0.024193548), 1.856894511, 2.481496287
    ),
    "mde": ((2.608139757, 2.5846772, 0.982736362, 0.0), 2.608139757, 2.746509342),
    "ls_align": ((0.550098824, 0.440012452, 0.161837799, 0.717741935), 0.349631349, 0.419394687),
    "ls_interp": ((0.521420754, 0.411589842, 0.151707027, 0.735215054), 0.224430305, 0.375063869),
}  # fmt: skip


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


def test_one_refinement_is_pinned(pipe):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    gt = (1 + 4 * rng.random((30, 40))).astype(np.float32)
    sparse = random_points(gt, 8, seed=3)
    init = pipe.estimate_depth(image)
    states = [s for s in pipe.refine_steps(image, sparse, init_depth=init) if s.iteration > 0]
    assert [(s.layer, s.iteration) for s in states] == [step[:2] for step in STEPS]
    for state, (_, _, depth, mask) in zip(states, STEPS, strict=True):
        assert float(state.depth.mean()) == pytest.approx(depth, abs=TOL)
        assert float(state.mask.mean()) == pytest.approx(mask, abs=TOL)
    result = pipe.refine(image, sparse, init_depth=init)
    assert result.schedule == (12, 6)
    np.testing.assert_allclose(result.depth[::6, ::8], FINAL, rtol=0, atol=TOL)
    np.testing.assert_array_equal(result.depth, states[-1].depth)


def _save_refiner(seed: int, folder) -> str:
    other = build_untrained_pipeline(TINY, device="cpu", seed=seed)
    folder.mkdir()
    save_module(folder / "guidance.safetensors", other.guidance, TINY.guidance, "guidance")
    save_module(folder / "mspn.safetensors", other.mspn, TINY.mspn, "mspn")
    return str(folder)


def _scene(height: int = 24, width: int = 32) -> evaluate.EvalScene:
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:height, 0:width]
    depth = 2.0 + 0.05 * rows + 0.02 * cols * rng.uniform(0.5, 1.5)
    depth[10:25, 12:30] -= 0.8
    depth[rng.random((height, width)) < 0.02] = 0.0
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return evaluate.EvalScene("pin", rgb, depth.astype(np.float32))


def test_one_evaluation_row_is_pinned(pipe, tmp_path):
    config = evaluate.EvalConfig(
        points=(10,), lines=(4,), hole_points=30, n_scenes=0, middlebury=False,
        methods=tuple(ROWS),
        no_mask_checkpoints=_save_refiner(1, tmp_path / "no_mask"),
        faithful_checkpoints=_save_refiner(2, tmp_path / "faithful"),
    )  # fmt: skip
    results = evaluate.evaluate_scenes(pipe, [_scene()], config)
    for method, (points, lines, hole) in ROWS.items():
        got = results["points"][method][10]
        for key, want in zip(("rmse", "mae", "rel", "d1"), points, strict=True):
            assert got[key] == pytest.approx(want, rel=TOL, abs=1e-9), (method, key)
        assert results["lines"][method][4]["rmse"] == pytest.approx(lines, rel=TOL), method
        assert results["hole"][method][30]["rmse"] == pytest.approx(hole, rel=TOL), method
