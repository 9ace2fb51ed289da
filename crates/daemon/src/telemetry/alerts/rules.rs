//! The anomaly rules, without I/O or a clock of their own (`now_ms` is passed in): what each
//! remembers, bounded, and when it fires. Each rule re-arms after firing: the evidence that
//! raised it is forgotten, so one episode is one alert.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use ai_session_protocol::config::AlertsConfig;
use serde_json::{Value, json};

/// Keys (sessions, commands, callers) each rule remembers at most; a new one past that evicts
/// an old one.
const MAX_KEYS: usize = 4096;
/// Durations or token counts kept per command or caller.
const HISTORY: usize = 64;

/// The rules, by the name alerts carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    RetryLoop,
    SlowExec,
    ErrorRate,
    OutputFlood,
    DenialBurst,
    TokenSpike,
    InputWait,
}

impl Rule {
    pub(crate) const ALL: [Rule; 7] = [
        Rule::RetryLoop,
        Rule::SlowExec,
        Rule::ErrorRate,
        Rule::OutputFlood,
        Rule::DenialBurst,
        Rule::TokenSpike,
        Rule::InputWait,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Rule::RetryLoop => "retry_loop",
            Rule::SlowExec => "slow_exec",
            Rule::ErrorRate => "error_rate",
            Rule::OutputFlood => "output_flood",
            Rule::DenialBurst => "denial_burst",
            Rule::TokenSpike => "token_spike",
            Rule::InputWait => "input_wait",
        }
    }
}

/// A rule fired.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub rule: Rule,
    pub message: String,
    pub session: Option<String>,
    pub caller: Option<String>,
    pub command: Option<String>,
    pub figures: Value,
}

/// An exec as the rules see it.
pub(crate) struct ExecSeen<'a> {
    pub session: &'a str,
    pub command: &'a str,
    /// The agent's name, else the principal (`owner`, `token:ID`).
    pub caller: &'a str,
    /// Exited with a code other than 0.
    pub failed: bool,
    /// Exited (finished), so its duration is the command's.
    pub finished: bool,
    pub waiting_for_input: bool,
    pub duration_ms: f64,
    pub output_bytes: u64,
    pub returned_tokens: Option<u64>,
}

#[derive(Default)]
struct Waiting {
    since_ms: u64,
    caller: String,
    raised: bool,
}

/// What the rules remember.
pub(crate) struct Rules {
    cfg: AlertsConfig,
    /// Failure times of each (session, command).
    retries: HashMap<(String, String), VecDeque<u64>>,
    /// Past durations of each command (ms).
    durations: HashMap<String, VecDeque<f64>>,
    /// Each caller's last outcomes (true: failed).
    outcomes: HashMap<String, VecDeque<bool>>,
    /// Each caller's denial times.
    denials: HashMap<String, VecDeque<u64>>,
    /// Each caller's past returned tokens per exec.
    tokens: HashMap<String, VecDeque<u64>>,
    /// Sessions whose last exec left them waiting for input.
    waiting: HashMap<String, Waiting>,
}

/// The entry for `key`, evicting another when the map is full.
fn slot<K: Eq + Hash + Clone, V: Default>(map: &mut HashMap<K, V>, key: K) -> &mut V {
    if map.len() >= MAX_KEYS && !map.contains_key(&key) {
        if let Some(old) = map.keys().next().cloned() {
            map.remove(&old);
        }
    }
    map.entry(key).or_default()
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// The median of `values` (not empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Robust z-score of `x` against `history`: `0.6745 (x - median) / MAD`, the MAD floored at
/// 5% of the median and 1 ms so that a perfectly regular history does not divide by zero.
pub(crate) fn robust_z(history: &[f64], x: f64) -> (f64, f64) {
    let mut v = history.to_vec();
    let med = median(&mut v);
    let mut dev: Vec<f64> = history.iter().map(|d| (d - med).abs()).collect();
    let mad = median(&mut dev).max(med * 0.05).max(1.0);
    (0.6745 * (x - med) / mad, med)
}

impl Rules {
    pub(crate) fn new(cfg: AlertsConfig) -> Self {
        Self {
            cfg,
            retries: HashMap::new(),
            durations: HashMap::new(),
            outcomes: HashMap::new(),
            denials: HashMap::new(),
            tokens: HashMap::new(),
            waiting: HashMap::new(),
        }
    }

    /// An exec finished (or stopped waiting).
    pub(crate) fn exec(&mut self, e: &ExecSeen<'_>, now_ms: u64) -> Vec<Finding> {
        let mut found = Vec::new();
        self.waiting.remove(e.session);
        if e.waiting_for_input {
            *slot(&mut self.waiting, e.session.to_owned()) = Waiting {
                since_ms: now_ms,
                caller: e.caller.to_owned(),
                raised: false,
            };
        }
        found.extend(self.retry_loop(e, now_ms));
        found.extend(self.slow_exec(e));
        found.extend(self.error_rate(e));
        found.extend(self.output_flood(e));
        found.extend(self.token_spike(e));
        found
    }

    fn finding(&self, rule: Rule, e: &ExecSeen<'_>, message: String, figures: Value) -> Finding {
        Finding {
            rule,
            message,
            session: Some(e.session.to_owned()),
            caller: Some(e.caller.to_owned()),
            command: Some(e.command.to_owned()),
            figures,
        }
    }

    fn retry_loop(&mut self, e: &ExecSeen<'_>, now_ms: u64) -> Option<Finding> {
        let key = (e.session.to_owned(), e.command.trim().to_owned());
        if !e.failed {
            if e.finished {
                self.retries.remove(&key);
            }
            return None;
        }
        let window = self.cfg.retry_window_secs.saturating_mul(1000);
        let times = slot(&mut self.retries, key.clone());
        times.retain(|t| now_ms.saturating_sub(*t) <= window);
        push_bounded(times, now_ms, self.cfg.retry_count.max(1) as usize);
        if times.len() < self.cfg.retry_count.max(1) as usize {
            return None;
        }
        self.retries.remove(&key);
        let n = self.cfg.retry_count;
        Some(self.finding(
            Rule::RetryLoop,
            e,
            format!(
                "the same command failed {n} times within {}s in session {}: the agent may be retrying without changing anything",
                self.cfg.retry_window_secs, e.session
            ),
            json!({"failures": n, "window_secs": self.cfg.retry_window_secs}),
        ))
    }

    fn slow_exec(&mut self, e: &ExecSeen<'_>) -> Option<Finding> {
        if !e.finished {
            return None;
        }
        let history = slot(&mut self.durations, e.command.trim().to_owned());
        let past: Vec<f64> = history.iter().copied().collect();
        push_bounded(history, e.duration_ms, HISTORY);
        if past.len() < self.cfg.slow_min_history.max(1)
            || e.duration_ms < self.cfg.slow_min_secs * 1000.0
        {
            return None;
        }
        let (z, med) = robust_z(&past, e.duration_ms);
        (z > self.cfg.slow_z).then(|| {
            self.finding(
                Rule::SlowExec,
                e,
                format!(
                    "took {:.0} ms where its median over {} runs is {med:.0} ms (robust z-score {z:.1} > {})",
                    e.duration_ms,
                    past.len(),
                    self.cfg.slow_z
                ),
                json!({"duration_ms": e.duration_ms, "median_ms": med, "z": z, "runs": past.len()}),
            )
        })
    }

    fn error_rate(&mut self, e: &ExecSeen<'_>) -> Option<Finding> {
        if !e.finished {
            return None;
        }
        let window = self.cfg.error_window.max(1);
        let outcomes = slot(&mut self.outcomes, e.caller.to_owned());
        push_bounded(outcomes, e.failed, window);
        let failed = outcomes.iter().filter(|f| **f).count();
        let rate = failed as f64 / window as f64;
        if outcomes.len() < window || rate < self.cfg.error_rate {
            return None;
        }
        outcomes.clear();
        Some(self.finding(
            Rule::ErrorRate,
            e,
            format!(
                "{failed} of {}'s last {window} commands failed ({:.0}% >= {:.0}%)",
                e.caller,
                rate * 100.0,
                self.cfg.error_rate * 100.0
            ),
            json!({"failed": failed, "window": window, "rate": rate}),
        ))
    }

    fn output_flood(&self, e: &ExecSeen<'_>) -> Option<Finding> {
        (e.output_bytes >= self.cfg.flood_bytes).then(|| {
            self.finding(
                Rule::OutputFlood,
                e,
                format!(
                    "one command wrote {} bytes (threshold {})",
                    e.output_bytes, self.cfg.flood_bytes
                ),
                json!({"bytes": e.output_bytes, "threshold": self.cfg.flood_bytes}),
            )
        })
    }

    fn token_spike(&mut self, e: &ExecSeen<'_>) -> Option<Finding> {
        let tokens = e.returned_tokens?;
        let history = slot(&mut self.tokens, e.caller.to_owned());
        let mut past: Vec<f64> = history.iter().map(|t| *t as f64).collect();
        push_bounded(history, tokens, HISTORY);
        if past.len() < self.cfg.token_min_history.max(1) || tokens < self.cfg.token_min {
            return None;
        }
        let med = median(&mut past).max(1.0);
        let factor = tokens as f64 / med;
        (factor >= self.cfg.token_factor).then(|| {
            self.finding(
                Rule::TokenSpike,
                e,
                format!(
                    "{} received {tokens} tokens from one command, {factor:.1} times its median of {med:.0}",
                    e.caller
                ),
                json!({"tokens": tokens, "median": med, "factor": factor}),
            )
        })
    }

    /// A request refused for want of a capability, or by the sandbox, made by `caller`.
    pub(crate) fn denied(
        &mut self,
        caller: &str,
        session: Option<&str>,
        now_ms: u64,
    ) -> Option<Finding> {
        let window = self.cfg.denial_window_secs.saturating_mul(1000);
        let n = self.cfg.denials.max(1) as usize;
        let times = slot(&mut self.denials, caller.to_owned());
        times.retain(|t| now_ms.saturating_sub(*t) <= window);
        push_bounded(times, now_ms, n);
        if times.len() < n {
            return None;
        }
        self.denials.remove(caller);
        Some(Finding {
            rule: Rule::DenialBurst,
            message: format!(
                "{caller} was refused {n} times within {}s: it is probing for what it may not do",
                self.cfg.denial_window_secs
            ),
            session: session.map(str::to_owned),
            caller: Some(caller.to_owned()),
            command: None,
            figures: json!({"denials": n, "window_secs": self.cfg.denial_window_secs}),
        })
    }

    /// Input reached `session` (keys, a write, another exec, a kill): it no longer waits.
    pub(crate) fn answered(&mut self, session: &str) {
        self.waiting.remove(session);
    }

    /// Sessions waiting for input longer than the threshold, each raised once.
    pub(crate) fn tick(&mut self, now_ms: u64) -> Vec<Finding> {
        let limit = self.cfg.input_wait_secs.saturating_mul(1000);
        let mut found = Vec::new();
        for (session, w) in &mut self.waiting {
            let waited = now_ms.saturating_sub(w.since_ms);
            if w.raised || waited < limit {
                continue;
            }
            w.raised = true;
            found.push(Finding {
                rule: Rule::InputWait,
                message: format!(
                    "session {session} has waited for input for {}s (threshold {}s): answer it (send) or interrupt it",
                    waited / 1000,
                    self.cfg.input_wait_secs
                ),
                session: Some(session.clone()),
                caller: Some(w.caller.clone()),
                command: None,
                figures: json!({"waited_secs": waited / 1000, "threshold_secs": self.cfg.input_wait_secs}),
            });
        }
        found
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn exec<'a>(command: &'a str, failed: bool, duration_ms: f64) -> ExecSeen<'a> {
        ExecSeen {
            session: "s",
            command,
            caller: "agent-a",
            failed,
            finished: true,
            waiting_for_input: false,
            duration_ms,
            output_bytes: 10,
            returned_tokens: None,
        }
    }

    fn rules(f: impl FnOnce(&mut AlertsConfig)) -> Rules {
        let mut c = AlertsConfig::default();
        f(&mut c);
        Rules::new(c)
    }

    fn fired(found: &[Finding], rule: Rule) -> bool {
        found.iter().any(|f| f.rule == rule)
    }

    #[test]
    fn three_identical_failures_in_the_window_are_a_retry_loop() {
        let mut r = rules(|_| {});
        let minute = 60_000;
        assert!(!fired(
            &r.exec(&exec("make", true, 5.0), 0),
            Rule::RetryLoop
        ));
        assert!(!fired(
            &r.exec(&exec("make", true, 5.0), minute),
            Rule::RetryLoop
        ));
        assert!(fired(
            &r.exec(&exec("make", true, 5.0), 2 * minute),
            Rule::RetryLoop
        ));
        // Re-armed: the next failure starts a new count.
        assert!(!fired(
            &r.exec(&exec("make", true, 5.0), 3 * minute),
            Rule::RetryLoop
        ));
        // Failures spread over more than the window are not a loop.
        let mut r = rules(|_| {});
        for i in 0..3 {
            assert!(!fired(
                &r.exec(&exec("make", true, 5.0), i * 11 * minute),
                Rule::RetryLoop
            ));
        }
        // A success in between resets it.
        let mut r = rules(|_| {});
        r.exec(&exec("make", true, 5.0), 0);
        r.exec(&exec("make", true, 5.0), 1);
        r.exec(&exec("make", false, 5.0), 2);
        assert!(!fired(
            &r.exec(&exec("make", true, 5.0), 3),
            Rule::RetryLoop
        ));
    }

    #[test]
    fn an_exec_far_slower_than_its_history_is_slow() {
        let mut r = rules(|c| c.slow_min_secs = 0.5);
        for d in [100.0, 110.0, 95.0, 105.0, 100.0] {
            assert!(!fired(
                &r.exec(&exec("cargo test", false, d), 0),
                Rule::SlowExec
            ));
        }
        // Within the spread: nothing. Far outside: raised.
        assert!(!fired(
            &r.exec(&exec("cargo test", false, 120.0), 0),
            Rule::SlowExec
        ));
        assert!(fired(
            &r.exec(&exec("cargo test", false, 5000.0), 0),
            Rule::SlowExec
        ));
        let (z, med) = robust_z(&[100.0, 110.0, 95.0, 105.0, 100.0], 5000.0);
        assert_eq!(med, 100.0);
        assert!(z > 100.0);
    }

    #[test]
    fn most_of_the_window_failing_is_an_error_rate_spike() {
        let mut r = rules(|c| {
            c.error_window = 5;
            c.error_rate = 0.6;
        });
        let outcomes = [false, true, false, true, false];
        for (i, f) in outcomes.into_iter().enumerate() {
            let cmd = format!("c{i}");
            assert!(!fired(&r.exec(&exec(&cmd, f, 1.0), 0), Rule::ErrorRate));
        }
        // 3 of the last 5 fail.
        assert!(fired(&r.exec(&exec("c9", true, 1.0), 0), Rule::ErrorRate));
    }

    #[test]
    fn floods_token_spikes_denial_bursts_and_input_waits() {
        let mut r = rules(|c| {
            c.flood_bytes = 1000;
            c.token_min_history = 3;
            c.token_min = 100;
            c.denials = 3;
            c.input_wait_secs = 5;
        });
        let mut big = exec("cat big", false, 1.0);
        big.output_bytes = 1000;
        assert!(fired(&r.exec(&big, 0), Rule::OutputFlood));

        for _ in 0..3 {
            let mut e = exec("ls", false, 1.0);
            e.returned_tokens = Some(50);
            assert!(!fired(&r.exec(&e, 0), Rule::TokenSpike));
        }
        let mut e = exec("cat log", false, 1.0);
        e.returned_tokens = Some(400);
        assert!(fired(&r.exec(&e, 0), Rule::TokenSpike));

        assert!(r.denied("agent-b", None, 0).is_none());
        assert!(r.denied("agent-b", None, 1000).is_none());
        assert!(r.denied("agent-b", None, 2000).is_some());

        let mut w = exec("read x", false, 1.0);
        w.finished = false;
        w.waiting_for_input = true;
        r.exec(&w, 10_000);
        assert!(r.tick(14_000).is_empty());
        assert_eq!(r.tick(15_000).len(), 1);
        assert!(r.tick(20_000).is_empty(), "raised once");
        r.exec(&w, 30_000);
        r.answered("s");
        assert!(r.tick(100_000).is_empty());
    }
}
