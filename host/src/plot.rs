//! Figures for recipes, written as SVG with `plotters` (SVG backend only;
//! text is laid out with plotters' built-in font metrics, so no system
//! fonts are needed): grouped bar charts (DecRS Figure 4: one group of bars
//! per user group, one bar per method) and 2-D scatter plots with one
//! colour per series (CP2Rec Figure 4: the proxy embeddings c against the
//! purified embeddings z', projected by PCA), and line charts (`host
//! report`'s training curves).

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// A grouped bar chart: one group per category, one bar per series.
#[derive(Clone, Debug, PartialEq)]
pub struct Bars {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// (series name, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
}

impl Bars {
    /// Every series has one finite value per category, and there is at
    /// least one category and one series.
    pub fn validate(&self) -> Result<(), String> {
        if self.categories.is_empty() {
            return Err("plot_bars: 'categories' must hold at least one name".into());
        }
        if self.series.is_empty() {
            return Err("plot_bars: 'series' must hold at least one #{name: [values]}".into());
        }
        for (name, v) in &self.series {
            if v.len() != self.categories.len() {
                return Err(format!(
                    "plot_bars: series '{name}' has {} values, expected one per category ({})",
                    v.len(),
                    self.categories.len()
                ));
            }
            if let Some(x) = v.iter().find(|x| !x.is_finite()) {
                return Err(format!(
                    "plot_bars: series '{name}' holds a non-finite value ({x})"
                ));
            }
        }
        Ok(())
    }
}

/// Bar colours (the Tableau 10 palette).
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The series legend (upper right) and the written file, for every chart.
fn finish<'a>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    e: &dyn Fn(&dyn std::fmt::Display) -> String,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// Write `bars` as an SVG file at `path`.
pub fn write_bars_svg(path: &Path, bars: &Bars) -> Result<(), String> {
    bars.validate()?;
    let e = |err: &dyn std::fmt::Display| format!("plot_bars: {}: {err}", path.display());
    let (nc, ns) = (bars.categories.len(), bars.series.len());
    let values = bars.series.iter().flat_map(|(_, v)| v.iter().copied());
    let (lo, hi) = values.fold((0f64, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (y0, y1) = (
        if lo < 0.0 { lo - 0.08 * span } else { 0.0 },
        // Headroom for the legend (upper right).
        if hi > 0.0 || lo == 0.0 {
            hi + 0.3 * span
        } else {
            0.0
        },
    );
    let width = (160 + 60 * nc * ns.max(1)).clamp(480, 1600) as u32;
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&bars.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..nc as f64, y0..y1)
        .map_err(|x| e(&x))?;
    let categories = bars.categories.clone();
    let label = move |x: &f64| {
        // Category names at the group centres (ticks at c + 0.5).
        let c = x.floor();
        if (x - c - 0.5).abs() < 1e-6 && (c as usize) < categories.len() {
            categories[c as usize].clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(nc * 2 + 1)
        .x_label_formatter(&label)
        .y_desc(&bars.y_label)
        .draw()
        .map_err(|x| e(&x))?;
    let w = 0.8 / ns as f64;
    for (s, (name, v)) in bars.series.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        chart
            .draw_series(v.iter().enumerate().map(|(c, &y)| {
                let x = c as f64 + 0.1 + s as f64 * w;
                Rectangle::new([(x, 0.0), (x + w, y)], colour.filled())
            }))
            .map_err(|x| e(&x))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    finish(&mut chart, &root, &e)
}

/// A scatter plot: one colour per series of (x, y) points.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// (series name, points).
    pub series: Vec<(String, Vec<[f64; 2]>)>,
}

/// The range of `values` padded by 5% on each side (by 1 when they are all equal).
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    (lo - pad)..(hi + pad)
}

/// An x-y chart's frame: canvas size, caption, axes with their labels.
struct XyFrame<'a> {
    size: (u32, u32),
    y_label_area: u32,
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
}

type XyChart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl XyFrame<'_> {
    /// Draw the frame over `x` x `y` into an SVG at `path`, let `series`
    /// draw the data, then the legend and the file ([`finish`]).
    fn draw(
        &self,
        path: &Path,
        x: std::ops::Range<f64>,
        y: std::ops::Range<f64>,
        e: &dyn Fn(&dyn std::fmt::Display) -> String,
        series: impl FnOnce(&mut XyChart<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        let root = SVGBackend::new(path, self.size).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(self.y_label_area)
            .build_cartesian_2d(x, y)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .draw()
            .map_err(|x| e(&x))?;
        series(&mut chart)?;
        finish(&mut chart, &root, e)
    }
}

/// A line chart: one polyline (with point markers) per series.
#[derive(Clone, Debug, PartialEq)]
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// (series name, (x, y) points in x order).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Write `lines` as an SVG file at `path`.
pub fn write_lines_svg(path: &Path, lines: &Lines) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| format!("line chart: {}: {err}", path.display());
    let all: Vec<(f64, f64)> = lines
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    if all.is_empty() {
        return Err(format!("line chart: {}: no points", path.display()));
    }
    if all.iter().any(|p| !p.0.is_finite() || !p.1.is_finite()) {
        return Err(format!(
            "line chart: {}: a point holds a non-finite coordinate",
            path.display()
        ));
    }
    let frame = XyFrame {
        size: (640, 420),
        y_label_area: 64,
        title: &lines.title,
        x_label: &lines.x_label,
        y_label: &lines.y_label,
    };
    let x = padded_range(all.iter().map(|p| p.0));
    let y = padded_range(all.iter().map(|p| p.1));
    frame.draw(path, x, y, &e, |chart| {
        for (s, (name, pts)) in lines.series.iter().enumerate() {
            let colour = COLOURS[s % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 12, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2, colour.filled())))
                .map_err(|x| e(&x))?;
        }
        Ok(())
    })
}

/// Write `sc` as an SVG file at `path` (points as small filled circles).
pub fn write_scatter_svg(path: &Path, sc: &Scatter) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| format!("scatter plot: {}: {err}", path.display());
    let all: Vec<[f64; 2]> = sc
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    if all.is_empty() {
        return Err("scatter plot: no points".into());
    }
    if all.iter().flatten().any(|v| !v.is_finite()) {
        return Err("scatter plot: a point holds a non-finite coordinate".into());
    }
    let frame = XyFrame {
        size: (640, 520),
        y_label_area: 56,
        title: &sc.title,
        x_label: &sc.x_label,
        y_label: &sc.y_label,
    };
    let x = padded_range(all.iter().map(|p| p[0]));
    let y = padded_range(all.iter().map(|p| p[1]));
    frame.draw(path, x, y, &e, |chart| {
        for (s, (name, pts)) in sc.series.iter().enumerate() {
            let colour = COLOURS[s % COLOURS.len()];
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| Circle::new((p[0], p[1]), 2, colour.mix(0.6).filled())),
                )
                .map_err(|x| e(&x))?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, colour.filled()));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_chart_svg() {
        let dir = std::env::temp_dir().join(format!("causalrec-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lines.svg");
        let lines = Lines {
            title: "loss per epoch".into(),
            x_label: "epoch".into(),
            y_label: "loss".into(),
            series: vec![
                ("MF".into(), vec![(1.0, 0.5), (2.0, 0.4), (3.0, 0.35)]),
                ("FM".into(), vec![(1.0, 0.6), (2.0, 0.45)]),
            ],
        };
        write_lines_svg(&path, &lines).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("loss per epoch"));
        // One marker per point (5); the legend draws lines, not circles.
        assert_eq!(svg.matches("<circle").count(), 5, "{svg}");
        // Per series colour: its polyline and its legend stroke.
        for colour in ["#1F77B4", "#FF7F0E"] {
            let n = svg
                .lines()
                .filter(|l| {
                    l.starts_with("<polyline") && l.contains(&format!("stroke=\"{colour}\""))
                })
                .count();
            assert_eq!(n, 2, "{colour}: {svg}");
        }
        let bad = Lines {
            series: vec![("x".into(), vec![(0.0, f64::NAN)])],
            ..lines
        };
        assert!(write_lines_svg(&path, &bad)
            .unwrap_err()
            .contains("non-finite"));
    }

    #[test]
    fn grouped_bars_svg() {
        let dir = std::env::temp_dir().join(format!("causalrec-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bars.svg");
        let bars = Bars {
            title: "Recall@20 by drift".into(),
            y_label: "recall@20".into(),
            categories: vec!["eta>0".into(), "eta>1".into(), "eta>2".into()],
            series: vec![
                ("FM".into(), vec![0.1, 0.2, 0.3]),
                ("DecFM".into(), vec![0.15, 0.25, 0.35]),
            ],
        };
        write_bars_svg(&path, &bars).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Recall@20 by drift"));
        // category names (escaped) at the group centres
        for c in ["eta&gt;0", "eta&gt;1", "eta&gt;2"] {
            assert_eq!(svg.matches(c).count(), 1, "{c}");
        }
        // Bars are filled with the series colours: 3 per series, plus one
        // legend swatch each.
        let fm = svg.matches("fill=\"#1F77B4\"").count();
        let dec = svg.matches("fill=\"#FF7F0E\"").count();
        assert_eq!((fm, dec), (4, 4), "{svg}");
        let rects = svg.matches("<rect").count();
        // 6 bars + 2 legend swatches + the background + the legend box's
        // fill and border
        assert_eq!(rects, 11, "{svg}");
    }

    #[test]
    fn bad_bars_are_errors() {
        let mut b = Bars {
            title: String::new(),
            y_label: String::new(),
            categories: vec!["a".into()],
            series: vec![("s".into(), vec![1.0, 2.0])],
        };
        assert!(b
            .validate()
            .unwrap_err()
            .contains("series 's' has 2 values"));
        b.series[0].1 = vec![f64::NAN];
        assert!(b.validate().unwrap_err().contains("non-finite"));
        b.categories.clear();
        assert!(b.validate().unwrap_err().contains("'categories'"));
    }

    #[test]
    fn scatter_svg_has_one_circle_per_point() {
        let dir = std::env::temp_dir().join(format!("causalrec-scatter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pca.svg");
        let sc = Scatter {
            title: "c vs z'".into(),
            x_label: "PC1".into(),
            y_label: "PC2".into(),
            series: vec![
                ("c".into(), vec![[0.0, 1.0], [1.0, 2.0], [2.0, 0.5]]),
                ("z'".into(), vec![[-1.0, -1.0], [-2.0, 0.0]]),
            ],
        };
        write_scatter_svg(&path, &sc).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(svg.starts_with("<svg") && svg.contains("c vs z&apos;") || svg.contains("c vs z'"));
        // 5 points + 2 legend markers
        assert_eq!(svg.matches("<circle").count(), 7, "{svg}");
        let bad = Scatter {
            series: vec![("c".into(), vec![[f64::NAN, 0.0]])],
            ..sc.clone()
        };
        assert!(write_scatter_svg(&path, &bad)
            .unwrap_err()
            .contains("non-finite"));
        let empty = Scatter {
            series: vec![],
            ..sc
        };
        assert!(write_scatter_svg(&path, &empty)
            .unwrap_err()
            .contains("no points"));
    }
}
