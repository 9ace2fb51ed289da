//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per metric
//! family, then its samples, label values escaped, histograms as cumulative `_bucket{le}`
//! series ending at `+Inf`, then `_sum` and `_count`. `promtool check metrics` reads what this
//! writes (crates/cli/tests/suite/metrics.rs).

use std::fmt::Write as _;

use super::histogram::{BOUNDS, Snapshot};

/// The content type of the format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Default)]
pub(crate) struct Text {
    out: String,
}

impl Text {
    pub(crate) fn finish(self) -> String {
        self.out
    }

    /// Starts a metric family: its help line and its type.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        // Writing to a String cannot fail.
        writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}").ok();
    }

    /// One sample. Values are integers or finite floats (Rust's shortest round-trip form, which
    /// the format's float syntax accepts).
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<f64>) {
        let value: f64 = value.into();
        self.out.push_str(name);
        self.labels(labels);
        if value.is_finite() {
            writeln!(self.out, " {value}").ok();
        } else if value.is_nan() {
            self.out.push_str(" NaN\n");
        } else if value > 0.0 {
            self.out.push_str(" +Inf\n");
        } else {
            self.out.push_str(" -Inf\n");
        }
    }

    /// A counter or gauge that can exceed 2^53 (bytes, tokens): written as an integer.
    pub(crate) fn integer(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        self.labels(labels);
        writeln!(self.out, " {value}").ok();
    }

    /// A family of one unlabelled integer sample.
    pub(crate) fn one(&mut self, name: &str, kind: Kind, help: &str, value: u64) {
        self.family(name, kind, help);
        self.integer(name, &[], value);
    }

    /// A family of one unlabelled sample.
    pub(crate) fn one_f(&mut self, name: &str, kind: Kind, help: &str, value: impl Into<f64>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A histogram's samples under `name` (the family must have been started).
    pub(crate) fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Snapshot) {
        let bucket = format!("{name}_bucket");
        for (i, count) in h.cumulative.iter().enumerate() {
            let le = BOUNDS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.integer(&bucket, &with_le, *count);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_secs);
        self.integer(&format!("{name}_count"), labels, h.count);
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::histogram::Histogram;
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut t = Text::default();
        t.family(
            "x_total",
            Kind::Counter,
            "Things, with a \\ and\na newline.",
        );
        t.sample("x_total", &[("a", "q\"u\\o\nte")], 1.5);
        t.integer("x_total", &[], u64::MAX);
        let text = t.finish();
        assert_eq!(
            text,
            "# HELP x_total Things, with a \\\\ and\\na newline.\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"u\\\\o\\nte\"} 1.5\nx_total 18446744073709551615\n"
        );
    }

    #[test]
    fn histograms_end_at_inf_with_the_count() {
        let h = Histogram::default();
        h.observe(std::time::Duration::from_millis(2));
        let mut t = Text::default();
        t.family("d_seconds", Kind::Histogram, "D.");
        t.histogram("d_seconds", &[("m", "x")], &h.snapshot());
        let text = t.finish();
        assert!(
            text.contains("d_seconds_bucket{m=\"x\",le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{m=\"x\",le=\"0.0025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{m=\"x\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_sum{m=\"x\"} 0.002\n"), "{text}");
        assert!(text.contains("d_seconds_count{m=\"x\"} 1\n"), "{text}");
    }
}
