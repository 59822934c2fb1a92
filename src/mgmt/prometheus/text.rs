//! The Prometheus text exposition format, version 0.0.4: metric families
//! with `# HELP` and `# TYPE` lines and one line per sample. Kept apart from
//! the HTTP server and from what is measured so the escaping rules and the
//! histogram layout are tested on their own.
//!
//! Rules followed (from the format's specification): a label value escapes
//! backslash, double quote and line feed; a HELP text escapes backslash and
//! line feed; a histogram has cumulative `_bucket{le=...}` samples ending in
//! `le="+Inf"`, then `_sum` and `_count`; a family's samples follow its TYPE
//! line without interruption.

use std::fmt::Write as _;

/// The content type of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One sample: an optional name suffix (`_bucket`, `_sum`, `_count` for
/// histograms), its labels and an integer value (everything we export is a
/// count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: u64,
}

/// One metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Family { name, help, kind, samples: Vec::new() }
    }

    /// A family with one unlabelled sample.
    pub fn single(name: &'static str, kind: Kind, help: &'static str, value: u64) -> Self {
        Family::new(name, kind, help).with(Vec::new(), value)
    }

    /// Add a sample with `labels`.
    pub fn with(mut self, labels: Vec<(&'static str, String)>, value: u64) -> Self {
        self.samples.push(Sample { suffix: "", labels, value });
        self
    }

    /// A histogram from per-bucket (non-cumulative) counts with inclusive
    /// upper bounds `bounds`; entries of `counts` past `bounds` count only
    /// in `+Inf`. `sum` is the sum of the observed values.
    pub fn histogram(name: &'static str, help: &'static str, bounds: &[usize], counts: &[u64], sum: u64) -> Self {
        let mut f = Family::new(name, Kind::Histogram, help);
        let mut cumulative = 0u64;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += counts.get(i).copied().unwrap_or(0);
            f.samples.push(Sample { suffix: "_bucket", labels: vec![("le", bound.to_string())], value: cumulative });
        }
        let total = counts.iter().sum::<u64>();
        f.samples.push(Sample { suffix: "_bucket", labels: vec![("le", "+Inf".into())], value: total });
        f.samples.push(Sample { suffix: "_sum", labels: Vec::new(), value: sum });
        f.samples.push(Sample { suffix: "_count", labels: Vec::new(), value: total });
        f
    }
}

/// Escape a label value: `\` → `\\`, `"` → `\"`, line feed → `\n`.
pub fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escape a HELP text: `\` → `\\`, line feed → `\n`.
fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The text of a whole scrape.
pub fn render(families: &[Family]) -> String {
    let mut out = String::with_capacity(families.len() * 160);
    for f in families {
        out.push_str("# HELP ");
        out.push_str(f.name);
        out.push(' ');
        escape_help(f.help, &mut out);
        out.push('\n');
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
        for s in &f.samples {
            out.push_str(f.name);
            out.push_str(s.suffix);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_label_value(v, &mut out);
                    out.push('"');
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", s.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_gauge_lines() {
        let fams = [
            Family::single("stun_binding_request", Kind::Counter, "Binding requests", 7),
            Family::new("turn_total_allocations", Kind::Gauge, "Current allocations")
                .with(vec![("type", "UDP".into())], 2)
                .with(vec![("type", "TLS/TCP".into())], 0),
        ];
        assert_eq!(
            render(&fams),
            "# HELP stun_binding_request Binding requests\n\
             # TYPE stun_binding_request counter\n\
             stun_binding_request 7\n\
             # HELP turn_total_allocations Current allocations\n\
             # TYPE turn_total_allocations gauge\n\
             turn_total_allocations{type=\"UDP\"} 2\n\
             turn_total_allocations{type=\"TLS/TCP\"} 0\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let f = Family::new("turn_traffic_rcvp", Kind::Counter, "a \\ b\nc \"q\"")
            .with(vec![("realm", "ex\"am\\ple\norg".into()), ("user", "1700000000:ü".into())], 1);
        let text = render(&[f]);
        assert!(text.contains("# HELP turn_traffic_rcvp a \\\\ b\\nc \"q\"\n"), "{text}");
        assert!(text.contains("turn_traffic_rcvp{realm=\"ex\\\"am\\\\ple\\norg\",user=\"1700000000:ü\"} 1\n"), "{text}");
        // One line per sample: the newline in the value did not split it.
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn histogram_is_cumulative() {
        let f = Family::histogram("h", "batch sizes", &[1, 2, 4], &[3, 0, 2, 1], 20);
        let text = render(&[f]);
        let want = "h_bucket{le=\"1\"} 3\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"4\"} 5\nh_bucket{le=\"+Inf\"} 6\nh_sum 20\nh_count 6\n";
        assert!(text.ends_with(want), "{text}");
        assert!(text.contains("# TYPE h histogram\n"));
    }

    #[test]
    fn empty_family_keeps_its_metadata() {
        let text = render(&[Family::new("turn_traffic_sentb", Kind::Counter, "x")]);
        assert_eq!(text, "# HELP turn_traffic_sentb x\n# TYPE turn_traffic_sentb counter\n");
    }
}
