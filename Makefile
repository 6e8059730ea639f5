# The two commands of the README: `make demo` (install + main job) and `make test` (install + lint + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Torch to install first, e.g. TORCH="torch==2.13.0+cpu torchvision==0.28.0": a CPU-only wheel
# makes the install 2.1 GB instead of 6.6 GB (the default wheel brings 4.1 GB of CUDA libraries).
TORCH ?=

.PHONY: demo test test-slow lint format clean browser

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.2"
	$(if $(TORCH),$(BIN)/python -m pip install --quiet $(TORCH))
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

# A second `make demo` replaces its own runs but stops at files added to runs/demo since (a report,
# a saved embedding); `make demo DEMO_ARGS=--overwrite` replaces those too.
DEMO_ARGS ?=

demo: $(INSTALLED)
	$(BIN)/gen-eval demo --out runs/demo $(DEMO_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache  # the layers of pyproject.toml [tool.importlinter]: no cycles, no upward imports

test: lint browser
	$(BIN)/pytest

# The browser tests (tests/browser.py) drive a system Chromium through Playwright. With none on
# PATH (nor GEN_EVAL_CHROMIUM), install Debian's chromium when apt-get can run as root (CI's
# container); otherwise, or if that fails, say why and let those tests skip. Nothing to do
# when a browser is already there; apt lists are refreshed only when the install needs them.
BROWSERS := chromium chromium-browser google-chrome google-chrome-stable
APT_INSTALL := apt-get install -y -qq --no-install-recommends chromium

browser:
	@found="$${GEN_EVAL_CHROMIUM:-}"; \
	for name in $(BROWSERS); do [ -n "$$found" ] || found="$$(command -v $$name || true)"; done; \
	if [ -n "$$found" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser tests will skip: no Chromium on PATH and no apt-get (install one or set GEN_EVAL_CHROMIUM)"; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "browser tests will skip: no Chromium on PATH (sudo apt-get install chromium)"; \
	else \
	  echo "installing Debian's chromium for the browser tests..."; \
	  log="$$(mktemp)"; export DEBIAN_FRONTEND=noninteractive; \
	  if $(APT_INSTALL) >"$$log" 2>&1 || { apt-get update -qq >>"$$log" 2>&1 && $(APT_INSTALL) >>"$$log" 2>&1; }; \
	  then echo "installed $$(command -v chromium)"; \
	  else echo "browser tests will skip: apt-get could not install chromium:"; tail -n 3 "$$log"; fi; \
	  rm -f "$$log"; \
	fi

test-slow: $(INSTALLED)
	$(BIN)/pytest -m slow

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache tests/artifacts
