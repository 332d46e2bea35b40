"""Detect change on one pair in this process and print its wall time and peak RSS (used by the detection benchmark).

Usage: python -m benchmarks.detection_probe BEFORE.tif AFTER.tif DETECTOR OUT_DIR [--threads N]
"""

import argparse
import json
import time

from changeanywhere_qgis.engine.detection import detect_changes


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("detector")
    p.add_argument("out")
    p.add_argument("--threads", type=int)
    a = p.parse_args()
    start = time.monotonic()
    result = detect_changes(a.before, a.after, a.detector, a.out, threads=a.threads, overwrite=True)
    seconds = time.monotonic() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec (memory_probe.py)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(json.dumps({"seconds": seconds, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024, "tiles": result["tile"]["tiles"],
                      "polygons": result["polygons"]}))


if __name__ == "__main__":
    main()
