//! What the first bytes of a device hold: LUKS, a file system, swap, a
//! partition table. Asked before anything is overwritten (`luks format`
//! refuses a device with a signature unless forced) and of decrypted
//! sectors (did the old key give data, or noise?).

/// How many bytes [`identify`] looks at (btrfs keeps its magic past 64 KiB).
pub const PROBE_LEN: usize = 72 * 1024;

fn at(b: &[u8], offset: usize, magic: &[u8]) -> bool {
    b.get(offset..offset + magic.len()) == Some(magic)
}

/// The signature the start of a device (at least the first [`PROBE_LEN`]
/// bytes, or all of it) carries, by name.
pub fn identify(b: &[u8]) -> Option<&'static str> {
    if at(b, 0, b"LUKS\xba\xbe") {
        return Some("LUKS");
    }
    if at(b, 0, b"XFSB") {
        return Some("xfs");
    }
    if at(b, 0, b"hsqs") {
        return Some("squashfs");
    }
    if at(b, 1080, &[0x53, 0xef]) {
        return Some("ext2/3/4");
    }
    if at(b, 1024, &[0x10, 0x20, 0xf5, 0xf2]) {
        return Some("f2fs");
    }
    if at(b, 65600, b"_BHRfS_M") {
        return Some("btrfs");
    }
    if at(b, 3, b"NTFS    ") {
        return Some("ntfs");
    }
    if at(b, 4086, b"SWAPSPACE2") || at(b, 4086, b"SWAP-SPACE") {
        return Some("swap");
    }
    if at(b, 512, b"LABELONE") && at(b, 536, b"LVM2 001") {
        return Some("LVM2 physical volume");
    }
    if at(b, 32769, b"CD001") {
        return Some("iso9660");
    }
    if at(b, 510, &[0x55, 0xaa]) {
        if at(b, 54, b"FAT1") || at(b, 82, b"FAT32") {
            return Some("vfat");
        }
        if at(b, 512, b"EFI PART") {
            return Some("GPT partition table");
        }
        return Some("DOS partition table");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, magic: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_LEN];
        b[offset..offset + magic.len()].copy_from_slice(magic);
        b
    }

    #[test]
    fn each_signature_is_named_and_zeros_are_nothing() {
        assert_eq!(identify(&vec![0; PROBE_LEN]), None);
        assert_eq!(identify(&[]), None);
        for (offset, magic, name) in [
            (0, &b"LUKS\xba\xbe"[..], "LUKS"),
            (1080, &[0x53, 0xef][..], "ext2/3/4"),
            (0, b"XFSB", "xfs"),
            (65600, b"_BHRfS_M", "btrfs"),
            (3, b"NTFS    ", "ntfs"),
            (4086, b"SWAPSPACE2", "swap"),
            (32769, b"CD001", "iso9660"),
            (510, &[0x55, 0xaa][..], "DOS partition table"),
        ] {
            assert_eq!(identify(&with(offset, magic)), Some(name));
        }
        let mut fat = with(510, &[0x55, 0xaa]);
        fat[54..58].copy_from_slice(b"FAT1");
        assert_eq!(identify(&fat), Some("vfat"));
        let mut gpt = with(510, &[0x55, 0xaa]);
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(identify(&gpt), Some("GPT partition table"));
    }
}
