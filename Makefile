# The README's commands. `make run` and `make test` are all a new user needs.
SHELL := /bin/bash
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PORT ?= 5000

.PHONY: run test test-faults test-scale lint bench bench-sink bench-send bench-assign bench-decisions bench-recommend bench-privacy bench-datapath bench-tracking bench-flows bench-small-lists install clean

# Progress: one line per package pip collects, then a line every few seconds while pip installs
# them silently (scripts/install_progress.py; the full output in .venv/install.log).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	@echo "installing mailramp and its dependencies into $(VENV) (a few minutes the first time) ..."
	@$(BIN)/pip install -q --upgrade pip
	@set -o pipefail; $(BIN)/pip install -e '.[dev,bench]' 2>&1 \
	  | $(BIN)/python -u scripts/install_progress.py $(VENV)/install.log $(VENV) \
	  || { echo "install failed; see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)
	@echo "install done"

# Front-end libraries (Chart.js; axe-core for the browser tests) from the npm registry, integrity-checked; see scripts/vendor_assets.py
VENDORED := app/static/vendor/chart.umd.min.js tests/ui/vendor/axe.min.js
$(VENDORED): scripts/vendor_assets.py | $(STAMP)
	$(BIN)/python scripts/vendor_assets.py && touch $@

install: $(STAMP) $(VENDORED)

run: install
	$(BIN)/mailramp run --port $(PORT) $(RUN_ARGS)

# The suite on TEST_WORKERS processes (pytest-xdist; one per core, at most 4: each worker has its own
# database, Redis db and ports, see tests/conftest.py). TEST_WORKERS=0 runs it in this process.
# worksteal: an idle worker takes tests queued on a busy one, so a few long tests do not leave a tail.
TEST_WORKERS ?= auto
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses=4 --dist worksteal $(PYTEST_ARGS)

# Several hosts (network namespaces; needs root), their own PostgreSQL and Redis: see scripts/scale_test.py.
# Not part of `make test`. SCALE_CONTACTS=20000 for a shorter run; bounded by SCALE_TIMEOUT minutes.
SCALE_CONTACTS ?= 100000
SCALE_TIMEOUT ?= 90
test-scale: $(STAMP)
	timeout $$(( $(SCALE_TIMEOUT) * 60 + 120 )) $(BIN)/python scripts/scale_test.py --contacts $(SCALE_CONTACTS) --timeout-minutes $(SCALE_TIMEOUT)

# Faults during a 20,000-contact wave: worker SIGKILLs, a Redis restart, every database connection cut.
test-faults: install
	MAILRAMP_FAULTS=1 $(BIN)/python -m pytest tests/faults -q -p no:cacheprovider -s $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app models campaigns tests bench worker.py
	$(BIN)/mypy app models campaigns worker.py

bench: bench-send bench-assign bench-decisions bench-recommend bench-privacy bench-tracking

# Postfix's smtp-sink for bench/send.py (apt-get as root, Postfix's service never started; skipped,
# saying so, elsewhere: the bench then uses its aiosmtpd sink). Every bench stops what it started.
bench-sink:
	@sh bench/install_smtp_sink.sh

bench-send: $(STAMP) bench-sink
	$(BIN)/python bench/send.py

bench-assign: $(STAMP)
	$(BIN)/python bench/assign.py

bench-decisions: $(STAMP)
	$(BIN)/pip install -q --no-deps gbstats==0.8.0  # its metadata pins numpy<2; it runs on numpy 2
	$(BIN)/python bench/decisions.py --rollouts 200 --gbstats

bench-recommend: $(STAMP)
	$(BIN)/python bench/recommend.py

bench-privacy: $(STAMP)
	$(BIN)/python bench/privacy.py
# PostgreSQL only: BENCH_DATABASE_URL names a scratch database (its tables are dropped)
bench-datapath: $(STAMP)
	$(BIN)/python bench/datapath.py

bench-tracking: $(STAMP)
	$(BIN)/python bench/tracking.py

# 100,000 contacts through a flow over a simulated day (set BENCH_DATABASE_URL to a PostgreSQL database
# it may empty, BENCH_REDIS_URL to a Redis it may flush; else SQLite and a redis-server of its own)
bench-flows: $(STAMP)
	$(BIN)/python bench/flows.py

# Issue 20's small lists through the README's campaign path, 5 seeds per scenario (BENCH_DATABASE_URL,
# BENCH_REDIS_URL as for bench-flows: emptied and flushed before each run)
bench-small-lists: $(STAMP)
	$(BIN)/python bench/small_lists.py --seeds 5

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
