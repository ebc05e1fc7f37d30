#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (run as root or with sudo):
#   scripts/bootstrap.sh run    install what is needed, build, run vigil-milter in the foreground
#   scripts/bootstrap.sh test   install what is needed, build, run the whole test suite with ctest
# Both are idempotent; a second run only rebuilds what changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-}
case "$mode" in run|test|deps|build) ;; *) echo "usage: $0 run|test|deps|build" >&2; exit 2 ;; esac

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(
  # build
  build-essential cmake pkg-config
  libmilter-dev libssl-dev libunbound-dev libldns-dev libpsl-dev libidn2-dev libfmt-dev libtomlplusplus-dev
  nettle-dev libevent-dev catch2 publicsuffix dns-root-data
  libsqlite3-dev zlib1g-dev   # DMARC aggregate reports: the store and the gzip file
  libxml2-dev libicu-dev      # the MIME layer: HTML parser, charset converters
  libgmime-3.0-dev libgumbo-dev   # only the MIME benchmark's comparisons (test/bench/mime_bench)
  liblmdb-dev lmdb-utils      # embedded state (Bayes tokens); mdb_stat to inspect a store
  # tests: a real MTA, SMTP client, DNS tools, Python for the harnesses
  postfix swaks python3 python3-pytest python3-yaml python3-spf python3-dkim python3-nacl python3-authres opendkim opendkim-tools ldnsutils dnsutils procps iproute2
  libxml2-utils   # xmllint validates DMARC reports against the RFC 7489 schema
  valgrind        # the instruction-count guard (test/bench/instructions_check.py)
  clang llvm libclang-rt-14-dev openssl   # the ASan+UBSan build with libFuzzer; llvm-symbolizer
  clang-format    # the tree stays formatted (test/tools/check_format.py)
)

install_deps() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    # Postfix must not ask questions or start a system instance that owns port 25.
    echo "postfix postfix/main_mailer_type select Local only" | as_root debconf-set-selections
    echo "postfix postfix/mailname string localhost.localdomain" | as_root debconf-set-selections
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  # The daemon drops to this unprivileged user after opening its socket.
  if ! getent passwd vigil >/dev/null; then
    as_root useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vigil
  fi
}

build() {
  local dir=$1; shift
  cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

install_deps
case "$mode" in
  deps) ;;
  build) build "$here/build" ;;
  run)
    build "$here/build"
    exec "$here/build/milter/vigil-milter" -f -c "$here/conf/vigil.conf"
    ;;
  test)
    build "$here/build" -DVIGIL_WERROR=ON
    (cd "$here/build" && ctest --output-on-failure --timeout 600 -j"$(nproc)" -LE soak)
    # Once more under ASan+UBSan: one clang build that also has the fuzz targets, so the same ctest
    # run covers the whole suite and `-L fuzz` (10 s per target). The soak is a separate command.
    build "$here/build-sanitize" -DVIGIL_WERROR=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DVIGIL_FUZZ=ON -DVIGIL_FUZZ_SECONDS=10
    cd "$here/build-sanitize"
    ctest --output-on-failure --timeout 600 -j"$(nproc)" -LE soak
    ;;
esac
