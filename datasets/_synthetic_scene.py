"""Deterministic synthetic scenes that look like Sentinel-1 IW GRDH sigma0 (10 m pixels).

The default benchmark must run on a fresh machine without downloading data, yet
codecs must meet what real SAR looks like: piecewise-smooth backscatter with
sharp land-cover edges, a dark water class, bright urban point scatterers,
dual-polarisation correlation, spatially correlated 4.4-look speckle, and
ragged no-data borders. ``tests/test_synthetic_realism.py`` checks the output
against statistics measured on real chips (``shared/data/STATS.md``).

Every random choice comes from one ``np.random.default_rng(seed)``, drawn in a
fixed order, with no global state, so a (seed, size) pair always gives the same
scene: bit-identical with the same numpy and scipy, and at worst a last-bit
difference elsewhere (numpy's transcendental functions may use CPU-specific
code). Bump ``GENERATOR_VERSION`` whenever the output changes: callers cache
scenes under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage

GENERATOR_VERSION = 1

NATIVE_IW_GRDH_LOOKS = 4.4
SPECKLE_KERNEL = np.array([0.25, 0.5, 0.25])
"""Separable system response: GRDH pixels (10 m) are finer than the resolution (about 20 m),
so neighbouring pixels share speckle; this 3-tap kernel also spreads point targets."""

ORBIT_HEADING_DEG = (4.0, 12.0)
"""Rotation of the swath against the image grid: Sentinel-1's ground track runs about 10 degrees off north."""

NOISE_EQUIVALENT_SIGMA0_DB = (-26.0, -23.0)
"""Thermal noise floor of IW GRDH; it matters only over water and the darkest fields."""
NOISE_REMOVAL_FLOOR_DB = -50.0
"""Where noise removal drives intensity negative, the processor keeps a tiny positive value."""

INVALID_FRACTION = (0.06, 0.18)
RAGGED_EDGE_PX = 2.0
MIN_SIZE = 8
"""Below this the footprint and the speckle kernel leave no scene to speak of."""

TEXTURE_DB = np.array([0.5, 0.6, 0.5, 1.0])
"""Amplitude of the smooth within-class texture, indexed by ``Cover``: wind on water, soil
moisture in fields, canopy in forest, building density in towns."""
TEXTURE_VV_VH_CORRELATION = 0.7
POINT_SCATTERERS_PER_URBAN_PIXEL = 0.01


class Cover(IntEnum):
    WATER = 0
    FIELDS = 1
    FOREST = 2
    URBAN = 3


@dataclass(frozen=True)
class SyntheticScene:
    """One dual-polarisation scene: sigma0 in dB, NaN outside ``valid``."""

    vv_db: np.ndarray
    vh_db: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class SceneRecipe:
    """The per-seed choices that make scenes differ: land-cover mix, parcel size, footprint."""

    water_fraction: float
    urban_share_of_land: float
    forest_share_of_land: float
    parcel_spacing_px: float
    water_vv_db: float
    noise_db: float
    invalid_fraction: float


@dataclass(frozen=True)
class LandCover:
    """Per-pixel class and agricultural parcel id; parcels carry their own backscatter."""

    cover: np.ndarray
    parcels: np.ndarray
    parcel_count: int


@dataclass(frozen=True)
class Backscatter:
    """Speckle-free sigma0 in dB, the 'true' scene the radar sees."""

    vv_db: np.ndarray
    vh_db: np.ndarray


def generate_scene(seed: int, size: int) -> SyntheticScene:
    """Generate a ``size`` x ``size`` Sentinel-1 IW GRDH-like VV/VH scene, identical for identical arguments."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} pixels, got {size}")
    rng = np.random.default_rng(seed)
    recipe = draw_recipe(rng)
    valid = draw_footprint(rng, size, recipe.invalid_fraction)
    land_cover = draw_land_cover(rng, valid, recipe)
    truth = draw_backscatter(rng, land_cover, recipe)
    vv_points, vh_points = draw_point_scatterers(rng, land_cover.cover)
    vv = speckled_intensity(rng, truth.vv_db, vv_points, recipe.noise_db)
    vh = speckled_intensity(rng, truth.vh_db, vh_points, recipe.noise_db)
    return SyntheticScene(vv_db=to_masked_db(vv, valid), vh_db=to_masked_db(vh, valid), valid=valid)


def draw_recipe(rng: np.random.Generator) -> SceneRecipe:
    """Ranges follow the real chips in STATS.md. Their table pins water down: for the
    VV mean to stay above -15 dB and the VV spread below 6 dB with water on 40% of a
    scene, water has to read about -19 to -21 dB VV, as it does in the flood chips
    (wind and mixed shore pixels), not the -22 to -25 dB of calm open water. Water
    covers up to 40% of the scene; the 'VV < -15 dB' estimate reads it as up to about
    0.45, because speckle pushes some dark fields below the threshold too."""
    return SceneRecipe(
        water_fraction=float(rng.uniform(0.0, 0.4)),
        urban_share_of_land=float(rng.uniform(0.01, 0.05)),
        forest_share_of_land=float(rng.uniform(0.05, 0.35)),
        parcel_spacing_px=float(rng.uniform(18.0, 45.0)),
        water_vv_db=float(rng.uniform(-20.5, -18.5)),
        noise_db=float(rng.uniform(*NOISE_EQUIVALENT_SIGMA0_DB)),
        invalid_fraction=float(rng.uniform(*INVALID_FRACTION)),
    )


def smooth_noise(rng: np.random.Generator, size: int, correlation_px: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field. It is filtered on a grid a quarter of
    the correlation length apart and interpolated bilinearly, because filtering at full
    resolution with a wide kernel is slow; a field that smooth loses nothing to it."""
    step = max(1, int(correlation_px // 4))
    coarse_size = size // step + 4
    white = rng.standard_normal((coarse_size, coarse_size))
    coarse = ndimage.gaussian_filter(white, correlation_px / step, mode="wrap")
    field = ndimage.zoom(coarse, step, order=1)[:size, :size]
    return (field - field.mean()) / max(float(field.std()), 1e-12)


def voronoi_labels(seed_rows: np.ndarray, seed_cols: np.ndarray, size: int) -> np.ndarray:
    """Label each pixel with its nearest seed: Voronoi cells have the straight edges of field parcels."""
    seeds = np.full((size, size), -1, dtype=np.int32)
    seeds[seed_rows, seed_cols] = np.arange(seed_rows.size, dtype=np.int32)
    nearest = ndimage.distance_transform_edt(seeds < 0, return_distances=False, return_indices=True)
    return seeds[nearest[0], nearest[1]]


def parcel_seeds(rng: np.random.Generator, size: int, spacing_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Seeds on a rotated, stretched, jittered lattice: cells come out as the elongated
    quadrilaterals of field systems rather than the random polygons of a Poisson Voronoi."""
    angle = rng.uniform(0.0, np.pi)
    stretch = rng.uniform(1.0, 1.8)
    reach = int(np.ceil(size * 0.75 / spacing_px)) + 1
    along, across = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1))
    along = (along + rng.uniform(-0.3, 0.3, along.shape)) * spacing_px * stretch
    across = (across + rng.uniform(-0.3, 0.3, across.shape)) * spacing_px
    rows = size / 2 + along * np.cos(angle) - across * np.sin(angle)
    cols = size / 2 + along * np.sin(angle) + across * np.cos(angle)
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    if not inside.any():
        return np.array([size // 2]), np.array([size // 2])
    return rows[inside].astype(np.intp), cols[inside].astype(np.intp)


def draw_land_cover(rng: np.random.Generator, valid: np.ndarray, recipe: SceneRecipe) -> LandCover:
    """Parcels take a class from smooth 'landscape' fields sampled at their seed, so forest
    and towns follow parcel edges; water follows a thresholded field, so shores are curved."""
    size = valid.shape[0]
    rows, cols = parcel_seeds(rng, size, recipe.parcel_spacing_px)
    parcels = voronoi_labels(rows, cols, size)
    water = water_mask(rng, size, recipe.water_fraction)
    town_sites = ~water[rows, cols] & valid[rows, cols]
    parcel_cover = classify_parcels(rng, size, rows, cols, town_sites, recipe)
    cover = parcel_cover[parcels]
    cover[water & (cover != Cover.URBAN)] = Cover.WATER
    return LandCover(cover=cover, parcels=parcels, parcel_count=rows.size)


def classify_parcels(rng: np.random.Generator, size: int, rows: np.ndarray, cols: np.ndarray,
                     town_sites: np.ndarray, recipe: SceneRecipe) -> np.ndarray:
    """Towns are the top quantile of a town field among parcels on dry land inside the
    footprint: towns stand above the water, so the urban share of land holds whatever the
    water fraction, and at least one town is always in view, so every scene tests how a
    codec keeps bright point targets. Forest is the top quantile of a forest field among
    the remaining parcels."""
    town = smooth_noise(rng, size, 60.0)[rows, cols]
    woodland = smooth_noise(rng, size, 120.0)[rows, cols]
    if town_sites.any():
        town[~town_sites] = -np.inf
    cover = np.full(rows.size, Cover.FIELDS, dtype=np.int8)
    urban_count = max(1, int(round(recipe.urban_share_of_land * np.count_nonzero(town_sites))))
    cover[np.argsort(-town, kind="stable")[:urban_count]] = Cover.URBAN
    woodland[cover == Cover.URBAN] = -np.inf
    forest_count = int(round(recipe.forest_share_of_land * rows.size))
    cover[np.argsort(-woodland, kind="stable")[:forest_count]] = Cover.FOREST
    return cover


def water_mask(rng: np.random.Generator, size: int, fraction: float) -> np.ndarray:
    """Large smooth bodies with a finer component so shorelines are irregular, not round."""
    field = smooth_noise(rng, size, 90.0) + 0.35 * smooth_noise(rng, size, 12.0)
    return field > np.quantile(field, 1.0 - fraction)


def draw_backscatter(rng: np.random.Generator, land_cover: LandCover, recipe: SceneRecipe) -> Backscatter:
    """Class and parcel levels plus smooth within-class texture. VH follows VV through the
    land cover at a class-dependent offset, which is what correlates the polarisations."""
    vv_level, vh_offset = class_levels(rng, land_cover, recipe)
    size = land_cover.cover.shape[0]
    shared = smooth_noise(rng, size, 40.0)
    vh_own = smooth_noise(rng, size, 40.0)
    amplitude = TEXTURE_DB[land_cover.cover]
    vh_texture = TEXTURE_VV_VH_CORRELATION * shared + np.sqrt(1.0 - TEXTURE_VV_VH_CORRELATION ** 2) * vh_own
    vv_db = vv_level + amplitude * shared
    vh_db = vv_level - vh_offset + amplitude * vh_texture
    return Backscatter(vv_db=vv_db, vh_db=vh_db)


def class_levels(rng: np.random.Generator, land_cover: LandCover,
                 recipe: SceneRecipe) -> tuple[np.ndarray, np.ndarray]:
    """Typical C-band sigma0: water dark in VV (see ``draw_recipe``) and 6-8 dB darker in
    VH; fields vary per parcel with crop and moisture; forest is bright and uniform, with
    the smallest VV-VH gap (volume scattering); towns are bright in VV (double bounce),
    with the largest gap, and vary block by block."""
    cover, parcels = land_cover.cover, land_cover.parcels
    parcel_vv = np.clip(rng.normal(-10.5, 1.5, land_cover.parcel_count), -15.0, -6.0)
    parcel_offset = rng.uniform(5.0, 9.5, land_cover.parcel_count)
    vv = parcel_vv[parcels]
    offset = parcel_offset[parcels]
    forest = cover == Cover.FOREST
    vv[forest] = rng.uniform(-9.5, -8.0)
    offset[forest] = rng.uniform(5.5, 6.5)
    urban = cover == Cover.URBAN
    vv[urban] = rng.uniform(-7.0, -4.0) + urban_block_contrast(rng, cover.shape[0])[urban]
    offset[urban] = rng.uniform(8.0, 10.0)
    water = cover == Cover.WATER
    vv[water] = recipe.water_vv_db
    offset[water] = rng.uniform(6.0, 8.0)
    return vv, offset


def urban_block_contrast(rng: np.random.Generator, size: int) -> np.ndarray:
    """City blocks about 80 m across, each brighter or darker with building density and orientation."""
    block_count = max(1, size * size // 64)
    rows = rng.integers(0, size, block_count)
    cols = rng.integers(0, size, block_count)
    blocks = voronoi_labels(rows, cols, size)
    return rng.normal(0.0, 2.0, block_count)[blocks]


def draw_point_scatterers(rng: np.random.Generator, cover: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corner reflectors of buildings: sparse, unspeckled, peaking 0 to +20 dB in VV and
    about 8 dB less in VH. Intensities are set so the peak survives the system response."""
    urban_rows, urban_cols = np.nonzero(cover == Cover.URBAN)
    count = max(1, int(POINT_SCATTERERS_PER_URBAN_PIXEL * urban_rows.size))
    chosen = rng.choice(urban_rows.size, size=count, replace=False)
    peak_db = np.minimum(rng.exponential(5.0, count), 20.0)
    vh_peak_db = peak_db - rng.uniform(5.0, 11.0, count)
    centre_weight = SPECKLE_KERNEL.max() ** 2
    vv = np.zeros(cover.shape)
    vh = np.zeros(cover.shape)
    vv[urban_rows[chosen], urban_cols[chosen]] = 10.0 ** (peak_db / 10.0) / centre_weight
    vh[urban_rows[chosen], urban_cols[chosen]] = 10.0 ** (vh_peak_db / 10.0) / centre_weight
    return vv, vh


def speckled_intensity(rng: np.random.Generator, truth_db: np.ndarray, points: np.ndarray,
                       noise_db: float) -> np.ndarray:
    """Radar intensity as a denoised, calibrated GRD holds it.

    Thermal noise adds to the signal's power before detection, so speckle (Gamma, mean 1)
    multiplies both; the processor then subtracts the annotated noise power and clamps
    what goes negative. That is why dark water reads so unevenly in VH, with a tail far
    below the noise floor. Point targets are deterministic and carry no speckle. The
    system response comes last, standing for both the GRD multi-looking and the
    resampling after noise removal; it raises the looks by 1 / sum(k**2), so the raw
    Gamma shape is chosen to land on the native 4.4 looks after it.
    """
    kernel_2d = np.outer(SPECKLE_KERNEL, SPECKLE_KERNEL)
    raw_looks = NATIVE_IW_GRDH_LOOKS * float(np.sum(kernel_2d ** 2))
    noise = 10.0 ** (noise_db / 10.0)
    speckle = rng.gamma(raw_looks, 1.0 / raw_looks, truth_db.shape)
    denoised = (10.0 ** (truth_db / 10.0) + noise) * speckle - noise
    intensity = np.maximum(denoised, 10.0 ** (NOISE_REMOVAL_FLOOR_DB / 10.0)) + points
    for axis in (0, 1):
        intensity = ndimage.correlate1d(intensity, SPECKLE_KERNEL, axis=axis, mode="reflect")
    return intensity


def draw_footprint(rng: np.random.Generator, size: int, invalid_fraction: float) -> np.ndarray:
    """A swath rotated by the orbit heading, its four edges pulled in by different amounts so
    that some corners and edges fall outside it, with the ragged few-pixel border that
    border-noise removal leaves on GRD products."""
    heading = np.deg2rad(rng.uniform(*ORBIT_HEADING_DEG)) * rng.choice([-1.0, 1.0])
    normals = [(np.cos(heading + quarter), np.sin(heading + quarter)) for quarter in np.arange(4) * np.pi / 2]
    slack = rng.uniform(0.0, 0.25, 4) * size
    raggedness = [ragged_edge(rng, size) for _ in normals]
    inset = inset_for_invalid_fraction(normals, slack, size, invalid_fraction)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) - (size - 1) / 2
    valid = np.ones((size, size), dtype=bool)
    for (normal_row, normal_col), edge_slack, edge_noise in zip(normals, slack, raggedness):
        distance = rows * normal_row + cols * normal_col
        along = np.rint(cols * normal_row - rows * normal_col).astype(np.intp) + size
        valid &= distance < size / 2 + edge_slack - inset + edge_noise[along]
    return valid


def ragged_edge(rng: np.random.Generator, size: int) -> np.ndarray:
    """Per-line offsets of an edge: a slow wobble plus line-to-line jitter. The amplitude
    shrinks on small scenes, where a few pixels of raggedness would eat the whole footprint."""
    length = 2 * size + 1
    amplitude = RAGGED_EDGE_PX * min(1.0, size / 256)
    wobble = ndimage.gaussian_filter1d(rng.standard_normal(length), 6.0)
    wobble *= amplitude / max(float(wobble.std()), 1e-12)
    return wobble + rng.uniform(-amplitude, amplitude, length)


def inset_for_invalid_fraction(normals: list[tuple[float, float]], slack: np.ndarray, size: int,
                               invalid_fraction: float) -> float:
    """Bisect the common inset of the four edges on a coarse grid, so the invalid share is
    drawn directly rather than left to the accident of the edge geometry."""
    coarse = np.linspace(-(size - 1) / 2, (size - 1) / 2, min(size, 128))
    rows, cols = np.meshgrid(coarse, coarse, indexing="ij")
    overshoot = np.max([rows * nr + cols * nc - size / 2 - s for (nr, nc), s in zip(normals, slack)], axis=0)
    low, high = -float(overshoot.max()) - 1.0, -float(overshoot.min()) + 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if np.mean(overshoot > -middle) < invalid_fraction:
            low = middle
        else:
            high = middle
    return low


def to_masked_db(intensity: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """dB as float32 with NaN outside the footprint, the no-data convention of GRD GeoTIFFs."""
    db = np.full(intensity.shape, np.nan, dtype=np.float32)
    db[valid] = 10.0 * np.log10(intensity[valid])
    return db
