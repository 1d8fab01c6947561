"""Specification of the learned codec's building blocks: GDN, the DCT block transform, gain units for
variable rate, the checkerboard split and the GDN presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.model.block_transform import DCT_SCALE, dct_basis
from harness_codecs._autoencoder.latent_codecs.checkerboard import anchor_mask
from harness_codecs._autoencoder.model.gdn import GDN
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, save_checkpoint
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, parameter_count, spec_for
from harness_codecs.autoencoder_entropy import codec_class

LMBDAS = (10.0, 40.0, 160.0)


def variable_rate_model(entropy: str = "checkerboard") -> Autoencoder:
    torch.manual_seed(0)
    return Autoencoder(spec_for("tiny", 8, entropy=entropy, lmbdas=LMBDAS))


def test_gdn_divides_each_channel_by_the_learned_norm_over_channels():
    torch.manual_seed(0)
    layer = GDN(3)
    with torch.no_grad():
        layer.gamma.copy_(torch.rand(3, 3))
        layer.beta.copy_(torch.rand(3) + 0.5)
    values = torch.randn(2, 3, 5, 4)

    beta = layer.beta.detach().numpy() ** 2 - 2.0**-36
    gamma = layer.gamma.detach().numpy() ** 2 - 2.0**-36
    x = values.numpy()
    norm = np.sqrt(beta[None, :, None, None] + np.einsum("ij,njhw->nihw", gamma, x**2))

    np.testing.assert_allclose(layer(values).detach().numpy(), x / norm, rtol=1e-5)
    inverse = GDN(3, inverse=True)
    inverse.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(inverse(values).detach().numpy(), x * norm, rtol=1e-5)


def test_gdn_stays_defined_after_gradients_that_push_its_parameters_below_zero():
    layer = GDN(4)
    optimizer = torch.optim.SGD(layer.parameters(), lr=10.0)
    for _ in range(5):
        optimizer.zero_grad()
        layer(torch.randn(2, 4, 8, 8)).abs().sum().backward()  # minimising |x| / norm pushes beta and gamma up...
        layer.beta.grad.abs_()                                  # ...so turn the gradient around to push them down
        layer.gamma.grad.abs_()
        optimizer.step()

    assert (layer.beta.detach() < 0).any()  # the stored square roots went negative...
    assert torch.isfinite(layer(torch.zeros(1, 4, 8, 8))).all()  # ...yet beta stays positive: 0 / sqrt(beta) is 0


def test_a_fractional_quality_interpolates_the_neighbouring_gains_geometrically():
    model = variable_rate_model()
    with torch.no_grad():
        model.log_gains.copy_(torch.randn_like(model.log_gains))
    gains = model.gains(model.log_gains, torch.tensor([0.0, 1.0, 0.25, 2.0]))[..., 0, 0]

    torch.testing.assert_close(gains[2], gains[0] ** 0.75 * gains[1] ** 0.25)
    torch.testing.assert_close(gains[3], model.log_gains[2].exp())


def test_qualities_beyond_the_levels_take_the_end_levels():
    model = variable_rate_model()
    gains = model.gains(model.log_gains, torch.tensor([-1.0, 0.0, 2.0, 7.0]))

    torch.testing.assert_close(gains[0], gains[1])
    torch.testing.assert_close(gains[3], gains[2])


def test_the_trade_off_of_a_quality_is_interpolated_geometrically_between_trained_ones():
    model = variable_rate_model()

    torch.testing.assert_close(model.lmbda(torch.tensor([0.0, 1.5, 2.0])), torch.tensor([10.0, 80.0, 160.0]))


def test_untrained_gains_scale_the_latent_more_at_higher_quality():
    model = variable_rate_model()
    tiles = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        latent = model.encode(tiles, torch.tensor([0.0, 1.0, 2.0]))
        base = model.encoder(tiles)

    ratios = [float((latent[index] / base[index]).mean()) for index in range(3)]
    assert ratios == pytest.approx([0.25, 0.5, 1.0], rel=1e-5)  # sqrt(lmbda / max lmbda)


def test_decoding_undoes_the_gain_when_the_inverse_gains_are_untrained():
    model = variable_rate_model()
    latent = torch.randn(2, 8, 2, 2)
    quality = torch.tensor([0.0, 1.7])

    torch.testing.assert_close(model.decode(latent * model.gains(model.log_gains, quality), quality),
                               model.decode(latent))


def test_anchors_are_the_positions_whose_row_and_column_sum_is_even():
    mask = anchor_mask(3, 4)[0, 0]

    assert mask.tolist() == [[True, False, True, False], [False, True, False, True], [True, False, True, False]]


def test_the_checkerboard_prior_sees_no_non_anchor_when_predicting_a_non_anchor():
    prior = variable_rate_model().prior
    hyper = torch.randn(1, 16, 4, 4)
    anchors = anchor_mask(4, 4)
    decoded = torch.randn(1, 8, 4, 4) * anchors
    changed = decoded.clone()
    changed[0, :, 1, 2] = 100.0  # (1, 2) is not an anchor: the decoder does not know it yet

    means, scales = prior.gaussian(hyper, decoded * anchors)
    means_changed, scales_changed = prior.gaussian(hyper, changed * anchors)

    torch.testing.assert_close(means, means_changed)
    torch.testing.assert_close(scales, scales_changed)


def test_the_gdn_dct_preset_has_gdn_networks_and_a_complete_block_transform():
    small = Autoencoder(spec_for("gdn-dct-small", entropy="checkerboard"))

    assert sum(isinstance(layer, GDN) for layer in small.modules()) == 6
    assert small.spec.latent_channels == 16 * 16
    assert 12e6 < parameter_count(small) < 14e6


def test_the_light_preset_fits_the_seeds_budget_of_parameters_and_decoding_macs(tmp_path):
    """Under 5M parameters and 20k MAC/px to decode (the seed's budget), counted on a real decode of a codec."""
    spec = spec_for("gdn-dct-light", entropy="checkerboard", lmbdas=(32.0, 8192.0))
    model = Autoencoder(spec)
    path = tmp_path / "light.pt"
    save_checkpoint(Checkpoint(spec=spec, bits=0, latent_range=(-1.0, 1.0), normalization={"VV": (-25.0, 5.0)},
                               state_dict=model.state_dict(), entropy_tables=model.prior.tables().to_tensors()),
                    path)

    complexity = codec_class("checkerboard")(checkpoint=str(path), quality=1).complexity()

    assert complexity.parameters == parameter_count(model) < 5_000_000
    assert complexity.decode_macs_per_pixel < 20_000


def test_an_untrained_light_model_is_a_block_dct_coder_too():
    torch.manual_seed(0)
    model = Autoencoder(spec_for("gdn-dct-light", entropy="checkerboard"))
    tiles = torch.rand(2, 1, 32, 48)

    with torch.no_grad():
        decoded = model.decode(model.encode(tiles))

    torch.testing.assert_close(decoded, tiles, atol=1e-5, rtol=0)


def test_the_dct_basis_is_orthonormal_with_the_constant_block_first():
    basis = dct_basis().double().reshape(256, 256)

    torch.testing.assert_close(basis @ basis.T, torch.eye(256, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(basis[0], torch.full((256,), 1 / 16, dtype=torch.float64))


def test_an_untrained_gdn_dct_model_is_a_block_dct_coder_that_inverts_itself_before_rounding():
    torch.manual_seed(0)
    model = Autoencoder(spec_for("gdn-dct-small", entropy="checkerboard"))
    tiles = torch.rand(2, 1, 32, 48)

    with torch.no_grad():
        latent = model.encode(tiles)
        decoded = model.decode(latent)

    torch.testing.assert_close(decoded, tiles, atol=1e-5, rtol=0)
    blocks = (tiles[0, 0, :16, :16] - 0.5).double().flatten()
    torch.testing.assert_close(latent[0, :, 0, 0].double(), DCT_SCALE * dct_basis().double().reshape(256, 256) @ blocks,
                               atol=1e-4, rtol=1e-5)
