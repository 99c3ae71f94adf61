# Notification Service — `make run` starts it, `make test` tests it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench bench-scale scaleout screenshots lint format check-channels clean messages translations

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed

## run: install, migrate, create the admin account once, then web + consumer (Ctrl-C stops)
run: $(VENV)/.installed
	$(BIN)/python manage.py compile_translations
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py runservice

## test: the whole suite against real local servers (DATABASE_URL / QUEUE_URL pick the backends)
test: $(VENV)/.installed-dev
	$(BIN)/python manage.py compile_translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## translations: compile locale/*/LC_MESSAGES/django.po to .mo (Python only; run and test do it)
translations: $(VENV)/.installed
	$(BIN)/python manage.py compile_translations

## messages: refresh locale/ru from the code (needs GNU gettext: apt-get install gettext)
messages: $(VENV)/.installed
	$(BIN)/python manage.py makemessages -l ru --no-location --ignore=.venv --ignore=var --ignore=bench

$(VENV)/.installed-bench: requirements.txt requirements-dev.txt requirements-bench.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-bench.txt
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

## bench: throughput, pacing, channel fairness, bulk-action cost, CPU and memory (~15 min;
## needs PostgreSQL and Redis for the scale-out tier); writes bench/results/ and
## assets/bench.png. BENCH_ONLY=mixed,burst runs a subset, BENCH_QUICK=1 a reduced size.
bench: $(VENV)/.installed-bench
	$(BIN)/python bench/run.py

## bench-scale: a campaign to a million users on PostgreSQL + Redis (~10 min; bench/scale.py):
## creation time, web and consumer memory, dashboard and campaign page latency while it is
## created and sent, "Cancel the rest" to the last send, doorbells; writes
## bench/results/scale.json. SCALE_ARGS="--recipients 20000 --send-seconds 10": a small one.
bench-scale: $(VENV)/.installed-bench
	$(BIN)/python bench/scale.py $(SCALE_ARGS)

## scaleout: the scale-out tier across six hosts made with network namespaces (root; ~3 min):
## PostgreSQL + Redis, web, three consumers, the fake Telegram; a 20,000-user campaign with one
## consumer's link cut and another SIGKILLed halfway; prints sends per host (bench/scaleout.py)
scaleout: $(VENV)/.installed-dev
	$(BIN)/python bench/scaleout.py

## screenshots: the admin in headless Chromium (needs the Debian package chromium): a temporary
## service with sample data, its pages written to assets/*.png (bench/screenshots.py)
screenshots: $(VENV)/.installed-dev
	$(BIN)/python manage.py compile_translations
	$(BIN)/python bench/screenshots.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-channels: $(VENV)/.installed
	$(BIN)/python manage.py check_channels

clean:
	rm -rf $(VENV) var/*.sqlite3* var/test_* .pytest_cache
