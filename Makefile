# The two commands of the README, plus a few conveniences.
.PHONY: demo test stop lint bench lock

# Set everything up, simulate an exchange, run the pipeline, leave the UIs up on 127.0.0.1.
demo:
	@envs/setup.sh core airflow superset
	@.venvs/core/bin/peerpool demo

# Set everything up (Debian packages too, as root) and run the whole test suite.
test:
	@envs/setup.sh --apt core airflow superset
	@.venvs/core/bin/python -m pytest

# Stop the services the demo started.
stop:
	@.venvs/core/bin/peerpool demo --stop

lint:
	@.venvs/core/bin/ruff check . && .venvs/core/bin/ruff format --check . && .venvs/core/bin/mypy

bench:
	@envs/setup.sh core
	@bench/run_all.sh

# Re-resolve the locked environments after editing envs/*.in.
lock:
	@for e in core airflow superset; do .venvs/_uv/bin/uv pip compile --quiet --python-version 3.11 envs/$$e.in -o envs/$$e.lock.txt; done
