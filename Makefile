# Build and test infrastructure for the clientvpn.pki collection.
# GNU make; every recipe is one bash script run with -euo pipefail (.ONESHELL).

# The venv's Python: 3.12 or later when the machine has one (on PATH, or pyenv's; a pyenv shim for a
# version pyenv has not selected fails the check), so that the full suite runs on the newest ansible-core
# (2.21 needs 3.12); else python3, and requirements-demo.txt then installs ansible-core 2.19.
PYTHON ?= $(shell for candidate in $$(command -v python3.12 python3.13) $$HOME/.pyenv/versions/3.12.*/bin/python3.12 python3; do \
	"$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo "$$candidate"; exit; }; done; echo python3)
VENV := .venv
COLLECTION_ROOT := .build/collections/ansible_collections/clientvpn/pki

# Python version ansible-test uses for sanity and units (--local: no containers): the venv's
# (expanded when a recipe runs, after the venv target made it).
ANSIBLE_TEST_PYTHON ?= $(shell $(VENV_PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
DEMO_DIR ?= $(CURDIR)/demo

VENV_BIN := $(CURDIR)/$(VENV)/bin
VENV_PY := $(VENV_BIN)/python
BUILD_ROOT := $(CURDIR)/$(COLLECTION_ROOT)
GET_PIP_OFFLINE := tests/tools/get_pip_offline.py

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
# `test` relies on its prerequisites running in the listed order.
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules

# The copy under .build is the only collection Ansible may see; the venv bundles none
# (ansible-core only), and it must not pick up anything else from sys.path either.
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PATH := $(VENV_BIN):$(PATH)

.PHONY: help venv venv-demo system-deps collection ansible-test-bootstrap sanity units lint \
	integration system matrix molecule module-docs module-docs-check changelog-check test demo benchmark clean

help:
	@echo "Targets: venv system-deps collection ansible-test-bootstrap sanity units lint"
	@echo "         integration system matrix test demo benchmark clean"

# --- environment -----------------------------------------------------------

# `make demo` installs only what the demo runs (requirements-demo.txt); the tests add the
# test and lint toolchain (requirements-dev.txt) on top.
venv-demo: $(VENV)/.stamp-demo

venv: $(VENV)/.stamp

$(VENV)/.stamp-demo: requirements.txt requirements-demo.txt
	[[ -x $(VENV)/bin/python ]] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -r requirements-demo.txt
	touch $@

$(VENV)/.stamp: $(VENV)/.stamp-demo requirements-dev.txt
	$(VENV)/bin/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

# easy-rsa, openssl and openvpn are used by the integration and system tests; Debian 12's
# python3-cryptography (38, older than the modules need) by the test of that refusal; openssh-server's
# sshd by tests/system/test_module_runs.py (a remote PKI host over ssh).
SYSTEM_PACKAGES := easy-rsa openssl openvpn python3-cryptography faketime chromium openssh-server

system-deps:
	@missing=()
	[[ -x /usr/share/easy-rsa/easyrsa ]] || missing+=(easy-rsa)
	command -v openssl >/dev/null 2>&1 || missing+=(openssl)
	command -v openvpn >/dev/null 2>&1 || [[ -x /usr/sbin/openvpn ]] || missing+=(openvpn)
	/usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1 || missing+=(python3-cryptography)
	command -v faketime >/dev/null 2>&1 || missing+=(faketime)
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
	[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
	if (( $${#missing[@]} == 0 )); then
		echo "system-deps: $(SYSTEM_PACKAGES) are present"
	elif [[ "$$(id -u)" == 0 ]]; then
		echo "system-deps: installing (missing: $${missing[*]})"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES)
	else
		echo "WARNING: missing system packages: $${missing[*]}" >&2
		echo "WARNING: not root, so not installing them; run as root or:" >&2
		echo "WARNING:   apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES)" >&2
		echo "WARNING: tests that need them will fail." >&2
	fi

# Fresh copy of the collection at the path Ansible and ansible-test expect. Only files git
# tracks or would track are copied, so ignored files (.venv, .build, caches) never are.
collection:
	@rm -rf $(COLLECTION_ROOT)
	mkdir -p $(COLLECTION_ROOT)
	git ls-files -z -co --exclude-standard \
		| while IFS= read -r -d '' f; do [[ -e "$$f" || -L "$$f" ]] && printf '%s\0' "$$f"; done \
		| tar --null --no-recursion -T - -cf - \
		| tar -xf - -C $(COLLECTION_ROOT)
	# ansible-test looks for .git upwards from the collection and would find this repository's,
	# in which .build is ignored, so it would see no files at all. A repository of its own
	# (nothing committed: ansible-test lists untracked files too) makes it see the copy.
	git -C $(COLLECTION_ROOT) init -q
	echo "collection: $$(find $(COLLECTION_ROOT) -type f | wc -l) files in $(COLLECTION_ROOT)"

# ansible-test bootstraps pip in its virtual environments with a get-pip.py it downloads
# from its own download host, which is unreachable here. It looks first for
# ~/.ansible/test/cache/get_pip_<pip version, dots as underscores>.py; the pip version is
# what ansible-test's own get_venv_packages() says, so the name follows the installed
# ansible-core release (2.19.x: get_pip_24_2.py).
ansible-test-bootstrap: venv
	@pip_version="$$($(VENV_PY) -c 'import types; from ansible_test._internal.python_requirements import get_venv_packages; print(get_venv_packages(types.SimpleNamespace(version="$(ANSIBLE_TEST_PYTHON)"))["pip"])')"
	dest="$$HOME/.ansible/test/cache/get_pip_$${pip_version//./_}.py"
	mkdir -p "$$(dirname "$$dest")"
	cmp -s $(GET_PIP_OFFLINE) "$$dest" || install -m 0644 $(GET_PIP_OFFLINE) "$$dest"
	echo "ansible-test-bootstrap: $$dest (pip $$pip_version)"

# --- tests -----------------------------------------------------------------

sanity: venv collection ansible-test-bootstrap
	cd $(COLLECTION_ROOT)
	ansible-test sanity --local --python $(ANSIBLE_TEST_PYTHON) --color no

units: venv collection
	cd $(COLLECTION_ROOT)
	ansible-test units --local --python $(ANSIBLE_TEST_PYTHON) --color no

lint: venv collection
	ansible-lint --offline

# Every integration target, one ansible-playbook run each, with a fresh output_dir.
# setup_* / prepare_* targets are helpers (role dependencies), not tests, as in ansible-test;
# targets whose aliases say `disabled` are skipped too.
integration: venv collection
	@cd $(COLLECTION_ROOT)/tests/integration
	shopt -s nullglob
	ran=0
	for tasks in targets/*/tasks/main.yml; do
		target="$${tasks#targets/}"; target="$${target%%/*}"
		case "$$target" in setup_*|prepare_*) continue ;; esac
		if [[ -f "targets/$$target/aliases" ]] && grep -qxE '\s*disabled\s*' "targets/$$target/aliases"; then
			echo "integration: skipping disabled target $$target"; continue
		fi
		output_dir="$$(mktemp -d "$${TMPDIR:-/tmp}/clientvpn-pki-$$target.XXXXXX")"
		echo "=== integration target: $$target (output_dir=$$output_dir)"
		rc=0
		ANSIBLE_ROLES_PATH="$$PWD/targets" ansible-playbook -i localhost, run_target.yml \
			-e target="$$target" -e output_dir="$$output_dir" || rc=$$?
		rm -rf "$$output_dir"
		if (( rc != 0 )); then
			echo "FAILED integration target: $$target (ansible-playbook exit $$rc)" >&2
			exit "$$rc"
		fi
		ran=$$((ran + 1))
	done
	if (( ran == 0 )); then
		echo "FAILED integration: no targets found under tests/integration/targets/" >&2
		exit 1
	fi
	echo "integration: $$ran target(s) passed"

# Two workers: most of these tests wait on processes (ansible-playbook, openssl, OpenVPN), and
# each uses its own tmp_path, ports and subnets. --durations shows where the time goes.
system: venv collection system-deps
	$(VENV_PY) -m pytest -p no:cacheprovider -n 2 --durations=15 tests/system

# The ansible-core version matrix (tests/matrix/run.sh; docs/testing.md): the built tarball on
# each ansible-core of MATRIX_VERSIONS (default: the script's, 2.17 to 2.21), each in its own venv
# under .build/matrix: ansible-test sanity, then a smoke run of the playbooks. Two at a time.
#   MATRIX_VERSIONS="2.17.14 2.19.15" make matrix
matrix: venv collection system-deps
	tests/matrix/run.sh

# The roles with molecule (default driver, localhost: no container engine) against a
# local ACM endpoint started here: converge, idempotence, verify.
molecule: venv collection system-deps
	state_dir="$$(mktemp -d "$${TMPDIR:-/tmp}/clientvpn-molecule-acm.XXXXXX")"
	acm_url="$$($(VENV_PY) tests/tools/local_acm.py start --state-dir "$$state_dir")"
	trap '$(VENV_PY) $(CURDIR)/tests/tools/local_acm.py stop --state-dir "$$state_dir"; rm -rf "$$state_dir"' EXIT
	cd extensions
	for scenario in molecule/*/molecule.yml; do
		scenario="$${scenario#molecule/}"; scenario="$${scenario%/molecule.yml}"
		# With an unmanaged driver molecule keeps "prepared" across runs: start afresh.
		molecule reset -s "$$scenario"
		CLIENTVPN_ACM_URL="$$acm_url" molecule test -s "$$scenario"
	done

# Fragments and changelogs/changelog.yaml are valid, and CHANGELOG.md is what they generate.
changelog-check: venv collection
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	generated="$$(mktemp)"; trap 'rm -f "$$generated"' EXIT
	antsibull-changelog generate --output "$$generated"
	if ! diff -u CHANGELOG.md "$$generated"; then
		echo "CHANGELOG.md is not what changelogs/ generates: run antsibull-changelog generate" >&2; exit 1
	fi
	echo "changelog-check: CHANGELOG.md is current"

# docs/modules/ is generated from the modules' own documentation; `test` checks it is current.
module-docs: venv collection
	$(VENV_PY) tests/tools/module_docs.py

module-docs-check: venv collection
	$(VENV_PY) tests/tools/module_docs.py --check

test: venv system-deps collection ansible-test-bootstrap module-docs-check changelog-check units integration system matrix molecule sanity lint

# --- demo ------------------------------------------------------------------

# The full playbook against a local ACM endpoint (moto's server on 127.0.0.1), started
# here and stopped at the end. Its state is recorded under $(DEMO_DIR)/local-acm and
# replayed at the next start, so a second `make demo` finds what the first imported.
# Against real AWS: ansible-playbook clientvpn.pki.mutual_auth -e aws_region=REGION
demo: venv-demo collection
	acm_url="$$($(VENV_PY) tests/tools/local_acm.py start --state-dir $(DEMO_DIR)/local-acm)"
	trap '$(VENV_PY) tests/tools/local_acm.py stop --state-dir $(DEMO_DIR)/local-acm' EXIT
	echo "demo: local ACM endpoint at $$acm_url"
	AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
	ansible-playbook clientvpn.pki.mutual_auth \
		-e pki_dir=$(DEMO_DIR)/pki -e stage_dir=$(DEMO_DIR)/custom_folder \
		-e aws_region=eu-west-1 -e aws_endpoint_url=$$acm_url \
		-e '{"pki_clients": ["client1.domain.tld"]}'
	echo "demo: files built under $(DEMO_DIR) (mode path):"
	find $(DEMO_DIR)/pki $(DEMO_DIR)/custom_folder -type f -exec stat -c '%a %n' {} + | sort -k2
	echo "demo: ARNs ($(DEMO_DIR)/custom_folder/acm-arns.json):"
	cat $(DEMO_DIR)/custom_folder/acm-arns.json

# Side by side with easy-rsa and a one-task-per-item playbook; about 100 minutes on
# 2 cores with the defaults. Writes its table into docs/performance.md.
# The small cases only, in a few minutes: make benchmark BENCHMARK_ARGS=--quick
# Then the issue 22 targets on every ansible-core of the matrix, this design beside the previous one
# (benchmarks/versions.py, about 15 minutes): BENCHMARK_VERSIONS_ARGS="--versions 2.21.6 --scale-size 2000"
BENCHMARK_ARGS ?=
BENCHMARK_VERSIONS_ARGS ?=
benchmark: venv collection system-deps
	$(VENV_PY) benchmarks/run.py --write-doc docs/performance.md --json .build/benchmark.json $(BENCHMARK_ARGS)
	$(VENV_PY) benchmarks/versions.py --write-doc docs/performance.md $(BENCHMARK_VERSIONS_ARGS)

clean:
	rm -rf .build demo
