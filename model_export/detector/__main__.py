"""``python -m model_export.detector train``: train a change detector on generated datasets (optionally fine-tuned on
a few real pairs), export it as a detector package, pick its threshold and score it on the real test pairs.

    python -m model_export.detector train --dataset build/gen-dubai --out build/detector-pkg --steps 2000 --device cpu

Ctrl-C (or SIGTERM) saves a checkpoint in ``<out>.training/``; the same command with ``--resume`` goes on from it.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

DEFAULT_TEST_SETS = ("data/levir-cd", "data/whu-cd")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_export.detector", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train, export and score a change-detector package")
    t.add_argument("--dataset", nargs="+", required=True, type=Path, metavar="DIR",
                   help="generated dataset(s) of `python -m changeanywhere_qgis dataset` (any layout) or of the baselines")
    t.add_argument("--finetune", type=Path, metavar="REAL_PAIRS_DIR",
                   help="a folder of real pairs in LEVIR-CD's layout (A/, B/, label/) to fine-tune on after the generated data")
    t.add_argument("--finetune-steps", type=int, default=150, help="fine-tuning steps on the real pairs (default 150)")
    t.add_argument("--out", required=True, type=Path, metavar="PACKAGE", help="the detector package folder to write")
    t.add_argument("--steps", type=int, required=True, help="training steps on the generated data (batches)")
    t.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu (default) or cuda")
    t.add_argument("--resume", action="store_true", help="go on from the checkpoint in <out>.training/")
    t.add_argument("--batch", type=int, default=8, help="pairs per step (default 8)")
    t.add_argument("--crop", type=int, default=128, help="random crop size in px (default 128)")
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle schedule (default 1e-3)")
    t.add_argument("--widths", type=int, nargs=4, default=(16, 32, 64, 128), help="FC-Siam-diff's channel widths (default 16 32 64 128)")
    t.add_argument("--tile", type=int, default=256, help="the package's tile size for detection (default 256)")
    t.add_argument("--overlap", type=int, default=32, help="the package's tile overlap for detection (default 32)")
    t.add_argument("--test-sets", nargs="*", type=Path, default=[Path(p) for p in DEFAULT_TEST_SETS],
                   help="folders of real pairs to score the package on (default data/levir-cd data/whu-cd)")
    t.add_argument("--name", default="changeanywhere-detector", help="the package's name")
    t.add_argument("--version", default="0.1.0", help="the package's version")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    return p


class TrainingError(Exception):
    pass


def _bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(total=1, desc=desc, file=sys.stderr)

    def report(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.set_postfix_str(f"loss {loss:.3f}", refresh=False)
        bar.update(step - bar.n)

    return bar, report


def _phase(trainer, pairs, args, checkpoint: Path, desc: str, extra: dict) -> dict:
    bar, report = _bar(desc)
    try:
        return trainer.run(pairs, args.batch, args.crop, checkpoint, args.checkpoint_every, progress=report, extra=extra)
    finally:
        bar.close()


def train(args, argv: list[str]) -> dict:
    import torch

    from .data import DataError, dataset_pairs, dataset_provenance, real_pairs
    from .export import write_package
    from .scores import pick_thresholds, score_test_sets
    from .train import CHECKPOINT, Trainer, make_net

    if args.steps < 1:
        raise TrainingError(f"--steps must be at least 1, got {args.steps}.")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for but torch sees no CUDA GPU here; use --device cpu, or a torch built with CUDA.")
    if args.overlap >= args.tile or args.tile % 16:
        raise TrainingError(f"--tile must be a multiple of 16 and larger than --overlap; got tile {args.tile}, overlap {args.overlap}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.out.with_name(args.out.name + ".training")
    checkpoint, finetuned = work / CHECKPOINT, work / "finetune.pt"
    if (checkpoint.exists() or finetuned.exists()) and not args.resume:
        raise TrainingError(f"{work} holds the checkpoint of an earlier run. Pass --resume to go on from it, or remove the "
                            "folder (or choose another --out) to start again.")
    if args.resume and not checkpoint.exists():
        raise TrainingError(f"--resume: no checkpoint in {work}. Run without --resume to start.")
    try:
        splits = {d: dataset_pairs(d) for d in args.dataset}
        finetune = real_pairs(args.finetune) if args.finetune else []
        tests = {p.name: real_pairs(p) for p in args.test_sets if p.is_dir()}
    except DataError as exc:
        raise TrainingError(str(exc)) from None
    missing = [str(p) for p in args.test_sets if not p.is_dir()]
    if missing:
        print(f"note: no real test pairs at {', '.join(missing)}; the package is scored without them", file=sys.stderr)
    train_pairs = [p for s in splits.values() for p in s["train"]]
    validation = [p for s in splits.values() for p in s["val"]] or [p for s in splits.values() for p in s["test"]]
    if not train_pairs or not validation:
        raise TrainingError("The datasets hold no train split, or neither a val nor a test split to pick the threshold on. "
                            "Make them with the dataset command's default --splits.")
    torch.manual_seed(args.seed)
    settings = {"steps": args.steps, "seed": args.seed, "widths": list(args.widths)}
    trainer = Trainer(make_net(args.widths), args.steps, args.lr, args.seed, args.device)
    if args.resume:
        saved = trainer.load(checkpoint)
        if saved.get("settings") and saved["settings"] != settings:
            raise TrainingError(f"The checkpoint in {work} was made with {saved['settings']}, not {settings}. Resume with the "
                                "same --steps, --seed and --widths, or start again without --resume in a new --out.")
    start = time.monotonic()
    info = _phase(trainer, train_pairs, args, checkpoint, "training on generated pairs", {"settings": settings})
    net = trainer.net
    tuned = None
    if finetune:
        tuner = Trainer(net, args.finetune_steps, args.lr / 10, args.seed + 1, args.device)
        if args.resume and finetuned.exists():
            tuner.load(finetuned)
        tuned = _phase(tuner, finetune, args, finetuned, f"fine-tuning on {len(finetune)} real pairs", {"settings": settings})
        net = tuner.net
    net = net.cpu().eval()
    seen = {args.finetune.name} if args.finetune else set()

    def measure(folder: Path) -> dict:
        picked = pick_thresholds(folder, validation)
        scored = score_test_sets(folder, tests, picked["detector"], picked["image_difference"], seen)
        return {"threshold": {"value": picked["detector"],
                              "chosen_on": f"the validation split of the generated datasets ({picked['pairs']} pairs; their test "
                                           "split when they have no validation split)",
                              "how": "the threshold of highest F1 (all pixels) among 0.05, 0.10, ..., 0.95, on the exported graph"},
                "scores": {**scored, "note": "F1, IoU, precision, recall of the change class over all pixels of each set, at "
                                             "threshold.value; held_out false: the package was fine-tuned on that set's pairs"}}

    manifest = {
        "name": args.name, "version": args.version,
        "description": f"FC-Siam-diff change detector trained on {len(train_pairs)} generated pairs"
                       + (f", fine-tuned on {len(finetune)} real pairs" if finetune else ""),
        "license": "as its training data (see training.datasets and their cards)",
        "architecture": {"net": "FC-Siam-diff (Daudt et al., ICIP 2018)", "widths": list(args.widths)},
        "input": {"bands": 3, "band_order": "the image's bands 1, 2, 3 (RGB)", "dtype": "uint8", "scale": "x / 127.5 - 1"},
        "tile": {"size": args.tile, "overlap": args.overlap, "multiple_of": 16},
        "threshold": {"value": 0.5},  # replaced by measure() before the package moves into place
        "training": {
            "command": "python -m model_export.detector " + shlex.join(argv),
            "datasets": [dataset_provenance(d, s) for d, s in splits.items()],
            "finetune": {"path": str(args.finetune), "pairs": len(finetune), **tuned} if finetune else None,
            "steps": info["steps"], "batch": args.batch, "crop": args.crop, "lr": args.lr, "seed": args.seed,
            "device": args.device, "seconds": round(time.monotonic() - start, 1), "loss_first": info["loss_first"],
            "loss_last": info["loss_last"], "torch": torch.__version__,
        },
    }
    return write_package(net, args.out, manifest, measure=measure)


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops as Ctrl-C does: a checkpoint first


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        manifest = train(args, argv)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stopped: a checkpoint is in {args.out.with_name(args.out.name + '.training')}; rerun the same command with "
              "--resume to go on", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"Wrote {args.out}: threshold {manifest['threshold']['value']:g}")
    for name, row in manifest.get("scores", {}).items():
        if isinstance(row, dict):
            print(f"  {name}: F1 {row['detector']['f1']:.3f} (everything changed {row['everything_changed']['f1']:.3f}, "
                  f"image difference {row['image_difference']['f1']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
