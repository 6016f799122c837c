//! Charts as PNG files: loss curves, learning-rate sweeps, activation telemetry.

mod pictures;
mod training;

pub use pictures::{plot_pictures, Tile};
pub use training::{plot_log, plot_records};

use crate::error::{Error, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend's label.
    pub name: String,
    /// `(x, y)` points, in order; non-finite points are left out.
    pub points: Vec<(f64, f64)>,
}

/// A chart: axes, labels and lines.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Caption above the chart.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// A logarithmic x axis (learning rates).
    pub log_x: bool,
    /// The lines.
    pub series: Vec<Series>,
}

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws `charts` one above the other into a PNG of `width` by `height * charts.len()` pixels.
pub fn plot_png(path: impl AsRef<Path>, charts: &[Chart], (width, height): (u32, u32)) -> Result<()> {
    register_font();
    let path = path.as_ref();
    let err = |e: &dyn std::fmt::Display| Error::Plot { path: path.to_path_buf(), reason: e.to_string() };
    let rows = charts.len().max(1);
    let root = BitMapBackend::new(path, (width, height * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, chart) in root.split_evenly((rows, 1)).iter().zip(charts) {
        let (xr, yr) = bounds(chart);
        let drawn = if chart.log_x { draw(area, chart, xr.log_scale(), yr) } else { draw(area, chart, xr, yr) };
        drawn.map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

fn bounds(chart: &Chart) -> (Range<f64>, Range<f64>) {
    let pts = || chart.series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let fold = |f: fn(&(f64, f64)) -> f64| {
        pts().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    // Values past a quarter of f64's range (a diverged loss of 1e308) are clipped, so that the
    // padded range and its width stay finite: the axis code divides that width into ticks.
    const LIMIT: f64 = f64::MAX / 4.0;
    let pad = |(lo, hi): (f64, f64)| {
        if !lo.is_finite() {
            return 0.0..1.0;
        }
        let (lo, hi) = (lo.clamp(-LIMIT, LIMIT), hi.clamp(-LIMIT, LIMIT));
        let d = if hi > lo { hi * 0.05 - lo * 0.05 } else { lo.abs().max(1.0) * 0.05 };
        lo - d..hi + d
    };
    let (xlo, xhi) = fold(|p| p.0);
    let x = if chart.log_x && xlo > 0.0 { xlo..xhi.max(xlo * 1.0001) } else { pad((xlo, xhi)) };
    (x, pad(fold(|p| p.1)))
}

fn draw<DB, X>(area: &DrawingArea<DB, Shift>, chart: &Chart, x: X, y: Range<f64>) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(|x| e(&x))?;
    let log = chart.log_x;
    let fmt_x = move |v: &f64| if log { format!("{v:.0e}") } else { format!("{v}") };
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_label_formatter(&fmt_x)
        .draw()
        .map_err(|x| e(&x))?;
    for (i, s) in chart.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts = s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite());
        ctx.draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    if chart.series.len() > 1 {
        ctx.configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()
            .map_err(|x| e(&x))?;
    }
    Ok(())
}

/// The lesson's telemetry of a training run from [`ActivationStats`](crate::ActivationStats): each
/// layer's mean and standard deviation against the step, the fraction of near-zero activations,
/// and each layer's histograms over time (one column a batch, its bins upwards, brighter where
/// more values fall: "the colorful dimension").
pub fn plot_activations(path: impl AsRef<Path>, layers: &[crate::module::LayerStats]) -> Result<()> {
    register_font();
    let path = path.as_ref();
    let err = |e: &dyn std::fmt::Display| Error::Plot { path: path.to_path_buf(), reason: e.to_string() };
    let line = |title: &str, y: &str, f: &dyn Fn(&crate::module::LayerStats) -> Vec<f64>| Chart {
        title: title.into(),
        x_label: "batch".into(),
        y_label: y.into(),
        log_x: false,
        series: layers
            .iter()
            .map(|l| Series {
                name: format!("layer {}", l.name),
                points: f(l).into_iter().enumerate().map(|(i, v)| (i as f64, v)).collect(),
            })
            .collect(),
    };
    let charts = [
        line("Activation mean per layer", "mean", &|l| l.means.clone()),
        line("Activation standard deviation per layer", "std", &|l| l.stds.clone()),
        line("Near-zero activations (first two histogram bins)", "fraction", &|l| l.near_zero()),
    ];
    let (width, height) = (1200u32, 300u32);
    let root = BitMapBackend::new(path, (width, height * 4)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let rows = root.split_evenly((4, 1));
    for (area, chart) in rows.iter().zip(&charts) {
        let (xr, yr) = bounds(chart);
        draw(area, chart, xr, yr).map_err(|e| err(&e))?;
    }
    let cells = rows[3].split_evenly((1, layers.len().max(1)));
    for (area, layer) in cells.iter().zip(layers) {
        heatmap(area, layer).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

/// Most columns a heatmap draws: longer runs average neighbouring batches into one column.
const HEATMAP_COLUMNS: usize = 300;

fn heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    layer: &crate::module::LayerStats,
) -> std::result::Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let hists = &layer.histograms;
    let bins = hists.first().map_or(1, Vec::len).max(1);
    let per = hists.len().div_ceil(HEATMAP_COLUMNS).max(1);
    let columns: Vec<Vec<f64>> = hists
        .chunks(per)
        .map(|group| {
            (0..bins).map(|b| group.iter().map(|h| h.get(b).copied().unwrap_or(0) as f64).sum::<f64>()).collect()
        })
        .collect();
    let peak = columns.iter().flatten().map(|&c| c.ln_1p()).fold(0f64, f64::max).max(1e-9);
    let mut ctx = ChartBuilder::on(area)
        .caption(format!("layer {} histogram", layer.name), ("sans-serif", 14))
        .margin(6)
        .x_label_area_size(20)
        .y_label_area_size(28)
        .build_cartesian_2d(0..columns.len().max(1), 0..bins)
        .map_err(|x| e(&x))?;
    ctx.configure_mesh().disable_mesh().x_labels(3).y_labels(3).draw().map_err(|x| e(&x))?;
    let cells = columns.iter().enumerate().flat_map(|(x, col)| {
        col.iter().enumerate().map(move |(y, &c)| {
            let v = c.ln_1p() / peak;
            let color = HSLColor(0.7 - 0.55 * v, 0.9, 0.08 + 0.55 * v);
            Rectangle::new([(x, y), (x + 1, y + 1)], color.filled())
        })
    });
    ctx.draw_series(cells).map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_give_a_finite_range_and_a_drawing() {
        let points = vec![(0.0, 1e308), (1.0, -1e308), (2.0, f64::MAX), (3.0, 0.5)];
        let chart = Chart { series: vec![Series { name: "loss".into(), points }], ..Default::default() };
        let (x, y) = bounds(&chart);
        for r in [&x, &y] {
            assert!(r.start.is_finite() && r.end.is_finite() && (r.end - r.start).is_finite(), "{r:?}");
        }
        let png = std::env::temp_dir().join(format!("minibatch-huge-{}.png", std::process::id()));
        plot_png(&png, &[chart], (300, 200)).unwrap();
        std::fs::remove_file(&png).unwrap();
    }
}
