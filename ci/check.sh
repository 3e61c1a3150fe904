#!/usr/bin/env bash
# The main job: build dmch and verify every shipped vector (`dmch check`),
# with the real kernel as oracle: on the host when it has device-mapper,
# otherwise in a QEMU guest booting Debian's 6.12 kernel (set
# DMCH_CHECK_KERNEL to another source, or to "none" to skip it).
# Extra arguments go to `dmch check` (e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/ensure-toolchain.sh
cargo build --release --quiet --bin dmch
kernel="${DMCH_CHECK_KERNEL:-debian:6.12}"
if [ "$kernel" = none ]; then
    exec target/release/dmch check --no-kernel "$@"
elif target/release/dmch doctor --host-dm >&2; then
    # Asked of the kernel (DM_VERSION, crypt target), not of /dev/mapper/control,
    # which packages leave behind on kernels without device-mapper.
    exec target/release/dmch check "$@"
else
    . ci/ensure-vm-tools.sh
    exec target/release/dmch check --kernel "$kernel" "$@"
fi
