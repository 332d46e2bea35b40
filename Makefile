# The two commands a user needs: `make demo` and `make test`. Each sets the machine up on first use.
PY ?= .venv/bin/python
export QT_QPA_PLATFORM ?= offscreen
DEMO_OUT ?= demo_output

.PHONY: demo test test-qgis-lts bench bench-training quality package screenshot clean setup setup-dev

setup:
	@scripts/bootstrap.sh runtime

setup-dev:
	@scripts/bootstrap.sh dev

## make demo: a change sample from the bundled OpenEarthMap sample with the bundled model
demo: setup
	$(PY) -m changeanywhere_qgis generate \
	  --semantic changeanywhere_qgis/samples/houston_label.tif \
	  --image changeanywhere_qgis/samples/houston_image.tif \
	  --changes changeanywhere_qgis/samples/houston_changes.geojson --class-field target \
	  --seed 7 --out $(DEMO_OUT) --overwrite

## make test: the whole test suite (real QGIS headless, real onnxruntime, real GeoTIFFs)
test: setup-dev
	$(PY) -m pytest -q tests

## make test-qgis-lts: the plugin zip tested in QGIS 3.40 LTR on Python 3.13 / numpy 2 (a Debian 13 chroot, root)
test-qgis-lts:
	scripts/test_qgis_lts.sh

## make bench: benchmark figures, written to docs/reference/benchmarks.md
bench: setup-dev
	$(PY) -m benchmarks.run --out docs/reference/benchmarks.md

## make bench-training: training images per second, one rank against two (torchrun, gloo), docs/reference/training-throughput.md
bench-training: setup-dev
	$(PY) -m benchmarks.training_throughput --out docs/reference/training-throughput.md

## make quality: the usefulness test (1,000 generated samples from every source, real LEVIR-CD and WHU-CD pairs) and its report, docs/research/quality.md (hours)
quality: setup-dev
	scripts/quality_report.sh

## make screenshot: docs/img/qgis-dock.png, the README's picture, from a real QGIS window under Xvfb (a few minutes)
screenshot: setup
	scripts/qgis_screenshot.sh

clean:
	rm -rf $(DEMO_OUT) build dist .pytest_cache

-include model_export/Makefile.inc
-include packaging.mk
