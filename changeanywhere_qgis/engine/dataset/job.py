"""What a change-detection dataset is: its settings, the job a run carries out, and each sample's seed.

The data types every other module of this room shares (a job is picklable: workers and Dask tasks
receive it whole). Sample ``i`` gets a seed derived from the dataset seed and ``i``
(``np.random.SeedSequence([seed, i])``), and from it independent random streams for its window,
change events, content correlation s and the sampler's noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..diffusion import (DEFAULT_ETA, DEFAULT_INPAINT_MARGIN_PX, DEFAULT_MIXING, DEFAULT_PRE_EVENT, DEFAULT_PRECISION,
                         DEFAULT_RERENDER_STRENGTH, DEFAULT_SAMPLER, DEFAULT_STEPS, DEFAULT_STYLE_STRENGTH, check_guidance, check_mixing,
                         check_post_event, check_precision, check_pre_event, check_sampler, check_style_strength,
                         resolve_post_event)
from ..errors import InputError
from ..events import check_dates
from ..io import check_layout, has_second
from .appearance import DEFAULT_APPEARANCE_SHIFT

SPEC_FILE = "dataset.json"
MANIFEST = "manifest.jsonl"
CARD = "README.md"
RECORDS = ".samples"  # one JSON record per finished sample
WORK = ".work"  # private temporary folders of samples being written
CORRELATION_RANGE = (0.7, 1.0)  # s ~ U(0.7, 1.0) per sample, as in the authors' generator
STREAMS = ("events", "correlation", "sampler", "window")  # independent random streams of one sample
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test
# Settings left out of dataset.json at these values, so that specs written before they existed still match
# when a run resumes. pre_event's is "real", what datasets before the option were, whatever DEFAULT_PRE_EVENT says;
# sampler's is "ddim" and sampler_tile's None (the model's tile), mixing's "latent" (the paper's latent mixing),
# precision's "float32" (the package's own denoiser), what datasets before those options were, whatever DEFAULT_SAMPLER,
# DEFAULT_MIXING and DEFAULT_PRECISION say.
OPTIONAL_SETTINGS = {"guidance": None, "split_fractions": SPLIT_FRACTIONS, "split_folders": False, "second_classes": None,
                     "skip_hidden_change": False, "pre_event": "real", "sampler": "ddim", "sampler_tile": None, "dates": 2,
                     "appearance_shift": False, "style": None, "style_strength": DEFAULT_STYLE_STRENGTH, "post_event": "full",
                     "mixing": "latent", "precision": "float32"}
# What a spec without them meant (read back by sample_maps and resume): the values before the options existed.
LEGACY_SETTINGS = {"pre_event": "real", "sampler": "ddim", "sampler_tile": None, "appearance_shift": False, "post_event": "full",
                   "mixing": "latent", "precision": "float32"}
# The inpainting settings, recorded only with post_event "inpaint" (they change nothing else)
INPAINT_SETTINGS = ("inpaint_margin_px", "rerender_strength")


@dataclass(frozen=True)
class DatasetSettings:
    """What the dataset is; everything but ``count`` must match when a run resumes into a folder."""

    count: int
    tile: int = 256
    layout: str = "levir"
    fmt: str = "png"
    seed: int = 0
    steps: int = DEFAULT_STEPS
    eta: float = DEFAULT_ETA
    guidance: float | None = None  # classifier-free guidance scale; None: the model's own
    max_nodata: float = 0.5  # skip windows with more nodata than this fraction
    transitions: str | None = None  # transition table (JSON file); None: the OpenEarthMap rules
    transition_probability: float = 0.3
    max_changed_fraction: float = 0.3
    band: int = 1
    remap: str | None = None
    batch_size: int = 4
    stride: int | None = None  # spacing of candidate windows (px); None: tile // 32, at least 1
    pre_event: str = DEFAULT_PRE_EVENT  # with images: "real" (as given) or "redrawn" (the autoencoder's copy)
    sampler: str = DEFAULT_SAMPLER  # "ddim" or "dpmpp-2m"
    sampler_tile: int | None = None  # the sampler's tile, pixels; None: the model's (``tile`` is the sample's size)
    mixing: str = DEFAULT_MIXING  # how latent mixing holds the unchanged land: "latent" (the paper's) or "prediction"
    # the denoiser the workers load: "float32" (the package's own) or "int8" (its optional quantised one; CPU only);
    # it changes the images, so it is part of what the dataset is
    precision: str = DEFAULT_PRECISION
    split_fractions: tuple[float, float, float] = SPLIT_FRACTIONS  # train, val, test shares of the samples
    split_folders: bool = False  # one folder per split (train/A/, ...) instead of flat folders with list/*.txt
    second_classes: str | None = None  # JSON mapping of the model's classes into SECOND's; None: the built-in table
    skip_hidden_change: bool = False  # leave out samples whose change the mapping into SECOND's classes hides
    dates: int = 2  # dates per sample: 2 is a pair; more, a series (io/layouts/series.py: its folder and its pairs)
    # each image B gets a random appearance shift (appearance.py), recorded in the manifest; None: the default, on for
    # pairs (DEFAULT_APPEARANCE_SHIFT) and off for series, which take none yet; resolved when the settings are made, so
    # a replace() that changes the dates gives appearance_shift=None (and post_event=None) with them
    appearance_shift: bool | None = None
    style: str | None = None  # every image B takes this RGB raster's appearance (diffusion/style.py)
    style_strength: float = DEFAULT_STYLE_STRENGTH
    # "full", or "inpaint": image B is image A beyond the change (diffusion/inpaint.py); None: the default for the dates
    # (resolve_post_event: a series is drawn in full), resolved as appearance_shift is, so that dataset.json, the card and
    # a resume's comparison hold the mode made
    post_event: str | None = None
    inpaint_margin_px: int = DEFAULT_INPAINT_MARGIN_PX
    rerender_strength: float = DEFAULT_RERENDER_STRENGTH

    def __post_init__(self):
        # JSON gives a list back (dataset.json, Dask); the settings keep a tuple
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))
        if self.appearance_shift is None:
            object.__setattr__(self, "appearance_shift", DEFAULT_APPEARANCE_SHIFT and self.dates == 2)
        object.__setattr__(self, "post_event", resolve_post_event(self.post_event, self.dates))

    def check(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, (int, np.integer)) or self.count < 1:
            raise InputError(f"The sample count must be a whole number of at least 1, got {self.count!r}.")
        if isinstance(self.tile, bool) or not isinstance(self.tile, (int, np.integer)) or self.tile < 1:
            raise InputError(f"The tile size must be a positive number of pixels, got {self.tile!r}.")
        if self.count < 2:
            raise InputError(f"A dataset needs at least 2 samples, got {self.count}: a split list of one name is read by "
                             "np.loadtxt (BIT, ChangeFormer) as a 0-d array and fails. Give a count of 2 or more (6 or more "
                             "for train, val and test splits).")
        check_layout(self.layout, self.fmt)
        self._check_splits()
        if not has_second(self.layout) and (self.second_classes is not None or self.skip_hidden_change):
            raise InputError(f"The SECOND class mapping and skipping hidden change are for layouts with SECOND's folders "
                             f"(second, both, all); the layout is {self.layout!r}. Choose one of those layouts or leave them out.")
        if not 1 <= self.steps <= 1000:
            raise InputError(f"steps must be between 1 and 1000, got {self.steps}.")
        if not 0.0 <= self.eta <= 1.0:
            raise InputError(f"eta must be between 0 and 1, got {self.eta}.")
        check_guidance(self.guidance)
        check_pre_event(self.pre_event)
        check_sampler(self.sampler, self.eta)
        check_mixing(self.mixing)
        check_precision(self.precision)  # the device is the run's, not the dataset's: plan_dataset checks the two together
        check_dates(self.dates)
        check_style_strength(self.style_strength)
        check_post_event(self.post_event, self.inpaint_margin_px, self.rerender_strength)
        if self.dates > 2 and self.post_event == "inpaint":
            raise InputError(f"Inpainting (--post-event inpaint) makes change pairs; a dataset of series ({self.dates} dates) "
                             "is drawn in full for now. Leave --post-event out (or give full), or make pairs (--dates 2).")
        if self.dates > 2 and (self.style or self.appearance_shift):
            raise InputError(f"A dataset of series ({self.dates} dates) takes no style image or appearance shift yet: those "
                             "change a pair's image B. Leave --style/--appearance-shift out (a series has no appearance "
                             "shifts by default), or make pairs (--dates 2).")
        if self.sampler_tile is not None and (isinstance(self.sampler_tile, bool) or not isinstance(self.sampler_tile, (int, np.integer))
                                              or self.sampler_tile < 1):
            raise InputError(f"The sampler's tile size must be a positive number of pixels (or empty: the model's), got {self.sampler_tile!r}.")
        if not 0.0 <= self.max_nodata < 1.0:
            raise InputError(f"max_nodata (the largest nodata fraction of a tile) must be in [0, 1), got {self.max_nodata}.")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {self.batch_size}.")
        if self.stride is not None and self.stride < 1:
            raise InputError(f"The window stride must be at least 1 px, got {self.stride}.")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(f"The dataset seed must be a whole number >= 0, got {self.seed!r}.")

    def _check_splits(self) -> None:
        f = self.split_fractions
        if len(f) != 3 or any(not np.isfinite(x) or x < 0 for x in f) or abs(sum(f) - 1.0) > 1e-6 or f[0] <= 0:
            raise InputError(f"The split fractions must be three shares (train, val, test), each at least 0, train above 0, "
                             f"summing to 1 (e.g. 0.7 0.1 0.2, or 0.8 0 0.2 for train and test only); got {list(f)}.")

    def recorded(self) -> dict:
        """The settings as dataset.json records them (count aside: it may change when a run resumes)."""
        settings = {k: v for k, v in asdict(self).items() if k != "count" and not (k in OPTIONAL_SETTINGS and v == OPTIONAL_SETTINGS[k])
                    and not (k in INPAINT_SETTINGS and self.post_event != "inpaint")}
        if "split_fractions" in settings:
            settings["split_fractions"] = list(settings["split_fractions"])
        return settings


@dataclass(frozen=True)
class DatasetJob:
    """Everything a worker needs (picklable): inputs, settings and every sample's window."""

    out: str
    model: str
    semantic: tuple[str, ...]
    images: tuple[str | None, ...]
    settings: DatasetSettings
    windows: tuple[tuple[int, int, int], ...]  # per sample: (raster index, row, col)
    digits: int
    device: str = "cpu"
    threads: int | None = None
    spec: dict = field(default_factory=dict, compare=False)

    @property
    def count(self) -> int:
        return self.settings.count

    def name(self, index: int) -> str:
        return f"{index:0{self.digits}d}"

    def record_path(self, index: int) -> Path:
        return Path(self.out) / RECORDS / f"{self.name(index)}.json"


def spec_sampler_tile(spec: dict) -> int | None:
    """The sampler's tile a dataset was made with, in pixels: a spec without one was made with the model's tile."""
    return spec.get("settings", {}).get("sampler_tile") or spec.get("model_tile", {}).get("size")


def sample_seed(dataset_seed: int, index: int) -> int:
    """The seed of sample ``index``: reproducible, independent of every other sample."""
    return int(np.random.SeedSequence([int(dataset_seed), int(index)]).generate_state(1, np.uint32)[0])


def sample_rngs(seed: int) -> dict[str, np.random.Generator]:
    # The first three streams are the ones ``pipeline.generate(seed=...)`` uses.
    return {name: np.random.default_rng([seed, i]) for i, name in enumerate(STREAMS)}
