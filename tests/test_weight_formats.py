"""Specification of the stored weight formats (float32, float16, int8), of the int8 plan, of converting a
checkpoint, and of reading damaged or older checkpoints."""

from __future__ import annotations

import io

import hashlib
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.runtime.checkpoint import (
    CHECKPOINT_VERSION,
    build_model,
    load_checkpoint,
    model_id,
    save_checkpoint,
)
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, spec_for
from harness_codecs._autoencoder.entropy_coding.tables import SCALE_TABLE
from harness_codecs._autoencoder.runtime.compact import in_weight_format
from harness_codecs._autoencoder.runtime.weight_plan import quantization_bits
from harness_codecs._autoencoder.runtime.weights import (
    WEIGHT_FORMATS,
    loaded_weights,
    rounded_weights,
    stored_weights,
)
from harness_codecs.autoencoder_entropy import codec_class

from harness.sar import normalize_db
from tests.conftest import NORMALIZATION, speckled_db

REPOSITORY = Path(__file__).resolve().parents[1]
TINY = REPOSITORY / "checkpoints" / "autoencoder-tiny-hyperprior-l100.pt"
QUANTIZED = "prior.hyper_decoder.2.weight"
"""A weight of the tiny hyperprior model that its int8 file stores as codes."""


def weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """A convolution whose output channels differ in scale by 1000x, its bias, and an integer buffer."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(16, 8, 3, 3, generator=generator) * torch.logspace(-3, 0, 16)[:, None, None, None]
    return {"conv.weight": weight, "conv.bias": torch.randn(16, generator=generator),
            "count": torch.tensor([3], dtype=torch.int64)}


def tile(seed: int = 0) -> np.ndarray:
    db = speckled_db(np.random.default_rng(seed), (128, 128), -12.0)
    return normalize_db(db, NORMALIZATION["VV"]).astype(np.float32)


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((decoded.astype(np.float64) - original) ** 2)))


@pytest.fixture(scope="module")
def int8_checkpoint(tmp_path_factory) -> Path:
    """The shipped tiny hyperprior checkpoint converted to int8."""
    path = tmp_path_factory.mktemp("int8") / "tiny-int8.pt"
    save_checkpoint(in_weight_format(load_checkpoint(TINY), "int8"), path)
    return path


def damaged_copy(source: Path, folder: Path, damage) -> Path:
    """``source`` written again after ``damage`` changed its raw dict in place."""
    raw = torch.load(source, weights_only=True)
    damage(raw)
    torch.save(raw, folder / "damaged.pt")
    return folder / "damaged.pt"


def test_float32_weights_come_back_exactly():
    original = weights()

    loaded = loaded_weights(stored_weights(original, "float32"), "float32")

    assert all(torch.equal(loaded[name], original[name]) for name in original)


def test_float16_weights_come_back_as_their_float16_rounding_in_float32():
    original = weights()

    loaded = loaded_weights(stored_weights(original, "float16"), "float16")

    assert loaded["conv.weight"].dtype == torch.float32
    assert torch.equal(loaded["conv.weight"], original["conv.weight"].half().float())


@pytest.mark.parametrize("bits", [8, 5])
def test_int8_weights_stay_within_half_a_step_of_the_float_weights_in_every_channel(bits):
    original = weights()
    stored = stored_weights(original, "int8", {"conv.weight": bits})

    loaded = loaded_weights(stored, "int8")

    steps = stored["conv.weight"]["scales"]
    errors = (loaded["conv.weight"] - original["conv.weight"]).abs().flatten(1).amax(dim=1)
    assert (errors <= steps / 2).all()
    assert (steps <= original["conv.weight"].abs().flatten(1).amax(dim=1) / (2 ** (bits - 1) - 1) * (1 + 2**-15)).all()


def test_int8_stores_the_weights_outside_its_plan_in_float16_and_integers_as_they_are():
    stored = stored_weights(weights(), "int8", {"conv.weight": 8})

    assert stored["conv.bias"].dtype == torch.float16
    assert stored["count"].dtype == torch.int64
    assert stored["conv.weight"]["codes"].dtype == torch.uint8


@pytest.mark.parametrize("weight_format", WEIGHT_FORMATS)
def test_every_format_gives_back_exactly_its_rounded_weights_in_float32(weight_format):
    original = weights()
    bits = {"conv.weight": 6} if weight_format == "int8" else {}

    loaded = loaded_weights(stored_weights(original, weight_format, bits), weight_format)

    rounded = rounded_weights(original, weight_format, bits)
    assert all(torch.equal(loaded[name], rounded[name]) for name in original)
    assert loaded["conv.weight"].dtype == torch.float32


def test_int8_weights_quantized_again_with_the_same_bits_are_unchanged():
    once = rounded_weights(weights(), "int8", {"conv.weight": 7})

    twice = rounded_weights(once, "int8", {"conv.weight": 7})

    assert all(torch.equal(twice[name], once[name]) for name in once)


@pytest.mark.parametrize("weight_format", WEIGHT_FORMATS)
def test_a_checkpoint_in_every_format_loads_with_weights_only(tmp_path, weight_format):
    path = tmp_path / f"{weight_format}.pt"
    save_checkpoint(in_weight_format(load_checkpoint(TINY), weight_format), path)

    raw = torch.load(path, map_location="cpu", weights_only=True)

    assert raw["format_version"] == CHECKPOINT_VERSION and raw["weight_format"] == weight_format
    assert all(tensor.dtype == torch.float32 for tensor in load_checkpoint(path).state_dict.values())


def test_an_int8_checkpoint_stores_its_weights_in_under_60_percent_of_float16s_bytes(tmp_path, int8_checkpoint):
    save_checkpoint(in_weight_format(load_checkpoint(TINY), "float16"), tmp_path / "float16.pt")

    def weight_bytes(path: Path) -> int:
        """The serialized size of the file's stored weights (the entropy tables beside them are the same)."""
        buffer = io.BytesIO()
        torch.save(torch.load(path, weights_only=True)["state_dict"], buffer)
        return buffer.tell()

    assert weight_bytes(int8_checkpoint) < 0.6 * weight_bytes(tmp_path / "float16.pt")
    assert int8_checkpoint.stat().st_size < (tmp_path / "float16.pt").stat().st_size


def test_an_int8_checkpoint_gives_a_codec_whose_streams_decode_as_well_as_the_float_ones(int8_checkpoint):
    tiles = [tile(seed) for seed in range(3)]
    compact = codec_class("hyperprior")(checkpoint=str(int8_checkpoint))
    original = codec_class("hyperprior")(checkpoint=str(TINY))
    for codec in (compact, original):  # the weights alone: each tile's post-filter may be kept by one and not the other
        codec.coder = codec.coder.without_post_filter()

    decoded = compact.decode_batch(compact.encode_batch(tiles), [item.shape for item in tiles])
    reference = original.decode_batch(original.encode_batch(tiles), [item.shape for item in tiles])

    for item, mine, theirs in zip(tiles, decoded, reference):
        assert mine.shape == item.shape
        assert abs(psnr(item, mine) - psnr(item, theirs)) < 0.05


def test_the_entropy_tables_of_a_converted_checkpoint_are_those_of_its_rounded_weights(int8_checkpoint):
    loaded = load_checkpoint(int8_checkpoint)

    rebuilt = build_model(loaded, int8_checkpoint).prior.tables(loaded.entropy_tables["scales"].numpy()).to_tensors()

    assert rebuilt.keys() == loaded.entropy_tables.keys()
    assert all(torch.equal(rebuilt[name], loaded.entropy_tables[name]) for name in rebuilt)


def test_a_converted_checkpoint_tabulates_the_scales_its_file_was_made_with(int8_checkpoint):
    """The tiny checkpoints' tables were made with 64 scales, before the default became 256: converting the
    weights must not change which Gaussian tables its elements are coded with."""
    original, converted = load_checkpoint(TINY), load_checkpoint(int8_checkpoint)

    assert len(original.entropy_tables["scales"]) != len(SCALE_TABLE)
    assert torch.equal(converted.entropy_tables["scales"], original.entropy_tables["scales"])


def test_an_int8_checkpoint_read_and_written_again_holds_the_same_weights_and_tables(tmp_path, int8_checkpoint):
    save_checkpoint(load_checkpoint(int8_checkpoint), tmp_path / "again.pt")

    first, again = load_checkpoint(int8_checkpoint), load_checkpoint(tmp_path / "again.pt")

    assert model_id(again.state_dict) == model_id(first.state_dict)
    assert again.weight_bits == first.weight_bits
    assert all(torch.equal(again.entropy_tables[name], first.entropy_tables[name]) for name in first.entropy_tables)


@pytest.fixture
def version_1_float16(tmp_path) -> Path:
    """A version-1 file with float16 weights, as ``--fp16-weights`` wrote them before the format was recorded (the
    shipped gdn-dct-small file was one until its int8 conversion)."""
    raw = torch.load(TINY, map_location="cpu", weights_only=True)
    raw["state_dict"] = {name: tensor.half() for name, tensor in raw["state_dict"].items()}
    torch.save(raw, tmp_path / "float16.pt")
    return tmp_path / "float16.pt"


@pytest.mark.parametrize("stored", ["float32", "float16"])
def test_a_version_1_checkpoint_loads_the_weights_it_stores_and_keeps_its_model_id(stored, version_1_float16):
    path = TINY if stored == "float32" else version_1_float16
    raw = torch.load(path, map_location="cpu", weights_only=True)

    loaded = load_checkpoint(path)

    assert raw["format_version"] == 1
    assert loaded.weight_format == stored
    assert all(torch.equal(loaded.state_dict[name], raw["state_dict"][name].float()) for name in raw["state_dict"])
    assert model_id(loaded.state_dict) == model_id(raw["state_dict"])


def _truncate_codes(raw: dict) -> None:
    codes = raw["state_dict"][QUANTIZED]["codes"]
    raw["state_dict"][QUANTIZED]["codes"] = torch.from_numpy(np.frombuffer(
        lzma.compress(lzma.decompress(codes.numpy().tobytes())[:-7]), dtype=np.uint8).copy())


def _garble_codes(raw: dict) -> None:
    codes = raw["state_dict"][QUANTIZED]["codes"].clone()
    codes[len(codes) // 2:] ^= 0x5A
    raw["state_dict"][QUANTIZED]["codes"] = codes


def _entry(raw: dict) -> dict:
    return raw["state_dict"][QUANTIZED]


@pytest.mark.parametrize(("damage", "message"), [
    (_truncate_codes, f"weight '{QUANTIZED}': its codes do not hold the 25600 values"),
    (_garble_codes, f"weight '{QUANTIZED}': its compressed codes are damaged"),
    (lambda raw: _entry(raw).pop("scales"), f"weight '{QUANTIZED}': an int8 weight without its scales"),
    (lambda raw: _entry(raw).update(scales=torch.ones(3)), f"weight '{QUANTIZED}': its scales are not"),
    (lambda raw: _entry(raw).update(bits=3), f"weight '{QUANTIZED}': codes beyond the 3-bit range"),
    (lambda raw: raw.update(weight_format="int4"), "unknown weight format 'int4'; this code reads float32, float16"),
    (lambda raw: raw.pop("weight_format"), "unusable weights \\(KeyError: 'weight_format'\\)"),
    (lambda raw: raw["state_dict"].update({"prior.hyper_decoder.2.bias": "zeros"}), "is a str, not a tensor"),
])
def test_damaged_stored_weights_are_refused_in_one_line_naming_the_file(tmp_path, int8_checkpoint, damage, message):
    path = damaged_copy(int8_checkpoint, tmp_path, damage)

    with pytest.raises(ValueError, match=message) as refused:
        codec_class("hyperprior")(checkpoint=str(path))

    assert str(path) in str(refused.value) and "python -m harness train autoencoder" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_plan_keeps_the_image_facing_and_small_layers_and_everything_but_layer_weights_out_of_int8():
    with torch.device("meta"):
        model = Autoencoder(spec_for("gdn-dct-small", entropy="checkerboard", lmbdas=(32.0, 8192.0)))

    bits = quantization_bits(model)

    assert {"encoder.linear.weight", "decoder.linear.weight", "encoder.network.0.weight",
            "decoder.network.6.weight"}.isdisjoint(bits)
    assert all(name.endswith(".weight") and "gamma" not in name and "density" not in name for name in bits)
    assert all(model.get_parameter(name).numel() >= 1024 for name in bits)


def test_the_plan_gives_the_shipped_models_large_layers_fewer_bits_and_the_priors_ends_eight():
    with torch.device("meta"):
        model = Autoencoder(spec_for("gdn-dct-small", entropy="checkerboard", lmbdas=(32.0, 8192.0)))

    bits = quantization_bits(model)

    assert bits["encoder.network.2.weight"] == 7 and bits["decoder.network.0.weight"] == 7
    assert bits["prior.hyper_decoder.2.weight"] == 5 and bits["prior.context.weight"] == 5
    assert bits["prior.hyper_encoder.0.weight"] == 8 and bits["prior.entropy_parameters.4.weight"] == 8


def test_the_plan_quantizes_every_layer_of_a_tiny_model_with_eight_bits():
    with torch.device("meta"):
        bits = quantization_bits(Autoencoder(spec_for("tiny", entropy="hyperprior")))

    assert bits and set(bits.values()) == {8}


def test_a_converted_file_is_identical_whether_written_once_or_converted_again(tmp_path, int8_checkpoint):
    save_checkpoint(in_weight_format(load_checkpoint(int8_checkpoint), "int8"), tmp_path / "twice.pt")

    once = torch.load(int8_checkpoint, weights_only=True)["state_dict"][QUANTIZED]
    twice = torch.load(tmp_path / "twice.pt", weights_only=True)["state_dict"][QUANTIZED]

    assert hashlib.sha256(twice["codes"].numpy().tobytes()).digest() == \
        hashlib.sha256(once["codes"].numpy().tobytes()).digest()
    assert torch.equal(twice["scales"], once["scales"])
