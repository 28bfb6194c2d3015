//! The metric explorer (`/explore`): pick a metric, narrow it by tags,
//! choose the window and the percentiles; a chart of those percentiles over
//! time (drawn by the server, the `metrics` chart) and a table of every
//! series it takes, with count, min, mean, p50, p90, p99 and max over the
//! window. Everything chosen is in the URL; in the past (`at=`) both show
//! the state as of then.

use crate::api::{MetricFilter, MetricStats, PERCENTILES, Window, split_series};
use crate::format::{self, value};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The distinct metric names of `series`, sorted.
pub fn metric_names(series: &[MetricStats]) -> Vec<String> {
    let mut names: Vec<String> = series
        .iter()
        .map(|s| split_series(&s.series).0.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The key of the explorer's chart in [`crate::shell::FirstViews`].
pub fn first_chart_key(window: Window, filter: &MetricFilter) -> String {
    format!(
        "{}?{}",
        crate::shell::first_key("chart", "metrics", window),
        filter.to_query()
    )
}

/// The explorer's filter and window from its URL parameters (a bad filter:
/// none, as the page shows it).
pub fn from_params(get: impl Fn(&str) -> Option<String>) -> (MetricFilter, Window) {
    let pairs: Vec<(&str, String)> = ["metric", "tags", "p"]
        .into_iter()
        .filter_map(|k| get(k).map(|v| (k, v)))
        .collect();
    let filter =
        MetricFilter::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap_or_default();
    let window = get("window")
        .as_deref()
        .and_then(Window::parse)
        .unwrap_or(Window::M1);
    (filter, window)
}

/// The metric explorer page.
#[component]
pub fn Explore() -> impl IntoView {
    let query = use_query_map();
    // The filter in the URL; a bad one is shown, and the page carries on
    // without it.
    let parsed = Memo::new(move |_| {
        query.with(|q| {
            MetricFilter::from_pairs(
                ["metric", "tags", "p"]
                    .into_iter()
                    .filter_map(|k| q.get_str(k).map(|v| (k, v))),
            )
        })
    });
    let filter = Memo::new(move |_| parsed.get().unwrap_or_default());
    let filter_error = move || parsed.get().err();
    let window = Memo::new(move |_| {
        query.with(|q| {
            q.get_str("window")
                .and_then(Window::parse)
                .unwrap_or(Window::M1)
        })
    });
    // Served with the series and the chart (see `FirstViews`), then live.
    let (first_stats, first_chart) = {
        let (w, f) = (window.get_untracked(), filter.get_untracked());
        let stats = crate::shell::first_view::<Vec<MetricStats>>(crate::shell::first_key(
            "projection",
            "metrics",
            w,
        ));
        let chart = crate::shell::first_view::<crate::api::Chart>(first_chart_key(w, &f));
        (stats, chart)
    };
    let stats = RwSignal::new(first_stats.map(Ok::<_, String>));
    let chart = RwSignal::new(first_chart.map(Ok::<_, String>));

    #[cfg(feature = "hydrate")]
    {
        crate::travel::follow_projection(
            "metrics",
            move || window.get(),
            |state| crate::api::body_field(state, "metrics", "series"),
            move |s| stats.set(Some(s)),
        );
        let scoped = crate::shell::scoped();
        crate::travel::follow(
            move || {
                let f = filter.get();
                (!f.metric.is_empty() && !scoped).then(|| crate::wire::View::Chart {
                    name: "metrics".into(),
                    window: window.get(),
                    filter: f.to_query(),
                })
            },
            crate::wire::ViewState::chart,
            move |at| {
                let f = filter.get();
                (!f.metric.is_empty() && !scoped).then(|| {
                    crate::fetch::get_json::<crate::api::Chart>(format!(
                        "/api/v1/charts/metrics?{}&window={}&at={}",
                        f.to_query(),
                        window.get().as_str(),
                        crate::travel::at_param(at)
                    ))
                })
            },
            move |c| chart.set(Some(c)),
        );
    }

    // Navigates to the explorer with `changes` to its parameters.
    let go = crate::travel::use_go("/explore");

    let all = move || {
        stats.with(|s| {
            s.as_ref()
                .and_then(|r| r.as_ref().ok())
                .cloned()
                .unwrap_or_default()
        })
    };
    let names = move || metric_names(&all());
    let rows = move || {
        let f = filter.get();
        all()
            .into_iter()
            .filter(|s| f.matches(&s.series))
            .collect::<Vec<_>>()
    };
    let tags_input = NodeRef::<leptos::html::Input>::new();
    let on_tags = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = tags_input
            .get_untracked()
            .map(|i| i.value())
            .unwrap_or_default();
        go.run(vec![("tags", Some(text))]);
    };
    let chart_svg = move || {
        chart.with(|c| match c {
            Some(Ok(c)) => c.svg.clone(),
            _ => String::new(),
        })
    };
    let chart_note = move || {
        if filter.with(|f| f.metric.is_empty()) {
            return Some("Choose a metric to chart its percentiles over time.".to_string());
        }
        chart.with(|c| match c {
            None => Some("Drawing…".to_string()),
            Some(Err(e)) => Some(format!("Cannot draw it: {e}")),
            Some(Ok(c)) if c.total == 0 => Some("No samples of it in this window.".to_string()),
            Some(Ok(_)) => None,
        })
    };
    let scoped_reader = crate::shell::scoped();
    let empty = move || {
        stats.with(|s| match s {
            None => "Waiting for the metrics…".to_string(),
            Some(Err(e)) => format!("Cannot read the metrics: {e}"),
            Some(Ok(v)) if v.is_empty() && scoped_reader => crate::shell::SCOPED_NOTE.to_string(),
            Some(Ok(v)) if v.is_empty() => "No metric events in this window. Publish JSON such as \
                 {\"name\":\"http.latency\",\"value\":12.5,\"tags\":{\"route\":\"/pay\"}} \
                 to a watched subject."
                .to_string(),
            Some(Ok(_)) => "No series of this metric carries these tags.".to_string(),
        })
    };
    let shown = move || filter.with(MetricFilter::shown);

    view! {
        <main class="page">
            <Show when=move || filter_error().is_some()>
                <p class="error-banner" role="alert" data-testid="explore-error">
                    "The filter in this link is not valid: "
                    {filter_error}
                </p>
            </Show>
            <section class="panel explore-controls">
                <label>
                    "Metric"
                    <select
                        data-testid="explore-metric"
                        prop:value=move || filter.with(|f| f.metric.clone())
                        on:change=move |ev| go.run(vec![("metric", Some(event_target_value(&ev))), ("tags", None)])
                    >
                        <option value="">"choose…"</option>
                        <For each=names key=|n| n.clone() let:name>
                            <option value=name.clone()>{name.clone()}</option>
                        </For>
                    </select>
                </label>
                <form class="inline-form" on:submit=on_tags>
                    <label>
                        "Tags"
                        <input
                            node_ref=tags_input
                            placeholder="region=eu,route=/pay"
                            prop:value=move || filter.with(MetricFilter::tags_text)
                            data-testid="explore-tags"
                        />
                    </label>
                    <button class="btn" type="submit" data-testid="explore-apply">"Apply"</button>
                </form>
                <crate::charts::WindowPicker
                    current=Signal::derive(move || window.get())
                    pick=Callback::new(move |w: Window| go.run(vec![("window", Some(w.as_str().to_string()))]))
                    testid="explore-window"
                />
                <div class="seg" role="group" aria-label="Percentiles">
                    {PERCENTILES
                        .into_iter()
                        .map(|p| {
                            let on = move || shown().contains(&p);
                            view! {
                                <button
                                    class=move || if on() { "seg-btn on" } else { "seg-btn" }
                                    aria-pressed=move || on().to_string()
                                    data-testid=format!("explore-p{p}")
                                    on:click=move |_| {
                                        let mut now = shown();
                                        if now.contains(&p) {
                                            now.retain(|x| *x != p);
                                        } else {
                                            now.push(p);
                                        }
                                        let text: Vec<String> = now.iter().map(u8::to_string).collect();
                                        go.run(vec![("p", Some(text.join(",")))]);
                                    }
                                >
                                    {format!("p{p}")}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </section>
            <section class="panel chart-panel">
                <div class="chart-head">
                    <h2>{move || filter.with(|f| if f.metric.is_empty() { "Percentiles over time".to_string() } else { format!("{} over time", f.metric) })}</h2>
                </div>
                <Show
                    when=move || chart_note().is_none()
                    fallback=move || view! { <div class="chart chart-empty" data-testid="explore-chart-empty">{chart_note}</div> }
                >
                    <div
                        class="chart"
                        data-testid="explore-chart"
                        data-total=move || chart.with(|c| c.as_ref().and_then(|c| c.as_ref().ok()).map_or(0, |c| c.total).to_string())
                        role="img"
                        aria-label="Percentiles of the chosen metric over time"
                        inner_html=chart_svg
                    ></div>
                </Show>
                <crate::charts::Legend
                    bands=Signal::derive(move || chart.with(|c| c.as_ref().and_then(|c| c.as_ref().ok()).map(|c| c.bands.clone()).unwrap_or_default()))
                    testid="explore-legend"
                />
            </section>
            <section class="panel">
                <h2>"Series"</h2>
                <Show when=move || !rows().is_empty() fallback=move || view! { <p class="empty" data-testid="explore-empty">{empty}</p> }>
                    <table class="subjects" data-testid="explore-table">
                        <thead>
                            <tr>
                                <th scope="col">"Series"</th>
                                <th scope="col" class="num">"Samples"</th>
                                <th scope="col" class="num">"Min"</th>
                                <th scope="col" class="num">"Mean"</th>
                                <th scope="col" class="num">"p50"</th>
                                <th scope="col" class="num">"p90"</th>
                                <th scope="col" class="num">"p99"</th>
                                <th scope="col" class="num">"Max"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=rows key=|s| (s.series.clone(), s.count, s.sum.to_bits()) let:s>
                                <tr data-testid="explore-row" data-series=s.series.clone()>
                                    <td class="series">{breakable(&s.series)}</td>
                                    <td class="num" data-testid="explore-count">{format::thousands(s.count)}</td>
                                    <td class="num">{value(s.min)}</td>
                                    <td class="num">{value(s.mean)}</td>
                                    <td class="num" data-testid="explore-p50">{value(s.p50)}</td>
                                    <td class="num">{value(s.p90)}</td>
                                    <td class="num" data-testid="explore-p99">{value(s.p99)}</td>
                                    <td class="num">{value(s.max)}</td>
                                </tr>
                            </For>
                        </tbody>
                    </table>
                </Show>
            </section>
        </main>
    }
}

/// A series name with a line-break opportunity after each `{` and `,`: a
/// narrow column breaks it between tags, not inside a word.
fn breakable(series: &str) -> impl IntoView + use<> {
    series
        .split_inclusive(['{', ','])
        .map(|part| view! { {part.to_string()}<wbr/> })
        .collect_view()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(series: &str) -> MetricStats {
        MetricStats {
            series: series.into(),
            count: 1,
            sum: 1.0,
            min: 1.0,
            max: 1.0,
            mean: 1.0,
            p50: 1.0,
            p90: 1.0,
            p99: 1.0,
        }
    }

    #[test]
    fn names_are_the_distinct_metrics() {
        let s = [stats("b{x=1}"), stats("a"), stats("b{x=2}")];
        assert_eq!(metric_names(&s), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            (value(1234.4), value(12.5), value(0.01234)),
            ("1234".into(), "12.50".into(), "0.0123".into())
        );
    }
}
