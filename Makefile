# gradinv: every target sets up .venv on first use.
VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
ARGS    ?=
# test workers: one per core (each runs torch on one thread), at most 4 so that memory holds
WORKERS ?= auto

.DEFAULT_GOAL := help
.PHONY: help setup run test lint bench gpu-check table-labels table-dia table-rgap table-ppp table-fedavg table-dp

help: ## List the targets, one line each
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort | expand -t 18

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install gradinv with its test tools

run: $(STAMP) ## Run the default experiment (IG on the MNIST MLP, offline); extra overrides in ARGS="..."
	$(PYTHON) gradinv/main.py $(ARGS)

test: $(STAMP) ## Run the test suite, one worker per core (WORKERS=0: in this process)
	$(PYTHON) -m pytest -n $(WORKERS) --maxprocesses 4 $(ARGS)

lint: $(STAMP) ## Lint and check the formatting with ruff (pyproject.toml's settings)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP) ## Time attacks (1 vs 8 vs 32 stepped together, one by one, floors, kernels per step; medians of 3), the DIA authors' ViT cell included; writes bench.json
	$(PYTHON) -m gradinv.bench --repeats 3 $(ARGS)

# On a machine with CUDA: every gpu-marked test, then the bench on the GPU (ViT DIA up to 1024
# attacks stepped together, ResNet-18 IG x32), in one command: about 3 minutes on an H200 (52 s,
# 102 s, 27 s) after the Python start; the JSON and the tests' report in GPU_OUT.
GPU_OUT   ?= gpu-check
gpu-check: $(STAMP) ## On a CUDA machine: the gpu-marked tests and the GPU bench (about 3 min on an H200); results in GPU_OUT
	mkdir -p $(GPU_OUT)
	$(PYTHON) -m pytest -q -m gpu -p no:cacheprovider tests/gpu --junitxml=$(GPU_OUT)/gpu-tests.xml
	$(PYTHON) -m gradinv.bench --accelerator gpu --cells vit:cifar10:20:dia --counts 1,128,1024 \
	  --one-by-one 0 --out $(GPU_OUT)/bench-gpu-vit.json
	$(PYTHON) -m gradinv.bench --accelerator gpu --cells resnet18:cifar10:10 --counts 32 \
	  --one-by-one 0 --out $(GPU_OUT)/bench-gpu-resnet18.json

table-labels: $(STAMP) ## Label inference accuracy per method: shipped MNIST, CIFAR-10 x MLP, CNN x batch 1, 4, 8
	$(PYTHON) -m gradinv.label_table $(ARGS)

# Paper tables: each target sweeps with `gradinv/main.py -m` into $(SWEEP), then runs
# multirun_analysis on it (tables, plots, galleries and report.html in $(SWEEP)/analysis) and ends
# by printing where report.html is; WANDB_REPORT=ENTITY/PROJECT also builds the sweep's W&B report
# and prints its address (or, offline, where its specification waits to be published). Every list
# below is a variable, so a target can be narrowed from the command line (e.g. DIA_ATTACKS=ig).
# QUICK=1: CPU-sized (shipped MNIST + CIFAR-10 samples, 50 iterations, one image per cell; table-dia:
# shipped CIFAR-10, p in {0, 0.25}, each model at the budget its convergence curve needs, DIA_QUICK_BUDGETS).
# Without QUICK: the papers' budgets, meant for GPUs (24000 iterations as in IG, 20000 in DIA; ImageNet needs
# IMAGENET_ROOT, a torchvision ImageNet folder or an .npz archive).
QUICK         ?=
NOW           := $(shell date +%Y-%m-%d/%H-%M-%S)
SWEEP         ?= multirun/$@/$(NOW)
P             ?= 0,0.1,0.25,0.5
IMAGENET_ROOT ?=
ITERS         ?= $(if $(QUICK),50,24000)
VICTIMS       ?= $(if $(QUICK),1,10)
DATASETS      ?= mnist,cifar10
DIA_ATTACKS   ?= ig,dia,wiig
DIA_MODELS    ?= mlp,cnn,resnet18,vit
DIA_IMAGENET_MODELS ?= mlp,cnn,resnet18,vit_b16
RGAP_MODELS   ?= cnn6,cnn6d,fcn3
RGAP_DATASETS ?= cifar10
PPP_DEFENSES  ?= none,precode,ppp,noise
PPP_MODELS    ?= mlp,cnn,resnet18
FEDAVG_MODELS ?= mlp,cnn
FEDAVG_BATCHES ?= 1,4,8
FEDAVG_STEPS  ?= 1,5
FEDAVG_P      ?= 0,0.25
FEDAVG_ATTACKS ?= ig,dia
FEDAVG_ITERS  ?= $(if $(QUICK),100,24000)
DP_MODELS     ?= mlp,cnn
DP_ATTACKS    ?= ig,dia,wiig
DP_EPSILONS   ?= 100,10,1
DP_BATCHES    ?= 1,4
DP_P          ?= 0.25
DP_DELTA      ?= 1e-5
DP_ITERS      ?= $(if $(QUICK),100,20000)
SWEEP_RUN      = $(PYTHON) gradinv/main.py -m trainer.enable_progress_bar=false
BUDGET         = attack.optim.iterations=$(ITERS) dataset.num_victims=$(VICTIMS)
# The DIA paper's setting (conf/experiment/dia_paper.yaml) for every attack of its table, so
# that IG differs from DIA only in the masks.
DIA_ITERS     ?= 20000
DIA_SETTING    = +experiment=dia_paper dataset.num_victims=$(VICTIMS)
DIA_QUICK_BUDGETS ?= mlp:500 cnn:1000 vit:1500
DIA_QUICK_DATASETS ?= cifar10
DIA_QUICK_P   ?= 0,0.25
budget_model   = $(word 1,$(subst :, ,$(1)))
budget_iters   = $(word 2,$(subst :, ,$(1)))
WANDB_REPORT  ?=
ANALYZE        = $(PYTHON) -m multirun_analysis $(SWEEP) --out $(SWEEP)/analysis \
                 $(if $(WANDB_REPORT),--wandb-report $(WANDB_REPORT))
need           = $(or $($(1)),$(error $@ without QUICK=1 needs $(1)=..., e.g. $(1)=/data/imagenet))
# table-dp: every cell of the DP-SGD grid but its epsilon; epsilon = inf is noise multiplier 0.
DP_SETTING     = dataset=cifar10 model=$(DP_MODELS) model.dropout=$(DP_P) dataset.batch_size=$(DP_BATCHES) \
                 attack=$(DP_ATTACKS) defense=dpsgd defense.delta=$(DP_DELTA) $(DIA_SETTING) \
                 attack.optim.iterations=$(DP_ITERS)

table-dia: $(STAMP) ## DIA paper: 4 models x MNIST, CIFAR-10, ImageNet x p x IG, DIA, WIIG (QUICK=1: CPU)
ifeq ($(QUICK),)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/small attack=$(DIA_ATTACKS) dataset=$(DATASETS) \
	  model=$(DIA_MODELS) model.dropout=$(P) $(DIA_SETTING) attack.optim.iterations=$(DIA_ITERS) $(ARGS)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/imagenet attack=$(DIA_ATTACKS) dataset=imagenet \
	  dataset.root=$(call need,IMAGENET_ROOT) model=$(DIA_IMAGENET_MODELS) model.dropout=$(P) \
	  $(DIA_SETTING) attack.optim.iterations=$(DIA_ITERS) $(ARGS)
else
	$(foreach b,$(DIA_QUICK_BUDGETS),$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/$(call budget_model,$(b)) \
	  attack=$(DIA_ATTACKS) dataset=$(DIA_QUICK_DATASETS) model=$(call budget_model,$(b)) \
	  model.dropout=$(DIA_QUICK_P) $(DIA_SETTING) attack.optim.iterations=$(call budget_iters,$(b)) $(ARGS) &&) true
endif
	$(ANALYZE)

table-rgap: $(STAMP) ## R-GAP paper: R-GAP vs IG on cnn6, cnn6d, fcn3 (QUICK=1: CPU)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/rgap attack=rgap dataset=$(RGAP_DATASETS) \
	  model=$(RGAP_MODELS) dataset.num_victims=$(VICTIMS) $(ARGS)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/ig attack=ig dataset=$(RGAP_DATASETS) \
	  model=$(RGAP_MODELS) $(BUDGET) $(ARGS)
	$(ANALYZE)

table-ppp: $(STAMP) ## Defenses: bare, PRECODE, PPP, noise x IG, PRECODE-aware IG x models (QUICK=1: CPU)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/ig attack=ig defense=$(PPP_DEFENSES) dataset=$(DATASETS) \
	  model=$(PPP_MODELS) $(BUDGET) $(ARGS)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/ig_precode attack=ig_precode defense=precode,ppp \
	  dataset=$(DATASETS) model=$(PPP_MODELS) $(BUDGET) $(ARGS)
	$(ANALYZE)

table-fedavg: $(STAMP) ## FedAvg: MLP, CNN x batch 1, 4, 8 x local steps 1, 5 x p x IG, DIA, labels inferred (QUICK=1: CPU)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP) client=fedavg dataset=cifar10 model=$(FEDAVG_MODELS) \
	  dataset.batch_size=$(FEDAVG_BATCHES) client.local_steps=$(FEDAVG_STEPS) model.dropout=$(FEDAVG_P) \
	  attack=$(FEDAVG_ATTACKS) threat.labels=false attack.optim.iterations=$(FEDAVG_ITERS) \
	  dataset.num_victims=$(VICTIMS) $(ARGS)
	$(ANALYZE) --by dataset.batch_size --by client.local_steps

table-dp: $(STAMP) ## DP-SGD: IG, DIA, WIIG x mlp, cnn x CIFAR-10 x epsilon in {inf, 100, 10, 1} x batch 1, 4; by epsilon (QUICK=1: CPU)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/epsilon $(DP_SETTING) defense.epsilon=$(DP_EPSILONS) $(ARGS)
	$(SWEEP_RUN) hydra.sweep.dir=$(SWEEP)/no_noise $(DP_SETTING) defense.epsilon=null defense.noise_multiplier=0 $(ARGS)
	$(ANALYZE) --by defense.epsilon --by dataset.batch_size
