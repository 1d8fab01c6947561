"""Specification of the `autoencoder` codec: shapes, rate, bitstream checks, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pluggy
import pytest
import torch
from harness_codecs import autoencoder
from harness_codecs._autoencoder.runtime.bitstream import HEADER_BYTES, pack_code_rows, unpack_code_rows
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, save_checkpoint
from harness_codecs._autoencoder.model.autoencoder import (
    STRIDE,
    Autoencoder,
    pad_to_stride,
    parameter_count,
    spec_for,
)
from harness_codecs._autoencoder.runtime import options
from harness_codecs._autoencoder.runtime.options import PREFERRED_BATCH_SIZES, resolve_checkpoint, shipped_checkpoint
from harness_codecs._autoencoder.runtime.quantization import dequantize, noisy_latent, quantize
from harness_codecs._autoencoder.training.trainer import AutoencoderTrainer
from harness_codecs.autoencoder import AutoencoderCodec

from harness import hookspecs
from harness.api import PROJECT_NAME

ODD_SHAPES = [(100, 77), (1, 1), (16, 16), (33, 250)]


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """One stream's payload, through the batched packer the codec uses."""
    return pack_code_rows(torch.from_numpy(codes.astype(np.int32).reshape(1, -1)), bits)[0].numpy().tobytes()


def unpack_codes(payload: bytes, bits: int, count: int) -> np.ndarray:
    """The ``count`` codes of one payload, through the batched unpacker the codec uses."""
    packed = torch.frombuffer(bytearray(payload), dtype=torch.uint8)[None]
    return unpack_code_rows(packed, bits, count)[0].numpy().astype(np.uint16)


def make_checkpoint(path: Path, seed: int = 0, bits: int = 4, latent_channels: int = 8) -> Path:
    """An untrained tiny model: enough to test everything but image quality."""
    torch.manual_seed(seed)
    spec = spec_for("tiny", latent_channels)
    model = Autoencoder(spec)
    save_checkpoint(Checkpoint(spec=spec, bits=bits, latent_range=(-1.0, 1.0),
                               normalization={"VV": (-25.0, 5.0)}, state_dict=model.state_dict()), path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("autoencoder") / "tiny.pt")


@pytest.fixture(scope="module")
def codec(checkpoint) -> AutoencoderCodec:
    return AutoencoderCodec(checkpoint=str(checkpoint))


def noise_tile(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_decoded_tile_is_float32_in_0_1_of_the_tile_shape(codec, shape):
    decoded = codec.decode(codec.encode(noise_tile(shape)), shape)

    assert decoded.shape == shape
    assert decoded.dtype == np.float32
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0


@pytest.mark.parametrize("bits", [1, 3, 8, 16])
@pytest.mark.parametrize("shape", [(100, 77), (256, 256)])
def test_stream_is_the_header_plus_the_latent_codes_at_bits_each_rounded_up(checkpoint, bits, shape):
    codec = AutoencoderCodec(checkpoint=str(checkpoint), bits=bits)
    latent_elements = 8 * math.ceil(shape[0] / STRIDE) * math.ceil(shape[1] / STRIDE)

    stream = codec.encode(noise_tile(shape))

    assert len(stream) == HEADER_BYTES + math.ceil(latent_elements * bits / 8)


def test_decoding_gives_exactly_the_decoder_output_on_the_dequantized_latent(codec):
    tile = noise_tile((64, 48))
    stream = codec.encode(tile)
    codes = unpack_codes(stream[HEADER_BYTES:], codec.bits, 8 * 4 * 3).reshape(8, 4, 3)

    latent = dequantize(torch.from_numpy(codes.astype(np.int32))[None], (-1.0, 1.0), codec.bits)
    with torch.inference_mode():
        expected = codec.coder.model.decode(latent)[0, 0].clamp(0.0, 1.0).numpy()

    assert np.array_equal(codec.decode(stream, tile.shape), expected)


def test_encoding_on_the_cpu_is_deterministic(codec):
    tile = noise_tile((100, 77))

    assert codec.encode(tile) == codec.encode(tile.copy())


def test_batched_coding_of_mixed_shapes_matches_tile_by_tile_coding(codec):
    tiles = [noise_tile((64, 64), 1), noise_tile((100, 77), 2), noise_tile((64, 64), 3)]
    shapes = [tile.shape for tile in tiles]

    streams = codec.encode_batch(tiles)
    decoded = codec.decode_batch(streams, shapes)

    assert streams == [codec.encode(tile) for tile in tiles]
    for batched, tile, shape in zip(decoded, tiles, shapes):
        assert np.allclose(batched, codec.decode(codec.encode(tile), shape), atol=1e-6)


def test_on_the_cpu_the_codec_asks_the_runner_for_batches_of_the_cpu_size(codec):
    assert codec.preferred_batch_size == PREFERRED_BATCH_SIZES["cpu"] > 1


def test_rows_report_the_cpu_and_fp32(codec):
    assert (codec.device, codec.precision) == ("cpu", "fp32")


def test_the_stream_version_recorded_in_the_rows_is_the_one_the_header_carries(codec):
    assert codec.encode(noise_tile((32, 32)))[0] == codec.stream_version


@pytest.mark.parametrize("kept", [-1, HEADER_BYTES, 5], ids=["last-byte-lost", "header-only", "half-a-header"])
def test_truncated_stream_raises_a_clear_error(codec, kept):
    stream = codec.encode(noise_tile((100, 77)))

    with pytest.raises(ValueError, match="autoencoder stream"):
        codec.decode(stream[:kept], (100, 77))


def test_stream_with_trailing_bytes_raises(codec):
    stream = codec.encode(noise_tile((100, 77)))

    with pytest.raises(ValueError, match="truncated or corrupted"):
        codec.decode(stream + b"\x00", (100, 77))


def test_stream_of_another_format_version_raises(codec):
    stream = codec.encode(noise_tile((100, 77)))

    with pytest.raises(ValueError, match="format version 7"):
        codec.decode(bytes([7]) + stream[1:], (100, 77))


def test_stream_decoded_with_another_model_raises_naming_both_models(codec, tmp_path):
    other = AutoencoderCodec(checkpoint=str(make_checkpoint(tmp_path / "other.pt", seed=1)))
    stream = codec.encode(noise_tile((100, 77)))

    with pytest.raises(ValueError, match=f"model {codec.model_id.hex()}.*model {other.model_id.hex()}"):
        other.decode(stream, (100, 77))


def test_stream_decoded_for_another_tile_shape_raises(codec):
    stream = codec.encode(noise_tile((100, 77)))

    with pytest.raises(ValueError, match="a 64x64 tile needs 8x4x4"):
        codec.decode(stream, (64, 64))


def test_missing_checkpoint_raises_naming_the_train_command(tmp_path):
    with pytest.raises(ValueError, match=r"not found; make one with `python -m harness train autoencoder"):
        AutoencoderCodec(checkpoint="missing.pt", base_dir=tmp_path)


def test_relative_checkpoint_path_resolves_against_the_config_folder(checkpoint):
    codec = AutoencoderCodec(checkpoint=checkpoint.name, base_dir=checkpoint.parent)

    assert codec.bits == 4


def test_a_bare_file_name_missing_beside_the_config_names_a_shipped_checkpoint(tmp_path):
    path = resolve_checkpoint("autoencoder", "autoencoder-tiny-c16-b4.pt", tmp_path)

    assert path == shipped_checkpoint("autoencoder-tiny-c16-b4.pt") and path.is_file()


def test_a_checkpoint_beside_the_config_wins_over_a_shipped_one_of_the_same_name(tmp_path):
    (tmp_path / "autoencoder-tiny-c16-b4.pt").write_bytes(b"mine")

    assert resolve_checkpoint("autoencoder", "autoencoder-tiny-c16-b4.pt", tmp_path) == \
        tmp_path / "autoencoder-tiny-c16-b4.pt"


def test_a_path_with_folders_is_never_looked_up_among_the_shipped_checkpoints(tmp_path):
    assert resolve_checkpoint("autoencoder", "elsewhere/autoencoder-tiny-c16-b4.pt", tmp_path) == \
        tmp_path / "elsewhere" / "autoencoder-tiny-c16-b4.pt"


def test_checkpoint_of_another_format_version_is_refused(tmp_path, checkpoint):
    raw = torch.load(checkpoint, weights_only=True)
    torch.save({**raw, "format_version": 99}, tmp_path / "future.pt")

    with pytest.raises(ValueError, match="format version 99.*python -m harness train autoencoder"):
        AutoencoderCodec(checkpoint=str(tmp_path / "future.pt"))


def test_checkpoint_whose_weights_do_not_fit_its_spec_is_refused(tmp_path, checkpoint):
    raw = torch.load(checkpoint, weights_only=True)
    torch.save({**raw, "model": {**raw["model"], "latent_channels": 9}}, tmp_path / "mismatch.pt")

    with pytest.raises(ValueError, match="weights do not fit"):
        AutoencoderCodec(checkpoint=str(tmp_path / "mismatch.pt"))


@pytest.mark.parametrize("field, value, message", [
    ("latent_channels", 100_000_000, "weights do not fit|does not describe a network"),
    ("kernel_size", -3, "does not describe a network"),
])
def test_a_damaged_spec_is_refused_without_allocating_the_network_it_claims(tmp_path, checkpoint, field, value,
                                                                              message):
    """latent_channels 1e8 once asked for 115 GB (this test would die of it): the spec is checked on the meta
    device, which allocates nothing."""
    raw = torch.load(checkpoint, weights_only=True)
    torch.save({**raw, "model": {**raw["model"], field: value}}, tmp_path / "damaged.pt")
    with pytest.raises(ValueError, match=message):
        AutoencoderCodec(checkpoint=str(tmp_path / "damaged.pt"))


def test_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "notes.pt").write_text("not a checkpoint")

    with pytest.raises(ValueError, match="not a readable autoencoder checkpoint"):
        AutoencoderCodec(checkpoint=str(tmp_path / "notes.pt"))


@pytest.mark.parametrize("bits", [0, 17, 4.0, True])
def test_bits_other_than_an_integer_from_1_to_16_raise(checkpoint, bits):
    with pytest.raises(ValueError, match="accepted: an integer from 1 to 16"):
        AutoencoderCodec(checkpoint=str(checkpoint), bits=bits)


def test_fp16_on_the_cpu_raises(checkpoint):
    with pytest.raises(ValueError, match="needs device cuda; on the CPU use fp32 or bf16"):
        AutoencoderCodec(checkpoint=str(checkpoint), precision="fp16")


def test_bf16_on_the_cpu_decodes_close_to_fp32_and_says_so(checkpoint):
    tile = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    fp32 = AutoencoderCodec(checkpoint=str(checkpoint))
    bf16 = AutoencoderCodec(checkpoint=str(checkpoint), precision="bf16")

    decoded = bf16.decode(bf16.encode(tile), tile.shape)

    assert bf16.precision == "bf16"
    assert np.abs(decoded - fp32.decode(fp32.encode(tile), tile.shape)).mean() < 0.01


@pytest.mark.parametrize(("flags", "expected"), [({"avx512f", "avx512_bf16"}, "bf16"), ({"amx_bf16", "amx_tile"}, "bf16"),
                                                 ({"avx512f", "avx2"}, "fp32"), (set(), "fp32")],
                         ids=["avx512-bf16", "amx", "avx512-without-bf16", "flags-unknown"])
def test_auto_precision_is_bf16_only_on_a_cpu_that_multiplies_it_natively(checkpoint, monkeypatch, flags, expected):
    monkeypatch.setattr(options, "cpu_flags", lambda: frozenset(flags))

    codec = AutoencoderCodec(checkpoint=str(checkpoint), precision="auto")

    assert codec.precision == expected  # what the rows record


def test_training_proxy_stays_within_half_a_step_of_the_clipped_latent():
    latent = torch.linspace(-3.0, 3.0, 1001)
    step = 2.0 / (2**4 - 1)

    noisy = noisy_latent(latent, (-1.0, 1.0), 4, torch.Generator().manual_seed(0))

    assert (noisy - latent.clamp(-1.0, 1.0)).abs().max() <= step / 2


def test_encoder_latent_lies_inside_the_clip_range_whatever_the_input():
    model = Autoencoder(spec_for("tiny"))
    tiles = torch.cat([torch.zeros(1, 1, 32, 32), torch.ones(1, 1, 32, 32), 1e3 * torch.rand(1, 1, 32, 32)])

    with torch.no_grad():
        assert model.encode(tiles).abs().max() <= 1.0


@pytest.mark.parametrize("bits", range(1, 17))
def test_bit_packing_round_trips_every_code_width(bits):
    codes = np.random.default_rng(bits).integers(0, 2**bits, size=101).astype(np.uint16)

    packed = pack_codes(codes, bits)

    assert len(packed) == math.ceil(101 * bits / 8)
    assert np.array_equal(unpack_codes(packed, bits, 101), codes)


def reference_pack(codes: np.ndarray, bits: int) -> bytes:
    """The format as the first packer wrote it (numpy, one stream at a time): each code's bits MSB first,
    concatenated, zero-padded to a whole byte. Streams written by it must stay readable."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    bit_matrix = (codes.astype(np.uint32)[:, None] >> shifts) & 1
    return np.packbits(bit_matrix.astype(np.uint8).ravel()).tobytes()


@pytest.mark.parametrize("bits", [1, 3, 4, 6, 7, 8, 11, 16])
@pytest.mark.parametrize("count", [1, 8, 101, 4096])
def test_batched_torch_packer_writes_the_bytes_of_the_reference_packer(bits, count):
    codes = np.random.default_rng(bits * count).integers(0, 2**bits, size=(3, count))

    packed = pack_code_rows(torch.from_numpy(codes), bits)

    assert [row.numpy().tobytes() for row in packed] == [reference_pack(row, bits) for row in codes]


@pytest.mark.parametrize("bits", [1, 5, 9, 16])
def test_batched_unpacking_reads_back_every_row_of_reference_packed_codes(bits):
    codes = np.random.default_rng(bits).integers(0, 2**bits, size=(4, 99))
    payloads = torch.from_numpy(np.stack([np.frombuffer(reference_pack(row, bits), np.uint8) for row in codes]))

    assert np.array_equal(unpack_code_rows(payloads, bits, 99).numpy(), codes)


def test_a_cpu_encoded_stream_is_the_header_and_the_reference_packing_of_the_quantized_latent(codec):
    tile = noise_tile((100, 77))
    with torch.inference_mode():
        latent = codec.coder.model.encode(torch.from_numpy(pad_to_stride(tile))[None, None])
    codes = quantize(latent, (-1.0, 1.0), codec.bits)[0].numpy()

    stream = codec.encode(tile)

    assert stream[HEADER_BYTES:] == reference_pack(codes.ravel(), codec.bits)


def test_a_reference_packed_stream_decodes_to_the_decoder_output_on_its_codes(codec):
    codes = np.random.default_rng(5).integers(0, 2**codec.bits, size=(8, 7, 5))
    stream = codec.encode(noise_tile((100, 77)))[:HEADER_BYTES] + reference_pack(codes.ravel(), codec.bits)

    latent = dequantize(torch.from_numpy(codes)[None], (-1.0, 1.0), codec.bits)
    with torch.inference_mode():
        expected = codec.coder.model.decode(latent)[0, 0, :100, :77].clamp(0.0, 1.0).numpy()

    assert np.array_equal(codec.decode(stream, (100, 77)), expected)


def test_default_preset_has_about_5_million_parameters():
    assert 4.5e6 <= parameter_count(Autoencoder(spec_for("default"))) <= 5.5e6


def test_attention_flag_adds_cbam_blocks_and_keeps_shapes():
    plain, attentive = Autoencoder(spec_for("tiny")), Autoencoder(spec_for("tiny", attention=True))
    tiles = torch.rand(2, 1, 32, 48)

    assert parameter_count(attentive) > parameter_count(plain)
    assert attentive.decode(attentive.encode(tiles)).shape == tiles.shape


def test_plugin_registers_the_codec_and_the_trainer_under_autoencoder():
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(autoencoder)

    codecs = [codec for batch in manager.hook.harness_codecs() for codec in batch]
    trainers = [trainer for batch in manager.hook.harness_trainers() for trainer in batch]

    assert codecs == [AutoencoderCodec] and trainers == [AutoencoderTrainer]
    assert AutoencoderCodec.name == AutoencoderTrainer.name == "autoencoder"


def needs_cuda(test):
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test))


@pytest.fixture
def cpu_and_cuda(checkpoint) -> tuple[AutoencoderCodec, AutoencoderCodec]:
    return AutoencoderCodec(checkpoint=str(checkpoint), device="cpu"), AutoencoderCodec(checkpoint=str(checkpoint),
                                                                                       device="cuda")


@needs_cuda
def test_stream_encoded_on_cuda_decodes_on_the_cpu(cpu_and_cuda):
    cpu, gpu = cpu_and_cuda
    tile = noise_tile((100, 77))

    decoded = cpu.decode(gpu.encode(tile), tile.shape)

    assert gpu.device.startswith("cuda:0 (")
    assert decoded.shape == tile.shape
    assert np.abs(decoded - cpu.decode(cpu.encode(tile), tile.shape)).max() < 0.05


@needs_cuda
@pytest.mark.parametrize("bits", [1, 4, 6, 11, 16])
def test_packing_on_cuda_writes_the_bytes_of_the_reference_packer(bits):
    codes = np.random.default_rng(bits).integers(0, 2**bits, size=(3, 1001))

    packed = pack_code_rows(torch.from_numpy(codes).cuda(), bits).cpu()

    assert [row.numpy().tobytes() for row in packed] == [reference_pack(row, bits) for row in codes]
    assert torch.equal(unpack_code_rows(packed.cuda(), bits, 1001).cpu(), torch.from_numpy(codes).to(torch.int32))


@needs_cuda
def test_stream_encoded_on_the_cpu_decodes_on_cuda(cpu_and_cuda):
    cpu, gpu = cpu_and_cuda
    tile = noise_tile((100, 77))
    stream = cpu.encode(tile)

    # the same codes; only the arithmetic differs (cuDNN may use TF32 for float32 convolutions)
    assert np.abs(gpu.decode(stream, tile.shape) - cpu.decode(stream, tile.shape)).max() < 0.01
