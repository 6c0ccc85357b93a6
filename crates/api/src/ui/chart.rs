//! The dashboard's charts: one bar per minute of the last hour, as inline SVG drawn on the
//! server (no script). A minute without a value leaves a gap; the axis names the hour's first
//! and last minute and the largest value.

use maud::{Markup, html};

use super::format;
use crate::series::{MINUTES, Minute};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 16.0;

/// A bar chart of `value` for each of `minutes` (oldest first), placed on an hour ending
/// with the last minute; `unit` labels the largest value.
pub(super) fn bars(
    title: &str,
    minutes: &[Minute],
    value: impl Fn(&Minute) -> Option<f64>,
    unit: &str,
) -> Markup {
    let shown = &minutes[minutes.len().saturating_sub(MINUTES)..];
    let values: Vec<Option<f64>> = shown.iter().map(&value).collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let slot = WIDTH / MINUTES as f64;
    // The hour ends with the newest minute: older minutes sit further left.
    let offset = MINUTES - shown.len();
    let plot = HEIGHT - TOP - BOTTOM;
    let label = |m: Option<&Minute>| m.map(|m| format::clock(m.start_unix)).unwrap_or_default();
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title)
                preserveAspectRatio="none" {
                line.axis x1="0" y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
                @for (i, v) in values.iter().enumerate() {
                    @if let Some(v) = v.filter(|v| *v > 0.0) {
                        @let h = (v / max * plot).max(1.0);
                        rect.bar x=(format!("{:.1}", (offset + i) as f64 * slot + 1.0))
                            y=(format!("{:.1}", HEIGHT - BOTTOM - h))
                            width=(format!("{:.1}", slot - 2.0)) height=(format!("{h:.1}")) {
                            title { (label(shown.get(i))) " — " (trim(v)) " " (unit) }
                        }
                    }
                }
                text.tick x="2" y="11" { "max " (trim(max)) " " (unit) }
                text.tick x="2" y=(HEIGHT - 3.0) { (label(shown.first())) }
                text.tick x=(WIDTH - 2.0) y=(HEIGHT - 3.0) text-anchor="end" { (label(shown.last())) }
            }
        }
    }
}

/// A value without needless decimals.
fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(i: u64, requests: u64) -> Minute {
        Minute {
            start_unix: 3600 + i * 60,
            requests,
            ..Minute::default()
        }
    }

    #[test]
    fn one_bar_per_minute_with_a_value_scaled_to_the_largest() {
        let minutes = [minute(0, 0), minute(1, 10), minute(2, 5)];
        let svg = bars("Requests", &minutes, |m| Some(m.requests as f64), "req/min").into_string();
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("max 10 req/min"), "{svg}");
        // The largest bar fills the plot; the other is half as tall.
        let plot = HEIGHT - TOP - BOTTOM;
        assert!(svg.contains(&format!("height=\"{plot:.1}\"")), "{svg}");
        assert!(
            svg.contains(&format!("height=\"{:.1}\"", plot / 2.0)),
            "{svg}"
        );
        // The newest minute is the last slot of the hour.
        let last_x = (MINUTES - 1) as f64 * (WIDTH / MINUTES as f64) + 1.0;
        assert!(svg.contains(&format!("x=\"{last_x:.1}\"")), "{svg}");
        assert!(svg.contains("01:00") && svg.contains("01:02"), "{svg}");
        let empty = bars("Starts", &[], |_| None, "ms").into_string();
        assert_eq!(empty.matches("<rect").count(), 0);
    }
}
