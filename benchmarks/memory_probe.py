"""Run one change sample in this process and print its peak RSS (used by the memory benchmark).

Usage: python -m benchmarks.memory_probe SEMANTIC.tif OUT_DIR [--model DIR] [--steps N]
"""

import argparse
import json
import resource

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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak_mb, "tiles": result["tiles"], "timings": result["timings"]}))


if __name__ == "__main__":
    main()
