# Everything a fresh machine needs: `make run` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install run test test-all bench peers box2d browser

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/evo run configs/digits_mlp.yaml

test: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Box2D environments (LunarLander-v3: configs/lunar_lander.yaml) into the same venv.
box2d: install
	$(PY) -m pip install -q -e '.[box2d]'

# Headless Chromium for tests/tuning/test_dashboard_browser.py (Debian; the test also installs it when missing).
browser:
	apt-get install -y -q chromium chromium-driver

# The peers' own venv for benchmarks/peers/ (neat-python, EvoTorch, Ray Tune, DEHB): DEHB pins numpy < 2, so they
# stay out of .venv. Run a peer benchmark as: PYTHONPATH=. .venv-peers/bin/python -m benchmarks.peers.optuna_alone
peers: .venv-peers/.installed

.venv-peers/.installed: pyproject.toml benchmarks/peers/requirements.txt
	python3 -m venv .venv-peers
	.venv-peers/bin/python -m pip install -q --upgrade pip
	.venv-peers/bin/python -m pip install -q torch==2.13.0
	.venv-peers/bin/python -m pip install -q -e '.[dev]' -r benchmarks/peers/requirements.txt
	touch $@
