//! Measures the cost of sandboxing a session spawn: `sh -c true` spawned and reaped,
//! plain versus through `Sandbox::prepare` + `apply_in_child` (prepare included, since
//! the daemon pays it per session). Prints p50/p99 in milliseconds.
//!
//! `cargo run --release -p ai-session-sandbox --example spawn_cost -- [iterations]`

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use ai_session_sandbox::{Policy, Sandbox, probe};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(300), |s| s.parse())?;
    let workspace = std::env::temp_dir();
    let t = Instant::now();
    let caps = probe();
    println!(
        "probe: {:.2} ms (once per daemon)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let policy = Policy::profile("default").ok_or("no default profile")?;

    let mut plain = Vec::with_capacity(n);
    let mut sandboxed = Vec::with_capacity(n);
    let mut prepare_only = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = Command::new("/bin/sh")
            .args(["-c", "true"])
            .stdin(Stdio::null())
            .status()?;
        plain.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(status.success());

        let t = Instant::now();
        let prepared = Arc::new(Sandbox::prepare(&policy, &caps, &workspace)?);
        prepare_only.push(t.elapsed().as_secs_f64() * 1e3);
        let in_child = Arc::clone(&prepared);
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "true"]).stdin(Stdio::null());
        // SAFETY: apply_in_child is async-signal-safe and runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || in_child.apply_in_child().map_err(std::io::Error::from));
        }
        let status = cmd.status()?;
        drop(prepared);
        sandboxed.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(status.success());
    }
    report("plain spawn+wait", &mut plain);
    report("sandbox prepare", &mut prepare_only);
    report("sandboxed prepare+spawn+wait", &mut sandboxed);
    Ok(())
}

fn report(name: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<30} p50 {:>7.2} ms   p99 {:>7.2} ms   (n={})",
        pct(0.5),
        pct(0.99),
        samples.len()
    );
}
