# Enclume: `make demo` and `make test` set up everything they need on Debian 12.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Downloads (Debian packages for the ramdisk, the Ironic venv of the benchmarks, the clients' venv
# of their functional suites: $(CACHE)/client-functional, from tests/clients/requirements.txt; the
# real Keystone of the keystone auth tests: $(CACHE)/keystone, from tests/keystone/requirements.txt;
# Ironic's policy defaults of test_policy_matches_ironic.py: $(CACHE)/ironic-policy, from
# tests/ironic_policy/requirements.txt)
# live here.
CACHE := .cache
STAMP := $(VENV)/.installed
# Debian packages `make deps` installs, each only when what it provides is missing:
# python3-venv (ensurepip, to create .venv), docker-compose (validates compose.yaml in the tests),
# postgresql and mariadb-server (the throw-away database servers of the cluster and classroom
# tests, test_mariadb.py and the benchmarks), and the real
# protocol peers and virtual hardware of the tests and the lab: ipmitool, dnsmasq, iptables, vde2,
# QEMU with iPXE and OVMF firmware, qemu-utils with libiscsi, busybox-static; for the agent tests
# sfdisk (fdisk), boot loaders (extlinux, systemd-boot-efi), EFI partitions (dosfstools, mtools),
# genisoimage (config drives; with dosfstools, mtools and systemd-boot-efi the virtual media
# deploy ISO, its isoinfo reads it back in the tests); for the lab's test images SYSLINUX on
# FAT without mounting (syslinux, with mtools and dosfstools); zstd compresses the deploy ramdisk; python3-zstandard
# lets the agent (Debian's python3) compress captured blocks as in the ramdisk; the browser tests
# of the web page (tests/browser) drive Debian's chromium through chromium-driver; uftp is the
# multicast sender of the boot service and the receiver of the agent (room restores), udpcast the
# other multicast tool benchmarks/multicast_tools.py measures against it; slapd and
# ldap-utils run the throw-away OpenLDAP directory of the LDAP identity tests; libfuse3-3 is the
# FUSE library of the disk that loses writes (tests/support/faulty_disk.py, mounted as root);
# openipmi's ipmi_sim is the BMC that serves Serial-over-LAN to the console tests
# (tests/support/sol_bmc.py); openssl's `passwd -6` checks the rescue user's sha512-crypt
# password (tests/integration/test_agent_rescue.py).
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
PYTEST_ARGS ?=
# pytest-xdist workers of `make test`, `make unit` and `make integration`: a test module at a time
# per worker, the QEMU lab (tests/lab) whole on one worker, the clients' two suites on two
# (tests/conftest.py). Most integration tests wait on processes, sockets and timers rather than
# compute, so 4 workers beat 2 even on 2 cores. PYTEST_WORKERS=0: no workers, one process.
PYTEST_WORKERS ?= 4
XDIST := -n $(PYTEST_WORKERS) --dist loadscope
LAB_PACKAGES := ipmitool dnsmasq-base iptables vde2 qemu-system-x86 qemu-utils qemu-block-extra \
	ipxe ovmf busybox-static tgt fdisk extlinux genisoimage dosfstools mtools systemd-boot-efi \
	syslinux zstd python3-zstandard chromium chromium-driver slapd ldap-utils udpcast uftp \
	mariadb-server libfuse3-3 openipmi openssl

.PHONY: help deps venv test unit integration browser clients lint demo bench clean testkernel \
	ramdisk testimages screenshots lab-screenshots ui-vendor

help:
	@echo "make demo   - set up, start enclume-aio and a virtual lab, provision 2 QEMU machines live"
	@echo "make test   - set up and run the whole test suite (lint, unit, integration)"
	@echo "make bench  - side-by-side benchmark against OpenStack Ironic (docs/benchmarks.md)"
	@echo "make lint   - ruff and the layer contracts (lint-imports)"
	@echo "make browser - the web page's tests in headless chromium (part of make test)"
	@echo "make clients - python-ironicclient's and openstacksdk's functional suites (part of make test)"
	@echo "make screenshots - docs/images/*.png of docs/teacher-guide.md, from the browser tests"
	@echo "make lab-screenshots - docs/images/lab-room-*.png, the room page during a QEMU lab restore (root)"
	@echo "make testkernel - the lab's test kernel and initramfs in $(CACHE)/testkernel"
	@echo "make ramdisk - the deploy kernel and ramdisk (with the agent) in $(CACHE)/ramdisk"
	@echo "make testimages - the lab's whole-disk and partition test images in $(CACHE)/testimages"

deps:
	@missing=; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing="$$missing postgresql"; \
	for pkg in $(LAB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' \
			|| missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && $(APT_INSTALL) $$missing; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,postgres,keystone]'
	@touch $@

venv: $(STAMP)

# ruff, and the layer contracts of pyproject.toml's [tool.importlinter] (docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q $(XDIST) tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest -q $(XDIST) tests/integration $(PYTEST_ARGS)

browser: deps $(STAMP)
	$(BIN)/pytest -q tests/browser $(PYTEST_ARGS)

# The functional suites Ironic's clients ship, against enclume-aio, from the clients' own venv
# ($(CACHE)/client-functional; docs/api.md lists the tests that do not pass).
clients: $(STAMP)
	$(BIN)/pytest -q -s tests/integration/test_client_functional.py $(PYTEST_ARGS)

# The teacher guide's pictures of the web page, taken by the browser tests as they run.
screenshots: deps $(STAMP)
	ENCLUME_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/pytest -q tests/browser $(PYTEST_ARGS)

# The room page following a real restore of the QEMU lab's 3 PCs (root; docs/lab.md).
lab-screenshots: deps $(STAMP)
	ENCLUME_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/pytest -q \
		tests/lab/test_e2e_provisioning.py $(PYTEST_ARGS)

# The web page's vendored htmx, its SSE extension and Pico CSS, fetched again from the npm
# registry (services/api/ui/static/vendor/VENDOR.md: versions and licences). Not needed to
# build or test: the files are committed.
UI_VENDOR := services/api/ui/static/vendor
ui-vendor:
	@tmp=$$(mktemp -d) && cd $$tmp && \
	npm pack -q htmx.org@2.0.11 htmx-ext-sse@2.2.4 @picocss/pico@2.1.1 >/dev/null && \
	for f in *.tgz; do mkdir -p $${f%.tgz} && tar xzf $$f -C $${f%.tgz}; done && \
	cp htmx.org-2.0.11/package/dist/htmx.min.js $(CURDIR)/$(UI_VENDOR)/htmx-2.0.11.min.js && \
	cp htmx-ext-sse-2.2.4/package/dist/sse.min.js \
		$(CURDIR)/$(UI_VENDOR)/htmx-ext-sse-2.2.4.min.js && \
	cp picocss-pico-2.1.1/package/css/pico.classless.min.css \
		$(CURDIR)/$(UI_VENDOR)/pico-2.1.1.classless.min.css && \
	rm -rf $$tmp

# The whole suite; pytest's "no tests collected" (exit 5) counts as a failure. The 40 slowest
# tests are listed at the end of every run.
test: deps $(STAMP) lint
	$(BIN)/pytest -q $(XDIST) --durations=40 tests $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi; exit $$rc

# The virtual lab (root): two QEMU machines enrolled, cleaned and deployed by enclume-aio through
# its API over a VLAN switch, with live progress; torn down at the end. DEMO_ARGS: e.g.
# `--machines ipmi,redfish` or `--pause` (lab/demo.py).
DEMO_ARGS ?=
demo: deps $(STAMP) ramdisk testimages
	$(BIN)/python -m lab.demo $(DEMO_ARGS)

bench: $(STAMP)
	mkdir -p $(CACHE)
	$(BIN)/python benchmarks/ironic_side_by_side.py

# The lab's test kernel (Debian kernel + busybox initramfs printing a marker) in $(CACHE)/testkernel.
testkernel: $(STAMP)
	$(BIN)/python -m ramdisk.testkernel --cache-dir $(CACHE)

# The deploy kernel and ramdisk (docs/ramdisk.md) in $(CACHE)/ramdisk, from Debian packages
# downloaded once into $(CACHE)/debs; rebuilt only when its sources, the agent or packages change.
ramdisk: $(STAMP)
	$(BIN)/python -m ramdisk --cache-dir $(CACHE)

# The lab's test OS images (docs/lab.md): a BIOS whole-disk image and a partition image, raw and
# qcow2 with .sha256 files, in $(CACHE)/testimages; rebuilt only when sources or packages change.
testimages: deps $(STAMP)
	$(BIN)/python -m ramdisk.testimages --cache-dir $(CACHE)

clean:
	rm -rf $(VENV) $(CACHE) .pytest_cache .ruff_cache
