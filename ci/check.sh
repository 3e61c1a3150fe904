#!/usr/bin/env bash
# The main job: build dmch and verify every shipped vector (`dmch check`).
# Extra arguments go to `dmch check` (e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/ensure-toolchain.sh
cargo build --release --quiet --bin dmch
exec target/release/dmch check "$@"
