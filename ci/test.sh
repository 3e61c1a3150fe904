#!/usr/bin/env bash
# The test suite: formatting, lints, unit/property/integration tests, the
# main job, then the kernel check in QEMU guests. This is what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/ensure-toolchain.sh
. ci/ensure-luks-tools.sh
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy (default features, then with the test-only fault hook)"
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --all-targets --quiet --features test-fault -- -D warnings
echo "== cargo test (with the test-only fault hook: broken engines must be caught)"
# --show-output: tests that cannot run here print why (SKIPPED: ...).
cargo test --release --features test-fault -- --show-output 2>&1
echo "== benches build"
# The same features as the tests: target/release/dmch keeps the fault hook
# that ci/kernel-check.sh needs.
cargo bench --no-run --quiet --features test-fault
echo "== dmch check"
target/release/dmch check
bash ci/kernel-check.sh
