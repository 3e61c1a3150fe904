//! Throughput of the reference engine, for `dmch bench`: the default list
//! of specs, one measurement, the rows of a run and their SVG chart.

use crate::cipher::Direction;
use crate::engine::SectorCrypt;
use std::time::{Duration, Instant};

/// (spec, key bits) as cryptsetup benchmark lists them, plus our others.
pub const DEFAULT: &[(&str, usize)] = &[
    ("aes-cbc-essiv:sha256", 128),
    ("aes-cbc-essiv:sha256", 256),
    ("aes-cbc-plain64", 256),
    ("aes-xts-plain64", 256),
    ("aes-xts-plain64", 512),
    ("serpent-cbc-plain64", 256),
    ("serpent-xts-plain64", 512),
    ("twofish-cbc-plain64", 256),
    ("twofish-xts-plain64", 512),
    ("camellia-xts-plain64", 512),
    ("cast6-cbc-plain64", 256),
    ("cast5-cbc-plain64", 128),
    ("blowfish-cbc-plain64", 256),
    ("des-cbc-plain64", 64),
    ("des3_ede-cbc-plain64", 192),
    ("xchacha12,aes-adiantum-plain64", 256),
    ("xchacha20,aes-adiantum-plain64", 256),
];

/// One spec's figures.
pub struct Row {
    /// The cipher spec.
    pub spec: String,
    /// Key size in bits.
    pub bits: usize,
    /// Reference engine MiB/s.
    pub enc: f64,
    /// Reference engine MiB/s, decryption.
    pub dec: f64,
}

/// MiB/s of `e` over `buf` (whole sectors) for about `secs` seconds, at
/// least one pass.
pub fn measure(e: &SectorCrypt, buf: &mut [u8], dir: Direction, secs: f64) -> crate::Result<f64> {
    let until = Duration::from_secs_f64(secs);
    // Read the clock once per 256 KiB or so: per 4 KiB call it cost a few
    // percent of an AES-NI figure.
    let calls = (256 << 10) / buf.len().max(1);
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < until || bytes == 0 {
        for _ in 0..calls.max(1) {
            e.crypt(0, buf, dir)?;
            bytes += buf.len() as u64;
        }
    }
    Ok(bytes as f64 / start.elapsed().as_secs_f64() / (1 << 20) as f64)
}

/// A bar chart of `rows`.
pub fn svg(rows: &[Row], title: &str) -> String {
    let max = rows.iter().map(|r| r.enc.max(r.dec)).fold(1.0, f64::max);
    let (w, label_w, bar_h) = (900.0, 330.0, 12.0);
    let per = 32.0;
    let h = 40.0 + rows.len() as f64 * per;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\" font-size=\"14\">{title}</text>\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 34.0 + i as f64 * per;
        let scale = (w - label_w - 90.0) / max;
        s.push_str(&format!(
            "<text x=\"10\" y=\"{:.0}\">{} ({} bits)</text>\n",
            y + 16.0,
            r.spec,
            r.bits
        ));
        let bars = [(r.enc, "#3b7dd8", "enc"), (r.dec, "#e08a1e", "dec")];
        for (j, (v, color, name)) in bars.iter().enumerate() {
            let by = y + j as f64 * (bar_h + 2.0);
            s.push_str(&format!(
                "<rect x=\"{label_w}\" y=\"{by:.0}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.0}\">{name} {v:.0} MiB/s</text>\n",
                v * scale,
                label_w + v * scale + 4.0,
                by + 10.0
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}
