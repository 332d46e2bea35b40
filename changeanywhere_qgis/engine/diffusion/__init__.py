"""The model at work: the model package and its sessions, the noise schedule, tiling, sampling with latent mixing, one change pair,
the style image's appearance (AdaIN on the latent), and the estimate of a run's time and memory."""

from .canvas import LatentCanvases, LatentFile
from .change_pair import (DEFAULT_PRE_EVENT, PRE_EVENT_CHOICES, autoencoder_copy, change_pair, check_pre_event, decode_array, inpaint_decoder,
                          pair_work_units, post_event_latent, pre_event_kind, pre_event_latent)
from .inpaint import (DEFAULT_INPAINT_MARGIN_PX, DEFAULT_POST_EVENT, DEFAULT_RERENDER_STRENGTH, POST_EVENT_CHOICES, SERIES_IN_FULL,
                      InpaintRegion, check_post_event, decode_inpainted, inpaint_region, resolve_post_event, ui_post_event)
from .estimate import (PEAK_BYTES_PER_PIXEL, WINDOWED_GENERATE_BYTES_PER_PIXEL, WINDOWED_SIMULATE_BYTES_PER_PIXEL, MemoryEstimate, available_memory,
                       check_memory, duration, estimate_seconds, network_bytes, parse_size)
from .model_package import (DEFAULT_PRECISION, DEVICES, GUIDANCE_RANGE, PRECISIONS, ModelPackage, check_guidance, check_precision,
                            cuda_unavailable_reason, default_model_dir,
                            load_model_package, manifest_guidance_scale, read_manifest)
from .pixels import to_model_range, to_uint8
from .raster_plan import DEFAULT_TILE_PX, Plan, check_tile_size, default_tile_text, plan, resolve_tile_px
from .sampler import DEFAULT_MIXING, MIXINGS, KnownContent, SamplerSettings, check_mixing, decode, encode, latent_grid, sample
from .series import LaterDate, change_series, later_latents, series_work_units
from .schedule import DEFAULT_ETA, DEFAULT_SAMPLER, DEFAULT_STEPS, SAMPLERS, DiffusionSchedule, DPMSolverPP2M, check_sampler
from .style import (DEFAULT_STYLE_STRENGTH, DecodedStatistics, Styled, apply_style, LatentStatistics, Style, check_style_strength, colour_match, latent_statistics,
                    load_style, measure_decoded, restyle)
from .tiling import Tile, TileGrid, canvas_size, fuse, tile_starts

__all__ = ["DEFAULT_MIXING", "MIXINGS", "check_mixing", "DEFAULT_INPAINT_MARGIN_PX", "DEFAULT_POST_EVENT", "DEFAULT_RERENDER_STRENGTH", "POST_EVENT_CHOICES", "SERIES_IN_FULL", "InpaintRegion", "check_post_event", "resolve_post_event", "ui_post_event", "decode_inpainted", "inpaint_decoder", "inpaint_region", "pair_work_units", "LaterDate", "change_series", "later_latents", "series_work_units", "DEFAULT_ETA", "DEFAULT_PRE_EVENT", "DEFAULT_SAMPLER", "DEFAULT_STEPS", "SAMPLERS", "DPMSolverPP2M", "check_sampler", "check_tile_size", "DEFAULT_TILE_PX", "default_tile_text", "resolve_tile_px", "DEVICES", "DiffusionSchedule", "GUIDANCE_RANGE", "KnownContent", "LatentCanvases", "LatentFile", "MemoryEstimate", "ModelPackage", "PRECISIONS", "DEFAULT_PRECISION", "check_precision",
           "PEAK_BYTES_PER_PIXEL", "WINDOWED_GENERATE_BYTES_PER_PIXEL", "WINDOWED_SIMULATE_BYTES_PER_PIXEL", "available_memory", "check_memory", "duration", "estimate_seconds", "network_bytes", "parse_size",
           "PRE_EVENT_CHOICES", "Plan", "SamplerSettings", "Tile", "TileGrid", "autoencoder_copy", "canvas_size", "change_pair",
           "check_guidance", "check_pre_event", "cuda_unavailable_reason", "decode", "decode_array", "default_model_dir", "encode",
           "latent_grid", "load_model_package", "manifest_guidance_scale", "plan", "post_event_latent", "pre_event_kind",
           "pre_event_latent", "read_manifest", "sample", "DEFAULT_STYLE_STRENGTH", "DecodedStatistics", "Styled", "apply_style", "LatentStatistics", "Style", "check_style_strength", "colour_match", "latent_statistics", "load_style", "measure_decoded", "restyle", "fuse", "tile_starts", "to_model_range", "to_uint8"]
