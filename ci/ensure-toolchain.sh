#!/usr/bin/env bash
# Make sure a Rust toolchain and a C compiler exist; install them on a fresh
# Debian/Ubuntu machine. Sourced by the other ci/ scripts.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
if [ ${#need_apt[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
    else
        echo "ci: missing ${need_apt[*]} and no apt-get to install them" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        # Debian's packaged rustc is too old for this crate; rustup gives a current one.
        echo "ci: installing the Rust toolchain with rustup" >&2
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi
