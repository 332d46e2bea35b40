# Sourced by check S1 (defaults_check.sh) and check S2 (sampler_check_s2.sh): the three judges of map-following,
# the project's segmentation recipe (seed 0 is the project's judge, seeds 1 and 2 two more of its recipe) trained at a
# fixed step count, so a busy machine gives the same judge, on the real OpenEarthMap and LoveDA tiles and on those
# tiles as the package's autoencoder redraws them. A judge already trained is kept.
# Needs PY, MODEL and JUDGES_DIR; about 20 minutes a judge on 2 cores.
JUDGE_SEEDS=(0 1 2)

train_judges() {
  local seed
  mkdir -p "$JUDGES_DIR"
  for seed in "${JUDGE_SEEDS[@]}"; do
    test -f "$JUDGES_DIR/seed$seed/segmentation.pt" || "$PY" -m model_export.segmentation \
      --data data/train/oem data/train/loveda@loveda --redrawn-by "$MODEL" --max-steps 2500 --threads 2 \
      --seed "$seed" --out "$JUDGES_DIR/seed$seed" 2>&1 | tail -1
  done
}
