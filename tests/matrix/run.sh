#!/usr/bin/env bash
# The ansible-core version matrix (`make matrix`, part of `make test`; docs/testing.md).
#
# The collection's tarball, built once, is installed into one virtual environment per
# ansible-core version; from there each version runs
#   1. ansible-test sanity: import, validate-modules, ansible-doc, runtime-metadata;
#   2. a smoke run against a local ACM endpoint, the managed host being a venv of another
#      Python: mutual_auth (changed, then changed=0), mutual_auth --check (changed=0, no
#      file touched), revoke_client (the CRL lists the revoked serial), health.
# Two versions run at a time. Each version's output goes to .build/matrix/<version>.log;
# the end prints one line per version, and the log's tail for each failure.
#
#   tests/matrix/run.sh                                  # after `make venv collection`
#   MATRIX_VERSIONS="2.17.14 2.19.15" tests/matrix/run.sh
#   MATRIX_JOBS=1 tests/matrix/run.sh                    # one version at a time
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$REPO/.build/matrix"
MAIN_VENV="$REPO/.venv"
COLLECTION_SRC="$REPO/.build/collections/ansible_collections/clientvpn/pki"
GET_PIP_OFFLINE="$REPO/tests/tools/get_pip_offline.py"

MATRIX_VERSIONS="${MATRIX_VERSIONS:-2.17.14 2.18.19 2.19.15 2.20.10 2.21.6}"
MATRIX_JOBS="${MATRIX_JOBS:-2}"

# ansible-core minor version -> the controller's Python (within what that release supports:
# 2.17 3.10-3.12, 2.18 and 2.19 3.11-3.13, 2.20 and 2.21 3.12+) and the managed host's
# Python(s) for the smoke run: 3.9 (the oldest the collection claims) and 3.13 (the newest),
# both for every full run, both on the newest ansible-core. 2.17 has no 3.13 target support.
declare -A CONTROLLER_PYTHON=([2.17]=3.10 [2.18]=3.11 [2.19]=3.13 [2.20]=3.12 [2.21]=3.13)
declare -A HOST_PYTHONS=([2.17]="3.9" [2.18]="3.13" [2.19]="3.9" [2.20]="3.13" [2.21]="3.9 3.13")

# The modules' requirements (requirements.txt), pinned as `make demo` pins them. Python 3.9
# gets the newest boto3/botocore that still installs there (1.43 needs Python 3.10).
DEMO_PINS="$(grep -E '^(cryptography|boto3|botocore)==' "$REPO/requirements-demo.txt" | sort | tr '\n' ' ')"
PY39_PINS="cryptography==50.0.2 boto3==1.42.97 botocore==1.42.97"

ACM_REGION=eu-west-1

log() { printf 'matrix: %s\n' "$*"; }
die() { printf 'matrix: FAILED: %s\n' "$*" >&2; exit 1; }

# The interpreter of Python X.Y: python<X.Y> on PATH (unless it is a virtual environment's,
# or a pyenv shim for a version pyenv does not have selected), else pyenv's.
find_python() {
    local version="$1" candidate
    for candidate in "$(command -v "python$version" || true)" "$HOME"/.pyenv/versions/"$version".*/bin/"python$version"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        if "$candidate" -c "import sys; sys.exit(not (sys.version_info[:2] == tuple(map(int, '$version'.split('.'))) and sys.prefix == sys.base_prefix))" 2>/dev/null; then
            realpath "$candidate"
            return 0
        fi
    done
    return 1
}

python_missing() {
    local message="Python $1 not found (neither python$1 on PATH nor ~/.pyenv/versions/$1.*): install it, e.g. 'pyenv install $1', or 'apt-get install python$1'"
    if [[ "${CI:-}" == true ]]; then
        die "$message"
    fi
    printf 'matrix: WARNING: %s; skipping what needs it (CI=true makes this an error)\n' "$message" >&2
}

# A venv at $1 from interpreter $2 with packages $3 (words), reused when its stamp matches.
ensure_venv() {
    local dir="$1" python="$2" packages="$3" stamp
    stamp="$(printf '%s %s\n%s\n' "$python" "$("$python" -c 'import sys; print(sys.version.split()[0])')" "$packages")"
    if [[ -f "$dir/.matrix-stamp" && "$(cat "$dir/.matrix-stamp")" == "$stamp" ]]; then
        echo "venv $dir: reused ($packages)"
        return 0
    fi
    rm -rf "$dir"
    "$python" -m venv "$dir"
    # shellcheck disable=SC2086  # $packages is a list of words
    "$dir/bin/python" -m pip install --disable-pip-version-check $packages
    printf '%s\n' "$stamp" > "$dir/.matrix-stamp"
}

host_pins() { if [[ "$1" == 3.9 ]]; then echo "$PY39_PINS"; else echo "$DEMO_PINS"; fi; }

# The PLAY RECAP's changed= for localhost in the output file $1.
recap_changed() {
    local changed
    changed="$(awk '/^localhost +: ok=/ { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { sub("changed=", "", $i); print $i } }' "$1")"
    [[ -n "$changed" ]] || die "no PLAY RECAP in $1"
    echo "$changed"
}

# Whether the Python expression $2 holds for the JSON document in file $1 (as `data`).
json_true() {
    "$MAIN_VENV/bin/python" -c 'import json, sys; data = json.load(open(sys.argv[1])); sys.exit(not eval(sys.argv[2]))' "$1" "$2"
}

# Path, mode, size, mtime and SHA-256 of every file under the folders given.
file_listing() {
    local dir
    for dir in "$@"; do
        [[ -d "$dir" ]] || continue
        (cd "$dir" && find . -type f -printf '%p %m %s %T@ ' -exec sha256sum {} \; | sort)
    done
}

# --- one version (runs in its own subshell, output to its log) ---------------

STEP=""
TIMES=""
ACM_STATE=""

timed() {  # timed NAME COMMAND...: run it as step NAME, adding its duration to TIMES
    local name="$1" start=$SECONDS
    shift
    STEP="$name"
    echo "=== $name"
    "$@"
    TIMES+="$name $((SECONDS - start))s, "
}

lane_exit() {
    local rc=$?
    if [[ -n "$ACM_STATE" ]]; then
        "$MAIN_VENV/bin/python" "$REPO/tests/tools/local_acm.py" stop --state-dir "$ACM_STATE" || true
    fi
    if (( rc == 0 )); then
        echo "ok ${TIMES%, }" > "$RESULT_FILE"
    else
        echo "FAILED at ${STEP:-setup} (exit $rc); ${TIMES%, }" > "$RESULT_FILE"
    fi
}

playbook() {  # playbook OUTFILE ARGS...: ansible-playbook of this version; output kept in OUTFILE
    local outfile="$1" rc=0
    shift
    echo "+ ansible-playbook $*"
    "$VENV/bin/ansible-playbook" "$@" > "$outfile" 2>&1 || rc=$?
    cat "$outfile"
    (( rc == 0 )) || die "ansible-playbook exited $rc"
}

sanity() {
    local root="$INSTALLED/ansible_collections/clientvpn/pki" pip_version dest
    # ansible-test looks for the collection's files with git: a repository of its own.
    git -C "$root" init -q
    # Its offline pip bootstrap, named after the pip this ansible-test wants (Makefile: ansible-test-bootstrap).
    pip_version="$("$VENV/bin/python" -c 'import types; from ansible_test._internal.python_requirements import get_venv_packages; print(get_venv_packages(types.SimpleNamespace(version="'"$CONTROLLER"'"))["pip"])')"
    mkdir -p "$HOME/.ansible/test/cache"
    dest="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    if ! cmp -s "$GET_PIP_OFFLINE" "$dest"; then  # another lane may want the same file: replaced whole
        install -m 0644 "$GET_PIP_OFFLINE" "$dest.$VERSION"
        mv -f "$dest.$VERSION" "$dest"
    fi
    # ansible-test keeps its sanity venvs in ~/.ansible/test/venv/<test>/<Python version>/<hash of
    # the requirements>, shared by every version: one ansible-test per Python version at a time,
    # or two could build the same venv at once.
    (
        local waited=$SECONDS
        flock 9
        echo "ansible-test lock (Python $CONTROLLER): waited $((SECONDS - waited))s"
        cd "$root"
        "$VENV/bin/ansible-test" sanity --test import --test validate-modules --test ansible-doc --test runtime-metadata \
            --local --python "$CONTROLLER" --color no
    ) 9> "$OUT/.ansible-test-$CONTROLLER.lock"
}

smoke() {  # smoke HOST_PYTHON_VERSION
    local host="$1" work before after changed bob_serial crl
    work="$OUT/$VERSION/smoke-$host"
    rm -rf "$work"
    mkdir -p "$work"
    local -a common=(-i "localhost," -e ansible_connection=local -e "ansible_python_interpreter=$OUT/host-$host/bin/python"
                     -e "pki_dir=$work/pki" -e "stage_dir=$work/stage")
    local -a aws=(-e "aws_region=$ACM_REGION" -e "aws_endpoint_url=$ACM_URL")
    local -a mutual_auth=(clientvpn.pki.mutual_auth "${common[@]}" "${aws[@]}" -e "pki_cache_dir=$work/cache"
                          -e '{"pki_clients": ["alice", "bob"]}')

    STEP="smoke/$host: mutual_auth, first run"
    playbook "$work/first.out" "${mutual_auth[@]}"
    changed="$(recap_changed "$work/first.out")"
    (( changed > 0 )) || die "$STEP: changed=$changed, expected changed > 0"
    json_true "$work/stage/acm-arns.json" 'data["server"]["certificate_arn"].startswith("arn:aws:acm:")' \
        || die "$STEP: no server certificate ARN in $work/stage/acm-arns.json"

    STEP="smoke/$host: mutual_auth, second run"
    playbook "$work/second.out" "${mutual_auth[@]}"
    changed="$(recap_changed "$work/second.out")"
    (( changed == 0 )) || die "$STEP: changed=$changed, expected changed=0"

    STEP="smoke/$host: mutual_auth --check"
    before="$(file_listing "$work/pki" "$work/stage")"
    playbook "$work/check.out" "${mutual_auth[@]}" --check
    changed="$(recap_changed "$work/check.out")"
    (( changed == 0 )) || die "$STEP: changed=$changed, expected changed=0"
    after="$(file_listing "$work/pki" "$work/stage")"
    [[ "$before" == "$after" ]] || die "$STEP: files changed: $(diff <(echo "$before") <(echo "$after") || true)"

    STEP="smoke/$host: revoke_client bob"
    bob_serial="$(openssl x509 -in "$work/pki/issued/bob.crt" -noout -serial)"
    bob_serial="${bob_serial#serial=}"
    playbook "$work/revoke.out" clientvpn.pki.revoke_client "${common[@]}" -e '{"revoke_client_names": ["bob"]}'
    crl="$(openssl crl -in "$work/pki/crl.pem" -noout -text)"
    [[ "$(grep -c 'Serial Number:' <<< "$crl")" == 1 ]] || die "$STEP: the CRL should list one serial:"$'\n'"$crl"
    grep -q "Serial Number: $bob_serial" <<< "$crl" || die "$STEP: bob's serial $bob_serial is not in the CRL"
    [[ ! -e "$work/stage/bob.crt" && ! -e "$work/stage/bob.key" ]] || die "$STEP: bob's files are still staged"

    STEP="smoke/$host: health"
    playbook "$work/health.out" clientvpn.pki.health "${common[@]}" "${aws[@]}" -e health_acm=true \
        -e "health_report_dir=$work/health" -e "health_cache_dir=$work/cache"
    json_true "$work/health/health.json" 'data["summary"]["valid"] == 2 and data["summary"]["revoked"] == 1 and data["summary"]["critical"] == 0' \
        || die "$STEP: unexpected summary in $work/health/health.json"
}

lane() {
    VERSION="$1"
    local minor="${VERSION%.*}" host start=$SECONDS
    RESULT_FILE="$OUT/$VERSION.result"
    VENV="$OUT/venv-$VERSION"
    INSTALLED="$OUT/$VERSION/collections"
    CONTROLLER="${CONTROLLER_PYTHON[$minor]}"
    exec > "$OUT/$VERSION.log" 2>&1
    trap lane_exit EXIT
    trap 'exit 130' INT TERM
    echo "ansible-core $VERSION: controller Python $CONTROLLER, managed host Python ${HOST_PYTHONS[$minor]}"

    timed venv ensure_venv "$VENV" "$(find_python "$CONTROLLER")" "ansible-core==$VERSION $DEMO_PINS"
    # Nothing of the machine's Ansible: this version's tools first, only the installed tarball.
    export PATH="$VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$INSTALLED" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
    export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_LOCALHOST_WARNING=false
    export AWS_ACCESS_KEY_ID=matrix AWS_SECRET_ACCESS_KEY=matrix
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE

    rm -rf "${INSTALLED:?}"
    timed install "$VENV/bin/ansible-galaxy" collection install --offline -p "$INSTALLED" "$TARBALL"
    timed sanity sanity

    ACM_STATE="$OUT/$VERSION/acm"
    rm -rf "$ACM_STATE"
    ACM_URL="$("$MAIN_VENV/bin/python" "$REPO/tests/tools/local_acm.py" start --state-dir "$ACM_STATE")"
    echo "local ACM endpoint: $ACM_URL"
    for host in ${HOST_PYTHONS[$minor]}; do
        timed "smoke/$host" smoke "$host"
    done
    TIMES+="total $((SECONDS - start))s, "
}

# --- main --------------------------------------------------------------------

main() {
    local version minor host failed=() start=$SECONDS result python
    local -A hosts_needed=()
    [[ -x "$MAIN_VENV/bin/ansible-galaxy" ]] || die "no $MAIN_VENV: run 'make venv' first"
    [[ -f "$COLLECTION_SRC/galaxy.yml" ]] || die "no $COLLECTION_SRC: run 'make collection' first"
    mkdir -p "$OUT"

    local -a versions=()
    for version in $MATRIX_VERSIONS; do
        minor="${version%.*}"
        [[ -n "${CONTROLLER_PYTHON[$minor]:-}" ]] \
            || die "ansible-core $version: no controller Python known for $minor (CONTROLLER_PYTHON in $0)"
        rm -f "$OUT/$version.result" "$OUT/$version.log"
        python="$(find_python "${CONTROLLER_PYTHON[$minor]}")" || { python_missing "${CONTROLLER_PYTHON[$minor]}"; \
            echo "SKIPPED: Python ${CONTROLLER_PYTHON[$minor]} not found" > "$OUT/$version.result"; continue; }
        for host in ${HOST_PYTHONS[$minor]}; do
            hosts_needed[$host]=1
        done
        versions+=("$version")
    done

    # The managed hosts' venvs, shared by the versions; a version whose host Python is missing is skipped.
    for host in "${!hosts_needed[@]}"; do
        if python="$(find_python "$host")"; then
            log "managed host venv host-$host (Python $host)"
            ensure_venv "$OUT/host-$host" "$python" "$(host_pins "$host")" > "$OUT/host-$host.log" 2>&1 \
                || { tail -n 30 "$OUT/host-$host.log" >&2; die "managed host venv host-$host (log: $OUT/host-$host.log)"; }
        else
            python_missing "$host"
            local -a kept=()
            for version in "${versions[@]}"; do
                if [[ " ${HOST_PYTHONS[${version%.*}]} " == *" $host "* ]]; then
                    echo "SKIPPED: managed host Python $host not found" > "$OUT/$version.result"
                else
                    kept+=("$version")
                fi
            done
            versions=("${kept[@]}")
        fi
    done

    # The tarball, once, with the main venv's ansible-galaxy, from the copy `make collection` made.
    rm -f "$REPO"/.build/clientvpn-pki-*.tar.gz
    TARBALL="$("$MAIN_VENV/bin/ansible-galaxy" collection build "$COLLECTION_SRC" --output-path "$REPO/.build" --force \
        | sed -n 's/^Created collection for clientvpn\.pki at //p')"
    [[ -f "$TARBALL" ]] || die "ansible-galaxy collection build made no tarball"
    log "tarball $TARBALL; versions: ${versions[*]:-none}; $MATRIX_JOBS at a time; logs in $OUT/<version>.log"

    # Interrupted: the lanes (which ignore SIGINT, being background jobs) end after their current command,
    # stopping their ACM endpoints.
    trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 130' INT TERM
    # Newest first: it has two smoke runs, and the longest lane started first ends the matrix sooner.
    local index
    for (( index = ${#versions[@]} - 1; index >= 0; index-- )); do
        version="${versions[index]}"
        while (( $(jobs -rp | wc -l) >= MATRIX_JOBS )); do
            wait -n || true
        done
        (lane "$version") &
    done
    wait || true

    for version in $MATRIX_VERSIONS; do
        result="$(cat "$OUT/$version.result" 2>/dev/null || echo "FAILED: no result (the run stopped early)")"
        minor="${version%.*}"
        printf 'matrix: ansible-core %-8s (controller %s, host %s): %s\n' \
            "$version" "${CONTROLLER_PYTHON[$minor]}" "${HOST_PYTHONS[$minor]// /+}" "$result"
        if [[ "$result" == FAILED* ]]; then
            failed+=("$version: ${result%%;*}")
            if [[ -f "$OUT/$version.log" ]]; then
                echo "----- last 40 lines of $OUT/$version.log"
                tail -n 40 "$OUT/$version.log"
                echo "-----"
            fi
        fi
    done
    log "$(( SECONDS - start ))s in all"
    if (( ${#failed[@]} )); then
        printf 'matrix: FAILED: %s\n' "${failed[@]}" >&2
        exit 1
    fi
}

main "$@"
