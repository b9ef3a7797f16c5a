# `make demo` and `make test` each set up .venv on first use: requirements.txt, then this project
# itself (pyproject.toml, editable: the `inception-*` commands, no sys.path tricks).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

# Two pytest-xdist workers: the suite is mostly single-threaded tracing and subprocess start-up,
# so two workers on 2 cores take 0.68-0.76 of one's time; a third was slower (BUILD_NOTES "Test
# suite time").
TEST_WORKERS ?= 2

# ruff before pytest: `make test` runs `lint` (ruff check, ruff format --check) first and stops
# on a finding. `make test TEST_LINT=` skips it; `make lint` runs it alone.
TEST_LINT ?= lint

.PHONY: demo test test-slow lint venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(PY) main.py --flagfile=configs/demo.cfg
	$(PY) export.py --model_dir=runs/demo --data_dir=data --export_dir=exports --name=irv2
	@# The SavedModel answers through TensorFlow's session loader, the path TF Serving takes.
	d=$$(mktemp -d) && $(PY) -c "import sys, numpy as np; np.save(sys.argv[1], np.zeros((1, 75, 75, 3), np.float32))" $$d/zeros.npy && \
	$(PY) -m inception_cli.saved_model_cli run --dir exports/irv2/$$(ls exports/irv2 | sort -n | tail -1) --tag_set serve \
	    --signature_def predict_images --inputs images=$$d/zeros.npy; status=$$?; rm -rf $$d; exit $$status
	$(VENV)/bin/inception-predict --model=exports/irv2-artifacts/$$(ls exports/irv2-artifacts | sort -n | tail -1)/irv2-int8.tflite --validation_images=4 --data_dir=data

test: $(STAMP) $(TEST_LINT)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# The rules and the line length are pyproject.toml's [tool.ruff].
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

clean:
	rm -rf $(VENV) runs data exports
