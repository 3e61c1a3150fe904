#!/usr/bin/env bash
# The real kernel as oracle in QEMU guests (the host here has no
# device-mapper): the full matrix on Debian's 5.10, 6.1 and 6.12 kernels,
# then proof that a deliberately broken reference is caught.
set -euo pipefail
cd "$(dirname "$0")/.."

. ci/ensure-vm-tools.sh

dmch=target/release/dmch
mkdir -p target/kernel
echo "== kernel check: debian 5.10, 6.1, 6.12 in QEMU"
$dmch kernel check --backend vm --kernel debian:5.10 --kernel debian:6.1 --kernel debian:6.12 \
    --junit target/kernel/junit.xml

echo "== real setups (create/remove/reload/resize/status, swap, failure paths) in QEMU"
$dmch kernel setups --kernel debian:6.1 --kernel debian:6.12

echo "== kernel fuzz: seed 1, 2000 generated cases (and tables to refuse) on 6.1 and 6.12"
$dmch kernel fuzz --backend vm --kernel debian:6.1 --kernel debian:6.12 --seed 1 --cases 2000 \
    --junit target/kernel/fuzz-junit.xml

echo "== the fuzzer must catch a deliberately broken reference too"
if DMCH_TEST_FAULT=byteswap-iv $dmch kernel fuzz --backend vm --kernel debian:6.12 --seed 1 --cases 200 \
        > target/kernel/fuzz-fault.log 2>&1; then
    echo "the kernel fuzz passed a broken reference" >&2
    exit 1
fi
echo "broken reference caught by the fuzzer: $(grep -c '  FAIL ' target/kernel/fuzz-fault.log) failing cases of 200"

echo "== a deliberately broken reference (plain64 written big-endian) must fail"
if DMCH_TEST_FAULT=byteswap-iv $dmch kernel check --backend vm --kernel debian:6.12 --shard 1/8 \
        > target/kernel/fault.log 2>&1; then
    echo "the kernel check passed a broken reference" >&2
    exit 1
fi
grep -m 3 "ciphertext differs from sector" target/kernel/fault.log
echo "broken reference caught: $(grep -c '  FAIL ' target/kernel/fault.log) failing cases"

leftover=$(losetup -a 2>/dev/null || true)
if [ -n "$leftover" ]; then
    echo "loop devices left attached: $leftover" >&2
    exit 1
fi
