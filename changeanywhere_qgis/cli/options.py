"""Command-line options that several commands share, so their help and defaults cannot drift."""

from __future__ import annotations

import argparse

from ..engine.diffusion import DEFAULT_ETA, DEFAULT_PRE_EVENT, DEFAULT_SAMPLER, DEFAULT_STEPS, DEFAULT_STYLE_STRENGTH, PRE_EVENT_CHOICES, SAMPLERS
from ..engine.diffusion import DEFAULT_MIXING, MIXINGS, default_tile_text
from ..engine.diffusion import DEFAULT_PRECISION, PRECISIONS
from ..engine.diffusion import DEFAULT_INPAINT_MARGIN_PX, DEFAULT_POST_EVENT, DEFAULT_RERENDER_STRENGTH, POST_EVENT_CHOICES
from ..engine.io import STYLE_WINDOW_PX
from ..engine.landcover import builtin_remaps


def add_sampler_arguments(p: argparse.ArgumentParser) -> None:
    """--sampler, --mixing, --steps, --eta, --guidance (None: the model's own scale, which `info` shows) and --tile-size."""
    p.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER,
                   help=f"the solver of the reverse diffusion: ddim, or dpmpp-2m (DPM-Solver++ 2M, second order, for fewer "
                        f"steps; deterministic, takes no --eta); default {DEFAULT_SAMPLER}")
    p.add_argument("--mixing", choices=MIXINGS, default=DEFAULT_MIXING,
                   help="how the unchanged land is held to the pre-event image early in the diffusion: latent (the paper's: "
                        "its noisy state replaced at each step) or prediction (its predicted clean image replaced before each "
                        f"solver update: as faithful under DDIM, and a history --sampler dpmpp-2m can use); default {DEFAULT_MIXING}")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"sampler steps (default {DEFAULT_STEPS})")
    p.add_argument("--eta", type=float, default=DEFAULT_ETA, help=f"DDIM eta, 0 = deterministic updates (default {DEFAULT_ETA:g})")
    p.add_argument("--tile-size", type=int, metavar="PX",
                   help="the sampler's tile in pixels, a multiple of the model's size granule and at least its tile, e.g. 512 "
                        "for the 256 px bundled model: fewer network calls per megapixel (default: " + default_tile_text() + "; the model's "
                        "tile is what `info` shows; a raster that fits in one tile is never cut)")
    p.add_argument("--guidance", type=float,
                   help="classifier-free guidance scale, 1 = none; higher follows the map more closely but saturates colours "
                        "(default: the model's own, which `info` shows)")


def add_precision_argument(p: argparse.ArgumentParser) -> None:
    """--precision, beside --device: which denoiser graph the model package runs (engine: load_model_package)."""
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help="the denoiser's precision: float32, or int8 (faster on the CPU; CPU only; needs a model package with "
                        "an int8 denoiser, made by python -m model_export.export.quantize --package DIR); "
                        f"default {DEFAULT_PRECISION}")


def add_pre_event_argument(p: argparse.ArgumentParser) -> None:
    """--pre-event: what the pre-event image is when a real image is given."""
    p.add_argument("--pre-event", choices=PRE_EVENT_CHOICES, default=DEFAULT_PRE_EVENT,
                   help="with --image: 'real' keeps the image as the pre-event image; 'redrawn' uses the model's autoencoder's "
                        "copy of it, so both dates come out of the same decoder and a change detector cannot tell them apart "
                        f"by the decoder's look (default {DEFAULT_PRE_EVENT}, see the model card)")


def add_post_event_arguments(p: argparse.ArgumentParser) -> None:
    """--post-event, --inpaint-margin, --rerender-strength: whether the model draws the whole post-event image or only
    the change (diffusion/inpaint.py, docs/guide/inpainting.md)."""
    # default None: the engine's default for the dates (resolve_post_event), so that a series left without the option is
    # drawn in full whatever the pairs' default
    p.add_argument("--post-event", choices=POST_EVENT_CHOICES, default=None,
                   help="'full': the model draws the whole post-event image; 'inpaint': the post-event image is the pre-event "
                        "image wherever the land did not change, the model draws the change and a margin around it, blended "
                        "without a seam, and only the tiles near the change cost anything, for change pairs "
                        f"(default {DEFAULT_POST_EVENT} for pairs; a series, --dates 3 and more, is drawn in full; see "
                        "docs/guide/inpainting.md)")
    p.add_argument("--inpaint-margin", type=int, default=DEFAULT_INPAINT_MARGIN_PX, metavar="PX", dest="inpaint_margin_px",
                   help="with --post-event inpaint: pixels around the change that the model draws (the inner half) and fades "
                        f"into the pre-event image (the outer half); default {DEFAULT_INPAINT_MARGIN_PX}")
    p.add_argument("--rerender-strength", type=float, default=DEFAULT_RERENDER_STRENGTH, metavar="R",
                   help="with --post-event inpaint: the noise level, 0 to 1, at which the model re-renders the kept land too "
                        "(every tile then costs that share of the steps); 0 keeps it pixel for pixel "
                        f"(default {DEFAULT_RERENDER_STRENGTH:g})")


def post_event_settings(args) -> dict:
    """The three options as the engine's settings take them."""
    return {"post_event": args.post_event, "inpaint_margin_px": args.inpaint_margin_px, "rerender_strength": args.rerender_strength}


def remap_help(whose: str) -> str:
    return (f"remap {whose} codes into the model's: a built-in table ({', '.join(builtin_remaps())}) or a JSON file "
            '{"their code": our code}')


def add_series_arguments(p: argparse.ArgumentParser, dataset: bool = False) -> None:
    """--dates (and for generate --date-field): a series of dates, each changing the one before."""
    from ..engine.events import MAX_DATES

    p.add_argument("--dates", type=int, default=2, metavar="N",
                   help=f"dates of the series, 2 to {MAX_DATES} (default 2: a change pair); each later date applies its own "
                        "events to the date before, its image mixed from the date before's, so land unchanged since T1 stays "
                        "consistent. With 3 or more: " + ("each sample's dates in series/NAME/, and each consecutive pair "
                        "and T1-TN as a sample of the layout (NAME_t1_t2, ...), listed for training" if dataset else
                        "t1..tN images and maps, change_tK-1_tK masks and change_t1_tN (simulate: maps and masks only)"))
    if not dataset:
        p.add_argument("--date-field", metavar="FIELD",
                       help="field of the change polygons holding each polygon's date, 2 to N (the date its change appears; "
                            "needed with polygons and 3 or more dates)")


def add_style_arguments(p: argparse.ArgumentParser) -> None:
    """--style and --style-strength: the post-event image takes another image's appearance (not land-cover change)."""
    p.add_argument("--style", metavar="IMAGE",
                   help="an 8-bit RGB raster of any size and grid (another season, light or sensor): the post-event image "
                        "takes its appearance, in the changed and unchanged land alike (alpha 0 is ignored; its central "
                        f"{STYLE_WINDOW_PX} px are used)")
    p.add_argument("--style-strength", type=float, default=DEFAULT_STYLE_STRENGTH, metavar="A",
                   help=f"0 = no style, 1 = the style image's appearance (default {DEFAULT_STYLE_STRENGTH:g})")
