"""MSPN layer and two-layer refinement: eqs. 4-13, worked values, invariants, training path."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sdr_core.attention import available_backends
from sdr_core.mspn import MSPN, MSPNConfig, MSPNLayer, iteration_count, iteration_schedule


@pytest.mark.parametrize(
    ("s", "expected"), [(1, 88), (10, 28), (100, 9), (1000, 6), (228 * 304, 6)]
)
def test_iteration_count_worked_values(s, expected):
    # method.md: at 228 x 304, s = 1 -> 88; 10 -> 28; 100 -> 9; 1000 -> 6
    assert iteration_count(228, 304, s) == expected


def test_iteration_count_hand_computed_window_7():
    # nu = sqrt(100 * 100 / 4) - 1 = 49; floor(2 * 49 / 3) + 1 = 33
    assert iteration_count(100, 100, 4, window=7) == 33


def test_iteration_count_zero_points_is_zero_and_bad_args_raise():
    assert iteration_count(228, 304, 0) == 0
    assert iteration_schedule(228, 304, 0, MSPNConfig()) == (0, 0)
    assert iteration_schedule(228, 304, 100, MSPNConfig()) == (9, 6)
    with pytest.raises(ValueError, match="sparse points must be >= 0"):
        iteration_count(10, 10, -1)
    with pytest.raises(ValueError, match="window must be an odd"):
        iteration_count(10, 10, 1, window=4)


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="window must be an odd integer >= 3, got 8"):
        MSPNConfig(window=8)
    with pytest.raises(ValueError, match="embed_dim must be >= 1"):
        MSPNConfig(embed_dim=0)


def _scene(b=1, h=16, w=20, c=8, n_points=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    gt = 1.0 + 4.0 * torch.rand(b, 1, h, w, generator=g, dtype=dtype)
    init = gt * (0.8 + 0.1 * torch.rand(b, 1, h, w, generator=g, dtype=dtype))
    sparse = torch.zeros_like(gt)
    for i in range(b):
        idx = torch.randperm(h * w, generator=g)[:n_points]
        sparse[i].view(-1)[idx] = gt[i].view(-1)[idx]
    guidance = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    return init, sparse, guidance


def _model(window=5, c=8, seed=0, backend="auto", dtype=torch.float32, domain="depth"):
    torch.manual_seed(seed)
    config = MSPNConfig(guidance_dim=c, embed_dim=6, window=window, backend=backend, domain=domain)
    return MSPN(config).to(dtype)


def test_steps_schedule_and_one_shot_agree():
    model = _model()
    init, sparse, guidance = _scene()
    with torch.no_grad():
        states = list(model.refine_steps(init, sparse, guidance))
        final = model(init, sparse, guidance)
    n1, n2 = model.schedule(16, 20, 3)
    # each layer's starting state (iteration 0), then its iterations
    assert [(s.layer, s.iteration) for s in states] == [(1, i) for i in range(n1 + 1)] + [
        (2, i) for i in range(n2 + 1)
    ]
    torch.testing.assert_close(states[-1].depth, final, rtol=0, atol=0)


def test_each_layer_starts_from_the_measurements_and_m0():
    model = _model()
    init, sparse, guidance = _scene()
    with torch.no_grad():
        states = list(model.refine_steps(init, sparse, guidance))
    m0 = (sparse > 0).float()
    start, restart = (s for s in states if s.iteration == 0)
    torch.testing.assert_close(start.depth, torch.where(sparse > 0, sparse, init), rtol=0, atol=0)
    torch.testing.assert_close(start.mask, m0, rtol=0, atol=0)
    last_of_layer1 = [s for s in states if s.layer == 1][-1]
    assert restart.layer == 2
    torch.testing.assert_close(restart.depth, last_of_layer1.depth, rtol=0, atol=0)
    torch.testing.assert_close(restart.mask, m0, rtol=0, atol=0)
    no_mask = list(model.refine_steps(init, sparse, guidance, use_mask=False))
    assert all((s.mask == 1).all() for s in no_mask if s.iteration == 0)


def test_states_are_fresh_tensors():
    model = _model()
    init, sparse, guidance = _scene()
    with torch.no_grad():
        states = list(model.refine_steps(init, sparse, guidance))
    pointers = {s.depth.data_ptr() for s in states} | {s.mask.data_ptr() for s in states}
    assert len(pointers) == 2 * len(states)
    assert not torch.equal(states[0].mask, states[-len(states) // 2].mask)


def test_measured_pixels_keep_sparse_depth_and_mask():
    model = _model()
    init, sparse, guidance = _scene(n_points=5)
    measured = sparse > 0
    with torch.no_grad():
        for state in model.refine_steps(init, sparse, guidance):
            assert torch.equal(state.depth[measured], sparse[measured])
            assert (state.mask[measured] == 1).all()
            assert (state.mask >= 0).all()
            assert (state.mask <= 1 + 1e-6).all()


def test_mask_grows_at_most_one_window_radius_per_iteration():
    model = _model(window=5)
    init, _, guidance = _scene(h=30, w=30)
    sparse = torch.zeros_like(init)
    sparse[0, 0, 15, 15] = 2.0
    with torch.no_grad():
        states = [
            s for s in model.refine_steps(init, sparse, guidance) if s.layer == 1 and s.iteration
        ]
    for n, state in enumerate(states[:5], start=1):
        ys, xs = torch.nonzero(state.mask[0, 0] > 0, as_tuple=True)
        assert (ys - 15).abs().max() <= 2 * n
        assert (xs - 15).abs().max() <= 2 * n
    # pixels the mask has not reached keep D0 exactly (eq. 10 with M_n = 0)
    far = states[0].mask[0, 0] == 0
    assert torch.equal(states[1].depth[0, 0][far], init[0, 0][far])


def test_second_layer_restarts_from_measurement_mask():
    model = _model()
    init, sparse, guidance = _scene()
    with torch.no_grad():
        states = list(model.refine_steps(init, sparse, guidance))
    first_of_layer2 = next(s for s in states if s.layer == 2 and s.iteration == 1)
    last_of_layer1 = [s for s in states if s.layer == 1][-1]
    assert first_of_layer2.mask.sum() < last_of_layer1.mask.sum()


def test_zero_points_is_a_no_op():
    model = _model()
    init, _, guidance = _scene()
    sparse = torch.zeros_like(init)
    with torch.no_grad():
        assert list(model.refine_steps(init, sparse, guidance)) == []
        assert torch.equal(model(init, sparse, guidance), init)


def test_no_mask_ablation_updates_everything_from_the_start():
    model = _model()
    init, sparse, guidance = _scene()
    with torch.no_grad():
        first = next(
            s for s in model.refine_steps(init, sparse, guidance, use_mask=False) if s.iteration
        )
    assert (first.mask == 1).all()
    unmeasured = sparse == 0
    assert (first.depth[unmeasured] != init[unmeasured]).all()


@pytest.mark.parametrize("domain", ["depth", "ratio", "ratio-depth"])
@pytest.mark.parametrize("backend", [b for b in available_backends() if b != "reference"])
def test_backends_give_identical_refinement(backend, domain):
    # native runs whole iterations in one call (NativeAttention.iterate, metres included)
    init, sparse, guidance = _scene(b=2, n_points=4)
    reference = _model(backend="reference", domain=domain)
    other = _model(backend=backend, domain=domain)
    other.load_state_dict(reference.state_dict())
    with torch.no_grad():
        want = list(reference.refine_steps(init, sparse, guidance))
        got = list(other.refine_steps(init, sparse, guidance))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        # measured worst |difference| over a full two-layer run at 16x20: ~2e-6 m
        torch.testing.assert_close(a.depth, b.depth, rtol=1e-5, atol=2e-5)
        torch.testing.assert_close(a.mask, b.mask, rtol=1e-5, atol=2e-5)


def test_every_parameter_gets_a_gradient_and_checkpointing_matches():
    init, sparse, guidance = _scene(n_points=6, dtype=torch.float64)
    grads = []
    for checkpointing in (False, True):
        model = _model(dtype=torch.float64)
        model.set_grad_checkpointing(checkpointing)
        guidance_leaf = guidance.clone().requires_grad_()
        out = model(init, sparse, guidance_leaf, schedule=(3, 2))
        out.square().mean().backward()
        named = dict(model.named_parameters())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in named.values()), [
            n for n, p in named.items() if p.grad is None or p.grad.abs().sum() == 0
        ]
        grads.append([p.grad for p in named.values()] + [guidance_leaf.grad])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_bad_inputs_raise():
    model = _model()
    init, sparse, guidance = _scene()
    with pytest.raises(ValueError, match="sparse must match init_depth"):
        list(model.refine_steps(init, sparse[..., :5], guidance))
    with pytest.raises(ValueError, match="guidance must be"):
        list(model.refine_steps(init, sparse, guidance[..., :5]))
    bad = sparse.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        list(model.refine_steps(init, bad, guidance))
    small = _scene(h=4, w=4)
    with pytest.raises(ValueError, match="smaller than the 5x5 window"):
        list(model.refine_steps(*small))


def test_config_is_frozen_and_replaceable():
    config = MSPNConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.window = 7  # type: ignore[misc]
    assert dataclasses.replace(config, window=7).window == 7


def test_truncated_backprop_matches_forward_and_reaches_guidance():
    init, sparse, guidance = _scene(n_points=2)
    model = _model(backend="fast")
    with torch.no_grad():
        full = model(init, sparse, guidance)
    guidance_leaf = guidance.clone().requires_grad_()
    truncated = model(init, sparse, guidance_leaf, grad_iterations=2)
    torch.testing.assert_close(truncated, full, rtol=1e-5, atol=1e-5)
    truncated.mean().backward()
    assert guidance_leaf.grad is not None
    assert guidance_leaf.grad.abs().sum() > 0


def test_eq13_second_layer_schedule_matches_the_first_layer_with_a_floor():
    paper = MSPNConfig()
    eq13 = MSPNConfig(second_layer_schedule="eq13")
    # 10 points at 228 x 304: N = 28 (eq. 13); the paper's second layer stays at 6.
    assert iteration_schedule(228, 304, 10, paper) == (28, 6)
    assert iteration_schedule(228, 304, 10, eq13) == (28, 28)
    # Many points: N = 6, so both rules give the paper's schedule.
    assert iteration_schedule(228, 304, 1000, eq13) == (6, 6)
    assert iteration_schedule(228, 304, 0, eq13) == (0, 0)
    floor = MSPNConfig(second_layer_schedule="eq13", second_layer_iterations=8)
    assert iteration_schedule(228, 304, 1000, floor) == (6, 8)
    with pytest.raises(ValueError, match="second_layer_schedule"):
        MSPNConfig(second_layer_schedule="longer")


def test_mspn_runs_the_eq13_schedule():
    config = MSPNConfig(guidance_dim=4, embed_dim=4, window=5, second_layer_schedule="eq13")
    model = MSPN(config).eval()
    depth = torch.full((1, 1, 24, 24), 2.0)
    sparse = torch.zeros_like(depth)
    sparse[0, 0, 3, 3] = 1.0
    guidance = torch.randn(1, 4, 24, 24)
    n1, n2 = model.schedule(24, 24, 1)
    assert n1 == n2 > 6
    with torch.no_grad():
        states = list(model.refine_steps(depth, sparse, guidance))
    assert [s.layer for s in states] == [1] * (n1 + 1) + [2] * (n2 + 1)


def test_refiner_initialisation_floods_the_mask_and_keeps_the_depth():
    # init_as_refiner: the mask grows one window radius per iteration from a single point
    # (a (12k + 1)-pixel square after k iterations at p = 13), yet the depth barely moves.
    torch.manual_seed(0)
    config = MSPNConfig(guidance_dim=8, embed_dim=8)
    layer = MSPNLayer(config)
    layer.init_as_refiner()
    h, w = 81, 85
    rows = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    depth = (2.0 + 0.05 * rows + 0.3 * torch.rand(1, 1, h, w)).expand(1, 1, h, w).contiguous()
    sparse = torch.zeros_like(depth)
    sparse[0, 0, 40, 42] = 3.0
    measured = sparse > 0
    attend = layer.prepare(torch.randn(1, 8, h, w))
    d, m = torch.where(measured, sparse, depth), measured.float()
    start = d.clone()
    with torch.no_grad():
        for k in (1, 2, 3):
            d, m = layer.step(attend, d, m, sparse, measured)
            assert int((m > 0.5).sum()) == (12 * k + 1) ** 2
    changed = (d - start).abs()[~measured]
    assert float(changed.max()) < 0.02  # measured: 0.004 m on this noisy ramp
    default = MSPNLayer(config)
    d2, m2 = torch.where(measured, sparse, depth), measured.float()
    attend2 = default.prepare(torch.randn(1, 8, h, w))
    with torch.no_grad():
        for _ in range(3):
            d2, m2 = default.step(attend2, d2, m2, sparse, measured)
    assert int((m2 > 0.5).sum()) < (12 * 3 + 1) ** 2  # PyTorch's init does not flood


def _ratio_model(domain="ratio", seed=0):
    torch.manual_seed(seed)
    config = MSPNConfig(guidance_dim=8, embed_dim=6, window=5, domain=domain)
    return MSPN(config)


def test_ratio_domain_unreached_pixels_keep_d0_and_measurements_keep_s():
    # rho = log(D / D0) starts at 0: a pixel the mask has not reached (mask 0 through the
    # iteration) keeps D0 exactly, and measured pixels hold S exactly, in every state.
    model = _ratio_model()
    init, sparse, guidance = _scene(h=30, w=34, n_points=1)
    measured = sparse > 0
    with torch.no_grad():
        states = list(model.refine_steps(init, sparse, guidance, schedule=(2, 0)))
    assert states[0].depth.data_ptr() != init.data_ptr()
    for before, after in zip(states, states[1:], strict=False):
        untouched = (before.mask == 0) & ~measured
        assert untouched.any()
        torch.testing.assert_close(after.depth[untouched], init[untouched], rtol=1e-6, atol=0)
        assert torch.equal(after.depth[measured], sparse[measured])


def test_ratio_domain_is_the_depth_domain_run_on_log_ratios():
    # Eqs. 6-11 unchanged: the ratio model's layer-1 states are exp of a depth-domain run of
    # the same weights on rho (D0 -> 0, S -> log(S / D0)), times D0.
    ratio = _ratio_model("ratio")
    depth = _ratio_model("depth")
    depth.load_state_dict(ratio.state_dict())
    init, sparse, guidance = _scene(n_points=4)
    measured = sparse > 0
    rho_sparse = torch.where(measured, torch.log(sparse.clamp_min(1e-3) / init), 0.0)
    # the depth model sees rho as its "depth": D0 = 0 everywhere is not allowed as a metric
    # map, so run its layer directly
    layer = depth.layers[0]
    with torch.no_grad():
        states = list(ratio.refine_steps(init, sparse, guidance, schedule=(3, 0)))
        attend = layer.prepare(guidance)
        values, mask = torch.where(measured, rho_sparse, 0.0), measured.float()
        for state in states[1:]:
            values, mask = layer.step(attend, values, mask, rho_sparse, measured)
            expected = torch.where(measured, sparse, init * torch.exp(values))
            torch.testing.assert_close(state.depth, expected, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(state.mask, mask, rtol=0, atol=0)


def test_one_point_in_the_ratio_domain_moves_d0_by_a_bounded_ratio():
    # Eqs. 9-10 on rho are convex mixes of the window's ratios, all in [0, log 1.5] here:
    # every pixel's D / D0 stays within [1, 1.5] (D0's shape is kept, never flattened to S),
    # and pixels the mask has reached move towards the measurement.
    model = _ratio_model()
    for layer in model.layers:
        layer.init_as_refiner(key_logit=10.0, self_bias=0.0)
    init, _, guidance = _scene(h=21, w=21, n_points=0)
    sparse = torch.zeros_like(init)
    sparse[0, 0, 10, 10] = 1.5 * float(init[0, 0, 10, 10])
    with torch.no_grad():
        state = list(model.refine_steps(init, sparse, guidance, schedule=(12, 0)))[-1]
    ratio = state.depth / init
    assert float(ratio.min()) >= 1 - 1e-6
    assert float(ratio.max()) <= 1.5 + 1e-5
    reached = state.mask > 0.99
    assert reached.sum() > 300
    assert (ratio[reached] > 1 + 1e-4).all()


def test_ratio_depth_domain_runs_layer2_in_metres():
    model = _ratio_model("ratio-depth")
    init, sparse, guidance = _scene(n_points=4)
    with torch.no_grad():
        states = list(model.refine_steps(init, sparse, guidance))
        final = model(init, sparse, guidance)
    assert states[-1].layer == 2
    torch.testing.assert_close(states[-1].depth, final, rtol=0, atol=0)
    with pytest.raises(ValueError, match="domain must be one of"):
        MSPNConfig(domain="inverse")


def test_ratio_domain_gradients_reach_every_parameter():
    model = _ratio_model()
    init, sparse, guidance = _scene(n_points=4)
    guidance.requires_grad_(True)
    loss = model(init, sparse, guidance).square().mean()
    loss.backward()
    assert guidance.grad is not None
    assert guidance.grad.abs().sum() > 0
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_window_weights_in_the_ratio_domain_match_the_step():
    model = _ratio_model()
    init, sparse, guidance = _scene(n_points=4)
    with torch.no_grad():
        states = list(model.refine_steps(init, sparse, guidance, schedule=(2, 0)))
    row, col = 7, 9
    window = model.window_weights(guidance, sparse, states[0], row, col, init_depth=init)
    assert window.domain == "ratio"
    torch.testing.assert_close(
        torch.tensor(window.depth_after), states[1].depth[0, 0, row, col], rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        torch.tensor(window.mask_after), states[1].mask[0, 0, row, col], rtol=1e-5, atol=1e-6
    )
    # R is D0 times exp of the attention-weighted log-ratios of the keys
    rho_keys = torch.log(torch.tensor(window.depth)) - torch.log(
        init[0, 0, window.top : window.top + 5, window.left : window.left + 5]
    )
    refined = init[0, 0, row, col] * torch.exp((torch.tensor(window.weights) * rho_keys).sum())
    torch.testing.assert_close(torch.tensor(window.refined), refined, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pass init_depth"):
        model.window_weights(guidance, sparse, states[0], row, col)
