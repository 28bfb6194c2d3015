//! Live charts, drawn with plotters into SVG.
//!
//! The chart's SVG holds only what this code writes (numbers, times,
//! colours): names that come from events (levels, subjects) are shown in the
//! HTML legend beside it, as text, so no event content is ever parsed as
//! markup.

use crate::api::{ProjectionBody, Window};
use crate::format;
use leptos::prelude::*;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Width and height of the drawing, in SVG units (it scales to its box).
const SIZE: (u32, u32) = (960, 260);
/// Points drawn at most: longer windows are averaged down to this.
const MAX_POINTS: usize = 240;

/// The per-second history the chart draws (the `rate_history` projection).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Start of the first bucket (Unix ms).
    pub start_ms: i64,
    /// Bucket width (ms).
    pub step_ms: i64,
    /// All events per bucket.
    pub total: Vec<u64>,
    /// Per level, per bucket.
    pub levels: BTreeMap<String, Vec<u64>>,
}

impl History {
    /// The history in a projection's body, if it is one.
    pub fn from_body(body: ProjectionBody) -> Option<History> {
        match body {
            ProjectionBody::RateHistory {
                start_ms,
                step_ms,
                total,
                levels,
            } => Some(History {
                start_ms,
                step_ms,
                total,
                levels,
            }),
            _ => None,
        }
    }
}

/// A band of the stacked chart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Band {
    /// Its name in the legend.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub color: &'static str,
    /// Events in the window.
    pub count: u64,
}

/// A colour, red, green, blue.
type Rgb = (u8, u8, u8);

/// Levels, bottom band first, with their colours (the stylesheet's).
const LEVELS: [(&str, Rgb); 6] = [
    ("fatal", (190, 40, 60)),
    ("error", (235, 80, 73)),
    ("warn", (214, 160, 40)),
    ("info", (78, 161, 255)),
    ("debug", (125, 135, 150)),
    ("trace", (100, 108, 120)),
];
const OTHER: Rgb = (63, 185, 130);

fn hex((r, g, b): Rgb) -> &'static str {
    // The palette is fixed: map each colour to its literal.
    match (r, g, b) {
        (190, 40, 60) => "#be283c",
        (235, 80, 73) => "#eb5049",
        (214, 160, 40) => "#d6a028",
        (78, 161, 255) => "#4ea1ff",
        (125, 135, 150) => "#7d8796",
        (100, 108, 120) => "#646c78",
        _ => "#3fb982",
    }
}

/// A y-axis label: whole numbers as such, small fractions to one decimal.
fn axis(y: f64) -> String {
    if y >= 100.0 {
        format::thousands(y.round() as u64)
    } else if y.fract().abs() < 1e-9 {
        format!("{y:.0}")
    } else {
        format!("{y:.1}")
    }
}

/// The chart for the last `window` of `h`: the SVG, the bands (for the
/// legend) and the events in the window.
pub fn render(h: &History, window: Window) -> (String, Vec<Band>, u64) {
    let step = h.step_ms.max(1);
    let want = (window.ms() / step).max(1) as usize;
    // The newest bucket is the second still under way: left out, so the
    // line does not dip at the right edge.
    let n = h.total.len().saturating_sub(1);
    let from = n.saturating_sub(want);
    let tail = |v: &[u64]| -> Vec<u64> {
        let mut out = vec![0; want.saturating_sub(n - from)];
        out.extend_from_slice(&v[from.min(v.len())..n.min(v.len())]);
        out.resize(want, 0);
        out
    };
    let total = tail(&h.total);
    // Bands bottom-up: known levels, then events with no level.
    let mut bands: Vec<(String, Rgb, Vec<u64>)> = Vec::new();
    let mut leveled = vec![0u64; want];
    for (name, color) in LEVELS {
        if let Some(v) = h.levels.get(name) {
            let v = tail(v);
            for (acc, x) in leveled.iter_mut().zip(&v) {
                *acc += x;
            }
            bands.push((name.to_string(), color, v));
        }
    }
    let other: Vec<u64> = total
        .iter()
        .zip(&leveled)
        .map(|(t, l)| t.saturating_sub(*l))
        .collect();
    bands.push(("no level".to_string(), OTHER, other));

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
    let start = h.start_ms + from as i64 * step - (want - (n - from)) as i64 * step;
    let x_ms = move |x: f64| start + (x * per as f64) as i64 * step;

    let mut svg = String::new();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let drawn = (|| -> Result<(), String> {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let grey = RGBColor(139, 149, 165);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(26)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..points.max(2) as f64 - 1.0, 0f64..ymax)
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
            .x_label_formatter(&|x| format::clock(x_ms(*x))[..8].to_string())
            .y_label_formatter(&|y| axis(*y))
            .draw()
            .map_err(|x| e(&x))?;
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
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
        Ok(())
    })();
    if drawn.is_err() {
        svg.clear();
    }
    let legend = bands
        .into_iter()
        .map(|(name, color, v)| Band {
            name,
            color: hex(color),
            count: v.iter().sum(),
        })
        .filter(|b| b.count > 0 || b.name != "no level")
        .collect();
    (svg, legend, total.iter().sum())
}

/// Events per second by level, stacked, over a chosen window; redrawn on
/// every change of the `rate_history` view.
#[component]
pub fn RateChart() -> impl IntoView {
    let history = RwSignal::new(None::<History>);
    let window = RwSignal::new(Window::M15);

    #[cfg(feature = "hydrate")]
    {
        // After hydration (the shell's effect, made first, has opened the
        // connection by then); once.
        let key: StoredValue<Option<String>> = StoredValue::new(None);
        Effect::new(move |done: Option<()>| {
            if done.is_none() {
                let view = crate::wire::View::Projection {
                    name: "rate_history".into(),
                    window: Window::H1,
                };
                let k = crate::live::watch(view, move |state| {
                    if let Some(h) = state.projection().and_then(|p| History::from_body(p.body)) {
                        history.set(Some(h));
                    }
                });
                key.set_value(Some(k));
            }
        });
        on_cleanup(move || {
            if let Some(k) = key.get_value() {
                crate::live::unwatch(&k);
            }
        });
    }

    let drawn = Memo::new(move |_| history.with(|h| h.as_ref().map(|h| render(h, window.get()))));
    let svg = move || drawn.with(|d| d.as_ref().map(|d| d.0.clone()).unwrap_or_default());
    let total = move || drawn.with(|d| d.as_ref().map_or(0, |d| d.2));
    let bands = move || drawn.with(|d| d.as_ref().map(|d| d.1.clone()).unwrap_or_default());
    let choices = [
        (Window::M1, "1 min"),
        (Window::M15, "15 min"),
        (Window::H1, "1 h"),
    ];

    view! {
        <section class="panel chart-panel">
            <div class="chart-head">
                <h2>"Events per second, by level"</h2>
                <span class="spacer"></span>
                <div class="seg" role="group" aria-label="Window">
                    {choices
                        .into_iter()
                        .map(|(w, label)| {
                            view! {
                                <button
                                    class=move || if window.get() == w { "seg-btn on" } else { "seg-btn" }
                                    aria-pressed=move || (window.get() == w).to_string()
                                    data-testid=format!("chart-window-{}", w.as_str())
                                    on:click=move |_| window.set(w)
                                >
                                    {label}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </div>
            <Show
                when=move || drawn.with(Option::is_some)
                fallback=|| view! { <div class="chart chart-empty">"Waiting for the live connection…"</div> }
            >
                <div
                    class="chart"
                    data-testid="rate-chart"
                    data-total=move || total().to_string()
                    role="img"
                    aria-label=move || format!("Events per second by level; {} events in the window", total())
                    inner_html=svg
                ></div>
            </Show>
            <ul class="legend" data-testid="rate-legend">
                <For each=bands key=|b| b.clone() let:band>
                    <li>
                        <span class="swatch" style:background=band.color></span>
                        <span class="legend-name">{band.name.clone()}</span>
                        <span class="legend-count">{format::thousands(band.count)}</span>
                    </li>
                </For>
            </ul>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> History {
        let n = 3_600;
        let mut levels = BTreeMap::new();
        levels.insert("error".to_string(), vec![1; n]);
        levels.insert("info".to_string(), vec![3; n]);
        History {
            start_ms: 1_764_144_000_000,
            step_ms: 1_000,
            total: vec![5; n],
            levels,
        }
    }

    #[test]
    fn draws_the_window_as_stacked_bands() {
        let (svg, bands, total) = render(&history(), Window::M1);
        assert!(svg.starts_with("<svg"), "{svg:.80}");
        assert!(
            svg.contains("<polygon") || svg.contains("<path"),
            "areas drawn"
        );
        assert_eq!(total, 300, "60 whole seconds of 5 a second");
        let counts: Vec<(String, u64)> = bands.iter().map(|b| (b.name.clone(), b.count)).collect();
        assert_eq!(
            counts,
            vec![
                ("error".to_string(), 60),
                ("info".to_string(), 180),
                ("no level".to_string(), 60)
            ]
        );
        let (_, _, hour) = render(&history(), Window::H1);
        assert_eq!(hour, 17_995, "the second under way is left out");
        assert_eq!(
            (axis(50.0), axis(2.5), axis(1234.4)),
            ("50".into(), "2.5".into(), "1,234".into())
        );
    }

    #[test]
    fn a_short_history_is_padded_not_stretched() {
        let mut h = history();
        h.total = vec![2; 11];
        h.levels.clear();
        let (svg, bands, total) = render(&h, Window::M1);
        assert!(!svg.is_empty());
        assert_eq!(total, 20);
        assert_eq!(bands.len(), 1);
    }
}
