//! Request traces to replay: a CSV of `timestamp_seconds,site` lines.
//!
//! Format (documented for `hako sim --trace FILE`):
//! - one request per line: `timestamp_seconds,site`, e.g. `12.250,blog.example`;
//! - `timestamp_seconds`: seconds (decimal, ≥ 0) since the start of the trace; lines need not
//!   be sorted; `site`: any non-empty name without a comma;
//! - spaces around fields are ignored; blank lines and lines starting with `#` are skipped;
//! - the first non-comment line may be the header `timestamp_seconds,site`.
//!
//! A malformed line is an error naming its line number (1-based) and what is wrong.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// What is wrong with one line of a trace.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    /// Not exactly two comma-separated fields.
    #[error("expected 2 fields `timestamp_seconds,site`, found {0}")]
    FieldCount(usize),
    /// The timestamp is not a number.
    #[error("timestamp {0:?} is not a number of seconds")]
    BadTimestamp(String),
    /// The timestamp is negative, infinite or NaN.
    #[error("timestamp {0} must be a finite number of seconds ≥ 0")]
    TimestampOutOfRange(f64),
    /// The site field is empty.
    #[error("site name is empty")]
    EmptySite,
}

/// Errors reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A line is malformed; fix or delete it.
    #[error("trace line {line}: {error}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        error: LineError,
    },
    /// The trace could not be read.
    #[error("cannot read the trace: {0}")]
    Io(#[from] std::io::Error),
    /// No request lines.
    #[error("the trace has no requests: add lines of the form `timestamp_seconds,site`")]
    Empty,
}

/// A parsed trace: per-site sorted arrival times.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Site names, in order of first appearance.
    pub sites: Vec<String>,
    /// `arrivals[i]`: arrival times (seconds, sorted) of `sites[i]`.
    pub arrivals: Vec<Vec<f64>>,
    /// The latest timestamp in the trace.
    pub end: f64,
}

impl Trace {
    /// Parse a trace from text.
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
        Self::read(text.as_bytes())
    }

    /// Parse a trace file.
    pub fn from_path(path: &Path) -> Result<Trace, TraceError> {
        Self::read(std::io::BufReader::new(std::fs::File::open(path)?))
    }

    /// Parse a trace from a reader.
    pub fn read<R: BufRead>(reader: R) -> Result<Trace, TraceError> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut trace = Trace {
            sites: Vec::new(),
            arrivals: Vec::new(),
            end: 0.0,
        };
        let mut seen_data = false;
        for (i, line) in reader.lines().enumerate() {
            let line = line?;
            let text = line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let first = !seen_data;
            seen_data = true;
            let (t, site) = match parse_line(text) {
                Ok(v) => v,
                Err(_) if first && is_header(text) => continue,
                Err(error) => return Err(TraceError::Malformed { line: i + 1, error }),
            };
            let k = *index.entry(site.to_owned()).or_insert_with(|| {
                trace.sites.push(site.to_owned());
                trace.arrivals.push(Vec::new());
                trace.sites.len() - 1
            });
            trace.arrivals[k].push(t);
            trace.end = trace.end.max(t);
        }
        if trace.sites.is_empty() {
            return Err(TraceError::Empty);
        }
        for a in &mut trace.arrivals {
            a.sort_by(f64::total_cmp);
        }
        Ok(trace)
    }

    /// Number of requests in the trace.
    pub fn requests(&self) -> usize {
        self.arrivals.iter().map(Vec::len).sum()
    }
}

fn is_header(text: &str) -> bool {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    fields == ["timestamp_seconds", "site"]
}

fn parse_line(text: &str) -> Result<(f64, &str), LineError> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let [t, site] = fields[..] else {
        return Err(LineError::FieldCount(fields.len()));
    };
    let t: f64 = t
        .parse()
        .map_err(|_| LineError::BadTimestamp(t.to_owned()))?;
    if !t.is_finite() || t < 0.0 {
        return Err(LineError::TimestampOutOfRange(t));
    }
    if site.is_empty() {
        return Err(LineError::EmptySite);
    }
    Ok((t, site))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_comments_and_unsorted_lines() {
        let t = Trace::parse(
            "# a comment\ntimestamp_seconds,site\n5.5, b.example\n\n1,a.example\n0.25,b.example\n",
        )
        .unwrap();
        assert_eq!(t.sites, vec!["b.example", "a.example"]);
        assert_eq!(t.arrivals, vec![vec![0.25, 5.5], vec![1.0]]);
        assert_eq!(t.end, 5.5);
        assert_eq!(t.requests(), 3);
    }

    fn line_error(text: &str) -> (usize, LineError) {
        match Trace::parse(text) {
            Err(TraceError::Malformed { line, error }) => (line, error),
            other => panic!("expected a malformed-line error, got {other:?}"),
        }
    }

    #[test]
    fn rejects_malformed_lines_with_their_line_numbers() {
        assert_eq!(line_error("1,a\n2,b,c\n"), (2, LineError::FieldCount(3)));
        assert_eq!(
            line_error("# c\n\n1,a\nx,a\n"),
            (4, LineError::BadTimestamp("x".into()))
        );
        assert_eq!(
            line_error("1,a\n-3,a\n"),
            (2, LineError::TimestampOutOfRange(-3.0))
        );
        assert!(matches!(
            line_error("inf,a\n").1,
            LineError::TimestampOutOfRange(_)
        ));
        assert_eq!(line_error("1,a\n2,\n"), (2, LineError::EmptySite));
        assert_eq!(line_error("1\n"), (1, LineError::FieldCount(1)));
        // A header is only accepted as the first data line.
        assert!(matches!(
            line_error("1,a\ntimestamp_seconds,site\n").1,
            LineError::BadTimestamp(_)
        ));
        let msg = Trace::parse("1,a\n2,b,c\n").unwrap_err().to_string();
        assert_eq!(
            msg,
            "trace line 2: expected 2 fields `timestamp_seconds,site`, found 3"
        );
    }

    /// Robustness (a fuzz-style check without a fuzzer): random mutations of a valid trace
    /// either parse or fail with a line number that exists; never a panic.
    #[test]
    fn random_garbage_never_panics_and_errors_point_at_real_lines() {
        let mut rng = crate::rng::Rng::new(99, 0);
        let alphabet: Vec<char> = "0123456789.,-+eE# \tabc\u{e9}\u{1F600}nNaIif"
            .chars()
            .collect();
        for _ in 0..3000 {
            let mut text = String::from("timestamp_seconds,site\n1.5,a\n2,b\n");
            for _ in 0..(rng.next_u64() % 40) {
                let c = if rng.uniform() < 0.1 {
                    '\n'
                } else {
                    alphabet[(rng.next_u64() % alphabet.len() as u64) as usize]
                };
                let at = text
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth((rng.next_u64() % text.chars().count() as u64) as usize)
                    .unwrap_or(0);
                text.insert(at, c);
            }
            let lines = text.lines().count();
            match Trace::parse(&text) {
                Ok(t) => {
                    assert!(t.requests() >= 1);
                    assert!(
                        t.arrivals
                            .iter()
                            .flatten()
                            .all(|x| x.is_finite() && *x >= 0.0)
                    );
                }
                Err(TraceError::Malformed { line, .. }) => {
                    assert!(line >= 1 && line <= lines, "{line} of {lines}")
                }
                Err(TraceError::Empty) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }

    #[test]
    fn empty_trace_is_an_error() {
        assert!(matches!(
            Trace::parse("# nothing\ntimestamp_seconds,site\n"),
            Err(TraceError::Empty)
        ));
        assert!(matches!(Trace::parse(""), Err(TraceError::Empty)));
    }
}
