"""Change-detection datasets: the job and its settings, the plan, one sample, the workers (local or Dask), the card, and the
post-event images' random appearance shifts."""

from .appearance import DEFAULT_APPEARANCE_SHIFT, AppearanceShift, appearance_shift, draw_appearance_shift
from .card import dataset_command
from .generate import finish_dataset, generate_dataset, load_records
from .job import CORRELATION_RANGE, SPEC_FILE, SPLIT_FRACTIONS, DatasetJob, DatasetSettings, sample_seed
from .plan import candidate_windows, plan_dataset
from .sample import run_sample, sample_maps

__all__ = ["DEFAULT_APPEARANCE_SHIFT", "AppearanceShift", "appearance_shift", "draw_appearance_shift", "CORRELATION_RANGE", "SPEC_FILE", "SPLIT_FRACTIONS", "DatasetJob", "DatasetSettings", "candidate_windows", "dataset_command",
           "finish_dataset", "generate_dataset", "load_records", "plan_dataset", "run_sample", "sample_maps", "sample_seed"]
