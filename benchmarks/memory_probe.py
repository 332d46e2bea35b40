"""Run one change sample in this process and print its peak RSS (used by the memory benchmark).

Usage: python -m benchmarks.memory_probe SEMANTIC.tif OUT_DIR [--model DIR] [--steps N]
"""

import argparse
import json

from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("semantic")
    p.add_argument("out")
    p.add_argument("--model")
    p.add_argument("--steps", type=int, default=1)
    a = p.parse_args()
    result = generate(a.semantic, a.out, ChangeSpec(random=True), model=a.model, overwrite=True,
                      settings=GenerateSettings(steps=a.steps, seed=1, device="cpu"))
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across
    # fork + exec, so it would report the (larger) benchmark process instead of this one.
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    peak_mb = int(status["VmHWM"].split()[0]) / 1024
    print(json.dumps({"peak_rss_mb": peak_mb, "tiles": result["tiles"], "timings": result["timings"]}))


if __name__ == "__main__":
    main()
