# The two commands of the README: `make demo` (set up everything, run the main job) and
# `make test` (every test: cargo, pytest, node --test). Both create their own .venv and
# node_modules.

# One target triple for cargo, maturin and napi, so the three share one build (CONTRIBUTING.md, build notes).
export CARGO_BUILD_TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
VENV := $(CURDIR)/.venv
PYTHON := $(VENV)/bin/python
NPM_CI := npm ci --no-audit --no-fund --loglevel=error

.PHONY: demo demo-serve test lint test-rust test-python test-node python node build clean

# Part 1: one deployment event from each of Rust, Python and Node to a mock API. Part 2: the
# `cased demo` main job, run twice: the regression (caught, rolled back: exit code 1, which is
# checked rather than failing make) and a healthy release (exit code 0).
demo: build
	bash examples/demo.sh
	@echo; echo "== cased demo: a bad deploy (expected exit code 1) =="
	@cargo run -q -p cased-cli -- demo; code=$$?; \
	  if [ $$code -ne 1 ]; then echo "cased demo exited $$code, expected 1 (unhealthy)"; exit 1; fi
	@echo; echo "== cased demo --healthy: a good deploy (expected exit code 0) =="
	cargo run -q -p cased-cli -- demo --healthy

# Mission Control with a bad and a good deployment on it, at http://127.0.0.1:8080/ (Ctrl-C stops).
demo-serve:
	cargo run -q -p cased-cli -- demo --serve

test: build lint test-rust test-python test-node

build: python node
	cargo build -q -p cased-cli

$(VENV)/.installed: cased-py/requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r cased-py/requirements-dev.txt
	touch $@

cased-node/node_modules/.installed: cased-node/package-lock.json
	# A cold `npm ci` has been seen to hang (CONTRIBUTING.md): bounded, retried once.
	cd cased-node && (timeout 600 $(NPM_CI) || timeout 600 $(NPM_CI))
	touch $@

python: $(VENV)/.installed
	VIRTUAL_ENV=$(VENV) $(VENV)/bin/maturin develop -q -m cased-py/Cargo.toml

node: cased-node/node_modules/.installed
	cd cased-node && npx napi build --platform --output-dir . >/dev/null

# Gates: rustfmt-clean, and no clippy warning in any crate or target.
lint:
	cargo fmt --all --check
	cargo clippy -q --workspace --all-targets -- -D warnings

# The check tests talk to a real Postgres and Redis: .ci/pg-redis.sh installs them if missing
# and starts them on loopback (idempotent). The Prometheus source test starts its own server
# (.ci/prometheus.sh installs the package). The SMTP test server (aiosmtpd) is in the .venv.
# Mission Control's browser test runs Debian's chromium (.ci/chromium.sh installs it).
test-rust: $(VENV)/.installed
	eval "$$(bash .ci/pg-redis.sh)" && eval "$$(bash .ci/prometheus.sh)" && \
	  eval "$$(bash .ci/chromium.sh)" && \
	  CASED_TEST_PYTHON=$(PYTHON) cargo test -q --workspace --exclude cased-py --exclude cased-node

test-python:
	cd cased-py && $(PYTHON) -m pytest -q

test-node:
	cd cased-node && node --test __test__/

clean:
	bash .ci/pg-redis.sh stop || true
	rm -rf target .venv cased-node/node_modules cased-node/*.node
