//! Benchmarks of the coordination library: bus throughput and latency, task assignment latency.
//!
//! Run with `cargo run --release -p ai-session-coord --example bench`.

use std::time::{Duration, Instant};

use ai_session_coord::{
    AgentSpec, Backpressure, CoordConfig, Coordinator, QueueOptions, Registration, TaskSpec,
};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<44} n={:<8} p50={:>9.2?} p99={:>9.2?} max={:>9.2?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}

/// Publisher and subscriber on different tasks of a two-thread runtime.
async fn bus_throughput(messages: u64) -> Result<(), BoxError> {
    let c = Coordinator::new(CoordConfig::default());
    let opts = QueueOptions {
        capacity: 8192,
        policy: Backpressure::Wait {
            max: Duration::from_secs(10),
        },
    };
    let mut sub = c.subscribe_with("bench", opts);
    let reader = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(1024);
        let mut got = 0u64;
        while got < messages {
            buf.clear();
            let n = sub.recv_many(&mut buf, 1024).await;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        got
    });
    let start = Instant::now();
    let mut publish_samples = Vec::with_capacity((messages / 64) as usize);
    let mut dead = 0;
    for i in 0..messages {
        if i % 64 == 0 {
            let t = Instant::now();
            dead += c.publish(None, "bench", json!(i)).await?.dead_lettered;
            publish_samples.push(t.elapsed());
        } else {
            dead += c.publish(None, "bench", json!(i)).await?.dead_lettered;
        }
    }
    let got = reader.await?;
    let elapsed = start.elapsed();
    println!(
        "bus: {got} messages to 1 subscriber in {elapsed:.2?}: {:.0} msg/s ({dead} dead-lettered)",
        got as f64 / elapsed.as_secs_f64()
    );
    report("bus publish call (1 in 64 sampled)", publish_samples);
    Ok(())
}

/// Fan-out: one publisher, eight subscribers, each receiving every message.
async fn bus_fanout(messages: u64, subscribers: usize) -> Result<(), BoxError> {
    let c = Coordinator::new(CoordConfig::default());
    let opts = QueueOptions {
        capacity: 8192,
        policy: Backpressure::Wait {
            max: Duration::from_secs(10),
        },
    };
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut sub = c.subscribe_with("fan", opts);
        readers.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut got = 0u64;
            while got < messages {
                buf.clear();
                let n = sub.recv_many(&mut buf, 1024).await;
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            got
        }));
    }
    let start = Instant::now();
    for i in 0..messages {
        c.publish(None, "fan", json!(i)).await?;
    }
    let mut total = 0;
    for r in readers {
        total += r.await?;
    }
    let elapsed = start.elapsed();
    println!(
        "bus fan-out: {messages} messages x {subscribers} subscribers = {total} copies in {elapsed:.2?}: {:.0} copies/s",
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Ping-pong: publish one message, wait until the subscriber has it, repeat.
async fn bus_latency(rounds: usize) -> Result<(), BoxError> {
    let c = Coordinator::new(CoordConfig::default());
    let mut sub = c.subscribe("ping");
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        c.publish(None, "ping", json!(i)).await?;
        if sub.recv().await.is_none() {
            break;
        }
        samples.push(t.elapsed());
    }
    report("bus publish -> receive, same thread", samples);
    Ok(())
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const CAPS: [&str; 4] = ["rust", "go", "tests", "docs"];

fn random_task(rng: &mut Rng, n: u64) -> TaskSpec {
    let mut spec = TaskSpec::new(format!("task {n}")).priority((rng.next() % 10) as i32);
    // Eight distinct capability sets, from none to two capabilities.
    match rng.next() % 8 {
        0 => {}
        k @ 1..=4 => spec = spec.needs(CAPS[(k - 1) as usize]),
        k => {
            spec = spec
                .needs(CAPS[(k - 5) as usize])
                .needs(CAPS[(k - 4) as usize])
        }
    }
    spec
}

/// 100 agents, 10,000 queued tasks: each round one agent claims its task and reports it done,
/// and a new task is submitted so the queue stays at 10,000.
fn task_assignment(agents: usize, queued: usize, rounds: usize) -> Result<(), BoxError> {
    let c = Coordinator::new(CoordConfig {
        heartbeat_deadline: Duration::from_secs(3600),
        ..CoordConfig::default()
    });
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let regs: Vec<Registration> = (0..agents)
        .map(|i| {
            let spec = AgentSpec::new(format!("agent{i}"))
                .capability(CAPS[i % 4])
                .capability(CAPS[(i + 1) % 4])
                .capability(CAPS[(i + 2) % 4]);
            c.register(spec)
        })
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let specs: Vec<TaskSpec> = (0..queued as u64)
        .map(|n| random_task(&mut rng, n))
        .collect();
    c.submit_batch(specs)?;
    println!(
        "tasks: submitted {queued} tasks to {agents} agents in {:.2?}",
        start.elapsed()
    );
    let (mut claims, mut dones, mut cycles, mut submits) = (vec![], vec![], vec![], vec![]);
    let mut next = queued as u64;
    let mut empty = 0;
    let start = Instant::now();
    for round in 0..rounds {
        let reg = &regs[round % agents];
        let t0 = Instant::now();
        let task = c.claim(&reg.auth)?;
        let t1 = Instant::now();
        let Some(task) = task else {
            empty += 1;
            continue;
        };
        c.done(&reg.auth, task.id, json!(null))?;
        let t2 = Instant::now();
        claims.push(t1 - t0);
        dones.push(t2 - t1);
        cycles.push(t2 - t0);
        let spec = random_task(&mut rng, next);
        next += 1;
        let t3 = Instant::now();
        c.submit(spec)?;
        submits.push(t3.elapsed());
    }
    let elapsed = start.elapsed();
    println!(
        "tasks: {} claim+done rounds in {elapsed:.2?} ({:.0} tasks/s; {empty} claims found nothing), queue kept at {queued}",
        cycles.len(),
        cycles.len() as f64 / elapsed.as_secs_f64()
    );
    report("claim (agent takes its assigned task)", claims);
    report("done (includes assigning the freed slot)", dones);
    report("claim + done round", cycles);
    report("submit one task into a 10,000 queue", submits);
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        bus_throughput(2_000_000).await?;
        bus_fanout(200_000, 8).await?;
        Ok::<_, BoxError>(())
    })?;
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    single.block_on(async {
        bus_latency(100_000).await?;
        task_assignment(100, 10_000, 50_000)
    })?;
    Ok(())
}
