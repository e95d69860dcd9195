"""Sparse autoencoders: activations on hand-worked inputs, the STE gradients, each variant's
invariants (decoder norms, exact counts, AuxK), metrics with exact answers, bad input."""
import math

import pytest
import torch

from sparsity_core import sae as S

pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- activations
def test_topk_relu_hand_worked():
    pre = torch.tensor([[3.0, -1.0, 2.0, 0.5], [-3.0, -2.0, 1.0, -1.0]])
    out = S.topk_relu(pre, 2)
    assert torch.equal(out, torch.tensor([[3.0, 0, 2.0, 0], [0, 0, 1.0, 0]]))  # row 2: ReLU after TopK leaves 1


def test_topk_keeps_at_most_k_and_is_identity_at_full_width_on_positive_inputs():
    pre = torch.randn(50, 32, generator=_gen())
    out = S.topk_relu(pre, 5)
    assert ((out != 0).sum(1) <= 5).all() and ((out != 0).sum(1) == torch.minimum(
        torch.full((50,), 5), (pre > 0).sum(1))).all()
    pos = pre.abs() + 0.1
    assert torch.equal(S.topk_relu(pos, 32), pos)


def test_topk_gradient_reaches_only_selected_latents():
    pre = torch.randn(4, 10, generator=_gen(), requires_grad=True)
    out = S.topk_relu(pre, 3)
    out.sum().backward()
    assert torch.equal(pre.grad != 0, out != 0)


def test_batch_topk_selects_exactly_B_times_k():
    pre = torch.randn(16, 64, generator=_gen()).abs() + 0.01   # all positive, no ties
    out = S.batch_topk(pre, 4)
    assert int((out != 0).sum()) == 16 * 4
    assert float(out[out != 0].min()) >= float(pre.flatten().topk(64).values[-1])


def test_jumprelu_forward_and_threshold_gradient():
    theta = torch.tensor([1.0, 1.0, 1.0, 1.0], requires_grad=True)
    pre = torch.tensor([[0.5, 0.9996, 1.0004, 2.0]], requires_grad=True)
    eps = 0.001
    out = S.jumprelu(pre, theta, eps)
    assert torch.equal(out.detach(), torch.tensor([[0.0, 0.0, 1.0004, 2.0]]))
    out.sum().backward()
    # d/dtheta = -(theta / eps) K((pre - theta) / eps): -1000 inside the window |pre - theta| < eps / 2, else 0
    assert torch.allclose(theta.grad, torch.tensor([0.0, -1000.0, -1000.0, 0.0]))
    assert torch.equal(pre.grad, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))


def test_step_pseudo_gradient_equals_finite_difference_of_smoothed_step():
    eps = 0.1
    theta = torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    pre = torch.tensor([[0.47, 0.53, 0.9]], dtype=torch.float64)
    S.heaviside_step(pre, theta, eps).sum().backward()

    def smoothed(t):   # H convolved with the rectangle kernel of width eps
        return ((pre - t) / eps + 0.5).clamp(0, 1).sum(0)
    h = 1e-6
    fd = (smoothed(theta.detach() + h) - smoothed(theta.detach() - h)) / (2 * h)
    assert torch.allclose(theta.grad, fd, atol=1e-6)
    assert torch.allclose(theta.grad, torch.tensor([-10.0, -10.0, 0.0], dtype=torch.float64))


def test_step_gives_no_gradient_to_pre_activations():
    theta = torch.zeros(3, requires_grad=True)
    pre = torch.randn(5, 3, generator=_gen(), requires_grad=True)
    S.heaviside_step(pre, theta, 1.0).sum().backward()
    assert torch.equal(pre.grad, torch.zeros(5, 3))


# ----------------------------------------------------------------------------- variants
KINDS = {
    "relu": dict(l1_coeff=0.1), "topk": dict(k=4, aux_k=8), "batchtopk": dict(k=4, threshold_start=0),
    "matryoshka": dict(k=4, prefixes=[8, 16]), "jumprelu": dict(l0_coeff=0.01, bandwidth=0.05),
    "gated": dict(l1_coeff=0.1), "multi_topk": dict(k=4),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_decoder_columns_stay_unit_norm_and_loss_falls(kind):
    g = _gen()
    x, _ = S.superposition_data(2048, 16, 48, 0.05, generator=g)
    x, _, _ = S.normalise(x)
    m = S.make_sae(kind, 16, 64, generator=_gen(1), dead_tokens=512, **KINDS[kind])
    hist = S.train_sae(m, x, steps=60, batch_size=256, lr=3e-3, generator=_gen(2), progress=False)
    assert torch.allclose(m.W_dec.norm(dim=0), torch.ones(64), atol=1e-5)
    assert sum(hist.train_loss[-10:]) < sum(hist.train_loss[:10])
    ev = S.evaluate_sae(m, x)
    assert 0 <= ev["fvu"] < 1 and ev["l0"] > 0


def test_decoder_gradient_projection_removes_the_component_along_each_column():
    m = S.TopKSAE(8, 16, k=3, generator=_gen())
    x = torch.randn(32, 8, generator=_gen(1))
    m.loss(x).loss.backward()
    raw = m.W_dec.grad.clone()
    assert (raw * m.W_dec.detach()).sum(0).abs().max() > 1e-3          # something to remove
    m.project_decoder_grad_()
    W = m.W_dec.detach()
    assert torch.allclose((m.W_dec.grad * W).sum(0), torch.zeros(16), atol=1e-6)
    torch.testing.assert_close(m.W_dec.grad, raw - (W * raw).sum(0) * W)


def test_a_deep_copied_sae_trains_exactly_as_the_original():
    """The projection lives in train_sae's optimizer hook, not on the module: a copy keeps it."""
    import copy
    x, _ = S.superposition_data(1024, 8, 24, 0.1, generator=_gen())
    m = S.TopKSAE(8, 32, k=3, aux_k=4, dead_tokens=64, generator=_gen(1))
    twin = copy.deepcopy(m)
    for model in (m, twin):
        S.train_sae(model, x, steps=20, batch_size=128, lr=1e-2, generator=_gen(2), progress=False)
    for (name, a), b in zip(m.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name


def test_tied_init_transposes_decoder():
    m = S.TopKSAE(8, 16, k=3, generator=_gen())
    assert torch.equal(m.W_enc.detach(), m.W_dec.detach().T)
    u = S.TopKSAE(8, 16, k=3, tied_init=False, generator=_gen())
    assert not torch.equal(u.W_enc.detach(), u.W_dec.detach().T)


def test_topk_sae_keeps_k_and_test_time_k():
    m = S.TopKSAE(8, 32, k=3, generator=_gen())
    x = torch.randn(20, 8, generator=_gen(1))
    assert ((m.encode(x) != 0).sum(1) <= 3).all()
    assert ((m.encode(x, k=10) != 0).sum(1) <= 10).all()


def test_auxk_is_zero_without_dead_latents_and_reaches_only_dead_ones():
    m = S.TopKSAE(8, 32, k=2, aux_k=4, dead_tokens=10, generator=_gen())
    x = torch.randn(16, 8, generator=_gen(1))
    pre = m.pre_acts(x)
    assert float(m.aux_loss(pre, x)) == 0.0
    dead = torch.zeros(32, dtype=torch.bool)
    dead[[3, 7, 11, 20, 21]] = True
    m.tokens_since_fired[dead] = 100
    m.zero_grad()
    pre = m.pre_acts(x)
    aux = m.aux_loss(pre, x)
    assert float(aux.detach()) > 0
    aux.backward()
    touched = m.W_enc.grad.abs().sum(1) != 0
    assert not touched[~dead].any() and touched[dead].any()


def test_sparse_decode_equals_dense_decode():
    m = S.TopKSAE(8, 64, k=5, generator=_gen())
    x = torch.randn(10, 8, generator=_gen(1))
    vals, idx = m.pre_acts(x).topk(5, dim=1)
    vals = torch.relu(vals)
    assert torch.allclose(m.decode_sparse(idx, vals), m.decode(m.encode(x)), atol=1e-6)


def test_residual_stream_rows_follow_windows():
    from sparsity_core.models import TinyGPT, TinyGPTConfig
    model = TinyGPT(TinyGPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=16))
    ids = torch.randint(50, (3, 8), generator=_gen())
    acts = S.residual_stream(model, ids, layer=1, batch_size=2)
    assert acts.shape == (24, 16)
    again = S.residual_stream(model, ids[1:2], layer=1)
    assert torch.allclose(acts[8:16], again, atol=1e-5)
    with pytest.raises(ValueError, match="layer"):
        S.residual_stream(model, ids, layer=2)


def test_matryoshka_first_prefix_reconstructs_on_its_own():
    m = S.MatryoshkaSAE(8, 16, k=2, prefixes=[4], generator=_gen())
    x = torch.randn(32, 8, generator=_gen(1))
    f = S.batch_topk(m.pre_acts(x), 2)
    total, x_hat = m.reconstruction(x, f)
    x4 = m.b_dec + f[:, :4] @ m.W_dec[:, :4].T
    expect = 0.5 * (x - x4).pow(2).sum(1).mean() + 0.5 * (x - m.decode(f)).pow(2).sum(1).mean()
    assert torch.allclose(total, expect) and torch.allclose(x_hat, m.decode(f))


def test_batchtopk_inference_uses_the_threshold():
    m = S.BatchTopKSAE(8, 16, k=2, threshold_start=0, generator=_gen())
    x = torch.randn(64, 8, generator=_gen(1))
    out = m.training_step(x)
    assert float(m.threshold) == float(out.f.detach()[out.f > 0].min())     # the first update copies the minimum
    m.eval()
    f = m.encode(x)
    assert (f[f > 0] > m.threshold).all()


def test_gated_code_is_gate_times_magnitude():
    m = S.GatedSAE(4, 6, l1_coeff=0.0, generator=_gen())
    with torch.no_grad():
        m.b_enc.copy_(torch.tensor([-10.0, 10, -10, 10, -10, 10]))
    x = torch.randn(5, 4, generator=_gen(1))
    f = m.encode(x)
    assert torch.equal(f[:, ::2], torch.zeros(5, 3))
    mag = torch.relu((x - m.b_dec) @ m.W_enc.T * m.r_mag.exp() + m.b_mag)
    assert torch.allclose(f[:, 1::2], mag[:, 1::2])


# ----------------------------------------------------------------------------- no hidden state
def _stats(m):
    return {k: v.clone() for k, v in m.named_buffers()}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_loss_changes_no_statistic_in_either_mode(kind, mode):
    m = S.make_sae(kind, 8, 32, generator=_gen(), dead_tokens=16, **KINDS[kind])
    m.train(mode == "train")
    x = torch.randn(24, 8, generator=_gen(1))
    before = _stats(m)
    out = m.loss(x)
    assert isinstance(out, S.SAEOutput) and out.loss.dim() == 0 and out.f.shape == (24, 32)
    for k, v in _stats(m).items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_update_stats_refuses_eval_mode(kind):
    m = S.make_sae(kind, 8, 32, generator=_gen(), **KINDS[kind]).eval()
    with pytest.raises(RuntimeError, match="training mode"):
        m.training_step(torch.randn(4, 8, generator=_gen(1)))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_training_steps_do_not_depend_on_losses_evaluated_in_between(kind):
    xs = [torch.randn(16, 8, generator=_gen(i)) for i in range(4)]
    a = S.make_sae(kind, 8, 32, generator=_gen(9), dead_tokens=20, **KINDS[kind])
    b = S.make_sae(kind, 8, 32, generator=_gen(9), dead_tokens=20, **KINDS[kind])
    logs_a = [a.training_step(x).logs() for x in xs]
    logs_b = []
    for x in xs:
        b.loss(torch.randn(16, 8, generator=_gen(7)))              # an evaluation between steps
        b.eval(); b.encode(x); b.train()
        logs_b.append(b.training_step(x).logs())
    assert logs_a == logs_b
    for k, v in _stats(a).items():
        assert torch.equal(v, _stats(b)[k]), k


def test_update_stats_counts_tokens_since_fired_and_steps():
    m = S.TopKSAE(4, 6, k=1, generator=_gen())
    f = torch.tensor([[0.0, 2.0, 0, 0, 0, 0], [0, 0, 0, 1.0, 0, 0], [0, 3.0, 0, 0, 0, 0]])
    m.update_stats(f)
    assert torch.equal(m.tokens_since_fired, torch.tensor([3, 0, 3, 0, 3, 3])) and int(m.step) == 1
    m.update_stats(f[:1])
    assert torch.equal(m.tokens_since_fired, torch.tensor([4, 0, 4, 1, 4, 4])) and int(m.step) == 2


def test_step_output_logs_are_the_step_numbers():
    m = S.ReLUSAE(4, 6, l1_coeff=0.5, generator=_gen())
    x = torch.randn(10, 4, generator=_gen(1))
    out = m.training_step(x)
    logs = out.logs()
    assert list(logs) == ["mse", "l0", "dead", "l1"]
    assert logs["l0"] == pytest.approx(float((out.f > 0).sum()) / 10, rel=1e-6)
    torch.testing.assert_close(out.loss, out.terms["mse"] + 0.5 * out.terms["l1"])


def test_jumprelu_penalty_ramp_counts_the_current_step():
    m = S.JumpReLUSAE(4, 6, l0_coeff=1.0, l0_warmup=4, generator=_gen())
    x = torch.randn(8, 4, generator=_gen(1))
    assert m.penalty_ramp() == 0.0                              # before any step: no penalty
    out = m.training_step(x)
    assert m.penalty_ramp() == 0.25
    torch.testing.assert_close(out.loss, out.terms["mse"] + 0.25 * out.terms["l0_penalty"])


def test_auxk_is_a_hook_of_the_skeleton_off_by_default():
    assert S.ReLUSAE(4, 6, l1_coeff=0.1).aux_k == 0
    m = S.BatchTopKSAE(4, 6, k=1, aux_k=2, dead_tokens=1, generator=_gen())
    m.tokens_since_fired.fill_(5)
    pre = m.pre_acts(torch.randn(8, 4, generator=_gen(1)))
    assert type(m).aux_loss is S.SAE.aux_loss and float(m.aux_loss(pre, torch.randn(8, 4)).detach()) > 0


# ----------------------------------------------------------------------------- metrics
def test_fvu_perfect_is_zero_and_mean_predictor_is_one():
    x = torch.randn(100, 5, generator=_gen())
    assert S.fvu(x, x) == 0.0
    assert math.isclose(S.fvu(x, x.mean(0).expand_as(x)), 1.0, rel_tol=1e-12)


def test_shrinkage_of_a_scaled_reconstruction_is_the_scale():
    x = torch.randn(100, 5, generator=_gen(), dtype=torch.float64)
    assert math.isclose(S.shrinkage(x, 0.8 * x), 0.8, rel_tol=1e-12)


def test_l0_dead_fraction_and_mmcs():
    f = torch.tensor([[1.0, 0, 0, 2], [0, 0, 0, 3]])
    assert S.l0(f) == 1.5 and S.dead_fraction(f) == 0.5
    feats = torch.eye(3)
    assert S.mmcs(feats, torch.eye(3)[:, [2, 0, 1]]) == 1.0


def test_frontier_at_interpolates_in_log_l0_and_refuses_to_extrapolate():
    l0s, fvus = [32, 8], [0.1, 0.3]
    assert math.isclose(S.frontier_at(l0s, fvus, 16), 0.2)      # 16 is halfway between 8 and 32 in log
    assert S.frontier_at(l0s, fvus, 8) == 0.3
    assert math.isnan(S.frontier_at(l0s, fvus, 64))


def test_absorption_rate_counts_a_child_latent_that_took_the_parent_direction():
    parent = torch.tensor([[1.0, 0.0]])
    child_dir = torch.tensor([0.6, 0.8])                      # cos 0.6 with the parent
    W_dec = torch.stack([parent[0], child_dir], 1)            # latent 0 = parent's, latent 1 = child's
    f = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    parent_active = torch.tensor([[True], [True], [True], [False]])
    child_active = torch.tensor([[True], [True], [False], [True]])
    rate = S.absorption_rate(f, W_dec, parent, parent_active, child_active, torch.tensor([0]))
    assert rate.tolist() == [0.5]                             # rows 0 (absorbed) and 1 (not) qualify


# ----------------------------------------------------------------------------- data and toy model
def test_hierarchy_children_imply_parents_and_alone_share():
    h = S.hierarchy_data(20000, 16, n_parents=4, children_per_parent=3, n_independent=5, p_parent=0.2,
                         p_alone=0.3, generator=_gen())
    per_parent = h.child_active.view(-1, 4, 3)
    assert (per_parent.sum(2) <= 1).all()
    assert not (per_parent.any(2) & ~h.parent_active).any()
    alone = (h.parent_active & ~per_parent.any(2)).sum() / h.parent_active.sum()
    assert abs(float(alone) - 0.3) < 0.02
    assert h.features.shape == (4 + 12 + 5, 16)


def test_normalise_gives_unit_mean_square_norm_and_reuses_stats():
    x = torch.randn(500, 7, generator=_gen()) * 5 + 3
    xn, mu, sc = S.normalise(x)
    assert torch.allclose(xn.mean(0), torch.zeros(7), atol=1e-5)
    assert math.isclose(float(xn.pow(2).sum(1).mean()), 1.0, rel_tol=1e-5)
    assert torch.allclose(S.normalise(x[:10], mu, sc)[0], xn[:10])


def test_toy_model_superposition_measures():
    W = torch.tensor([[1.0, 0.0, 0.6], [0.0, 1.0, 0.0]])     # (m=2, n=3): feature 2 overlaps feature 0
    assert S.features_represented(W).tolist() == [3]
    sup = S.superposition(W)[0]
    assert torch.allclose(sup, torch.tensor([0.36, 0.0, 1.0]))


def test_linear_toy_model_represents_about_m_features():
    toy = S.train_toy_models([0.0, 0.9], n_features=8, d_hidden=3, relu=False, steps=600, batch_size=256,
                             generator=_gen(), progress=False)
    assert toy.W.shape == (2, 3, 8)
    assert all(2 <= c <= 4 for c in S.features_represented(toy.W).tolist())


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("k, error", [(0, ValueError), (-1, ValueError), (17, ValueError), (2.5, TypeError)])
def test_bad_k_raises(k, error):
    with pytest.raises(error, match="k must"):
        S.TopKSAE(8, 16, k=k)


def test_mismatched_d_in_raises():
    m = S.TopKSAE(8, 16, k=2)
    with pytest.raises(ValueError, match="d_in=8"):
        m.encode(torch.randn(3, 9))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="kind must be"):
        S.make_sae("sparse", 8, 16)
    with pytest.raises(ValueError, match="l1_coeff"):
        S.ReLUSAE(8, 16, l1_coeff=-1)
    with pytest.raises(ValueError, match="prefixes"):
        S.MatryoshkaSAE(8, 16, k=2, prefixes=[8, 4])
    with pytest.raises(ValueError, match="sparsities"):
        S.train_toy_models([1.0], generator=_gen())
    with pytest.raises(ValueError, match="zero variance"):
        S.fvu(torch.ones(4, 2), torch.zeros(4, 2))


# ----------------------------------------------------------------------------- heavy-tailed features
@pytest.mark.parametrize("m, a, l0", [(2048, 1.2, 16.0), (10, 0.5, 3.0), (5, 2.0, 5.0), (100, 1.0, 0.5)])
def test_zipf_probabilities_sum_to_mean_active_and_follow_the_power_law(m, a, l0):
    p = S.zipf_probabilities(m, a, l0).double()
    assert p.shape == (m,) and bool(((p > 0) & (p <= 1)).all())
    assert abs(float(p.sum()) - l0) <= 1e-4 * l0
    free = p < 1  # below the cap, p_i * i^a is one constant c
    i = torch.arange(1, m + 1, dtype=torch.float64)
    c = p[free] * i[free] ** a
    assert torch.allclose(c, c[:1].expand_as(c), rtol=1e-5)
    assert bool(free.any()) or l0 == m  # all capped only when every feature is always on
    assert bool((p[:-1] >= p[1:]).all())


def test_zipf_probabilities_by_hand():
    # m=2, a=1: p = (c, c/2), sum 1.5c = 1.2 -> c = 0.8 (nothing capped)
    assert torch.allclose(S.zipf_probabilities(2, 1.0, 1.2), torch.tensor([0.8, 0.4]), atol=1e-6)
    # m=3, a=1, sum 2.5: c/1 capped at 1, then c/2 + c/3 = 1.5 -> c = 1.8 (p = 1, 0.9, 0.6)
    assert torch.allclose(S.zipf_probabilities(3, 1.0, 2.5), torch.tensor([1.0, 0.9, 0.6]), atol=1e-6)


def test_superposition_data_per_feature_probabilities():
    p = torch.zeros(6)
    p[[1, 4]] = 1.0
    x, feats = S.superposition_data(50, 8, 6, p, noise=0.0, generator=_gen())
    coef = torch.linalg.lstsq(feats[[1, 4]].T, x.T).solution  # only features 1 and 4 ever fire
    assert torch.allclose(feats[[1, 4]].T @ coef, x.T, atol=1e-5) and bool((coef >= 0.5 - 1e-5).all())
    x_float, _ = S.superposition_data(40, 8, 6, 0.2, generator=_gen())
    x_tensor, _ = S.superposition_data(40, 8, 6, torch.full((6,), 0.2), generator=_gen())
    assert torch.equal(x_float, x_tensor)


@pytest.mark.parametrize("call, match", [
    (lambda: S.zipf_probabilities(10, 0.0, 2.0), "exponent"),
    (lambda: S.zipf_probabilities(10, 1.0, 11.0), "mean_active"),
    (lambda: S.zipf_probabilities(10, 1.0, 0.0), "mean_active"),
    (lambda: S.superposition_data(10, 4, 6, torch.full((5,), 0.1), generator=_gen()), "shape"),
    (lambda: S.superposition_data(10, 4, 6, torch.full((6,), 1.5), generator=_gen()), r"\[0, 1\]"),
])
def test_heavy_tailed_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_superposition_data_rows_after_the_first_chunk_are_drawn_too():
    # more rows than one chunk of the activity mask: every row, in both chunks, is a sum of its
    # active features with coefficients >= 0.5, and the later chunk is as active as the first
    # (a lost row offset would leave those rows empty)
    from sparsity_core.sae.data import _CHUNK_ROWS
    B, m = _CHUNK_ROWS + 500, 6
    x, feats = S.superposition_data(B, 8, m, 0.3, noise=0.0, generator=_gen())
    coef = torch.linalg.lstsq(feats.T, x.T).solution.T                   # (B, m), exact: d >= m, no noise
    on = coef.abs() > 1e-4
    assert bool((coef[on] >= 0.5 - 1e-4).all())
    first, later = on[:_CHUNK_ROWS].float().mean(), on[_CHUNK_ROWS:].float().mean()
    assert abs(float(first) - 0.3) < 0.02 and abs(float(later) - 0.3) < 0.05
