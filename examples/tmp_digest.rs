use dmcrypt_harness::oracle::{Case, Fault};
use dmcrypt_harness::table::Rules;
fn main() {
    let rel = std::env::args().nth(1).unwrap();
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        let c = Case::from_words(&line, "x").unwrap();
        let e = c.model_as(Fault::None, Rules::of_release(&rel)).unwrap();
        println!("ct={} pt={}", hex::encode(dmcrypt_harness::hash::sha256(&e.backing)), hex::encode(dmcrypt_harness::hash::sha256(&e.read)));
    }
}
