"""The training loop: random augmented patches, noise-proxy quantization, MSE + w(1 - MS-SSIM).

Fixed-length models minimise the distortion alone (their rate is set by the
latent width and bits). Entropy-coded models (``--entropy``) minimise
``lmbda * distortion + estimated bpp``, the rate-distortion Lagrangian of
Ballé et al.: the estimated bpp is ``-sum(log2 p) / pixels`` under the
learned prior, and ``lmbda`` picks the rate point. A variable-rate model
(``--lmbdas``) draws a fractional quality for every patch of every batch,
uniformly over its levels, and weighs that patch's distortion with the
``lmbda`` of its quality, so every level and the interpolation between them
are trained at once. Its loss is the batch mean of ``log(lmbda * D + R)``:
each patch still minimises its own Lagrangian, but the levels are weighed by
relative rather than absolute cost, as BD-rate weighs them. With the plain
mean, measured on real Sentinel-1, the high-``lmbda`` patches (about 2.5 bpp)
steered the shared networks, and the lowest levels' rates rose by 20 to 100 %
between steps 500 and 1,500 at unchanged PSNR. The validation loss is the same
objective, with rounding, averaged over the levels.

Deterministic on the CPU for a given seed: weights are initialised after
``torch.manual_seed(seed)``, and every random draw (patch positions, flips,
rotations, quantization noise) comes from generators whose states are saved
in the resume checkpoint, so an interrupted run resumes on the same path.
The crops are drawn in the training process and only cut by the data
loader's workers, so ``--workers`` changes the speed, never the batches.

MS-SSIM on small patches: pytorch-msssim's 5-scale MS-SSIM needs the smaller
side above ``(win_size - 1) * 16`` (160 px for the standard 11 px window). For
smaller patches the largest odd window that fits is used (7 px for 128 px
patches), which keeps five scales but makes the coarse scales' statistics
more local than the standard metric's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, save_checkpoint
from harness_codecs._autoencoder.training.augmentation import Augmentation
from harness_codecs._autoencoder.training.coded_latents import CodedLatents
from harness_codecs._autoencoder.training.data import CropPlan, TrainingSplit, patch_loader
from harness_codecs._autoencoder.entropy_coding.densities import FactorizedDensity, estimated_bits
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, ModelSpec
from harness_codecs._autoencoder.runtime.compact import in_weight_format
from harness_codecs._autoencoder.runtime.quantization import dequantize, noisy_latent, quantize
from harness_codecs._autoencoder.training.log import TrainingLog, by_source
from pytorch_msssim import ms_ssim
from tqdm import tqdm

LATENT_RANGE = (-1.0, 1.0)
WARMUP_STEPS = 50
MSSSIM_SCALES = 5
STANDARD_MSSSIM_WINDOW = 11
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
TRAINABLE_PARTS = {"refinement": ("refinement",), "synthesis": ("decoder", "log_inverse_gains", "refinement")}
"""The parts of a model that ``train_only`` can train alone, by the attributes of ``Autoencoder`` they hold.
``synthesis`` is all that runs after the entropy decoding (the synthesis network, its inverse gains and any
refinement): with the analysis and the prior frozen, every stream and its rate stay as they were."""


@dataclass(frozen=True)
class FitSettings:
    """The validated training options the loop needs."""

    spec: ModelSpec
    bits: int
    patch_size: int
    batch_size: int
    steps: int
    lr: float
    msssim_weight: float
    device: torch.device
    amp: str
    compile: bool
    seed: int
    output: Path
    checkpoint_every: int
    normalization: dict[str, tuple[float, float]]
    training_record: dict
    git_commit: str
    progress: bool = True
    workers: int = 0
    density_lr_factor: float = 1.0
    """The learned densities' learning rate, in multiples of ``lr`` (``FactorizedDensity`` parameters). They
    start wide (Ballé's initial scale of 10) and, at the learning rate of the networks, stay so for thousands
    of steps: after 2,500 steps the side latent of a checkerboard model cost 2.85 bits per value where it was
    all zeros, the table giving 0 a probability of 0.14."""
    initial_state: dict | None = None
    """Weights to start from instead of a random initialisation: all of them (``--init``) or some
    (``--warm-start``)."""
    large_patch_fraction: float = 0.0
    """Share of the steps whose patches are twice as wide (``data.CropPlan``)."""
    grad_clip: float = 0.0
    """Largest gradient norm (0: unclipped)."""
    weight_format: str = "float32"
    """How the best checkpoint stores its weights (``runtime.weights.WEIGHT_FORMATS``; the resume state keeps
    float32)."""
    lmbda: float = 0.0
    """Weight of the distortion against the estimated bpp; used by single-rate entropy-coded models
    (a variable-rate model's trade-offs are its spec's ``lmbdas``)."""
    augmentation: Augmentation = Augmentation()
    """Gain offsets and no-data regions drawn for the training patches (``augmentation``)."""
    time_limit: float | None = None
    """Seconds of training after which the run validates, checkpoints and stops before ``steps`` (None: no
    limit), so that a machine lent for minutes ends with a checkpoint; the schedule still spans ``steps``."""
    train_only: str | None = None
    """One of ``TRAINABLE_PARTS``: train it and keep every other weight as it starts (None: train everything).
    With the rest frozen, nothing upstream of the part needs gradients, so a step costs little more than the
    forward pass."""
    codec_tables: EntropyTables | None = None
    """``--coded-latents``: the starting checkpoint's tables, under which the decoder trains on the latents as the
    codec codes them (``coded_latents``), one whole level per batch, instead of the noise proxy."""


def resume_path(output: Path) -> Path:
    """Where the latest state (with optimizer and generators) goes; ``output`` holds the best model."""
    return output.with_name(output.stem + ".last" + output.suffix)


def msssim_window(patch_size: int) -> int:
    """The standard 11 px window when the patch allows it, else the largest odd window that does."""
    largest = (patch_size - 1) // 2**(MSSSIM_SCALES - 1)
    window = min(STANDARD_MSSSIM_WINDOW, largest if largest % 2 else largest - 1)
    return window


def learning_rate(settings: FitSettings, step: int) -> float:
    """Linear warm-up, then cosine decay to zero at the last step."""
    warmup = min(WARMUP_STEPS, max(settings.steps // 10, 1))
    if step < warmup:
        return settings.lr * (step + 1) / warmup
    progress = (step - warmup) / max(settings.steps - warmup, 1)
    return settings.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


class Fitter:
    """Holds the model, optimizer and generators; ``run`` trains to ``steps`` and writes checkpoints."""

    def __init__(self, settings: FitSettings, split: TrainingSplit, log: TrainingLog | None = None):
        self.settings = settings
        self.split = split
        self.log = log
        torch.manual_seed(settings.seed)
        # Channels-last is oneDNN's native layout: on a CPU it halves the step time of the GDN presets.
        self.model = Autoencoder(settings.spec).to(settings.device, memory_format=torch.channels_last)
        if settings.initial_state is not None:  # all of the weights (--init) or some (--warm-start)
            self.model.load_state_dict({**self.model.state_dict(), **settings.initial_state})
        if settings.train_only is not None:
            trained = {id(parameter) for parameter in self._part_parameters(settings.train_only)}
            for parameter in self.model.parameters():
                parameter.requires_grad_(id(parameter) in trained)
        # Compile the halves, not the module: the loop calls encoder and decoder separately, and the
        # compiled wrappers share the model's parameters, so its state dict keeps its plain names.
        self.encode = torch.compile(self.model.encoder) if settings.compile else self.model.encoder
        self.decode = torch.compile(self.model.decoder) if settings.compile else self.model.decoder
        self.codec_latents = None if settings.codec_tables is None else CodedLatents(self.model, settings.codec_tables)
        densities = {id(parameter) for module in self.model.modules() if isinstance(module, FactorizedDensity)
                     for parameter in module.parameters()}
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in trainable if id(p) not in densities], "lr_factor": 1.0},
                  {"params": [p for p in trainable if id(p) in densities], "lr_factor": settings.density_lr_factor}]
        self.optimizer = torch.optim.Adam([group for group in groups if group["params"]], lr=settings.lr)
        self.data_generator = torch.Generator().manual_seed(settings.seed)
        self.noise_generator = torch.Generator(settings.device).manual_seed(settings.seed + 1)
        self.scaler = torch.amp.GradScaler(settings.device.type, enabled=settings.amp == "fp16")
        self.step = 0
        self.best_loss = math.inf
        self.last_validation = (math.nan, math.nan)
        self.last_validation_bpp = math.nan
        self.validation_levels: list[tuple[float, float]] = []
        self.validation_by_source: dict[str, tuple[float, float]] = {}
        self.losses_since_validation: list[float] = []

    def _part_parameters(self, part: str) -> list[torch.nn.Parameter]:
        """The parameters of ``part``'s attributes: modules or single tensors (the gains), each absent from some
        models (a single-rate model has no inverse gains, a model without a refinement none)."""
        parameters = []
        for name in TRAINABLE_PARTS[part]:
            held = getattr(self.model, name, None)
            if isinstance(held, torch.nn.Parameter):
                parameters.append(held)
            elif held is not None:
                parameters.extend(held.parameters())
        return parameters

    def distortion(self, original: torch.Tensor, reconstruction: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per patch, MSE + w * (1 - MS-SSIM) over the valid pixels (``mask`` 1.0; None: all): (N,).

        No-data pixels are compared with the reconstruction itself, so they add nothing to the MSE, which is the
        mean over the valid pixels; what coding the fill costs still counts in the rate. MS-SSIM's windows that
        straddle a border still see the no-data pixels' values (on both sides alike), so with a weight on it the
        distortion ignores them only approximately (the shipped recipes use none)."""
        if mask is not None:
            original = torch.where(mask > 0, original, reconstruction.detach())
        squared = F.mse_loss(reconstruction, original, reduction="none").flatten(1)
        mse = squared.mean(dim=1) if mask is None else squared.sum(dim=1) / mask.flatten(1).sum(dim=1).clamp_min(1.0)
        if not self.settings.msssim_weight:
            return mse
        similarity = ms_ssim(reconstruction.clamp(0.0, 1.0), original, data_range=1.0,
                             win_size=msssim_window(min(original.shape[-2:])), size_average=False)
        return mse + self.settings.msssim_weight * (1.0 - similarity)

    def rate_distortion_loss(self, original: torch.Tensor, reconstruction: torch.Tensor,
                             likelihoods: list[torch.Tensor], quality: torch.Tensor | None,
                             mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The training objective (mean over the batch), and the mean estimated bpp (zero for fixed-length
        models)."""
        distortion = self.distortion(original, reconstruction, mask)
        if self.model.prior is None:
            return distortion.mean(), torch.zeros((), device=original.device)
        bpp = estimated_bits(likelihoods) / original[0, 0].numel()
        if quality is None:
            return (self.settings.lmbda * distortion + bpp).mean(), bpp.mean()
        return torch.log(self.model.lmbda(quality) * distortion + bpp).mean(), bpp.mean()

    def coded_latent(self, latent: torch.Tensor, rounded: bool,
                     quality: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The latent as the decoder sees it (as the codec codes it with ``--coded-latents``, else rounded or with
        the noise proxy) and the prior's likelihoods; in float32 outside autocast, where the likelihoods need the
        precision."""
        if self.codec_latents is not None:
            return self.codec_latents(latent, quality)
        if self.model.prior is not None:
            return self.model.prior.coded(latent.float(), rounded, None if rounded else self.noise_generator)
        if rounded:
            return dequantize(quantize(latent, LATENT_RANGE, self.settings.bits), LATENT_RANGE,
                              self.settings.bits), []
        return noisy_latent(latent.float(), LATENT_RANGE, self.settings.bits, self.noise_generator), []

    def _autocast(self):
        dtype = AMP_DTYPES.get(self.settings.amp)
        return torch.autocast(self.settings.device.type, dtype=dtype, enabled=dtype is not None)

    def _qualities(self, count: int) -> torch.Tensor | None:
        """A fractional quality per patch, uniform over a variable-rate model's levels; None otherwise."""
        levels = self.settings.spec.rate_levels
        if not levels:
            return None
        if self.codec_latents is not None:  # the codec codes a tile at one level
            level = torch.randint(levels, (1,), generator=self.noise_generator, device=self.settings.device)
            return level.float().expand(count)
        uniform = torch.rand(count, generator=self.noise_generator, device=self.settings.device)
        return uniform * (levels - 1)

    def _encode(self, batch: torch.Tensor, quality: torch.Tensor | None) -> torch.Tensor:
        latent = self.encode(batch)
        return latent if quality is None else latent * self.model.gains(self.model.log_gains, quality)

    def _decode(self, coded: torch.Tensor, quality: torch.Tensor | None) -> torch.Tensor:
        if quality is not None:
            coded = coded * self.model.gains(self.model.log_inverse_gains, quality)
        return self.model.refined(self.decode(coded), quality)

    def train_step(self, batch: torch.Tensor, mask: torch.Tensor | None = None) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = group["lr_factor"] * learning_rate(self.settings, self.step)
        quality = self._qualities(len(batch))
        with self._autocast():
            latent = self._encode(batch, quality)
        coded, likelihoods = self.coded_latent(latent, rounded=False, quality=quality)
        with self._autocast():
            reconstruction = self._decode(coded, quality)
        loss, _ = self.rate_distortion_loss(batch, reconstruction.float(), likelihoods, quality, mask)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.settings.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def validate(self) -> tuple[float, float, torch.Tensor, torch.Tensor]:
        """Loss and PSNR with real rounding (not the noise proxy), as the codec will run, and the
        validation patches with their reconstructions (for the logs). A variable-rate model is
        validated at each of its levels: the loss, PSNR and bpp are the means over the levels, and
        ``validation_levels`` keeps each level's bpp and PSNR; ``validation_by_source`` keeps, per validation
        source, the bpp and PSNR averaged over the levels, so that a held-out source is seen on its own."""
        self.model.eval()
        patches = self.split.validation_patches.to(self.settings.device)
        levels = self.settings.spec.rate_levels
        qualities = [torch.full((len(patches),), float(level), device=patches.device) for level in range(levels)]
        measured, per_patch = [], []
        for quality in qualities or [None]:
            coded, likelihoods = self.coded_latent(self.model.encode(patches, quality), rounded=True, quality=quality)
            reconstruction = self.model.decode(coded, quality).clamp(0.0, 1.0)
            mse = float(F.mse_loss(reconstruction, patches))
            loss, bpp = self.rate_distortion_loss(patches, reconstruction, likelihoods, quality)
            measured.append((float(loss), 10.0 * math.log10(1.0 / max(mse, 1e-12)), float(bpp)))
            patch_bpp = (estimated_bits(likelihoods) / patches[0, 0].numel() if likelihoods
                         else torch.zeros(len(patches), device=patches.device))
            per_patch.append((((reconstruction - patches) ** 2).flatten(1).mean(dim=1), patch_bpp))
        self.model.train()
        self.validation_levels = [(bpp, psnr) for _, psnr, bpp in measured]
        self.validation_by_source = by_source(self.split.validation_sources, per_patch)
        loss, psnr, bpp = (sum(values) / len(measured) for values in zip(*measured))
        self.last_validation_bpp = bpp
        return loss, psnr, patches, reconstruction

    def checkpoint(self, validation: tuple[float, float]) -> Checkpoint:
        """The model as a float32 checkpoint, with the entropy tables of its prior as it is (with
        ``--coded-latents`` the starting checkpoint's, its trellis settings kept: the prior is frozen)."""
        state = {name: tensor.detach().cpu().clone() for name, tensor in self.model.state_dict().items()}
        prior = self.model.prior
        tables = self.settings.codec_tables or (prior.tables() if prior is not None else None)
        return Checkpoint(spec=self.settings.spec, bits=self.settings.bits if prior is None else 0,
                          latent_range=LATENT_RANGE, normalization=self.settings.normalization, state_dict=state,
                          training=self.settings.training_record, git_commit=self.settings.git_commit,
                          step=self.step, validation_loss=validation[0], validation_psnr=validation[1],
                          entropy_tables=tables.to_tensors() if tables is not None else {},
                          validation_levels=list(self.validation_levels))

    def save(self, data_state: torch.Tensor) -> None:
        """Validate, log, keep the model at ``output`` if it is the best so far, and write the resume state
        (``data_state``: the patch generator's state before the next step's crops)."""
        *validation, patches, reconstruction = self.validate()
        self.last_validation = validation = tuple(validation)
        self._log(validation, patches, reconstruction)
        checkpoint = self.checkpoint(validation)
        if validation[0] < self.best_loss:
            self.best_loss = validation[0]
            # Another format rounds the weights and computes the tables again, from exactly those weights.
            weight_format = self.settings.weight_format
            save_checkpoint(checkpoint if weight_format == "float32" else in_weight_format(checkpoint, weight_format),
                            self.settings.output)
        save_checkpoint(checkpoint, resume_path(self.settings.output), extra={
            "optimizer": self.optimizer.state_dict(),
            "data_generator": data_state,
            "noise_generator": self.noise_generator.get_state().cpu(),
            "best_loss": self.best_loss,
        })

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_generator.set_state(state["data_generator"])
        self.noise_generator.set_state(state["noise_generator"])
        self.best_loss = float(state["best_loss"])
        self.step = int(state["step"])

    def _log(self, validation: tuple[float, float], patches: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Hand the mean training loss since the last validation and the validation to the log, if any."""
        if self.log is not None and self.losses_since_validation:
            self.log.validation(self.step, sum(self.losses_since_validation) / len(self.losses_since_validation),
                                *validation, learning_rate(self.settings, self.step - 1), patches, reconstruction)
        self.losses_since_validation.clear()

    def patch_plan(self) -> CropPlan:
        """The remaining steps' crops, drawn from the (possibly restored) data generator."""
        shapes = [tile.shape for tile in self.split.train_tiles]
        return CropPlan(shapes, self.settings.patch_size, self.settings.batch_size, self.data_generator,
                        self.step, self.settings.steps, self.settings.large_patch_fraction, self.settings.augmentation)

    def run(self) -> None:
        self.model.train()
        plan = self.patch_plan()
        cuda = self.settings.device.type == "cuda"
        loader = patch_loader(self.split.train_tiles, plan, self.settings.workers, cuda, self.settings.seed)
        deadline = None if self.settings.time_limit is None else time.monotonic() + self.settings.time_limit
        with tqdm(total=self.settings.steps, initial=self.step, disable=not self.settings.progress,
                  unit="step", dynamic_ncols=True) as progress:
            for batch in loader:
                all_valid = bool(batch[:, 1:].all())  # on the host: no device sync per step
                batch = batch.to(self.settings.device, non_blocking=cuda)
                patches = batch[:, :1].contiguous(memory_format=torch.channels_last)
                loss = self.train_step(patches, None if all_valid else batch[:, 1:])
                self.losses_since_validation.append(loss)
                out_of_time = deadline is not None and time.monotonic() > deadline
                if self.step % self.settings.checkpoint_every == 0 or self.step == self.settings.steps or out_of_time:
                    self.save(plan.state_before(self.step))
                if out_of_time:
                    break
                progress.update()
                postfix = {"loss": f"{loss:.4f}", "val_psnr": f"{self.last_validation[1]:.2f}"}
                if self.model.prior is not None:
                    postfix["val_bpp"] = f"{self.last_validation_bpp:.3f}"
                if len(self.validation_levels) > 1:
                    postfix["levels"] = " ".join(f"{bpp:.2f}/{psnr:.1f}" for bpp, psnr in self.validation_levels)
                if len(self.validation_by_source) > 1:
                    postfix["sources"] = " ".join(f"{source} {bpp:.2f}/{psnr:.1f}"
                                                  for source, (bpp, psnr) in self.validation_by_source.items())
                progress.set_postfix(postfix)
        if self.log is not None:
            self.log.close()
