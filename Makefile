# 社区服务助手 — developer entry points. `make run` and `make test` are the quick start.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint fmt clean bench browser-deps

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
	$(BIN)/ruff check bot intents knowledge tests benchmarks
	$(BIN)/mypy bot intents knowledge

test: install browser-deps lint
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python benchmarks/wechat_endpoint.py
	$(BIN)/python benchmarks/wechat_stages.py
	$(BIN)/python benchmarks/intents.py
	$(BIN)/python benchmarks/knowledge.py

fmt: install
	$(BIN)/ruff check --fix bot intents knowledge tests benchmarks
	$(BIN)/ruff format bot intents knowledge tests benchmarks

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
