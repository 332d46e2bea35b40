"""What a run will cost, said before it starts: memory from the raster's size, time from the tile count
and a measured network call. A run whose memory estimate exceeds what the machine (or its container)
has free is refused before anything is written, instead of being killed by the system hours later.

The memory per pixel is measured, not derived: ``make bench``'s memory-by-stage section gave a peak
RSS growing by about 19 bytes per pixel between 1024^2 and 4096^2 for the simulate path (116 MB ->
411 MB), and 11 since its map reading and change events work in bands of rows (112 MB -> 290 MB,
docs/reference/benchmarks.md); issue 18 measured 18.6 (``simulate``) and 18.8 (``generate``, model included) at
16384^2 before that. 20 stays for a map held in memory (up to 4096^2), whose latent canvases are arrays too.
A larger map's arrays are files read by window (``engine/io/scratch.py``), and so are ``generate``'s latent
canvases (``canvas.py``): a run then counts WINDOWED_BASE_BYTES plus WINDOWED_SIMULATE_BYTES_PER_PIXEL
(the component tables, a few dozen bytes per object), a margin over ``make bench``'s large-map section.
The estimate is the whole process's peak, as ``--max-memory`` limits it and as the system counts it: what the process
holds when the estimate is made (the interpreter, its libraries, the loaded model, the map), plus the raster's arrays
above, plus the networks' working memory (onnxruntime's arena for a tile batch's activations, NETWORK_BYTES_PER_TILE,
which the arrays' figures do not hold: the 512 px sample peaks at about 1.06 GB, of which about 0.9 GB is that).
``python -m benchmarks.run --only estimates`` measures the estimate against the peak (docs/reference/benchmarks.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

PEAK_BYTES_PER_PIXEL = 20
# simulate on a large map (its arrays in scratch files, events and polygons window by window, docs/reference/benchmarks.md):
# a bounded part for the windows, and the component tables (a few bytes per object, the objects per pixel of real maps).
# The networks' working memory is counted apart (NETWORK_BYTES_PER_TILE); what the windows add above the process
# measured 170 MB at 16384² and 460 MB at 40000² (simulate's peaks of 320 and 631 MB, about 150 MB of them the process).
WINDOWED_BASE_BYTES = 1 << 27
WINDOWED_SIMULATE_BYTES_PER_PIXEL = 0.5
# generate on a large map: the latent canvases are files too (canvas.py), stepped by window, so what grows with the
# raster is the same as simulate's; the networks' working memory for a tile batch is in the bounded part
WINDOWED_GENERATE_BYTES_PER_PIXEL = WINDOWED_SIMULATE_BYTES_PER_PIXEL
# The networks' working memory per tile of a batch: onnxruntime's arena for one call's activations, which each graph's
# session keeps between calls, so a run's peak holds the denoiser's and the decoder's (and, with an image to encode,
# the encoder's) at once, each for a full batch. Measured in a run: the 512 px sample with the bundled model (256 px
# tiles, batch 4, guidance on), its peak minus what the process held at the estimate, 702 MB
# (`python -m benchmarks.estimate_probe changeanywhere_qgis/samples/houston_label.tif OUT --steps 1`: 862 MB against
# 160), shared between the graphs as each alone takes (`python -m benchmarks.network_memory`: 113, 135 and 50 MB per
# tile, called alone in a fresh process, where the arena grows further than in a run); another tile size scales them
# by its area.
NETWORK_BYTES_PER_TILE = {"denoiser": 80 << 20, "decoder": 96 << 20, "encoder": 36 << 20}
NETWORK_TILE_PX = 256
LONG_WORK_TILE_CALLS = 1000  # below this many tile-passes through a network, a run is short: no timing call


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """What the process's memory cgroup (a container, a batch job) still allows, if it sets a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            limit_file, usage_file = base / "memory.max", base / "memory.current"
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            limit_file, usage_file = base / "memory.limit_in_bytes", base / "memory.usage_in_bytes"
        else:
            continue
        try:
            limit, usage = limit_file.read_text().strip(), int(usage_file.read_text())
        except (OSError, ValueError):
            continue
        if limit != "max" and int(limit) < 1 << 60:  # v1 writes a huge number for 'no limit'
            return max(0, int(limit) - usage)
    return None


def available_memory() -> int | None:
    """Bytes this process can still take without swapping or being killed (None: unknown on this system)."""
    try:
        import psutil

        found = [int(psutil.virtual_memory().available)]
    except ImportError:
        found = [v for v in (_meminfo_available(),) if v is not None]
    room = _cgroup_room()
    if room is not None:
        found.append(room)
    return min(found) if found else None


def parse_size(text: str) -> int:
    """'4G', '500MB', '1.5 GiB', '2000000' -> bytes (powers of 1024 for K/M/G/T)."""
    value = str(text).strip().upper().replace(" ", "").removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if value and value[-1] in scale:
            return int(float(value[:-1]) * scale[value[-1]])
        return int(float(value))
    except ValueError:
        raise InputError(f"Cannot read the memory size {text!r}; write it as e.g. 4G or 500M.") from None


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.0f} MB"


def process_memory() -> int:
    """Bytes this process holds now (its resident set); 0 where it cannot be told."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except (ImportError, OSError):
        pass
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def network_bytes(model_tile_px: int, batch_size: int, with_image: bool, tile_px: int | None = None) -> int:
    """The networks' working memory at a run's peak: every graph it calls, each on a full batch of tiles of
    ``tile_px`` (the sampler's tile; None: the model's)."""
    area = ((tile_px or model_tile_px) / NETWORK_TILE_PX) ** 2
    graphs = ("denoiser", "decoder", "encoder") if with_image else ("denoiser", "decoder")
    return int(batch_size * area * sum(NETWORK_BYTES_PER_TILE[g] for g in graphs))


@dataclass(frozen=True)
class MemoryEstimate:
    needed: int  # bytes the whole process will hold at the run's peak
    available: int | None  # bytes free (or the limit the user set)
    limit_given: bool
    in_use: int = 0  # bytes the process held when the estimate was made (part of ``needed``)

    @property
    def more(self) -> int:
        """Bytes the run adds to what the process holds now: what must be free."""
        return self.needed - self.in_use

    def describe(self) -> str:
        room = f"; {gb(self.available)} {'allowed' if self.limit_given else 'available'}" if self.available is not None else ""
        return f"memory: about {gb(self.needed)} at the peak (the whole process{room})"


def check_memory(height: int, width: int, what: str, max_memory: int | None = None,
                 bytes_per_pixel: float | None = None, networks: int = 0) -> MemoryEstimate:
    """Refuse a raster whose run would need more memory than is free (or than ``max_memory`` allows the whole process);
    else the estimate.

    ``bytes_per_pixel`` None: the whole-raster figure; given: a windowed run's (plus its bounded part). ``networks``:
    the networks' working memory (:func:`network_bytes`; 0 for a run without networks)."""
    if bytes_per_pixel is None:
        arrays = int(PEAK_BYTES_PER_PIXEL * height * width)
    else:
        arrays = int(WINDOWED_BASE_BYTES + bytes_per_pixel * height * width)
    in_use = process_memory()
    needed = in_use + arrays + int(networks)
    available = max_memory if max_memory is not None else available_memory()
    estimate = MemoryEstimate(needed, available, max_memory is not None, in_use)
    parts = (f"{gb(in_use)} in use now, {gb(arrays)} for the raster's arrays"
             + (f", {gb(networks)} for the networks' working memory" if networks else ""))
    advice = ("nothing was written. Cut the raster into smaller windows (e.g. gdal_translate -srcwin, or QGIS 'Clip raster "
              "by extent')" + (", lower --batch-size" if networks else "") + ", free memory, or use a machine with more.")
    if max_memory is not None and needed > max_memory:
        raise InputError(f"{what} on this {width}x{height} px raster needs about {gb(needed)} of memory at its peak (the "
                         f"whole process: {parts}), more than the {gb(max_memory)} allowed (--max-memory); {advice}")
    if max_memory is None and available is not None and estimate.more > available:
        raise InputError(f"{what} on this {width}x{height} px raster needs about {gb(estimate.more)} more memory than this "
                         f"process holds now ({gb(needed)} at its peak: {parts}), more than the {gb(available)} this machine "
                         f"has free; {advice}")
    return estimate


def _timed(call) -> float:
    clock = time.perf_counter()
    call()
    return time.perf_counter() - clock


def time_per_call(pkg, batch: int, with_image: bool) -> dict[str, float]:
    """Seconds of one network call of each graph on a full tile batch (zeros: the cost does not depend on content).

    Each graph is called once untimed (the first call pays onnxruntime's warm-up and grows its arena), then timed as
    the run calls it: on the full batch, its arena kept; the last timed call of each graph hands the arena back at
    its end, so the estimate leaves no memory behind, and its peak (one graph's batch) stays below the run's (every
    graph's batch: ``network_bytes``). The denoiser's time is the median of three calls, as other programs on the
    machine make single calls noisy. Timed on one tile and multiplied by the batch, handing the arena back after every
    call, the estimate was 1.6 times the run's network time at 1024² and 3 to 4 times at 16384² on a 2-core machine
    (issue #36): a batch's call uses the cores better than a tile's, and a call after a hand-back pays the arena's
    allocation again."""
    release = pkg.releasing_memory()
    tile, f, k = pkg.tile_size, pkg.downsample, len(pkg.scheme.classes)
    latent = np.zeros((batch, pkg.latent_channels, tile // f, tile // f), dtype=np.float32)
    steps = np.zeros(batch, dtype=np.int64)
    condition = pkg.condition(np.zeros((batch, k, tile, tile), dtype=np.float32))
    pkg.denoise_with(latent, steps, condition)
    seconds = {"denoiser": float(np.median([_timed(lambda: pkg.denoise_with(latent, steps, condition)),
                                            _timed(lambda: pkg.denoise_with(latent, steps, condition)),
                                            _timed(lambda: release.denoise_with(latent, steps, condition))]))}
    pkg.decode(latent)
    seconds["decoder"] = _timed(lambda: release.decode(latent))
    if with_image:
        image = np.zeros((batch, 3, tile, tile), dtype=np.float32)
        pkg.encode(image)
        seconds["encoder"] = _timed(lambda: release.encode(image))
    return seconds


def estimate_seconds(pkg, tiles: int, steps: int, batch_size: int, with_image: bool, tile_px: int | None = None,
                     decodes: int | None = None) -> float | None:
    """Seconds the network calls of one change pair will take; None for a short run (not worth a timing call).

    ``decodes``: the decoder passes over the raster (None: 1 with an image, 2 without; a redrawn pre-event image and a
    style's colour match each add one). Calls are timed on the model's tile; a larger sampler tile (``tile_px``) is
    taken to cost in proportion to its area."""
    sampled = 1 if with_image else 2  # without an image the pre-event image is generated too
    if tiles * steps * sampled < LONG_WORK_TILE_CALLS:
        return None
    batch = min(batch_size, tiles)
    per = time_per_call(pkg, batch, with_image)
    if tile_px:
        per = {graph: seconds * (tile_px / pkg.tile_size) ** 2 for graph, seconds in per.items()}
    # a CPU call's time grows with its tiles, so a last batch short of tiles costs its tiles' share (9 tiles in
    # batches of 4: 9/4 batches' time, not 3); a GPU's costs about a whole batch
    batches = tiles / batch if pkg.device == "cpu" else math.ceil(tiles / batch)
    return pair_seconds(per, batches, steps * sampled, (1 if with_image else 2) if decodes is None else decodes)


def pair_seconds(per_call: dict[str, float], batches: float, denoiser_calls: int, decodes: int) -> float:
    """Seconds of ``batches`` tile batches, each through ``denoiser_calls`` denoiser calls, ``decodes`` decoder calls
    and the encoder once when ``per_call`` times it (an image to encode)."""
    return batches * (denoiser_calls * per_call["denoiser"] + decodes * per_call["decoder"] + per_call.get("encoder", 0.0))


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
