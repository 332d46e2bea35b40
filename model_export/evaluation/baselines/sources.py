"""The real maps and images the baselines cut their samples from: the same windows as the dataset command's.

A baseline sample ``i`` starts from the window the dataset command gives its sample ``i`` for the same maps, count,
tile, seed and remap (the engine's own plan, :func:`plan_dataset`, chooses it), so a baseline and a generated dataset
made with the same settings hold the same places; only how B and the change label are made differs.

The maps (in the model's classes, after the remap) and the images are read whole: the usefulness test's sources
are a few megapixels each, and the baselines take pixels from anywhere in them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from changeanywhere_qgis.engine.dataset import DatasetSettings, candidate_windows, plan_dataset, sample_seed
from changeanywhere_qgis.engine.dataset.job import sample_rngs
from changeanywhere_qgis.engine.diffusion import default_model_dir, read_manifest
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import read_semantic
from changeanywhere_qgis.engine.landcover import ClassScheme, load_remap


@dataclass
class Source:
    """One land-cover map and its image, whole, in the model's classes."""

    semantic: str
    image: str
    labels: np.ndarray  # uint8 [H, W], the scheme's codes (nodata code where not valid)
    valid: np.ndarray  # bool [H, W]
    pixels: np.ndarray  # uint8 [3, H, W]
    transform: object
    crs: object


@dataclass
class Sources:
    """The group of maps one baseline dataset is made from, and every sample's window (as the dataset command's)."""

    rasters: list[Source]
    scheme: ClassScheme
    settings: DatasetSettings
    windows: tuple[tuple[int, int, int], ...]  # per sample: (raster index, row, col)
    digits: int
    model: str

    @property
    def tile(self) -> int:
        return int(self.settings.tile)

    def name(self, index: int) -> str:
        return f"{index:0{self.digits}d}"

    def window(self, index: int) -> tuple[int, slice, slice]:
        k, row, col = self.windows[index]
        return k, slice(row, row + self.tile), slice(col, col + self.tile)

    def candidates(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rows, cols) of every window the dataset command could draw, per raster."""
        st = self.settings
        stride = st.stride or max(1, st.tile // 32)
        return [candidate_windows(s.valid, st.tile, stride, st.max_nodata) for s in self.rasters]


def load_sources(semantic: list[str], images: list[str], *, count: int, tile: int, seed: int, remap: str | None = None,
                 band: int = 1, max_nodata: float = 0.5, stride: int | None = None, model: str | None = None,
                 out: str | Path) -> Sources:
    """Check the inputs as the dataset command does, choose its windows and read the rasters whole."""
    if not images or len(images) != len(semantic):
        raise InputError(f"The baselines cut real pixels out of the images: give one image per land-cover map "
                         f"({len(semantic)} maps, {len(images or [])} images) with --image.")
    settings = DatasetSettings(count=count, tile=tile, seed=seed, remap=remap, band=band, max_nodata=max_nodata, stride=stride,
                               layout="levir", fmt="png")
    # the engine's plan checks the maps, images and tile and draws the windows; it writes nothing. It is shown a path
    # beside the output that does not exist: its checks of an existing output folder are the dataset command's (a
    # baseline's folder is checked by writer.check_out)
    out = Path(out).resolve()
    job = plan_dataset(semantic, out.parent / f".{out.name}.plan", settings, images=images, model=model)
    model_dir = Path(model) if model else default_model_dir()
    scheme = ClassScheme.from_manifest(read_manifest(model_dir))
    lut = load_remap(remap)
    rasters = []
    for sem_path, img_path in zip(job.semantic, job.images):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing CRS is the dataset command's to report
            sem = read_semantic(sem_path, scheme, band, lut)
            with rasterio.open(img_path) as src:
                pixels = src.read((1, 2, 3))
                transform, crs = src.transform, src.crs
        rasters.append(Source(sem_path, img_path, np.asarray(sem.labels), np.asarray(sem.valid), pixels, transform, crs))
    return Sources(rasters, scheme, settings, job.windows, job.digits, str(model_dir.resolve()))


def sample_rng(dataset_seed: int, index: int, stream: int) -> np.random.Generator:
    """A baseline's own random stream for sample ``index``: independent of the dataset command's streams
    (``sample_rngs``), which the copy-paste baseline also reads to match the generated sample's changed share."""
    return np.random.default_rng([sample_seed(dataset_seed, index), 0xBA5E, stream])


def generated_changed_share(sources: Sources, index: int, transitions: str | None = None) -> float:
    """The changed share of the dataset command's sample ``index`` (same maps, window and seed): its change events
    come from the maps alone, so they are simulated here exactly as the dataset command simulates them, no model
    needed (the share its manifest records as ``changed_fraction``)."""
    from changeanywhere_qgis.engine.events import change_mask, load_table, random_events

    st = sources.settings
    k, rows, cols = sources.window(index)
    pre, valid = sources.rasters[k].labels[rows, cols], sources.rasters[k].valid[rows, cols]
    nodata = sources.scheme.nodata_code
    result = random_events(pre, sources.scheme, sample_rngs(sample_seed(st.seed, index))["events"], nodata=nodata,
                           table=load_table(transitions, sources.scheme), transition_probability=st.transition_probability,
                           max_changed_fraction=st.max_changed_fraction)
    mask = change_mask(pre, result.post, nodata=nodata)
    n_valid = int(valid.sum())
    return float(((mask == 1) & valid).sum() / n_valid) if n_valid else 0.0


def class_pixels(labels: np.ndarray, valid: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels[valid], minlength=256)
    return {str(code): int(n) for code, n in enumerate(counts) if n}
