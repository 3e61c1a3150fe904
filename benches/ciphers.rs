//! Sector throughput of the reference engine per cipher spec (single thread:
//! 64 KiB, below the engine's parallel threshold). Compare ratios within one
//! run; absolute figures on shared machines are noise.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::spec::CipherSpec;
use std::hint::black_box;

const SPECS: &[(&str, usize)] = &[
    ("aes-xts-plain64", 64),
    ("aes-cbc-essiv:sha256", 32),
    ("serpent-xts-plain64", 64),
    ("twofish-xts-plain64", 64),
    ("camellia-xts-plain64", 64),
    ("cast6-cbc-plain64", 32),
    ("blowfish-cbc-plain64", 32),
    ("cast5-cbc-plain64", 16),
    ("des3_ede-cbc-plain64", 24),
];

fn sectors(c: &mut Criterion) {
    let mut buf = vec![0x5au8; 64 * 1024];
    for &(spec, key_len) in SPECS {
        let mut g = c.benchmark_group(spec);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.sample_size(20);
        let key = Key::from_bytes(&vec![0x42; key_len]);
        let e = SectorCrypt::new(
            &CipherSpec::parse(spec).unwrap(),
            &key,
            Geometry {
                sector_size: 4096,
                ..Geometry::default()
            },
        )
        .unwrap();
        g.bench_function("encrypt 4096-byte sectors", |b| {
            b.iter(|| e.encrypt(0, black_box(&mut buf)).unwrap())
        });
        g.bench_function("decrypt 4096-byte sectors", |b| {
            b.iter(|| e.decrypt(0, black_box(&mut buf)).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, sectors);
criterion_main!(benches);
