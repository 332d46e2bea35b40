"""Training a change detector on generated datasets and exporting it as a detector package.

    python -m model_export.detector train --dataset DIR [DIR ...] [--finetune REAL_PAIRS_DIR] --out PACKAGE \
        --steps N --device cpu|cuda [--resume]

``data.py`` reads any layout the dataset command writes (and folders of real pairs in LEVIR-CD's layout),
``train.py`` runs the steps (checkpoints, Ctrl-C, ``--resume``), ``export.py`` writes the package (ONNX graph checked
against torch, ``detector.json``), ``scores.py`` picks the threshold and scores the package on the real test pairs.
The plugin reads the package with onnxruntime alone (changeanywhere_qgis/engine/detection).
"""
