# One entry point for set-up, the book and the tests. Every target does its own set-up.
#   make book   -> virtual environment + execute every notebook (demo profile) + _build/html
#   make test   -> virtual environment + headless Chromium + the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PROFILE ?= demo

.PHONY: setup browser book test bench clean

setup: $(VENV)/.installed

# uv installs the project several times faster than pip; it gets pip's package sources of
# this machine (find-links, indexes, constraints: .ci/pip_sources.py), since it reads no
# pip configuration. uv, unlike pip, writes no .pyc, and where PYTHONDONTWRITEBYTECODE is set
# (as on this project's machines) every process would compile torch & co. from source again
# (~6 s each): .ci/compile_imports.py writes the bytecode of what we import, once.
UV_VERSION := 0.13.9

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/python .ci/pip_sources.py | xargs -d '\n' $(BIN)/uv pip install --quiet \
		--python $(BIN)/python -e ".[book,test,scale]"
	$(BIN)/python .ci/compile_imports.py
	touch $@

# Debian's Chromium + ChromeDriver for the browser check of the built book.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		echo "installing Debian chromium + chromium-driver"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

book: setup
	$(BIN)/compendium book --profile $(PROFILE)

test: setup browser
	$(BIN)/python -m pytest

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf _build results
