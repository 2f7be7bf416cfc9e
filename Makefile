# vibetune: `make up` runs the service, `make test` runs every test. Both set up what they need.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PORT    ?= 8000
HOST    ?= 127.0.0.1
STAMP   := $(VENV)/.installed

.PHONY: up test install services migrate bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh
	touch $@

install: $(STAMP)

services:
	scripts/ensure_services.sh

migrate: install services
	$(PY) -c "from app.supervisor import ensure_database, migrate; from app.config import get_settings; ensure_database(get_settings().database_url); migrate()"

up: install services
	HOST=$(HOST) PORT=$(PORT) $(PY) -m app.supervisor

test: install services
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install services
	$(PY) bench/pickup_latency.py

clean:
	rm -rf $(VENV) var .pytest_cache
