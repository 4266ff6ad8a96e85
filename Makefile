PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
POSTGRES_URL := postgres://postgres@127.0.0.1:5432/keyward
# One xdist worker per core; loadfile keeps a module's tests, and so its server, on one worker.
PYTEST_ARGS ?= -n auto --dist loadfile
# The suite keeps its secret key and cache apart from a running server's var/.
TEST_DATA_DIR := var/test

# The races and crash tests run longer and wider under KEYWARD_SOAK=1, one module at a time.
SOAK_TESTS := tests/test_concurrency.py tests/test_races.py tests/test_crash_safety.py

.PHONY: run test soak lint demo reset bench clean

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py bootstrap
	exec $(BIN)/gunicorn -c config/gunicorn.conf.py config.wsgi

# $(1) on SQLite first, then on PostgreSQL when a server answers; either failing fails the target.
# Under CI=true a PostgreSQL server must answer.
define on_each_database
	@rm -rf $(TEST_DATA_DIR); status=0; \
	echo "== $(2) on SQLite"; \
	DATABASE_URL= KEYWARD_DATA_DIR=$(TEST_DATA_DIR) $(1) || status=1; \
	url="$${DATABASE_URL:-$(POSTGRES_URL)}"; \
	shown=$$(printf '%s' "$$url" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#'); \
	if $(BIN)/python -c 'import sys, psycopg; psycopg.connect(sys.argv[1], dbname="postgres", connect_timeout=3).close()' \
		"$$url" 2>/dev/null; then \
		echo "== $(2) on PostgreSQL at $$shown"; \
		DATABASE_URL="$$url" KEYWARD_DATA_DIR=$(TEST_DATA_DIR) $(1) || status=1; \
	elif [ "$$CI" = true ]; then \
		echo "PostgreSQL pass FAILED: no server at $$shown, and CI=true requires one (.ci/run starts it)"; \
		status=1; \
	else \
		echo "PostgreSQL pass skipped: no server at $$shown (CI=true makes this a failure)"; \
	fi; \
	exit $$status
endef

test: $(VENV)/.installed-dev
	$(call on_each_database,$(BIN)/pytest $(PYTEST_ARGS),Test suite)

soak: $(VENV)/.installed-dev
	$(call on_each_database,KEYWARD_SOAK=1 $(BIN)/pytest -p no:xdist -s $(SOAK_TESTS),Soak tests)

# Benchmarks (docs/benchmarks.md): the reduced profile in minutes, BENCH_PROFILE=full for the
# figures in the document. They need wrk, which .ci/run does not install: apt-get install -y wrk.
BENCH_PROFILE ?= reduced
BENCH_ARGS ?=

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run --profile $(BENCH_PROFILE) $(BENCH_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

demo: $(VENV)/.installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo

# Empties the database, SQLite or DATABASE_URL; var/ keeps the secret key and the certificate, and
# the next `make run` creates elastic again. Migrating first lets it run on a database never used.
reset: $(VENV)/.installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py flush --no-input

# Removes what can be rebuilt; var/ keeps the database, the secret key and the certificate.
clean:
	rm -rf $(VENV) $(TEST_DATA_DIR) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The stamps make a second run instant until a requirements file changes.
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev requirements-bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@
