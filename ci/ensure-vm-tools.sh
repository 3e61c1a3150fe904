#!/usr/bin/env bash
# What the QEMU backend needs: qemu-system-x86, kmod (depmod), xz, dpkg-deb,
# and current apt lists to find Debian's kernels. Sourced by other scripts.
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v depmod >/dev/null 2>&1 || need+=(kmod)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#need[@]} -gt 0 ] || ! ls /var/lib/apt/lists/ 2>/dev/null | grep -qi packages; then
    $SUDO apt-get update -qq
fi
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
