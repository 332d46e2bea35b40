"""Train the model package's networks.

    python -m model_export.training.train --stage autoencoder --config model_export/configs/default.toml \
        --data data/train/oem data/train/loveda@loveda --out model_export/runs/default/autoencoder
    python -m model_export.training.train --stage diffusion --config ... --data ... \
        --autoencoder model_export/runs/default/autoencoder --out model_export/runs/default/diffusion
    python -m model_export.training.train --stage decoder --config ... --data ... \
        --autoencoder model_export/runs/default/autoencoder --out model_export/runs/default/decoder

The decoder stage fine-tunes only the decoder of a finished autoencoder (encoder and codebook frozen),
so a denoiser trained on that autoencoder's latents stays valid: `export.package --decoder` pairs them.
With ``--init-from MODEL_DIR`` instead of ``--autoencoder`` it fine-tunes a package's decoder, and
``python -m model_export.export.decoder`` writes the package again with that decoder (check 6's candidate).

``--init-from MODEL_DIR`` continues from a model package instead of from random weights: its
networks are read back from its ONNX graphs (training/package_weights.py), the config's ``[finetune.STAGE]``
table overrides the stage's schedule, and the run records the package's name and sha256. In the
diffusion stage without ``--autoencoder``, the package's own autoencoder makes the latents.

A run resumes from ``OUT/last.pt`` when it exists. ``DIR@loveda`` or ``DIR@mapping.json`` remaps
the labels of a folder to OpenEarthMap codes. ``--data`` also takes the OpenEarthMap and LoveDA
releases as unpacked (see ``releases.py``); ``--split`` picks their part (``train`` by default).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from model_export.training import distributed as dist
from model_export.training.config import finetune_config, load_config, override_config
from model_export.training.data import holdout_windows, scan_folders
from model_export.training.errors import DataError
from model_export.training.package_weights import BaseModel, read_package_networks
from model_export.training.releases import SPLITS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_export.training.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", required=True, choices=("autoencoder", "decoder", "diffusion"))
    p.add_argument("--config", required=True)
    p.add_argument("--data", required=True, nargs="+", metavar="DIR[@REMAP]")
    p.add_argument("--split", choices=SPLITS, default="train",
                   help="the part of an OpenEarthMap or LoveDA release to train on (flat folders are used whole)")
    p.add_argument("--out", required=True)
    p.add_argument("--autoencoder", help="output folder of a finished autoencoder stage (diffusion and decoder stages)")
    p.add_argument("--init-from", metavar="MODEL_DIR", help="start from this model package's weights (autoencoder and diffusion stages)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override one setting of the config (repeatable), e.g. autoencoder.norm_num_groups=8")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads; 1 is faster when other jobs share the cores (no spinning threads)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this torch sees no CUDA device; use --device cpu")
    dist.setup(args.device)  # under torchrun with several processes: join them (see distributed.py)
    try:
        cfg = override_config(load_config(args.config), args.set)
    except DataError as e:
        p.error(str(e))
    out = Path(args.out)
    if args.init_from and args.stage == "decoder" and args.autoencoder:
        p.error("--stage decoder starts from one autoencoder: give --autoencoder DIR (a run) or --init-from MODEL_DIR "
                "(a package), not both")
    needs_run = args.stage in ("decoder", "diffusion") and not args.init_from
    if args.autoencoder and not (Path(args.autoencoder) / "last.pt").is_file() or needs_run and not args.autoencoder:
        p.error(f"--stage {args.stage} needs --autoencoder DIR, the output folder of a finished autoencoder stage"
                " (or --init-from MODEL_DIR, a model package)")
    if args.stage == "decoder" and args.autoencoder and out.resolve() == Path(args.autoencoder).resolve():
        p.error("--stage decoder writes a new run: give --out a folder other than --autoencoder")
    try:
        base = None
        if args.init_from:
            base = BaseModel(args.init_from, read_package_networks(args.init_from, cfg))
            base.check_architecture(cfg)
            cfg = finetune_config(cfg, args.stage)
        tiles = scan_folders(args.data, args.split)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    holdout = holdout_windows(cfg["data"].get("holdout", []))
    common = dict(cfg=cfg, tiles=tiles, holdout=holdout, out=out, device=args.device, seed=args.seed,
                  max_steps=args.max_steps, max_minutes=args.max_minutes, data_args=args.data,
                  base=base)
    try:
        if args.stage == "diffusion":
            from model_export.training.diffusion import run

            run(**common, autoencoder_dir=Path(args.autoencoder) if args.autoencoder else None)
        else:
            from model_export.training.autoencoder import run

            run(**common, init_from=Path(args.autoencoder) if args.stage == "decoder" and args.autoencoder else None,
                decoder_only=args.stage == "decoder")
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        dist.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
