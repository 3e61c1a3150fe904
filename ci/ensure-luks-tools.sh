#!/usr/bin/env bash
# The real client the LUKS tests check dmch against: cryptsetup (Debian's
# cryptsetup-bin). Sourced by ci/test.sh. Installing it may leave a
# /dev/mapper/control node on a host without device-mapper; dmch asks the
# kernel, not the node (machine detection).
if ! command -v cryptsetup >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cryptsetup-bin >/dev/null
    else
        echo "ci: cryptsetup is missing and there is no apt-get; the LUKS tests will say SKIPPED" >&2
    fi
fi
