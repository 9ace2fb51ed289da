//! Links the `ai-session` binary as a position-dependent executable (`-no-pie`).
//!
//! Every CLI command is a new process, so its start-up is part of every `exec`'s round trip. As a
//! position-independent executable the binary's 29,000 relative relocations are applied at each
//! start, writing (and so copying) every page of `.data.rel.ro`; linked at a fixed address they
//! are resolved by the linker once. The code itself stays position-independent (rustc's default),
//! which a fixed-address link accepts. Measured in docs/benchmarks.md (issue 17).
fn main() {
    println!("cargo::rustc-link-arg-bins=-no-pie");
}
