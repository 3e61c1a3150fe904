#!/usr/bin/env bash
# LUKS images made by the real cryptsetup, for the guest's LUKS scenario
# (`dmch kernel setups --luks-images DIR`): NAME.img and its passphrase in
# NAME.pass. Small costs and a 2 MiB data offset keep them small and fast.
# cryptsetup formats image files without device-mapper for ciphers the
# host kernel's crypto API has (aes here).
set -euo pipefail
dir=$1
mkdir -p "$dir"
rm -f "$dir"/*.img "$dir"/*.pass
fast=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)
make() {
    local name=$1; shift
    printf '%s' "passphrase of $name" > "$dir/$name.pass"
    truncate -s 3M "$dir/$name.img"
    cryptsetup luksFormat -q --key-file "$dir/$name.pass" "$@" "$dir/$name.img"
}
make luks2-aes-xts-4096 --type luks2 -c aes-xts-plain64 -s 512 --sector-size 4096 --offset 4096 "${fast[@]}"
make luks2-aes-cbc-essiv-512 --type luks2 -c aes-cbc-essiv:sha256 -s 256 --sector-size 512 --offset 4096 "${fast[@]}"
make luks2-argon2id --type luks2 -c aes-xts-plain64 -s 256 --offset 4096 --pbkdf argon2id --pbkdf-memory 64 --pbkdf-force-iterations 4
make luks1-aes-xts --type luks1 -c aes-xts-plain64 -s 512 --hash sha256 "${fast[@]}"
ls "$dir"
