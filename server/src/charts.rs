//! Charts, drawn on the server with plotters into SVG: the live `chart`
//! view of the protocol and `GET /api/v1/charts/{name}` (JSON, or the bare
//! SVG with `.svg`, for export) both come from here. Drawing here rather
//! than in the browser keeps plotters out of the wasm bundle and draws each
//! chart once per change for every client watching it.
//!
//! The SVG holds only what this code writes (numbers, times, colours):
//! names that come from events are shown in the HTML legend beside it, as
//! text, so the browser can insert the drawing as markup and no event
//! content is ever parsed as markup.

use crate::projection::builtin::Projections;
use crate::store::Store;
use app::api::{
    Chart, ChartBand, MetricFilter, MetricPoint, ProjectionBody, ProjectionState, Window,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// The charts there are: name and what it shows.
pub const CHARTS: [(&str, &str); 3] = [
    ("levels", "events per second, stacked by log level"),
    (
        "flows",
        "flows completed, compensated and stalled per time bucket",
    ),
    (
        "metrics",
        "p50/p90/p99 over time of a metric's series (filter: metric=, tags=, p=)",
    ),
];

/// Chart `name` over `window` from `projections` as of `now_ms`; `filter`
/// is the chart's query string (see [`app::wire::View::Chart`]). The error
/// says what is wrong with the name or the filter.
pub fn draw(
    projections: &Projections,
    store: &Store,
    name: &str,
    filter: &str,
    window: Window,
    now_ms: i64,
    live: bool,
) -> Result<Chart, String> {
    let made = |(svg, bands, total): (String, Vec<ChartBand>, u64)| Chart {
        name: name.to_string(),
        window,
        at_ms: now_ms,
        live,
        svg,
        bands,
        total,
    };
    match name {
        "levels" => {
            if !filter.is_empty() {
                return Err("the levels chart takes no filter".into());
            }
            let body = projections
                .snapshot(store, "rate_history", Window::H1, now_ms)
                .ok_or("no rate history")?;
            let history = ProjectionState {
                name: "rate_history".into(),
                window: None,
                at_ms: now_ms,
                last_event_id: projections.last_id(),
                live,
                scoped: false,
                body,
            };
            chart(name, &history, window).ok_or_else(|| "no rate history".into())
        }
        "flows" => {
            if !filter.is_empty() {
                return Err("the flows chart takes no filter".into());
            }
            let (step, buckets) = projections.flows().history(window, now_ms);
            Ok(made(flows_chart(step, &buckets, window, now_ms)))
        }
        "metrics" => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(filter)
                .map_err(|e| format!("cannot read the filter {filter:?}: {e}"))?;
            let f = MetricFilter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            if f.metric.is_empty() {
                return Err("choose a metric: metric=<name> (and tags=k=v,… to narrow)".into());
            }
            let (step, points) = projections.metric_history(store, &f, window, now_ms);
            Ok(made(metrics_chart(
                step,
                &points,
                &f.shown(),
                window,
                now_ms,
            )))
        }
        other => {
            let names: Vec<&str> = CHARTS.iter().map(|c| c.0).collect();
            Err(format!(
                "no chart named {other:?}; there are: {}",
                names.join(", ")
            ))
        }
    }
}

/// Flow outcomes, with their colours (the stylesheet's).
const OUTCOMES: [(&str, Rgb); 3] = [
    ("completed", (63, 185, 80)),
    ("compensated", (214, 160, 40)),
    ("stalled", (235, 80, 73)),
];

/// Flows completed, compensated and stalled per bucket of `step` ms over
/// the `window` ending at `now_ms`, one line each: the SVG, the legend and
/// the flows that ended in the window.
fn flows_chart(
    step: i64,
    buckets: &[(i64, [u64; 3])],
    window: Window,
    now_ms: i64,
) -> (String, Vec<ChartBand>, u64) {
    let lines: Vec<Line> = OUTCOMES
        .iter()
        .enumerate()
        .map(|(i, (_, color))| Line {
            color: *color,
            dots: false,
            xy: buckets
                .iter()
                .map(|(t, c)| ((t + step / 2) as f64, c[i] as f64))
                .collect(),
        })
        .collect();
    let svg = lines_over_window(&lines, window, now_ms, &|y| axis(*y));
    let totals: Vec<u64> = (0..3)
        .map(|i| buckets.iter().map(|(_, c)| c[i]).sum())
        .collect();
    let bands = OUTCOMES
        .iter()
        .zip(&totals)
        .map(|((name, c), n)| ChartBand {
            name: name.to_string(),
            color: hex(*c),
            count: *n,
        })
        .collect();
    (svg, bands, totals.iter().sum())
}

/// One line of a chart over time.
struct Line {
    color: Rgb,
    /// A dot on each point too.
    dots: bool,
    xy: Vec<(f64, f64)>,
}

/// `lines` over the `window` ending at `now_ms` in the house style, the y
/// axis from 0 to a little over the highest point, labelled by `y_label`.
fn lines_over_window(
    lines: &[Line],
    window: Window,
    now_ms: i64,
    y_label: &dyn Fn(&f64) -> String,
) -> String {
    let ymax = lines
        .iter()
        .flat_map(|l| l.xy.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.15 } else { 1.0 };
    let x_label = |x: &f64| app::format::clock(*x as i64)[..8].to_string();
    draw_svg(
        (now_ms - window.ms()) as f64..now_ms as f64,
        0f64..ymax,
        &x_label,
        y_label,
        |chart| {
            for line in lines {
                let (r, g, b) = line.color;
                let color = RGBColor(r, g, b);
                chart
                    .draw_series(LineSeries::new(line.xy.clone(), color.stroke_width(2)))
                    .map_err(|x| x.to_string())?;
                if line.dots {
                    chart
                        .draw_series(line.xy.iter().map(|c| Circle::new(*c, 3, color.filled())))
                        .map_err(|x| x.to_string())?;
                }
            }
            Ok(())
        },
    )
}

/// Percentile colours: p50, p90, p99.
const PERCENTILE_COLORS: [(u8, Rgb); 3] = [
    (50, (78, 161, 255)),
    (90, (214, 160, 40)),
    (99, (235, 80, 73)),
];

fn percentile(p: &MetricPoint, which: u8) -> f64 {
    match which {
        50 => p.p50,
        90 => p.p90,
        _ => p.p99,
    }
}

/// The chosen percentiles of `points` (buckets of `step` ms) over the
/// `window` ending at `now_ms`, one line each: the SVG, the legend and the
/// samples in the window.
fn metrics_chart(
    step: i64,
    points: &[MetricPoint],
    shown: &[u8],
    window: Window,
    now_ms: i64,
) -> (String, Vec<ChartBand>, u64) {
    // The middle of each bucket, so a bucket's point sits over it.
    let lines: Vec<Line> = PERCENTILE_COLORS
        .iter()
        .filter(|(w, _)| shown.contains(w))
        .map(|(which, color)| Line {
            color: *color,
            dots: true,
            xy: points
                .iter()
                .map(|p| ((p.t_ms + step / 2) as f64, percentile(p, *which)))
                .collect(),
        })
        .collect();
    let svg = lines_over_window(&lines, window, now_ms, &|y| value_label(*y));
    let samples: u64 = points.iter().map(|p| p.count).sum();
    let bands = PERCENTILE_COLORS
        .iter()
        .filter(|(w, _)| shown.contains(w))
        .map(|(w, c)| ChartBand {
            name: format!("p{w}"),
            color: hex(*c),
            count: samples,
        })
        .collect();
    (svg, bands, samples)
}

/// A chart of the house style into SVG: `x` × `y`, a faint horizontal
/// grid, grey labels made by `x_label` and `y_label`, then what `series`
/// draws. Empty if plotters fails.
fn draw_svg(
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_label: &dyn Fn(&f64) -> String,
    y_label: &dyn Fn(&f64) -> String,
    series: impl FnOnce(
        &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    ) -> Result<(), String>,
) -> String {
    let mut svg = String::new();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let drawn = (|| -> Result<(), String> {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let grey = RGBColor(139, 149, 165);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(26)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(grey.mix(0.18))
            .light_line_style(grey.mix(0.0))
            .axis_style(grey.mix(0.5))
            .label_style(("sans-serif", 13).into_font().color(&grey))
            .x_labels(7)
            .y_labels(5)
            .x_label_formatter(x_label)
            .y_label_formatter(y_label)
            .draw()
            .map_err(|x| e(&x))?;
        series(&mut chart)?;
        root.present().map_err(|x| e(&x))?;
        Ok(())
    })();
    if drawn.is_err() {
        svg.clear();
    }
    svg
}

/// A y-axis label for metric values: up to three significant digits.
fn value_label(y: f64) -> String {
    if y >= 1_000.0 {
        app::format::thousands(y.round() as u64)
    } else if y >= 10.0 || y == 0.0 {
        format!("{y:.0}")
    } else if y >= 1.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.3}")
    }
}

/// Width and height of the drawing, in SVG units (it scales to its box).
const SIZE: (u32, u32) = (960, 260);
/// Points drawn at most: longer windows are averaged down to this.
const MAX_POINTS: usize = 240;

/// A colour: red, green, blue.
type Rgb = (u8, u8, u8);

/// Levels, bottom band first, with their colours (the stylesheet's), then
/// the band of events without a level.
const BANDS: [(&str, Rgb); 7] = [
    ("fatal", (190, 40, 60)),
    ("error", (235, 80, 73)),
    ("warn", (214, 160, 40)),
    ("info", (78, 161, 255)),
    ("debug", (125, 135, 150)),
    ("trace", (100, 108, 120)),
    (NO_LEVEL, (63, 185, 130)),
];
const NO_LEVEL: &str = "no level";

fn hex((r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A y-axis label: whole numbers as such, small fractions to one decimal.
fn axis(y: f64) -> String {
    if y >= 100.0 {
        app::format::thousands(y.round() as u64)
    } else if y.fract().abs() < 1e-9 {
        format!("{y:.0}")
    } else {
        format!("{y:.1}")
    }
}

/// Chart `name` over `window`, from the `rate_history` projection's state;
/// `None` for an unknown name or another projection.
pub fn chart(name: &str, history: &ProjectionState, window: Window) -> Option<Chart> {
    if name != "levels" {
        return None;
    }
    let ProjectionBody::RateHistory {
        start_ms,
        step_ms,
        total,
        levels,
    } = &history.body
    else {
        return None;
    };
    let (svg, bands, total) = levels_chart(*start_ms, *step_ms, total, levels, window);
    Some(Chart {
        name: name.to_string(),
        window,
        at_ms: history.at_ms,
        live: history.live,
        svg,
        bands,
        total,
    })
}

/// Events per second by level over the last `window` of a per-bucket
/// history: the SVG, the legend's bands and the events in the window.
fn levels_chart(
    start_ms: i64,
    step_ms: i64,
    all: &[u64],
    levels: &BTreeMap<String, Vec<u64>>,
    window: Window,
) -> (String, Vec<ChartBand>, u64) {
    let step = step_ms.max(1);
    let want = (window.ms() / step).max(1) as usize;
    // The newest bucket is the second still under way: left out, so the
    // line does not dip at the right edge.
    let n = all.len().saturating_sub(1);
    let from = n.saturating_sub(want);
    let tail = |v: &[u64]| -> Vec<u64> {
        let mut out = vec![0; want.saturating_sub(n - from)];
        out.extend_from_slice(&v[from.min(v.len())..n.min(v.len())]);
        out.resize(want, 0);
        out
    };
    let total = tail(all);
    // Bands bottom-up: known levels, then events with no level.
    let mut bands: Vec<(&str, Rgb, Vec<u64>)> = Vec::new();
    let mut leveled = vec![0u64; want];
    for (name, color) in BANDS {
        let v = if name == NO_LEVEL {
            total
                .iter()
                .zip(&leveled)
                .map(|(t, l)| t.saturating_sub(*l))
                .collect()
        } else if let Some(v) = levels.get(name) {
            let v = tail(v);
            for (acc, x) in leveled.iter_mut().zip(&v) {
                *acc += x;
            }
            v
        } else {
            continue;
        };
        bands.push((name, color, v));
    }

    // Average down to at most MAX_POINTS points, as events per second.
    let per = want.div_ceil(MAX_POINTS).max(1);
    let points = want.div_ceil(per);
    let secs = (per as f64 * step as f64 / 1_000.0).max(1e-9);
    let down = |v: &[u64]| -> Vec<f64> {
        v.chunks(per)
            .map(|c| c.iter().sum::<u64>() as f64 / secs)
            .collect()
    };
    let mut cumulative: Vec<Vec<f64>> = Vec::new();
    let mut acc = vec![0f64; points];
    for (_, _, v) in &bands {
        for (a, x) in acc.iter_mut().zip(down(v)) {
            *a += x;
        }
        cumulative.push(acc.clone());
    }
    let ymax = acc.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
    let start = start_ms + from as i64 * step - (want - (n - from)) as i64 * step;
    let x_ms = move |x: f64| start + (x * per as f64) as i64 * step;

    let x_label = |x: &f64| app::format::clock(x_ms(*x))[..8].to_string();
    let svg = draw_svg(
        0f64..points.max(2) as f64 - 1.0,
        0f64..ymax,
        &x_label,
        &|y| axis(*y),
        |chart| {
            // Top band first: each lower band is drawn over the one above it.
            for ((_, (r, g, b), _), cum) in bands.iter().zip(&cumulative).rev() {
                let color = RGBColor(*r, *g, *b);
                chart
                    .draw_series(
                        AreaSeries::new(
                            cum.iter().enumerate().map(|(i, y)| (i as f64, *y)),
                            0.0,
                            color.mix(0.55),
                        )
                        .border_style(color.stroke_width(2)),
                    )
                    .map_err(|x| x.to_string())?;
            }
            Ok(())
        },
    );
    let legend = bands
        .into_iter()
        .map(|(name, color, v)| ChartBand {
            name: name.to_string(),
            color: hex(color),
            count: v.iter().sum(),
        })
        .filter(|b| b.count > 0 || b.name != NO_LEVEL)
        .collect();
    (svg, legend, total.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(n: usize) -> ProjectionState {
        let mut levels = BTreeMap::new();
        levels.insert("error".to_string(), vec![1; n]);
        levels.insert("info".to_string(), vec![3; n]);
        ProjectionState {
            name: "rate_history".into(),
            window: None,
            at_ms: 1_764_144_000_000 + n as i64 * 1_000,
            last_event_id: Some(1),
            live: true,
            scoped: false,
            body: ProjectionBody::RateHistory {
                start_ms: 1_764_144_000_000,
                step_ms: 1_000,
                total: vec![5; n],
                levels,
            },
        }
    }

    #[test]
    fn draws_the_window_as_stacked_bands() {
        let c = chart("levels", &history(3_600), Window::M1).expect("a chart");
        assert!(c.svg.starts_with("<svg"), "{:.80}", c.svg);
        assert!(
            c.svg.contains("<polygon") || c.svg.contains("<path"),
            "areas drawn"
        );
        assert_eq!(c.total, 300, "60 whole seconds of 5 a second");
        let counts: Vec<(String, u64, String)> = c
            .bands
            .iter()
            .map(|b| (b.name.clone(), b.count, b.color.clone()))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("error".to_string(), 60, "#eb5049".to_string()),
                ("info".to_string(), 180, "#4ea1ff".to_string()),
                ("no level".to_string(), 60, "#3fb982".to_string())
            ]
        );
        let hour = chart("levels", &history(3_600), Window::H1).expect("a chart");
        assert_eq!(hour.total, 17_995, "the second under way is left out");
        assert_eq!(
            (axis(50.0), axis(2.5), axis(1234.4)),
            ("50".into(), "2.5".into(), "1,234".into())
        );
        assert!(chart("nope", &history(10), Window::M1).is_none());
    }

    #[test]
    fn a_metric_chart_draws_the_chosen_percentiles() {
        let points: Vec<MetricPoint> = (0..5)
            .map(|i| MetricPoint {
                t_ms: 1_764_144_000_000 + i * 1_000,
                count: 10,
                p50: 10.0,
                p90: 20.0,
                p99: 40.0,
            })
            .collect();
        let now = 1_764_144_005_000;
        let (svg, bands, total) = metrics_chart(1_000, &points, &[50, 99], Window::M1, now);
        assert!(svg.starts_with("<svg"));
        assert_eq!(total, 50);
        let names: Vec<&str> = bands.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, vec!["p50", "p99"]);
        assert!(
            svg.contains("#4EA1FF") || svg.contains("#4ea1ff"),
            "p50's colour drawn"
        );
        assert!(
            !svg.contains("#D6A028") && !svg.contains("#d6a028"),
            "p90 not drawn"
        );
        assert_eq!(
            (value_label(0.25), value_label(2.5), value_label(1500.0)),
            ("0.250".into(), "2.5".into(), "1,500".into())
        );
    }

    #[test]
    fn a_short_history_is_padded_not_stretched() {
        let mut h = history(11);
        if let ProjectionBody::RateHistory { levels, total, .. } = &mut h.body {
            levels.clear();
            *total = vec![2; 11];
        }
        let c = chart("levels", &h, Window::M1).expect("a chart");
        assert!(!c.svg.is_empty());
        assert_eq!(c.total, 20);
        assert_eq!(c.bands.len(), 1, "only the no-level band");
    }
}
