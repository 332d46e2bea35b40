"""``python -m model_export.evaluation.baselines copy-paste|random-pairing --semantic MAP... --image IMAGE... --count N
--tile 256 --seed S --out DIR``: a baseline dataset of the usefulness test (see the package's docstring)."""

from __future__ import annotations

import argparse
import shlex
import sys

from changeanywhere_qgis.engine.errors import ChangeAnywhereError

from .copy_paste import CopyPasteSettings
from .make import METHODS, make_baseline


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_export.evaluation.baselines",
                                description="Change-detection datasets made without any model, from real maps and images "
                                            "(the usefulness test's baselines), in the LEVIR-CD layout.")
    sub = p.add_subparsers(dest="method", required=True, metavar="{" + ",".join(METHODS) + "}")
    for method, (title, after, how) in METHODS.items():
        s = sub.add_parser(method, help=f"{title}, after {after}", description=how)
        s.add_argument("--semantic", nargs="+", required=True, metavar="MAP", help="land-cover maps (as the dataset command takes them)")
        s.add_argument("--image", nargs="+", required=True, metavar="IMAGE", help="one RGB image per map, on its grid")
        s.add_argument("--remap", help="remap of the maps' codes into the model's classes (built-in name or JSON file), as the dataset command's")
        s.add_argument("--count", type=int, required=True, help="samples")
        s.add_argument("--tile", type=int, default=256, help="sample size in px (default 256)")
        s.add_argument("--seed", type=int, default=0, help="dataset seed: the same windows and splits as the dataset command's with this seed (default 0)")
        s.add_argument("--model", help="model package whose classes the maps are in (default: the bundled one; it is not run)")
        s.add_argument("--out", required=True, help="output folder")
        s.add_argument("--overwrite", action="store_true", help="make again a baseline this tool wrote there with other settings")
        if method == "copy-paste":
            s.add_argument("--changed-share", type=float, metavar="F",
                           help="every sample's share of changed pixels (default: the share of the dataset command's sample of "
                                "the same index, simulated from the maps)")
            s.add_argument("--transitions", help="the transition table the generated datasets used (to match their changed shares)")
            s.add_argument("--jitter", type=float, default=1.0, help="strength of B's global colour/brightness jitter (default 1: "
                                                                     "gains within 8 %%, brightness within 10 grey levels; 0: none)")
    return p


def main(argv: list[str] | None = None) -> int:
    from changeanywhere_qgis.cli.progress_bar import progress_bar

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    settings = (CopyPasteSettings(changed_share=args.changed_share, transitions=args.transitions, jitter=args.jitter)
                if args.method == "copy-paste" else None)
    progress, bar = progress_bar()
    try:
        result = make_baseline(args.method, args.semantic, args.image, args.out, count=args.count, tile=args.tile, seed=args.seed,
                               remap=args.remap, model=args.model, copy_paste=settings, overwrite=args.overwrite,
                               command="python -m model_export.evaluation.baselines " + shlex.join(argv), progress=progress)
    except ChangeAnywhereError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.close()
        print("cancelled; nothing was written", file=sys.stderr)
        return 130
    bar.close()
    if result.get("kept"):
        print(f"{result['out']} already holds this baseline ({result['count']} samples); nothing to do")
    else:
        print(f"Wrote {result['count']} samples to {result['out']} (splits {result['splits']}, mean changed share "
              f"{result['changed_fraction_mean']:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
