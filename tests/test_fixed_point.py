"""Specification of the fixed-point entropy networks: integer arithmetic that any device carries out exactly, close
to the float networks it stands for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from harness_codecs._autoencoder.fixed_point.gaussians import ScaleThresholds, ThresholdCounter
from harness_codecs._autoencoder.latent_codecs.checkerboard import ContextAtNonAnchors, anchor_mask
from harness_codecs._autoencoder.entropy_coding.densities import SCALE_FLOOR
from harness_codecs._autoencoder.entropy_coding.tables import SCALE_TABLE
from harness_codecs._autoencoder.fixed_point.integer_products import DIGIT_BITS, activation_digits
from harness_codecs._autoencoder.fixed_point.networks import (
    ACTIVATION_BITS,
    ACTIVATION_LIMIT,
    FixedPointNetwork,
    to_fixed,
)
from harness_codecs._autoencoder.runtime.weights import rounded_weights
from torch import nn

CPU = torch.device("cpu")
UNIT = 2.0**ACTIVATION_BITS


def network() -> nn.Sequential:
    """Every kind of layer the priors use, with trained-like weight sizes."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.ConvTranspose2d(6, 8, 5, stride=2, padding=2, output_padding=1), nn.LeakyReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.GELU(),
        nn.Conv2d(8, 4, 1),
    ).double()


def inputs(seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(-3, 4, size=(1, 6, 5, 7)).astype(np.float64))


def int8_network() -> nn.Sequential:
    """``network`` with its convolutions' weights as an int8 checkpoint holds them: codes times a scale per output
    channel (``runtime.weights``), which the fixed-point layers compute from the codes themselves."""
    modules = network().float()
    plan = {f"{index}.weight": 8 for index in (2, 4)}
    modules.load_state_dict(rounded_weights(modules.state_dict(), "int8", plan))
    return modules.double()


def integer_conv(activations: np.ndarray, weight: np.ndarray, bias: np.ndarray, multipliers: np.ndarray,
                 shifts: np.ndarray, stride: int, padding: int, transposed: bool,
                 output_padding: int = 0) -> np.ndarray:
    """The layer in plain int64 numpy, written out position by position: the independent reference."""
    _, channels, height, width = activations.shape
    kernel = weight.shape[-1]
    if transposed:
        out_channels = weight.shape[1]
        full = np.zeros((out_channels, (height - 1) * stride + kernel, (width - 1) * stride + kernel), np.int64)
        for row in range(height):
            for col in range(width):
                full[:, row * stride:row * stride + kernel, col * stride:col * stride + kernel] += np.einsum(
                    "i,iokl->okl", activations[0, :, row, col], weight)
        out_height = (height - 1) * stride - 2 * padding + kernel + output_padding
        out_width = (width - 1) * stride - 2 * padding + kernel + output_padding
        full = np.pad(full, ((0, 0), (0, output_padding), (0, output_padding)))
        sums = full[:, padding:padding + out_height, padding:padding + out_width]
    else:
        padded = np.pad(activations[0], ((0, 0), (padding, padding), (padding, padding)))
        out_height = (height + 2 * padding - kernel) // stride + 1
        out_width = (width + 2 * padding - kernel) // stride + 1
        sums = np.zeros((weight.shape[0], out_height, out_width), np.int64)
        for row in range(out_height):
            for col in range(out_width):
                window = padded[:, row * stride:row * stride + kernel, col * stride:col * stride + kernel]
                sums[:, row, col] = np.einsum("ikl,oikl->o", window, weight)
    total = sums * multipliers[:, None, None] + bias[:, None, None] + (1 << (shifts[:, None, None] - 1))
    limit = int(ACTIVATION_LIMIT)
    return np.clip(total >> shifts[:, None, None], -limit, limit)[None]  # >> floors, as the layer does


def integer_network(fixed: FixedPointNetwork, modules: nn.Sequential, activations: np.ndarray) -> np.ndarray:
    for layer, module in zip(fixed.layers, modules):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            transposed = isinstance(module, nn.ConvTranspose2d)
            activations = integer_conv(activations, layer.weight.numpy().astype(np.int64), layer.bias.numpy(),
                                       layer.multipliers.numpy(), layer.shifts.numpy(), module.stride[0],
                                       module.padding[0], transposed, module.output_padding[0] if transposed else 0)
        else:
            activations = layer(torch.from_numpy(activations.astype(np.float64))).numpy().astype(np.int64)
    return activations


@pytest.mark.parametrize("make", [network, int8_network], ids=["float-weights", "int8-weights"])
def test_a_fixed_point_network_gives_the_integers_of_an_independent_int64_implementation(make):
    modules = make()
    fixed = FixedPointNetwork(modules, CPU)
    activations = to_fixed(inputs())

    expected = integer_network(fixed, modules, activations.numpy().astype(np.int64))

    np.testing.assert_array_equal(fixed(activations).numpy(), expected)


def test_an_int8_checkpoints_convolutions_compute_with_its_codes_exactly():
    """The codes times each channel's multiplier and power of two are the weights, to the last bit; the float
    weights' layers (and every transposed convolution) round them instead."""
    modules = int8_network()
    layers = FixedPointNetwork(modules, CPU).layers

    for index in (2, 4):
        layer = layers[index]
        factor = layer.multipliers.double() * 2.0 ** -layer.shifts.double()
        assert layer.codes is not None and float(layer.weight.abs().max()) <= 127
        assert torch.equal(layer.weight * factor[:, None, None, None], modules[index].weight.detach())
    assert layers[0].codes is None and FixedPointNetwork(network(), CPU).layers[2].codes is None


def test_the_int8_products_give_the_float64_sums_at_the_activation_limit():
    """Activations at both limits need every digit; the float64 kernels (what a CUDA device runs) sum exactly."""
    layer = FixedPointNetwork(int8_network(), CPU).layers[2]
    activations = to_fixed(torch.from_numpy(np.random.default_rng(4).normal(0, 300, size=(2, 8, 9, 11))))
    activations[0, 0, 0, :2] = torch.tensor([ACTIVATION_LIMIT, -ACTIVATION_LIMIT])

    integer = layer.integer_sums(activations)

    assert integer.dtype == torch.int64
    assert torch.equal(integer.double(), layer.sums(activations, named_kernels=False))
    assert torch.equal(integer.double(), layer.sums(activations, named_kernels=True))


def test_its_result_does_not_depend_on_the_order_the_sums_are_added_in():
    """Reversing the input channels (of input and weights alike) reorders every sum; floats would change."""
    modules = network()
    reversed_modules = network()
    with torch.no_grad():
        reversed_modules[0].weight.copy_(modules[0].weight.flip(0))
    activations = to_fixed(inputs())

    same = FixedPointNetwork(modules, CPU)(activations)
    reordered = FixedPointNetwork(reversed_modules, CPU)(activations.flip(1))

    assert torch.equal(same, reordered)


def test_it_stays_within_a_thousandth_of_the_float_network():
    modules = network()
    with torch.inference_mode():
        expected = modules(inputs())

    fixed = FixedPointNetwork(modules, CPU)(to_fixed(inputs())) / UNIT

    assert float((fixed - expected).abs().max()) < 1e-3


@pytest.mark.parametrize("make", [network, int8_network], ids=["float-weights", "int8-weights"])
def test_every_layer_keeps_its_largest_possible_sum_exact_in_float64_and_int64(make):
    for layer in FixedPointNetwork(make(), CPU).layers:
        if hasattr(layer, "shifts"):
            dims = (0, 2, 3) if layer.transposed else (1, 2, 3)
            reach = layer.weight.abs().sum(dim=dims) * ACTIVATION_LIMIT
            assert float(reach.max()) < 2.0**53
            assert float((reach * layer.multipliers + layer.bias.abs()).max()) < 2.0**63


@pytest.mark.parametrize("module", [nn.Conv2d(2, 2, 3, dilation=2), nn.Conv2d(2, 2, 3, groups=2),
                                    nn.Conv2d(2, 2, 3, padding="same"), nn.Conv2d(2, 2, 3, padding_mode="reflect")])
def test_a_convolution_its_kernels_do_not_compute_is_refused(module):
    with pytest.raises(ValueError, match="no exact form of Conv2d"):
        FixedPointNetwork(nn.Sequential(module), CPU)


def test_the_kernels_called_by_name_on_cuda_give_the_sums_of_the_functional_convolutions():
    """Checked on the CPU, where both exist: the named kernels are what a CUDA device runs (see the gpu test)."""
    convolutions = [layer for layer in FixedPointNetwork(network(), CPU).layers if hasattr(layer, "sums")]
    activations = to_fixed(torch.from_numpy(np.random.default_rng(3).normal(0, 2, size=(2, 6, 9, 11))))

    for layer in convolutions:
        assert torch.equal(layer.sums(activations, named_kernels=True), layer.sums(activations, named_kernels=False))
        activations = layer(activations)[:, :, :9, :11]
    assert [layer.transposed for layer in convolutions] == [True, False, False]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("make", [network, int8_network], ids=["float-weights", "int8-weights"])
@pytest.mark.parametrize("cudnn", [True, False])
def test_on_cuda_it_gives_the_cpu_integers_whatever_the_process_sets_cudnn_to(cudnn, make):
    """Larger than the other tests' input, so that cuDNN would have transform-based algorithms to choose from; with
    int8 weights the CPU sums through int8 products, CUDA in float64."""
    modules = make()
    activations = to_fixed(torch.from_numpy(np.random.default_rng(2).normal(0, 2, size=(4, 6, 40, 40))))
    cuda = torch.device("cuda")

    with torch.backends.cudnn.flags(enabled=cudnn, benchmark=cudnn):
        on_gpu = FixedPointNetwork(modules, cuda)(activations.to(cuda)).cpu()

    assert torch.equal(on_gpu, FixedPointNetwork(modules, CPU)(activations))


def test_activations_beyond_the_limit_are_clamped_on_the_way_in():
    assert float(to_fixed(torch.tensor([1e9, -1e9])).abs().max()) == ACTIVATION_LIMIT


def test_a_layer_it_has_no_exact_form_of_is_refused_by_name():
    with pytest.raises(ValueError, match="no exact form of Tanh"):
        FixedPointNetwork(nn.Sequential(nn.Tanh()), CPU)


def test_a_leaky_relu_steeper_than_the_identity_is_refused():
    with pytest.raises(ValueError, match=r"no exact form of LeakyReLU\(1.5\): a slope above 1"):
        FixedPointNetwork(nn.Sequential(nn.LeakyReLU(1.5)), CPU)


@pytest.mark.parametrize("slope", [0.01, 0.2, 1.0, -0.3])
def test_leaky_relu_floors_the_sloped_negative_activations_and_keeps_the_others(slope):
    activations = to_fixed(torch.linspace(-50, 50, 4001, dtype=torch.float64))
    units = round(slope * 2**16)

    expected = torch.where(activations >= 0, activations, torch.floor(activations * units / 2**16))
    assert torch.equal(FixedPointNetwork(nn.Sequential(nn.LeakyReLU(slope)), CPU)(activations), expected)


def test_the_gelu_table_is_gelu_rounded_to_activation_units():
    gelu = FixedPointNetwork(nn.Sequential(nn.GELU()), CPU)
    values = torch.linspace(-10, 10, 2001, dtype=torch.float64)

    fixed = gelu(to_fixed(values)) / UNIT

    assert float((fixed - F.gelu(values)).abs().max()) <= 2 / UNIT  # the input rounded, then the output


def test_scale_thresholds_pick_the_table_the_float_scale_picks():
    raw = torch.linspace(-6, 70, 5001, dtype=torch.float64)
    thresholds = ScaleThresholds(SCALE_TABLE, SCALE_FLOOR, CPU)

    picked = thresholds(to_fixed(raw)).numpy()

    # the float model's rule: the smallest tabulated scale at least as large as the predicted one
    expected = np.minimum(np.searchsorted(SCALE_TABLE, (SCALE_FLOOR + F.softplus(raw)).numpy()), len(SCALE_TABLE) - 1)
    # the two may differ only where the raw scale lies within a rounding unit of a table boundary
    assert (picked != expected).sum() <= 2 and np.abs(picked - expected).max() <= 1


CROWDED = np.array([-7.0, 0, 1, 1, 1, 2, 3e6, 3e6 + 1, 5e6])
"""Thresholds closer than a cell of the lookup (and repeated): several share a cell, which takes more checks."""


@pytest.mark.parametrize("thresholds", [ScaleThresholds(SCALE_TABLE, SCALE_FLOOR, CPU).thresholds, CROWDED],
                         ids=["scale-table", "crowded"])
def test_the_threshold_count_is_the_binary_searchs(thresholds):
    near = np.concatenate([thresholds - 1, thresholds, thresholds + 1])
    spread = np.random.default_rng(0).integers(thresholds[0] - 1e6, thresholds[-1] + 1e6, 20000)
    values = torch.from_numpy(np.concatenate([near, spread, [-2.0**52, 2.0**52]]).astype(np.float64))

    counted = ThresholdCounter(thresholds, CPU)(values)

    assert torch.equal(counted, torch.searchsorted(torch.from_numpy(thresholds), values, side="left"))


@pytest.mark.parametrize("int8", [False, True], ids=["float-weights", "int8-weights"])
def test_the_context_at_the_non_anchors_gives_the_full_convolutions_integers_there(int8):
    """With int8 weights both run as int8 products, each its own way (gathered taps, shifted windows)."""
    torch.manual_seed(0)
    context = nn.Conv2d(6, 5, 5, padding=2)
    if int8:
        context.load_state_dict(rounded_weights(context.state_dict(), "int8", {"weight": 6}))
    context = context.double()
    anchors = anchor_mask(7, 9)[0, 0].numpy()
    decoded = np.where(anchors, np.random.default_rng(2).normal(0, 20, (2, 6, 7, 9)), 0.0)  # a batch of two
    activations = to_fixed(torch.from_numpy(decoded))

    full = FixedPointNetwork(nn.Sequential(context), CPU)(activations).flatten(2)[..., np.flatnonzero(~anchors)]
    sparse = ContextAtNonAnchors(context, CPU)(activations, ~anchors)

    assert (ContextAtNonAnchors(context, CPU).layer.codes is not None) == int8
    assert torch.equal(sparse, full)


@pytest.mark.parametrize(("largest", "digits_needed"),
                         [(0, 1), (63, 1), (64, 2), (2**20 - 1, 3), (2**20, 4), (int(ACTIVATION_LIMIT), 4)])
def test_activation_digits_recombine_to_the_activations_with_as_few_digits_as_their_largest_needs(largest,
                                                                                                    digits_needed):
    """7-bit digits of the activations plus half the digits' range: 63 fits one, 64 needs two."""
    activations = torch.tensor([[-largest, largest], [0, -1]], dtype=torch.float64)

    digits, offset = activation_digits(activations)

    recombined = sum(digits[index].long() * 2 ** (DIGIT_BITS * index) for index in range(len(digits))) - offset
    assert torch.equal(recombined.double(), activations) and int(digits.min()) >= 0
    assert len(digits) == digits_needed
