# make demo   set up .venv (first time only) and run the paper's study on the shipped demo model
# make test   set up .venv (first time only) and run the tests (one pytest worker per core)
# make docs   set up .venv (first time only) and build the documentation site into site/
#
# Setup (scripts/setup_venv.sh) reruns only when pyproject.toml or the script changes; delete
# .venv to start over. Variables: PYTHON (default python3), VENV (.venv), EXTRAS, TORCH_CPU,
# PYTEST_ARGS (e.g. make test PYTEST_ARGS="-x tests/test_lens.py").

PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= test,docs,plot,probes
STAMP := $(VENV)/.audiolens-setup

export PYTHON VENV EXTRAS

.PHONY: demo test docs setup

demo: $(STAMP)
	$(VENV)/bin/audiolens reproduce

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile $(PYTEST_ARGS)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup_venv.sh
	bash scripts/setup_venv.sh
	touch $@
