#!/usr/bin/env bash
# Installs what the test suite's real servers need, on a fresh Debian machine:
# redis-server + redis-cli (standalone and Cluster), Java 17 + Maven (the Kafka
# broker, whose jars scripts/kafka/pom.xml fetches from Maven Central on first use),
# Chromium (the dashboard's headless browser test), Schemathesis (PyPI, in a venv),
# the Python and Go clients' toolchains (a venv, protoc plugins, Go modules),
# libCacheSim's Python bindings (PyPI, in a venv; the eviction reference test).
# Prints what it does; fails with the command to run by hand if it cannot install.
set -euo pipefail

need_pkgs=()
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_pkgs+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_pkgs+=(redis-tools)
command -v java >/dev/null 2>&1 || need_pkgs+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || need_pkgs+=(maven)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# Debian's Chromium for the dashboard test (driven by playwright-core; no browser downloads).
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)

if [ "${#need_pkgs[@]}" -gt 0 ]; then
  # shellcheck disable=SC2207
  pkgs=($(printf '%s\n' "${need_pkgs[@]}" | sort -u))
  echo "strata: installing test prerequisites with apt-get: ${pkgs[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    || ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"; then
    echo "strata: could not install ${pkgs[*]}. Run: sudo apt-get update && sudo apt-get install -y ${pkgs[*]}" >&2
    exit 1
  fi
fi

# ensure_venv NAME CHECK SPEC: a venv .cache/NAME-venv (gitignored) in which the shell test CHECK
# (run with $venv set) passes, else one made and filled with `pip install SPEC`.
ensure_venv() {
  local name="$1" check="$2" spec="$3"
  venv="$(cd "$(dirname "$0")/.." && pwd)/.cache/$name-venv"
  eval "$check" && return 0
  command -v python3 >/dev/null 2>&1 || { echo "strata: python3 is required for $name. Run: sudo apt-get install -y python3 python3-venv" >&2; exit 1; }
  echo "strata: installing $name from PyPI into $venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "$spec"; }; then
    rm -rf "$venv"
    echo "strata: could not install $name. Run: sudo apt-get install -y python3-venv && python3 -m venv $venv && $venv/bin/pip install '$spec'" >&2
    exit 1
  fi
}

# Schemathesis (PyPI) for the OpenAPI fuzz test.
ensure_venv schemathesis '[ -x "$venv/bin/schemathesis" ]' 'schemathesis>=4,<5'
# libCacheSim's Python bindings (PyPI `libcachesim`, pinned) for the eviction reference test.
ensure_venv libcachesim '"$venv/bin/python" -c "import libcachesim" >/dev/null 2>&1' 'libcachesim==0.3.5'

# The Python and Go clients (clients/): the pinned protoc plugins `npm run proto:gen`
# and `proto:check` use, and the Python client's test venv (.cache/clients-venv:
# connectrpc, pytest), by scripts/proto-plugins.sh; the Go client's modules via the Go
# module proxy. `go` itself must be on the machine.
command -v go >/dev/null 2>&1 || { echo "strata: go (>= 1.26, as clients/go/go.mod says) is required for the Go client. Run: sudo apt-get install -y golang-go" >&2; exit 1; }
bash "$(dirname "$0")/proto-plugins.sh"
# Toxiproxy (the network between regions in the rig and its tests), built from its Go module;
# keep the version in step with TOXIPROXY_VERSION in scripts/services/toxiproxy.ts.
toxiproxy_version=v2.5.0
toxiproxy_bin="$(cd "$(dirname "$0")/.." && pwd)/.cache/go-bin/toxiproxy-$toxiproxy_version"
if [ ! -x "$toxiproxy_bin/server" ]; then
  echo "strata: go install github.com/Shopify/toxiproxy/v2/cmd/server@$toxiproxy_version into $toxiproxy_bin"
  mkdir -p "$toxiproxy_bin"
  if ! GOBIN="$toxiproxy_bin" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$toxiproxy_version"; then
    echo "strata: could not build toxiproxy. Run: GOBIN=$toxiproxy_bin go install github.com/Shopify/toxiproxy/v2/cmd/server@$toxiproxy_version" >&2
    exit 1
  fi
fi
if ! (cd "$(dirname "$0")/../clients/go" && go mod download); then
  echo "strata: could not download the Go client's modules. Run: cd clients/go && go mod download" >&2
  exit 1
fi

# Redis Sentinel (scripts/services/redis-sentinel.ts) runs as `redis-server <conf> --sentinel`:
# Debian's redis-server package ships the same binary the redis-sentinel package links to.
redis_help=$(redis-server --help 2>&1 || true)
[[ $redis_help == *--sentinel* ]] || { echo "strata: this redis-server cannot run as a sentinel (--sentinel); install Debian's redis-server >= 5" >&2; exit 1; }

node_version=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_version" -lt 22 ]; then
  echo "strata: npm scripts run on Node $node_version; expected the pinned Node 24 from node_modules/.bin (run 'npm install' first)" >&2
  exit 1
fi
echo "strata: prerequisites ok (node $(node -v), $(redis-server --version | cut -d' ' -f3), java $(java -version 2>&1 | head -1 | cut -d'"' -f2), $(mvn -B -v 2>/dev/null | head -1 | cut -d' ' -f1-3))"

# systemd-analyze checks the deployment's unit files (test/integration/deploy.test.ts).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "strata: installing systemd (for systemd-analyze) with apt-get"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; then
    echo "strata: could not install systemd. Run: sudo apt-get update && sudo apt-get install -y systemd" >&2
    exit 1
  fi
fi
