//! Live charts. The server draws them with plotters (see the server's
//! `charts` module) and streams each as a `chart` view, redrawn about once a
//! second; in the past (`at=`) the page fetches the same chart as of then.
//! Drawing on the server keeps plotters out of the wasm bundle.
//!
//! The SVG holds only what the server's code writes (numbers, times,
//! colours), so it is inserted as markup; names that come from events
//! (levels) are shown in the HTML legend beside it, as text.

use crate::api::{Chart, ChartBand, Window};
use crate::format;
use crate::shell::SCOPED_NOTE;
#[cfg(feature = "hydrate")]
use crate::travel::follow;
use crate::travel::use_travel;
use leptos::prelude::*;

/// A chart the server draws (`levels` by default: events per second by
/// level, stacked), over a window of its own or the page's.
#[component]
pub fn RateChart(
    /// The chart's name on the server.
    #[prop(default = "levels")]
    name: &'static str,
    /// Its heading.
    #[prop(default = "Events per second, by level")]
    title: &'static str,
    /// Test id of the drawing.
    #[prop(default = "rate-chart")]
    testid: &'static str,
    /// Test id of its legend.
    #[prop(default = "rate-legend")]
    legend_testid: &'static str,
    /// The page's window, if the page picks it.
    #[prop(optional)]
    window: Option<RwSignal<Window>>,
    /// Whether the page is served with it drawn (see
    /// [`crate::shell::FirstViews`]: the server must put it there).
    #[prop(optional)]
    first: bool,
) -> impl IntoView {
    let own_picker = window.is_none();
    let window = window.unwrap_or_else(|| RwSignal::new(Window::M15));
    let first = first
        .then(|| {
            crate::shell::first_view::<Chart>(crate::shell::first_key(
                "chart",
                name,
                window.get_untracked(),
            ))
        })
        .flatten();
    // A reader with a subject scope is not shown a chart of every subject
    // (the server refuses it too).
    let scoped = crate::shell::scoped();
    let chart = RwSignal::new(if scoped {
        Some(Err(SCOPED_NOTE.to_string()))
    } else {
        first.map(Ok::<Chart, String>)
    });
    let travel = use_travel();

    #[cfg(feature = "hydrate")]
    if !scoped {
        follow(
            move || {
                Some(crate::wire::View::Chart {
                    name: name.into(),
                    window: window.get(),
                    filter: String::new(),
                })
            },
            crate::wire::ViewState::chart,
            move |at| {
                let url = format!(
                    "/api/v1/charts/{name}?window={}&at={}",
                    window.get().as_str(),
                    crate::travel::at_param(at)
                );
                Some(crate::fetch::get_json::<Chart>(url))
            },
            move |c| chart.set(Some(c)),
        );
    }

    let ok = Memo::new(move |_| chart.with(|c| c.as_ref().and_then(|c| c.as_ref().ok().cloned())));
    let svg = move || ok.with(|c| c.as_ref().map(|c| c.svg.clone()).unwrap_or_default());
    let total = move || ok.with(|c| c.as_ref().map_or(0, |c| c.total));
    let bands = move || ok.with(|c| c.as_ref().map(|c| c.bands.clone()).unwrap_or_default());
    let fallback = move || {
        chart.with(|c| match c {
            Some(Err(e)) if e == SCOPED_NOTE => e.clone(),
            Some(Err(e)) => format!("Cannot draw this moment: {e}"),
            _ if travel.at.get().is_some() => "Rebuilding the chart for this moment…".to_string(),
            _ => "Waiting for the live connection…".to_string(),
        })
    };

    view! {
        <section class="panel chart-panel">
            <div class="chart-head">
                <h2>{title}</h2>
                <span class="spacer"></span>
                <a
                    class="btn btn-small"
                    href=move || {
                        let at = travel
                            .at
                            .get()
                            .map(|t| format!("&at={}", crate::travel::at_param(t)))
                            .unwrap_or_default();
                        format!("/api/v1/charts/{name}.svg?window={}{at}", window.get().as_str())
                    }
                    download=format!("eventscope-{name}.svg")
                    data-testid="chart-export"
                >
                    "SVG"
                </a>
                {own_picker.then(|| view! {
                    <WindowPicker current=Signal::derive(move || window.get()) pick=Callback::new(move |w| window.set(w)) testid="chart-window"/>
                })}
            </div>
            <Show
                when=move || ok.with(Option::is_some)
                fallback=move || view! { <div class="chart chart-empty" data-testid="chart-empty">{fallback}</div> }
            >
                <div
                    class="chart"
                    data-testid=testid
                    data-total=move || total().to_string()
                    data-at=move || ok.with(|c| c.as_ref().map(|c| c.at_ms.to_string()).unwrap_or_default())
                    role="img"
                    aria-label=move || format!("{title}; {} in the window", total())
                    inner_html=svg
                ></div>
            </Show>
            <Legend bands=Signal::derive(bands) testid=legend_testid/>
        </section>
    }
}

/// A chart's legend: a swatch, the band's name (as text: names can come
/// from events) and its count.
#[component]
pub fn Legend(bands: Signal<Vec<ChartBand>>, testid: &'static str) -> impl IntoView {
    view! {
        <ul class="legend" data-testid=testid>
            <For each=move || bands.get() key=|b| b.clone() let:band>
                <li>
                    <span class="swatch" style:background=band.color.clone()></span>
                    <span class="legend-name">{band.name.clone()}</span>
                    <span class="legend-count">{format::thousands(band.count)}</span>
                </li>
            </For>
        </ul>
    }
}

/// The windows a chart offers.
pub const WINDOW_CHOICES: [(Window, &str); 3] = [
    (Window::M1, "1 min"),
    (Window::M15, "15 min"),
    (Window::H1, "1 h"),
];

/// A chart's window choices: `current` shown pressed, `pick` told of a
/// click; each button's test id is `{testid}-{window}`.
#[component]
pub fn WindowPicker(
    current: Signal<Window>,
    pick: Callback<Window>,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <div class="seg" role="group" aria-label="Window">
            {WINDOW_CHOICES
                .into_iter()
                .map(|(w, label)| {
                    view! {
                        <button
                            class=move || if current.get() == w { "seg-btn on" } else { "seg-btn" }
                            aria-pressed=move || (current.get() == w).to_string()
                            data-testid=format!("{testid}-{}", w.as_str())
                            on:click=move |_| pick.run(w)
                        >
                            {label}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}
