# The README's commands. `make run` and `make test` are all a new user needs.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-scale lint bench bench-send bench-assign bench-decisions bench-recommend bench-privacy bench-datapath install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

# Front-end libraries (Chart.js) from the npm registry, integrity-checked; see scripts/vendor_assets.py
VENDORED := app/static/vendor/chart.umd.min.js
$(VENDORED): scripts/vendor_assets.py | $(STAMP)
	$(BIN)/python scripts/vendor_assets.py && touch $@

install: $(STAMP) $(VENDORED)

run: install
	$(BIN)/mailramp run

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Several hosts (network namespaces; needs root), their own PostgreSQL and Redis: see scripts/scale_test.py.
# Not part of `make test`. SCALE_CONTACTS=20000 for a shorter run; bounded by SCALE_TIMEOUT minutes.
SCALE_CONTACTS ?= 100000
SCALE_TIMEOUT ?= 90
test-scale: $(STAMP)
	timeout $$(( $(SCALE_TIMEOUT) * 60 + 120 )) $(BIN)/python scripts/scale_test.py --contacts $(SCALE_CONTACTS) --timeout-minutes $(SCALE_TIMEOUT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app models campaigns tests bench worker.py
	$(BIN)/mypy app models campaigns worker.py

bench: bench-send bench-assign bench-decisions bench-recommend bench-privacy

bench-send: $(STAMP)
	$(BIN)/python bench/send.py

bench-assign: $(STAMP)
	$(BIN)/python bench/assign.py

bench-decisions: $(STAMP)
	$(BIN)/pip install -q --no-deps gbstats==0.8.0  # its metadata pins numpy<2; it runs on numpy 2
	$(BIN)/python bench/decisions.py

bench-recommend: $(STAMP)
	$(BIN)/python bench/recommend.py

bench-privacy: $(STAMP)
	$(BIN)/python bench/privacy.py
# PostgreSQL only: BENCH_DATABASE_URL names a scratch database (its tables are dropped)
bench-datapath: $(STAMP)
	$(BIN)/python bench/datapath.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
