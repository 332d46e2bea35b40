# Included by the Makefile. `make package`: the installable QGIS plugin zip in dist/.
# The script needs the standard library only, so any python3 does when .venv is not made yet.
PACKAGE_PY ?= $(if $(wildcard $(PY)),$(PY),python3)

.PHONY: package
## make package: dist/changeanywhere_qgis-<version>.zip (install it with QGIS's "Install from ZIP")
package:
	$(PACKAGE_PY) scripts/package_plugin.py --out dist
