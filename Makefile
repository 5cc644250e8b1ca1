# 社区服务助手 — developer entry points. `make run` and `make test` are the quick start.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
comma := ,

.PHONY: install run test lint fmt clean bench browser-deps mutate screenshots

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/python -m bot db upgrade
	$(BIN)/python -m bot demo load
	$(BIN)/python -m bot serve --demo

# Debian's chromium drives the browser tests; install it when missing (root only).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk) >/dev/null \
	      || echo "warning: could not install chromium; browser tests will skip"; \
	  else echo "note: /usr/bin/chromium missing and not root; browser tests will skip"; fi; \
	fi

lint: install
	$(BIN)/ruff check bot intents knowledge tests benchmarks tools
	$(BIN)/mypy bot intents knowledge

test: install browser-deps lint
	$(BIN)/python -m pytest -q -ra

# The console screenshots in docs/screenshots/, taken by the browser tests (not by `make test`).
screenshots: install browser-deps
	BOT_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/web/test_console_browser.py tests/web/test_dashboard_browser.py

bench: install
	$(BIN)/python benchmarks/wechat_endpoint.py
	$(BIN)/python benchmarks/wechat_stages.py
	$(BIN)/python benchmarks/intents.py
	$(BIN)/python benchmarks/knowledge.py

# Mutation testing of the modules that guard money-like data and the protocol (docs/testing.md);
# not part of `make test`. MODULES=points,crypto picks some; MUTATE_ARGS="--workers 2" etc.
mutate: install
	$(BIN)/python tools/mutate.py $(subst $(comma), ,$(MODULES)) $(MUTATE_ARGS)

fmt: install
	$(BIN)/ruff check --fix bot intents knowledge tests benchmarks tools
	$(BIN)/ruff format bot intents knowledge tests benchmarks tools

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
