//! The kernel crypto API from userspace (AF_ALG skcipher sockets): the
//! cipher dm-crypt would use, alone, one request per sector with its own
//! IV, for `dmch bench --kernel` to show cipher cost beside dm-crypt's.

// socket/bind/setsockopt/accept/sendmsg with control messages.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A keyed skcipher transform and one operation socket on it.
pub struct Skcipher {
    _tfm: OwnedFd,
    op: OwnedFd,
    ivlen: usize,
}

impl Skcipher {
    /// Bind `name` (a crypto API name such as `xts(aes)`) with `key`; its
    /// IVs are `ivlen` bytes.
    pub fn new(name: &str, key: &[u8], ivlen: usize) -> io::Result<Skcipher> {
        // SAFETY: plain socket(2); the fd is owned at once.
        let tfm = unsafe {
            OwnedFd::from_raw_fd(check(libc::socket(
                libc::AF_ALG,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
            ))?)
        };
        // SAFETY: sockaddr_alg is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_alg = unsafe { std::mem::zeroed() };
        sa.salg_family = libc::AF_ALG as u16;
        let ty = b"skcipher";
        for (d, s) in sa.salg_type.iter_mut().zip(ty) {
            *d = *s;
        }
        if name.len() >= sa.salg_name.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
        }
        for (d, s) in sa.salg_name.iter_mut().zip(name.as_bytes()) {
            *d = *s;
        }
        // SAFETY: bind with a filled sockaddr_alg of its own size.
        check(unsafe {
            libc::bind(
                tfm.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_alg>() as u32,
            )
        })?;
        // SAFETY: the key buffer is valid for its length.
        check(unsafe {
            libc::setsockopt(
                tfm.as_raw_fd(),
                libc::SOL_ALG,
                libc::ALG_SET_KEY,
                key.as_ptr().cast(),
                key.len() as u32,
            )
        })?;
        // SAFETY: accept on the bound socket gives the operation fd.
        let op = unsafe {
            OwnedFd::from_raw_fd(check(libc::accept4(
                tfm.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            ))?)
        };
        Ok(Skcipher {
            _tfm: tfm,
            op,
            ivlen,
        })
    }

    /// Encrypt or decrypt `data` into `out` (same length) with `iv`.
    pub fn crypt(&self, encrypt: bool, iv: &[u8], data: &[u8], out: &mut [u8]) -> io::Result<()> {
        if iv.len() != self.ivlen || out.len() != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "IV or output of the wrong length",
            ));
        }
        let op: u32 = if encrypt {
            libc::ALG_OP_ENCRYPT as u32
        } else {
            libc::ALG_OP_DECRYPT as u32
        };
        // Room for two control messages: the operation and the IV.
        let op_len = std::mem::size_of::<u32>() as u32;
        let iv_len = (4 + self.ivlen) as u32;
        // SAFETY: CMSG_SPACE is arithmetic.
        let space = unsafe { libc::CMSG_SPACE(op_len) + libc::CMSG_SPACE(iv_len) } as usize;
        let mut ctrl = vec![0u64; space.div_ceil(8)];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: data.len(),
        };
        // SAFETY: msghdr is plain data; zeroed is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the CMSG_* walk stays inside `ctrl`, sized by CMSG_SPACE
        // for exactly these two messages.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_ALG;
            (*c).cmsg_type = libc::ALG_SET_OP;
            (*c).cmsg_len = libc::CMSG_LEN(op_len) as usize;
            std::ptr::copy_nonoverlapping(op.to_ne_bytes().as_ptr(), libc::CMSG_DATA(c), 4);
            let c = libc::CMSG_NXTHDR(&msg, c);
            (*c).cmsg_level = libc::SOL_ALG;
            (*c).cmsg_type = libc::ALG_SET_IV;
            (*c).cmsg_len = libc::CMSG_LEN(iv_len) as usize;
            let d = libc::CMSG_DATA(c);
            std::ptr::copy_nonoverlapping((self.ivlen as u32).to_ne_bytes().as_ptr(), d, 4);
            std::ptr::copy_nonoverlapping(iv.as_ptr(), d.add(4), self.ivlen);
        }
        // SAFETY: msg points at live buffers for the call's duration.
        let sent = unsafe { libc::sendmsg(self.op.as_raw_fd(), &msg, 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if sent as usize != data.len() {
            return Err(io::Error::other("AF_ALG took part of the request"));
        }
        let mut got = 0;
        while got < out.len() {
            // SAFETY: reading into the rest of `out`.
            let n = unsafe {
                libc::read(
                    self.op.as_raw_fd(),
                    out[got..].as_mut_ptr().cast(),
                    out.len() - got,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Err(io::Error::other("AF_ALG returned nothing"));
            }
            got += n as usize;
        }
        Ok(())
    }
}

/// MiB/s of `name` with `key`, one `request`-byte call per sector with
/// the sector number as a little-endian IV (what plain64 gives), for about
/// `secs` seconds each way: (encrypt, decrypt).
pub fn measure(
    name: &str,
    key: &[u8],
    ivlen: usize,
    request: usize,
    secs: f64,
) -> io::Result<(f64, f64)> {
    let c = Skcipher::new(name, key, ivlen)?;
    let data: Vec<u8> = (0..request).map(|i| (i * 7) as u8).collect();
    let mut out = vec![0u8; request];
    let mut iv = vec![0u8; ivlen];
    let mut run = |encrypt: bool| -> io::Result<f64> {
        let until = Duration::from_secs_f64(secs);
        let start = Instant::now();
        let mut n = 0u64;
        while n == 0 || start.elapsed() < until {
            let le = n.to_le_bytes();
            let k = le.len().min(ivlen);
            iv[..k].copy_from_slice(&le[..k]);
            c.crypt(encrypt, &iv, &data, &mut out)?;
            n += 1;
        }
        Ok((n * request as u64) as f64 / start.elapsed().as_secs_f64() / (1 << 20) as f64)
    };
    Ok((run(true)?, run(false)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::Direction;
    use crate::engine::{Geometry, SectorCrypt};
    use crate::key::Key;
    use crate::spec::CipherSpec;

    /// The kernel's xts(aes) through AF_ALG, with plain64 IVs, is what the
    /// reference writes for aes-xts-plain64: the socket plumbing is right.
    #[test]
    fn kernel_xts_aes_matches_the_reference() {
        let key: Vec<u8> = (0..64u8).collect();
        let c = match Skcipher::new("xts(aes)", &key, 16) {
            Ok(c) => c,
            Err(e) => {
                println!("SKIPPED AF_ALG xts(aes): the host kernel refuses it: {e}");
                return;
            }
        };
        let spec = CipherSpec::parse("aes-xts-plain64").unwrap();
        let e = SectorCrypt::new(&spec, &Key::from_bytes(&key), Geometry::default()).unwrap();
        for sector in [0u64, 1, 7, 1 << 33] {
            let plain: Vec<u8> = (0..512).map(|i| (i as u64 ^ sector) as u8).collect();
            let mut want = plain.clone();
            e.crypt(sector, &mut want, Direction::Encrypt).unwrap();
            let mut iv = [0u8; 16];
            iv[..8].copy_from_slice(&sector.to_le_bytes());
            let mut got = vec![0u8; 512];
            c.crypt(true, &iv, &plain, &mut got).unwrap();
            assert_eq!(got, want, "sector {sector}");
            let mut back = vec![0u8; 512];
            c.crypt(false, &iv, &got, &mut back).unwrap();
            assert_eq!(back, plain);
        }
        assert!(c.crypt(true, &[0; 8], &[0; 512], &mut [0; 512]).is_err());
        let (enc, dec) = measure("xts(aes)", &key, 16, 4096, 0.01).unwrap();
        assert!(enc > 0.0 && dec > 0.0);
    }

    #[test]
    fn an_unknown_algorithm_is_an_error_not_a_panic() {
        match Skcipher::new("xts(nosuchcipher)", &[0; 32], 16) {
            Ok(_) => panic!("the kernel bound an unknown algorithm"),
            Err(e) => println!("refused as expected: {e}"),
        }
    }
}
