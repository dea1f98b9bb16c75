# The two commands of the README: `make run` and `make test`. Both install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config/cloudd.conf
GUEST_DIR ?= /var/cache/cloudd/guest
STAMP := $(VENV)/.cloudd-installed

.PHONY: run test lint unit bench soak install clean

$(STAMP): pyproject.toml $(wildcard scripts/install-*.sh)
	bash scripts/install-deps.sh
	touch $(STAMP)

install: $(STAMP)

run: install
	@test -f $(CONFIG) || $(PY) -m cloudd manage config sample > $(CONFIG)
	$(PY) -m cloudd --config $(CONFIG) manage bootstrap
	@# libvirt: start its daemons, build the tiny guest once (cached), register it as images.
	@if [ "$$($(PY) scripts/register-guest.py --config $(CONFIG) --print-driver)" = libvirt ]; then \
		bash scripts/start-libvirt.sh && bash scripts/build-guest-image.sh "$(GUEST_DIR)" && \
		$(PY) scripts/register-guest.py --config $(CONFIG) "$(GUEST_DIR)"; fi
	exec $(PY) -m cloudd --config $(CONFIG) all-in-one

lint: install
	$(VENV)/bin/ruff check cloudd tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports  # package boundaries: [tool.importlinter] in pyproject.toml
	# SQL only in db/ and each table family's repository; the agent loads no controller code
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/test_sql_boundaries.py tests/agent/test_agent_imports.py

unit: install
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=30

test: lint unit

bench: install
	$(PY) scripts/bench/run.py

# Boot/delete cycles at c=20 on SQLite and PostgreSQL; fails if memory, fds, tasks or rows grow.
# Not part of `make test`. Quick try: make soak SOAK_CYCLES=300
SOAK_CYCLES ?= 10000
soak: install
	$(PY) scripts/bench/soak.py --cycles $(SOAK_CYCLES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
