//! Finds short gate circuits for Serpent's S-boxes and their inverses and
//! writes them as Rust (src/cipher/serpent/circuits.rs).
//!
//! Build and run (about five minutes on two cores):
//!     rustc -O --edition 2021 -o /tmp/serpent-circuits tools/serpent-circuits.rs
//!     /tmp/serpent-circuits > src/cipher/serpent/circuits.rs && cargo fmt
//!
//! Gates are the four two-operand instructions SSE2 and AVX2 have: and,
//! or, xor and and-not. None maps (0, 0) to 1, so a circuit computes
//! C(z) = S(z ^ a) ^ S(a) for an input mask `a` of our choosing: the
//! cipher folds both masks into its round keys (Serpent's linear transform
//! is linear, so an output mask passes through it as a constant). The
//! search is a beam search over sets of computed truth tables (16-bit, one
//! bit per S-box input), scored by how many targets are already computed
//! or one gate away; every `a` and several seeds are tried and the
//! shortest circuit kept. The generated file is checked against the S-box
//! tables by the cipher's tests, not trusted.

use std::collections::HashSet;

include!("../src/cipher/serpent/sbox.rs");

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Op {
    And,
    Or,
    Xor,
    /// !a & b
    AndNot,
}

impl Op {
    fn eval(self, a: u16, b: u16) -> u16 {
        match self {
            Op::And => a & b,
            Op::Or => a | b,
            Op::Xor => a ^ b,
            Op::AndNot => !a & b,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Op::And => "and",
            Op::Or => "or",
            Op::Xor => "xor",
            Op::AndNot => "andnot",
        }
    }
}

#[derive(Clone)]
struct State {
    nodes: Vec<u16>,
    gates: Vec<(Op, usize, usize)>,
}

/// Inputs as truth tables over z = 0..16: bit i of z.
const INPUTS: [u16; 4] = [0xAAAA, 0xCCCC, 0xF0F0, 0xFF00];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Whether `t` is one gate away from `nodes` (`has` answers membership).
fn one_away(t: u16, nodes: &[u16], has: &dyn Fn(u16) -> bool) -> bool {
    let mut sup = [0u16; 64];
    let mut ns = 0;
    let mut sub = [0u16; 64];
    let mut nb = 0;
    let mut dis = [0u16; 64];
    let mut nd = 0;
    for &p in nodes {
        if has(t ^ p) {
            return true;
        }
        if p & t == t {
            sup[ns] = p;
            ns += 1;
        }
        if p & !t == 0 {
            sub[nb] = p;
            nb += 1;
        }
        if p & t == 0 {
            dis[nd] = p;
            nd += 1;
        }
    }
    for i in 0..ns {
        for j in i + 1..ns {
            if sup[i] & sup[j] == t {
                return true;
            }
        }
        for &p in &dis[..nd] {
            if sup[i] & !p == t {
                return true;
            }
        }
    }
    for i in 0..nb {
        for j in i + 1..nb {
            if sub[i] | sub[j] == t {
                return true;
            }
        }
    }
    false
}

fn score(nodes: &[u16], extra: u16, targets: &[u16; 4]) -> u32 {
    let has = |v: u16| v == extra || nodes.contains(&v);
    let mut all = [0u16; 64];
    all[..nodes.len()].copy_from_slice(nodes);
    all[nodes.len()] = extra;
    let all = &all[..=nodes.len()];
    let mut s = 0;
    for &t in targets {
        if has(t) {
            continue;
        }
        s += if one_away(t, all, &has) { 2 } else { 5 };
    }
    s
}

fn done(nodes: &[u16], targets: &[u16; 4]) -> bool {
    targets.iter().all(|t| nodes.contains(t))
}

/// A hash of the node set, order-free (sum and xor of mixed values).
fn set_key(nodes: &[u16], extra: u16) -> u64 {
    let mix = |v: u16| {
        let mut h = (v as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
        h.wrapping_mul(0xBF58_476D_1CE4_E5B9)
    };
    let mut a = mix(extra);
    let mut b = a.rotate_left(17);
    for &v in nodes {
        let m = mix(v);
        a = a.wrapping_add(m);
        b ^= m.rotate_left(17);
    }
    a ^ b.wrapping_mul(3)
}

fn beam(targets: &[u16; 4], width: usize, seed: u64, limit: usize) -> Option<State> {
    let mut rng = Rng(seed | 1);
    let mut beam = vec![State {
        nodes: INPUTS.to_vec(),
        gates: vec![],
    }];
    if done(&beam[0].nodes, targets) {
        return Some(beam.remove(0));
    }
    for _ in 0..limit {
        // (score, tie-break, parent, gate)
        let mut children: Vec<(u32, u64, usize, (Op, usize, usize), u16)> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        for (pi, st) in beam.iter().enumerate() {
            let n = st.nodes.len();
            for i in 0..n {
                for j in 0..n {
                    if i == j {
                        continue;
                    }
                    for op in [Op::And, Op::Or, Op::Xor, Op::AndNot] {
                        if op != Op::AndNot && j < i {
                            continue;
                        }
                        let v = op.eval(st.nodes[i], st.nodes[j]);
                        if v == 0 || st.nodes.contains(&v) {
                            continue;
                        }
                        if !seen.insert(set_key(&st.nodes, v)) {
                            continue;
                        }
                        let sc = score(&st.nodes, v, targets);
                        children.push((sc, rng.next(), pi, (op, i, j), v));
                    }
                }
            }
        }
        children.sort_unstable_by_key(|c| (c.0, c.1));
        children.truncate(width);
        let mut next = Vec::with_capacity(children.len());
        for (_, _, pi, g, v) in children {
            let mut st = beam[pi].clone();
            st.nodes.push(v);
            st.gates.push(g);
            if done(&st.nodes, targets) {
                return Some(st);
            }
            next.push(st);
        }
        beam = next;
    }
    None
}

/// Drop gates no output depends on (the beam can leave some).
fn prune(st: &State, targets: &[u16; 4]) -> State {
    let n = st.nodes.len();
    let mut live = vec![false; n];
    for t in targets {
        let k = st.nodes.iter().position(|v| v == t).unwrap();
        live[k] = true;
    }
    for k in (4..n).rev() {
        if live[k] {
            let (_, i, j) = st.gates[k - 4];
            live[i] = true;
            live[j] = true;
        }
    }
    let mut map = vec![usize::MAX; n];
    let mut out = State {
        nodes: INPUTS.to_vec(),
        gates: vec![],
    };
    for (k, m) in map.iter_mut().enumerate().take(4) {
        *m = k;
    }
    for k in 4..n {
        if live[k] {
            let (op, i, j) = st.gates[k - 4];
            map[k] = out.nodes.len();
            out.nodes.push(st.nodes[k]);
            out.gates.push((op, map[i], map[j]));
        }
    }
    out
}

fn targets_of(table: &[u8; 16], a: usize) -> [u16; 4] {
    let b = table[a];
    let mut t = [0u16; 4];
    for z in 0..16 {
        let y = table[z ^ a] ^ b;
        for (j, tj) in t.iter_mut().enumerate() {
            if (y >> j) & 1 == 1 {
                *tj |= 1 << z;
            }
        }
    }
    t
}

fn best(table: &[u8; 16], widths: &[usize]) -> (usize, State) {
    let mut best: Option<(usize, State)> = None;
    for a in 0..16 {
        let targets = targets_of(table, a);
        for (seed, &width) in widths.iter().enumerate() {
            let seed = seed as u64 + 1;
            let bound = best.as_ref().map_or(30, |b| b.1.gates.len());
            if let Some(st) = beam(&targets, width, seed * 7919 + a as u64, bound) {
                let st = prune(&st, &targets);
                if best.as_ref().is_none_or(|b| st.gates.len() < b.1.gates.len()) {
                    best = Some((a, st));
                }
            }
        }
    }
    best.expect("a circuit for every S-box")
}

fn emit(name: &str, table: &[u8; 16], a: usize, st: &State) {
    let targets = targets_of(table, a);
    let out: Vec<usize> = targets
        .iter()
        .map(|t| st.nodes.iter().position(|v| v == t).unwrap())
        .collect();
    let var = |k: usize| {
        if k < 4 {
            format!("x[{k}]")
        } else {
            format!("t{k}")
        }
    };
    println!(
        "/// {} gates; input mask {a:#x}, output mask {:#x}.",
        st.gates.len(),
        table[a]
    );
    println!("#[inline(always)]");
    println!("pub(super) fn {name}<V: Gates>(x: &mut [V; 4]) {{");
    for (k, &(op, i, j)) in st.gates.iter().enumerate() {
        println!(
            "    let t{} = {}.{}({});",
            k + 4,
            var(i),
            op.name(),
            var(j)
        );
    }
    let outs: Vec<String> = out.iter().map(|&k| var(k)).collect();
    println!("    *x = [{}];", outs.join(", "));
    println!("}}");
    println!();
}

fn main() {
    let mut inv = [[0u8; 16]; 8];
    for s in 0..8 {
        for x in 0..16 {
            inv[s][SBOX[s][x] as usize] = x as u8;
        }
    }
    let jobs: Vec<(String, [u8; 16])> = (0..8)
        .map(|s| (format!("s{s}"), SBOX[s]))
        .chain((0..8).map(|s| (format!("i{s}"), inv[s])))
        .collect();
    // Beam widths, one search per width and input mask (default: the
    // widths the checked-in file was made with).
    let widths: Vec<usize> = std::env::args()
        .skip(1)
        .map(|w| w.parse().expect("beam widths"))
        .collect();
    let widths = if widths.is_empty() { vec![64, 256, 1024] } else { widths };
    let widths = &widths;
    let results: Vec<(usize, State)> = std::thread::scope(|sc| {
        let hs: Vec<_> = jobs
            .iter()
            .map(|(_, t)| sc.spawn(move || best(t, widths)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("//! Gate circuits for Serpent's S-boxes (`s0`..`s7`) and their inverses");
    println!("//! (`i0`..`i7`), generated by tools/serpent-circuits.rs: do not edit.");
    println!("//! Each computes S(z ^ a) ^ S(a) for the input mask `a` in `MASKS`;");
    println!("//! the cipher folds both masks into its round keys.");
    println!();
    println!("use super::gates::Gates;");
    println!();
    print!("/// (input mask, output mask) of `s0`..`s7`, then `i0`..`i7`.\npub(super) const MASKS: [(u8, u8); 16] = [");
    for ((_, t), (a, _)) in jobs.iter().zip(&results) {
        print!("({a:#x}, {:#x}), ", t[*a]);
    }
    println!("];");
    let total: usize = results.iter().map(|r| r.1.gates.len()).sum();
    println!("// {total} gates in all sixteen circuits.");
    println!();
    for ((name, t), (a, st)) in jobs.iter().zip(&results) {
        emit(name, t, *a, st);
    }
}
