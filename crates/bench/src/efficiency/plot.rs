//! SVG charts for the report (plotters' SVG backend with its built-in text estimate: no font
//! or bitmap library needed; viewers render the text).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Dashed,
    Points,
    LinePoints,
}

/// One series of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

/// A shaded rectangle (e.g. the goal region) with a label.
#[derive(Debug, Clone)]
pub struct Region {
    pub label: String,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

/// A chart's texts and ranges.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

/// The colours of the report's series.
pub const BLUE_: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN_: RGBColor = RGBColor(44, 160, 44);
pub const GREY: RGBColor = RGBColor(110, 110, 110);
pub const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// Draws `series` (points outside the ranges are left out) and `regions` to an SVG at `path`.
pub fn draw(
    path: &Path,
    chart: &Chart<'_>,
    series: &[Series],
    regions: &[Region],
) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(chart.x.0..chart.x.1, chart.y.0..chart.y.1)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;
    let inside = |p: &(f64, f64)| {
        (chart.x.0..=chart.x.1).contains(&p.0) && (chart.y.0..=chart.y.1).contains(&p.1)
    };
    for r in regions {
        let style = GREEN_.mix(0.12).filled();
        c.draw_series(std::iter::once(Rectangle::new(
            [(r.x.0, r.y.0), (r.x.1, r.y.1)],
            style,
        )))
        .map_err(|e| err(&e))?
        .label(r.label.clone())
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], GREEN_.mix(0.3).filled()));
    }
    for s in series {
        let color = s.color;
        let points: Vec<(f64, f64)> = s.points.iter().copied().filter(inside).collect();
        let anno = match s.style {
            Style::Line | Style::LinePoints => c
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?,
            Style::Dashed => c
                .draw_series(DashedLineSeries::new(
                    points.clone(),
                    6,
                    4,
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?,
            Style::Points => c
                .draw_series(points.iter().map(|p| Circle::new(*p, 5, color.filled())))
                .map_err(|e| err(&e))?,
        };
        anno.label(s.label.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
        });
        if s.style == Style::LinePoints {
            c.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_the_labels() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c.svg");
        let chart = Chart {
            title: "memory",
            x_desc: "seconds",
            y_desc: "MiB",
            x: (0.0, 10.0),
            y: (0.0, 100.0),
        };
        let series = [
            Series {
                label: "always-on".into(),
                color: BLUE_,
                style: Style::Line,
                points: vec![(0.0, 90.0), (10.0, 95.0)],
            },
            Series {
                label: "real".into(),
                color: ORANGE,
                style: Style::Points,
                points: vec![(5.0, 20.0), (50.0, 20.0)],
            },
        ];
        let goal = Region {
            label: "goal".into(),
            x: (0.0, 1.0),
            y: (0.0, 10.0),
        };
        draw(&path, &chart, &series, &[goal]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        for text in ["memory", "seconds", "always-on", "real", "goal"] {
            assert!(svg.contains(text), "{text} missing");
        }
        // One in-range point drawn as a circle; the out-of-range one left out.
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    }
}
