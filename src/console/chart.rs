//! Received vs applied events per minute as an inline SVG line chart, drawn on the server:
//! no script, no image request, styled by the page's CSS classes (so it follows dark mode).

use std::fmt::Write;

use outbox::log::MinuteCounts;

const WIDTH: f64 = 1160.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

/// The chart of `minutes` (oldest first).
pub(super) fn render(minutes: &[MinuteCounts]) -> String {
    let received: i64 = minutes.iter().map(|m| m.received).sum();
    let applied: i64 = minutes.iter().map(|m| m.applied).sum();
    let peak = minutes
        .iter()
        .map(|m| m.received.max(m.applied))
        .max()
        .unwrap_or(0);
    let top = nice_ceiling(peak);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let steps = minutes.len().saturating_sub(1).max(1) as f64;
    let x = |i: usize| LEFT + plot_w * i as f64 / steps;
    let y = |n: i64| TOP + plot_h * (1.0 - n as f64 / top as f64);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title"><title id="chart-title">Events per minute over the last hour: {received} received, {applied} applied</title>"#
    );
    for tick in 0..=4 {
        let value = top * tick / 4;
        let ty = y(value);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{ty:.1}" y2="{ty:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{value}</text>"#,
            WIDTH - RIGHT,
            LEFT - 8.0,
            ty + 4.0
        );
    }
    let labelled = minutes.len().saturating_sub(1);
    for i in (0..minutes.len()).filter(|i| i.is_multiple_of(15) || *i == labelled) {
        let anchor = if i == 0 {
            "start"
        } else if i == labelled {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
            x(i),
            HEIGHT - 6.0,
            minutes[i].minute.format("%H:%M")
        );
    }
    if !minutes.is_empty() {
        let line = |value: fn(&MinuteCounts) -> i64| -> String {
            minutes
                .iter()
                .enumerate()
                .map(|(i, m)| format!("{:.1},{:.1}", x(i), y(value(m))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let applied_line = line(|m| m.applied);
        let _ = write!(
            svg,
            r#"<polygon class="applied-area" points="{:.1},{:.1} {applied_line} {:.1},{:.1}"/>"#,
            x(0),
            y(0),
            x(minutes.len() - 1),
            y(0)
        );
        let _ = write!(
            svg,
            r#"<polyline class="received" points="{}"/><polyline class="applied" points="{applied_line}"/>"#,
            line(|m| m.received)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The smallest of 1, 2, 5 × 10ⁿ (at least 4, so the four grid steps are whole numbers
/// most of the time) not below `peak`.
fn nice_ceiling(peak: i64) -> i64 {
    let mut scale = 1;
    loop {
        for step in [4, 8, 20, 40] {
            if step * scale >= peak {
                return step * scale;
            }
        }
        scale *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn the_chart_names_its_totals_and_scales_to_its_peak() {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let minutes: Vec<MinuteCounts> = (0..60)
            .map(|i| MinuteCounts {
                minute: start + Duration::minutes(i),
                received: i,
                applied: i / 2,
            })
            .collect();
        let svg = render(&minutes);
        assert!(svg.contains("1770 received, 870 applied"), "{svg}");
        assert!(
            svg.contains(">80</text>"),
            "the axis tops at 80 for a peak of 59"
        );
        assert!(svg.contains(">10:00</text>") && svg.contains(">10:59</text>"));
        assert!(render(&[]).ends_with("</svg>"));
        assert_eq!(nice_ceiling(0), 4);
        assert_eq!(nice_ceiling(9), 20);
        assert_eq!(nice_ceiling(4_100), 8_000);
    }
}
