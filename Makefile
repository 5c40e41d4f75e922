# distsec.framework: every developer and CI entry point.
#
#   make demo            the main job on the local container fleet
#   make test            every test: lint, sanity, unit, molecule (installs what it needs)
#
# Each target installs what it needs by itself: the venv (.venv/, pinned), Debian packages
# (as root), the podman target image (built from Debian's archive, cached).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

TOP := $(CURDIR)
VENV := $(TOP)/.venv
export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(TOP)/tools/podman/containers.conf
# This tree is the collection (tools/venv.sh links it here); nothing else may shadow it.
export ANSIBLE_COLLECTIONS_PATH := $(TOP)/.ansible/collections
export ANSIBLE_NOCOLOR := $(if $(CI),1,)
export PY_COLORS := $(if $(CI),0,1)

# molecule scenario for test-molecule (empty: all of them)
SCENARIO ?=
# Debian packages the tests need on this machine (firewalld only for firewall-offline-cmd:
# tools/host-packages.sh installs it without starting or enabling the daemon; chromium renders
# the fleet report's HTML headless)
HOST_PACKAGES := podman runc debootstrap nftables iproute2 shellcheck firewalld chromium

.PHONY: help venv host-packages image lint sanity unit test-molecule test bench build demo demo-clean clean pin

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: ## Create or refresh .venv/ with the pinned toolchain and the distsec command
	@tools/venv.sh

host-packages: ## Install the Debian packages the tests need (as root)
	@tools/host-packages.sh $(HOST_PACKAGES)

image: host-packages ## Build the podman target image, or reuse the cached one
	@tools/images/build.sh >/dev/null

lint: venv host-packages ## ruff, yamllint, ansible-lint (production profile), changelog, shellcheck
	ruff check .
	ruff format --check .
	yamllint -s .
	ansible-lint --nocolor -q
	antsibull-changelog lint
	shellcheck -x tools/*.sh tools/images/*.sh tools/images/*/*.sh .ci/run

sanity: venv ## ansible-test sanity on a copy of the collection
	@tools/sanity.sh

unit: venv host-packages ## pytest unit tests (real nft in throwaway network namespaces)
	pytest -q

test-molecule: venv image ## molecule scenarios: all, or SCENARIO=name
	@if [ -n "$(SCENARIO)" ]; then molecule test -s "$(SCENARIO)"; else molecule test --all; fi

test: ## Every test (what CI runs): lint, sanity, unit, molecule
	@tools/run-stages.sh lint sanity unit test-molecule

bench: venv host-packages ## Benchmarks that print figures (bench/*.py)
	@for b in bench/*.py; do echo "== $$b"; python "$$b"; done

build: venv ## Build the collection tarball into .build/
	@mkdir -p .build
	ansible-galaxy collection build --force --output-path .build/

demo: venv image ## The main job on the local container fleet (see README)
	@tools/demo.sh

demo-clean: venv ## Remove the demo fleet and its PDP directory (.cache/demo)
	molecule destroy -s default
	rm -rf .cache/demo

clean: ## Remove build output and caches (keeps .venv and the image)
	rm -rf .build .cache .pytest_cache .ruff_cache tests/output

pin: ## Re-resolve requirements/requirements.txt and rewrite requirements/constraints.txt
	@tools/pin.sh
