//! Code that runs only inside a guest: the agent (dmch as PID 1) and the
//! real-setup scenario it can run. It talks to the host only through
//! `protocol`.

pub mod agent;
mod scenario;
