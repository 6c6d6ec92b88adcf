# tfmask Makefile: thin targets over the `tfmask` command.
# `make demo` and `make test` are the only set-up commands a new machine needs.

PYTHON      ?= python3
VENV        ?= .venv
TFMASK      := $(VENV)/bin/tfmask
STAMP       := $(VENV)/.installed

DATA_DIR        ?= dataset
BBOXES_PROVIDED ?= False
RECORDS_DIR     ?= $(DATA_DIR)/records
VAL_FRACTION    ?= 0.2
NUM_SHARDS      ?= 1
PREVIEW_DIR     ?= $(DATA_DIR)/preview
DEMO_DIR        ?= out/demo
PIPELINE_CONFIG ?= configs/mask_rcnn_tiny_cpu.config
MODEL_DIR       ?= runs/tiny
NUM_STEPS       ?=
EXPORT_DIR      ?= $(MODEL_DIR)/export
INPUT_TYPE      ?= image_tensor
IMAGES          ?= $(DATA_DIR)/test_images
INFER_DIR       ?= $(MODEL_DIR)/infer
EVAL_DIR        ?= $(MODEL_DIR)/eval
MIN_SCORE       ?= 0.5
PYTEST_ARGS     ?=
# Test processes (pytest-xdist): one per core, at most 4 (each holds a TensorFlow).
TEST_JOBS       ?= auto
BENCH_ARGS      ?=

.PHONY: install test test-all demo tfrecord check-pixels preview synth train export infer eval \
	pretrained bench clean

# The environment: created once, reinstalled when the pins change.
$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c requirements.lock -e '.[test,beam,peers,runtimes]'
	touch $(STAMP)

install: $(STAMP)

# Benchmarks (not tests): bench/results.json and the table in docs/benchmarks.md; ~20 min on 2 cores.
bench: $(STAMP)
	$(TFMASK) bench --readme docs/benchmarks.md $(BENCH_ARGS)

# `make test`: everything but the tests marked slow (CI runs this); `make test-all`: every test.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_JOBS) --maxprocesses 4 -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_JOBS) --maxprocesses 4 $(PYTEST_ARGS)

demo: $(STAMP)
	$(TFMASK) demo --data-dir $(DATA_DIR) --out $(DEMO_DIR)

tfrecord: $(STAMP)
	$(TFMASK) tfrecord --data-dir $(DATA_DIR) --bboxes-provided $(BBOXES_PROVIDED) \
	  --output-dir $(RECORDS_DIR) --val-fraction $(VAL_FRACTION) \
	  --num-shards $(NUM_SHARDS) --coco-json-out

check-pixels: $(STAMP)
	$(TFMASK) check-pixels $(DATA_DIR)/train_masks

preview: $(STAMP)
	$(TFMASK) preview '$(RECORDS_DIR)/*-of-*' --out $(PREVIEW_DIR)

# Regenerates the bundled sample (only files named like the synthesizer's are replaced).
# Training reads the records `make tfrecord` writes (the shipped configs point at them).
train: $(STAMP)
	$(TFMASK) train --pipeline-config-path $(PIPELINE_CONFIG) --model-dir $(MODEL_DIR) \
	  $(if $(NUM_STEPS),--num-train-steps $(NUM_STEPS))

# After training: a SavedModel with the OD API's outputs, overlays + COCO results on images,
# and COCO box/mask AP of the export on the validation records.
export: $(STAMP)
	$(TFMASK) export --input-type $(INPUT_TYPE) --pipeline-config-path $(PIPELINE_CONFIG) \
	  --trained-checkpoint-dir $(MODEL_DIR) --export-dir $(EXPORT_DIR)

infer: $(STAMP)
	$(TFMASK) infer --export-dir $(EXPORT_DIR) --images '$(IMAGES)' --output $(INFER_DIR) \
	  --min-score $(MIN_SCORE)

eval: $(STAMP)
	$(TFMASK) eval --gt '$(RECORDS_DIR)/val-*' --export-dir $(EXPORT_DIR) --output $(EVAL_DIR)

# The only target that uses the network: pretrained weights into pretrained/.
pretrained: $(STAMP)
	$(TFMASK) pretrained resnet50_imagenet --dest pretrained
	$(TFMASK) pretrained inception_resnet_v2_imagenet --dest pretrained
	$(TFMASK) pretrained torchvision_maskrcnn_resnet50_fpn_coco --dest pretrained
	$(TFMASK) pretrained torchvision_maskrcnn_resnet50_fpn_v2_coco --dest pretrained

synth: $(STAMP)
	$(TFMASK) synth --out $(DATA_DIR) --num-train 48 --num-test 6 --size 256x192 --seed 0 --overwrite

clean:
	rm -rf $(DEMO_DIR) $(RECORDS_DIR) $(PREVIEW_DIR) .pytest_cache
