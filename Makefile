# gridwatch: `make demo` runs it, `make test` tests it. Both install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export GRIDWATCH_HOME ?= $(CURDIR)/var
# Debian packages the project needs; installed with apt-get when missing.
APT_PACKAGES := postgresql-15-postgis-3 mosquitto chromium wrk
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test fuzz system venv wheelhouse assets db lint bench clean

demo: system venv assets db
	$(BIN)/gridwatch demo load
	@echo ">> serving on http://127.0.0.1:8000 (open it in a browser, sign in with the admin key above; with the team key, a patrol's phone at /field; API docs: /docs); Ctrl-C stops"
	$(BIN)/gridwatch serve --host 127.0.0.1 --port 8000

test: system venv assets db
	$(BIN)/pytest -q

fuzz: venv db
	GRIDWATCH_FUZZ_EXAMPLES=$${GRIDWATCH_FUZZ_EXAMPLES:-300} $(BIN)/pytest -q tests/test_fuzz.py

system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	$(PYTHON) -m venv --help >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo ">> installing system packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q --no-install-recommends $$missing \
	    || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $$missing; }; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo ">> creating $(VENV) and installing gridwatch with its test tools"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[test]'
	touch $@

# The wheel of gridwatch (the whole product: code, migrations, pages, map assets, the demo
# county) and the wheel of every dependency for this platform, in one folder to carry to a
# machine with no internet: pip install --no-index --find-links wheelhouse gridwatch
wheelhouse: venv
	rm -rf build wheelhouse
	$(BIN)/pip wheel --progress-bar off --wheel-dir wheelhouse .
	@echo ">> wheelhouse/: $$(ls wheelhouse | wc -l) wheels, $$(du -sh wheelhouse | cut -f1)"

# Leaflet and its plugins for the map pages, from the npm registry, pinned and hash-checked.
assets: gridwatch/maps/vendor/.manifest

gridwatch/maps/vendor/.manifest: gridwatch/maps/assets.json | venv
	$(BIN)/python -m gridwatch.maps.assets

db: venv
	$(BIN)/gridwatch db start
	$(BIN)/gridwatch db migrate

lint: venv
	$(BIN)/ruff check .

bench: system venv assets db
	@dpkg -s ffmpeg >/dev/null 2>&1 || $(SUDO) apt-get install -y -q --no-install-recommends ffmpeg
	$(BIN)/python bench/match.py
	bench/lookup.sh
	bench/ingest.sh
	$(BIN)/python bench/ingest_batch.py
	$(BIN)/python bench/heatmap.py
	$(BIN)/python bench/partitions.py
	$(BIN)/python bench/video.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/command_room.py
	bench/ogc.sh
	bench/soak.sh

clean:
	-$(BIN)/gridwatch db replica stop
	-$(BIN)/gridwatch db stop
	rm -rf $(VENV) var build wheelhouse
