//! The kernel benchmark inside a guest: the host's plan, brd loaded from
//! the initramfs with the plan's size, each record printed as it is made.

use crate::kbench::backing::Backing;
use crate::kbench::plan::Plan;
use crate::protocol::{Line, files};
use crate::sys::dm;
use std::path::Path;

/// Run the plan in `root`'s initramfs, if there is one.
pub fn run(root: &Path) {
    let Ok(text) = std::fs::read_to_string(root.join(files::BENCH_PLAN)) else {
        return;
    };
    let plan = match serde_json::from_str(&text)
        .map_err(|e| e.to_string())
        .and_then(|v| Plan::from_json(&v))
    {
        Ok(p) => p,
        Err(e) => return Line::Fatal(format!("benchmark plan: {e}")).print(),
    };
    let ctl = match dm::Control::open() {
        Ok(c) => c,
        Err(e) => return Line::Fatal(format!("no device-mapper control: {e}")).print(),
    };
    let brd = root.join(files::BENCH_BRD);
    let load = |params: &str| -> Result<Option<Box<dyn FnOnce()>>, String> {
        if !brd.exists() {
            return Err("this kernel has no brd module".into());
        }
        super::agent::load_module(&brd, params).map(|()| None)
    };
    let backing = match Backing::prepare(plan.device_mib, &load) {
        Ok(b) => b,
        Err(e) => return Line::Fatal(format!("benchmark backing device: {e}")).print(),
    };
    crate::kbench::run::run(&plan, &ctl, &backing, &mut |v| {
        Line::Bench(v.to_string()).print()
    });
    if let Ok(left) = ctl.list()
        && let Some((name, _, _)) = left.iter().find(|m| m.0.starts_with("dmch-kbench-"))
    {
        Line::Fatal(format!("the benchmark left mapping {name} behind")).print();
    }
}
