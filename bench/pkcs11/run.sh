#!/usr/bin/env bash
# Builds the release edgekit token and the benchmark (no sanitizers), then prints the table for
# docs/benchmarks.md. Usage: bench/pkcs11/run.sh [seconds per subject, default 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps pkcs11
cmake --preset release >/dev/null
cmake --build --preset release --target edgekit_pkcs11_token >/dev/null
cmake -S bench/pkcs11 -B build/bench-pkcs11 -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench-pkcs11 >/dev/null
softhsm=$(ls /usr/lib/*/softhsm/libsofthsm2.so /usr/lib/softhsm/libsofthsm2.so 2>/dev/null | head -1)
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), OpenSSL $(openssl version | cut -d' ' -f2)"
build/bench-pkcs11/bench_pkcs11_ecdsa --seconds "${1:-5}" \
  "edgekit token=$PWD/build/release/libs/pkcs11/libedgekit-pkcs11.so" "softhsm2=$softhsm"
