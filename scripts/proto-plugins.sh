#!/usr/bin/env bash
# Installs the local protoc plugins buf.gen.yaml uses, pinned, into .cache/
# (gitignored): protoc-gen-py and protoc-gen-connectrpc from PyPI into
# .cache/clients-venv (the Python client's test venv too), protoc-gen-go and
# protoc-gen-connect-go with `go install` into .cache/go-bin. Idempotent: a
# plugin already at its pinned version is left alone. Fails with the command to
# run by hand when a tool is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.cache/clients-venv"
gobin="$root/.cache/go-bin"
py_pkgs=('connectrpc==0.13.0' 'protoc-gen-connectrpc==0.13.0' 'protoc-gen-py==0.7.0' 'pytest>=8,<10')
go_protobuf=v1.36.12
go_connect=v1.21.1

# A stamp named after the pinned list: changing a pin reinstalls.
py_stamp="$venv/.strata-$(printf '%s\n' "${py_pkgs[@]}" | sha256sum | cut -c1-12)"
if [ ! -f "$py_stamp" ]; then
  command -v python3 >/dev/null 2>&1 || { echo "strata: python3 is required for the Python client. Run: sudo apt-get install -y python3 python3-venv" >&2; exit 1; }
  echo "strata: installing ${py_pkgs[*]} from PyPI into $venv"
  if ! { { [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"; } && "$venv/bin/pip" install -q "${py_pkgs[@]}"; }; then
    echo "strata: could not set up $venv. Run: sudo apt-get install -y python3-venv && python3 -m venv $venv && $venv/bin/pip install ${py_pkgs[*]}" >&2
    exit 1
  fi
  touch "$py_stamp"
fi

command -v go >/dev/null 2>&1 || { echo "strata: go is required for the Go client. Run: sudo apt-get install -y golang-go (Go >= 1.26)" >&2; exit 1; }
stamp="$gobin/.strata-$go_protobuf-$go_connect"
if [ ! -f "$stamp" ]; then
  echo "strata: go install protoc-gen-go@$go_protobuf protoc-gen-connect-go@$go_connect into $gobin"
  mkdir -p "$gobin"
  if ! GOBIN="$gobin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$go_protobuf" \
    || ! GOBIN="$gobin" go install "connectrpc.com/connect/cmd/protoc-gen-connect-go@$go_connect"; then
    echo "strata: could not install the Go plugins. Run: GOBIN=$gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@$go_protobuf connectrpc.com/connect/cmd/protoc-gen-connect-go@$go_connect" >&2
    exit 1
  fi
  touch "$stamp"
fi
