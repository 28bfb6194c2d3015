//! The overview page: total events, events per second, the chart and a
//! per-subject table, kept live by the counts view the shell watches (see
//! [`crate::shell`]). Rows are keyed by subject and sorted by name, so a row
//! never jumps while counts change.
//!
//! Viewing the past (`at=`), the same cards and table show the `rates`
//! projection as of then (the hour before the moment), rebuilt by the
//! server; with a second moment (`cmp=`) a comparison of the two follows.

use crate::api::{KeyedRate, MetricStats, Rate, body_field};
use crate::format;
use crate::shell::{Link, LiveCtx};
use crate::travel::use_travel;
use crate::wire::{Counts, OVERFLOW_SUBJECT, SubjectCount};
use leptos::prelude::*;

/// The overview page.
#[component]
pub fn Overview() -> impl IntoView {
    let LiveCtx { counts, link } = expect_context::<LiveCtx>();
    let travel = use_travel();
    let past = RwSignal::new(None::<Result<Counts, String>>);
    #[cfg(feature = "hydrate")]
    crate::travel::follow(
        || None,
        |_| None,
        |at| Some(past_counts(at)),
        move |c| past.set(Some(c)),
    );
    let viewing_past = Signal::derive(move || travel.at.get().is_some());
    // What the cards and the table show: live counts, or the past's, with
    // the health counters (which are about now) always live.
    let shown = Signal::derive(move || {
        if !viewing_past.get() {
            return counts.get();
        }
        let mut c = past
            .with(|p| p.as_ref().and_then(|r| r.as_ref().ok()).cloned())
            .unwrap_or_default();
        c.health = counts.with(|l| l.health.clone());
        c.nats_connected = counts.with(|l| l.nats_connected);
        c
    });
    let past_error = move || {
        viewing_past
            .get()
            .then(|| past.with(|p| p.as_ref().and_then(|r| r.as_ref().err()).cloned()))
            .flatten()
    };
    // The comparison is drawn in the browser only (both moments are rebuilt
    // on request), from its own wasm chunk.
    let hydrated = crate::shell::hydrated();
    view! {
        <main class="page">
            <Show when=move || past_error().is_some()>
                <p class="error-banner" role="alert" data-testid="past-error">{past_error}</p>
            </Show>
            <Cards counts=shown past=viewing_past/>
            <Show when=move || hydrated.get() && travel.cmp.get().is_some()>
                {crate::shell::lazy_view(compare_view())}
            </Show>
            <crate::charts::RateChart first=true/>
            <section class="tops">
                <TopList name="top_errors" title="Top error messages"/>
                <TopList name="top_subjects" title="Busiest subjects"/>
                <TopList name="top_services" title="Busiest services"/>
            </section>
            <SubjectTable counts=shown link past=viewing_past/>
        </main>
    }
}

/// A top-k projection over the last 15 minutes (as of the moment viewed),
/// largest first, with bars scaled to the first.
#[component]
fn TopList(name: &'static str, title: &'static str) -> impl IntoView {
    // Served with the server's list (see `FirstViews`), then live.
    let first = crate::shell::first_view::<Vec<crate::api::TopItem>>(crate::shell::first_key(
        "projection",
        name,
        crate::api::Window::M15,
    ));
    let items = RwSignal::new(first.map(Ok::<_, String>));
    #[cfg(feature = "hydrate")]
    crate::travel::follow_projection(
        name,
        || crate::api::Window::M15,
        |state| crate::api::body_field(state, "top_k", "items"),
        move |r| items.set(Some(r)),
    );
    let list = move || {
        items.with(|i| match i {
            Some(Ok(v)) => v.clone(),
            _ => Vec::new(),
        })
    };
    // Only the busiest subjects are kept for a reader with a scope.
    let scoped = crate::shell::scoped() && name != "top_subjects";
    let note = move || {
        items.with(|i| match i {
            None => "Waiting…".to_string(),
            Some(Err(e)) => e.clone(),
            Some(Ok(_)) if scoped => crate::shell::SCOPED_NOTE.to_string(),
            Some(Ok(_)) => "Nothing in the last 15 minutes.".to_string(),
        })
    };
    let max = move || list().first().map_or(1, |t| t.count.max(1));
    view! {
        <div class="panel top" data-testid=name>
            <h2>{title}</h2>
            <Show when=move || !list().is_empty() fallback=move || view! { <p class="empty">{note}</p> }>
                <ol class="top-list">
                    <For each=list key=|t| (t.key.clone(), t.count) let:item>
                        <li data-testid="top-item">
                            <span class="top-key" title=item.key.clone()>{item.key.clone()}</span>
                            <span class="top-count">{format::thousands(item.count)}</span>
                            <div class="bar">
                                <div class="bar-fill" style:width=format!("{:.1}%", item.count as f64 / max() as f64 * 100.0)></div>
                            </div>
                        </li>
                    </For>
                </ol>
            </Show>
        </div>
    }
}

/// Counts as of `at`: the `rates` projection over the hour before it, with
/// rates over the last 10 seconds of it.
#[cfg(feature = "hydrate")]
async fn past_counts(at: i64) -> Result<Counts, String> {
    let at = crate::travel::at_param(at);
    let hour = RatesPart::fetch(&format!("window=1h&at={at}")).await?;
    let recent = RatesPart::fetch(&format!("window=10s&at={at}")).await?;
    Ok(counts_from(&hour, &recent))
}

/// What the overview reads of a `rates` projection's state (decoded alone,
/// see [`body_field`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RatesPart {
    /// All events.
    pub total: Rate,
    /// Per subject.
    pub subjects: Vec<KeyedRate>,
}

impl RatesPart {
    /// The part of `state` (a projection state's JSON), if it is `rates`.
    pub fn of(state: &serde_json::Value) -> Option<Self> {
        Some(Self {
            total: body_field(state, "rates", "total")?,
            subjects: body_field(state, "rates", "subjects")?,
        })
    }

    /// `GET /api/v1/projections/rates?{query}`.
    #[cfg(feature = "hydrate")]
    async fn fetch(query: &str) -> Result<Self, String> {
        let url = format!("/api/v1/projections/rates?{query}");
        let state = crate::fetch::get_json::<serde_json::Value>(url).await?;
        Self::of(&state).ok_or_else(|| "the server sent no rates".to_string())
    }
}

/// Counts made of a `rates` state over a long window (counts) and one over
/// a short window (rates).
pub fn counts_from(long: &RatesPart, short: &RatesPart) -> Counts {
    let RatesPart { total, subjects } = long;
    let RatesPart {
        total: now,
        subjects: recent,
    } = short;
    let rate_of = |k: &str| {
        recent
            .iter()
            .find(|r| r.key == k)
            .map_or(0.0, |r| r.rate.per_sec)
    };
    Counts {
        total: total.count,
        rate: now.per_sec,
        subjects: subjects
            .iter()
            .map(|KeyedRate { key, rate }| {
                (
                    key.clone(),
                    SubjectCount {
                        count: rate.count,
                        rate: rate_of(key),
                    },
                )
            })
            .collect(),
        ..Counts::default()
    }
}

/// The headline numbers.
#[component]
fn Cards(counts: Signal<Counts>, past: Signal<bool>) -> impl IntoView {
    let total = move || counts.with(|c| format::thousands(c.total));
    let rate = move || counts.with(|c| format::rate(c.rate));
    let dropped = move || counts.with(|c| c.health.lost());
    let stored = move || counts.with(|c| format::thousands(c.health.store_events));
    let stored_bytes = move || {
        counts.with(|c| {
            format!(
                "{} of {}",
                format::bytes(c.health.store_bytes),
                format::bytes(c.health.store_cap_bytes)
            )
        })
    };
    view! {
        <section class="cards">
            <div class="card">
                <div class="card-label">
                    {move || if past.get() { "Events in the hour before" } else { "Events" }}
                </div>
                <div class="card-value" data-testid="total-events">{total}</div>
            </div>
            <div class="card">
                <div class="card-label">"Events / s"</div>
                <div class="card-value" data-testid="events-per-sec">{rate}</div>
            </div>
            <div class="card">
                <div class="card-label">"Subjects"</div>
                <div class="card-value" data-testid="subject-total">
                    {move || counts.with(|c| c.subjects.len())}
                </div>
            </div>
            <div class="card">
                <div class="card-label">"Stored events"</div>
                <div class="card-value" data-testid="store-events">{stored}</div>
                <div class="card-note" data-testid="store-bytes">{stored_bytes}</div>
            </div>
            <div class=move || { if dropped() > 0 { "card card-warn" } else { "card" } }>
                <div class="card-label">
                    {move || if past.get() { "Dropped / resyncs (now)" } else { "Dropped / resyncs" }}
                </div>
                <div class="card-value" data-testid="health">
                    {move || format::thousands(dropped())}
                    " / "
                    {move || counts.with(|c| format::thousands(c.health.resyncs))}
                </div>
            </div>
        </section>
    }
}

/// The per-subject table, or a message saying why it is empty.
#[component]
fn SubjectTable(counts: Signal<Counts>, link: RwSignal<Link>, past: Signal<bool>) -> impl IntoView {
    let subjects = move || counts.with(|c| c.subjects.keys().cloned().collect::<Vec<_>>());
    let empty = move || {
        if past.get() {
            "No events in the hour before this moment."
        } else if link.get() == Link::Live {
            "No events yet. Publish to a watched subject and it appears here."
        } else {
            "Waiting for the live connection…"
        }
    };
    view! {
        <section class="panel">
            <h2>{move || if past.get() { "Subjects, in the hour before this moment" } else { "Subjects" }}</h2>
            <Show
                when=move || counts.with(|c| !c.subjects.is_empty())
                fallback=move || view! { <p class="empty" data-testid="subjects-empty">{empty}</p> }
            >
                <table class="subjects" data-testid="subjects-table">
                    <thead>
                        <tr>
                            <th scope="col">"Subject"</th>
                            <th scope="col" class="num">"Events"</th>
                            <th scope="col" class="num">"Events / s"</th>
                            <th scope="col" class="share">"Share"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=subjects key=|s| s.clone() let:subject>
                            <SubjectRow subject counts/>
                        </For>
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

/// One row of the subject table; reads only its own subject's numbers.
#[component]
fn SubjectRow(subject: String, counts: Signal<Counts>) -> impl IntoView {
    let key = subject.clone();
    let row =
        Memo::new(move |_| counts.with(|c| c.subjects.get(&key).cloned().unwrap_or_default()));
    // Share of all events, in percent; the bar is scaled to the busiest
    // subject so that small differences stay visible.
    let share = move || {
        let total = counts.with(|c| c.total).max(1);
        row.with(|r| r.count) as f64 / total as f64 * 100.0
    };
    let bar = move || {
        let max = counts.with(|c| c.subjects.values().map(|s| s.count).max().unwrap_or(0));
        (row.with(|r| r.count) as f64 / max.max(1) as f64 * 100.0).min(100.0)
    };
    let row_class = if subject == OVERFLOW_SUBJECT {
        "overflow"
    } else {
        ""
    };
    let label = subject.clone();
    view! {
        <tr data-testid="subject-row" data-subject=subject class=row_class>
            <td class="subject">{label}</td>
            <td class="num" data-testid="subject-count">{move || format::thousands(row.with(|r| r.count))}</td>
            <td class="num" data-testid="subject-rate">{move || format::rate(row.with(|r| r.rate))}</td>
            <td class="share">
                <div class="share-cell">
                    <div class="bar">
                        <div class="bar-fill" style:width=move || format!("{:.1}%", bar())></div>
                    </div>
                    <span class="share-pct">{move || format!("{:.1}%", share())}</span>
                </div>
            </td>
        </tr>
    }
}

/// One line of the comparison: a quantity at the pinned moment (`a`) and
/// at the moment viewed (`b`).
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    /// What is compared (`events`, a subject, a metric's percentile).
    pub label: String,
    /// The group it belongs to (`Events`, `Subject`, `Metric`).
    pub group: &'static str,
    /// At the pinned moment.
    pub a: f64,
    /// At the moment viewed.
    pub b: f64,
}

/// The rows comparing two moments, from the `rates` and `metrics`
/// projections at each (same window).
pub fn compare_rows(
    rates: (&RatesPart, &RatesPart),
    metrics: (&[MetricStats], &[MetricStats]),
) -> Vec<CompareRow> {
    use std::collections::BTreeMap;
    let mut rows = Vec::new();
    {
        let (
            RatesPart {
                total: ta,
                subjects: sa,
            },
            RatesPart {
                total: tb,
                subjects: sb,
            },
        ) = rates;
        rows.push(CompareRow {
            label: "all events".into(),
            group: "Events",
            a: ta.count as f64,
            b: tb.count as f64,
        });
        let mut by: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for s in sa {
            by.entry(&s.key).or_default().0 = s.rate.count as f64;
        }
        for s in sb {
            by.entry(&s.key).or_default().1 = s.rate.count as f64;
        }
        rows.extend(by.into_iter().map(|(k, (a, b))| CompareRow {
            label: k.to_string(),
            group: "Subject",
            a,
            b,
        }));
    }
    {
        let (ma, mb) = metrics;
        let mut by: BTreeMap<(&str, &str), (f64, f64)> = BTreeMap::new();
        for (side, list) in [(0, ma), (1, mb)] {
            for m in list {
                for (p, v) in [("p50", m.p50), ("p99", m.p99)] {
                    let e = by
                        .entry((m.series.as_str(), p))
                        .or_insert((f64::NAN, f64::NAN));
                    if side == 0 {
                        e.0 = v;
                    } else {
                        e.1 = v;
                    }
                }
            }
        }
        rows.extend(by.into_iter().map(|((s, p), (a, b))| CompareRow {
            label: format!("{s} {p}"),
            group: "Metric",
            a,
            b,
        }));
    }
    rows
}

/// A number of the comparison: whole numbers with separators, others to
/// three significant digits; `–` when absent.
fn number(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let s = format::thousands(v.abs() as u64);
        if v < 0.0 { format!("−{s}") } else { s }
    } else {
        let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    }
}

/// The change from `a` to `b`, signed, with the relative change.
pub fn change(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() {
        return "–".into();
    }
    let d = b - a;
    let sign = if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "−"
    } else {
        "±"
    };
    let abs = number(d.abs());
    if a != 0.0 {
        format!("{sign}{abs} ({sign}{:.0}%)", (d / a * 100.0).abs())
    } else {
        format!("{sign}{abs}")
    }
}

/// The change cell's class: up, down or neither.
fn change_class(a: f64, b: f64) -> &'static str {
    if b > a {
        "num up"
    } else if b < a {
        "num down"
    } else {
        "num"
    }
}

/// The comparison panel, loaded lazily in its own wasm chunk (`cargo
/// leptos build --split`), as most visits compare nothing.
#[leptos::lazy]
fn compare_view() -> AnyView {
    view! { <Compare/> }.into_any()
}

/// Two moments side by side (the pinned one and the one viewed): events per
/// subject and metric percentiles over the minute before each.
#[component]
fn Compare() -> impl IntoView {
    let travel = use_travel();
    let rows = RwSignal::new(None::<Result<Vec<CompareRow>, String>>);
    #[cfg(feature = "hydrate")]
    crate::travel::follow(
        || None,
        |_| None,
        move |at| travel.cmp.get().map(|cmp| fetch_compare(cmp, at)),
        move |r| rows.set(Some(r)),
    );
    let when = |m: Memo<Option<i64>>| move || m.get().map(format::datetime).unwrap_or_default();
    let list = move || {
        rows.with(|r| match r {
            Some(Ok(rows)) => rows.clone(),
            _ => Vec::new(),
        })
    };
    let status = move || {
        rows.with(|r| match r {
            None => Some("Rebuilding both moments…".to_string()),
            Some(Err(e)) => Some(format!("Cannot compare: {e}")),
            Some(Ok(r)) if r.is_empty() => Some("Nothing happened in either minute.".to_string()),
            Some(Ok(_)) => None,
        })
    };
    view! {
        <section class="panel" data-testid="compare">
            <h2>"Comparing two moments (the minute before each)"</h2>
            <Show when=move || status().is_some()>
                <p class="empty">{status}</p>
            </Show>
            <table class="subjects compare">
                <thead>
                    <tr>
                        <th scope="col">""</th>
                        <th scope="col">""</th>
                        <th scope="col" class="num">"Pinned " <time>{when(travel.cmp)}</time></th>
                        <th scope="col" class="num">"Viewing " <time>{when(travel.at)}</time></th>
                        <th scope="col" class="num">"Change"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=list key=|r| (r.group, r.label.clone(), r.a.to_bits(), r.b.to_bits()) let:row>
                        <tr data-testid="compare-row" data-label=row.label.clone()>
                            <td class="muted">{row.group}</td>
                            <td class="subject">{row.label.clone()}</td>
                            <td class="num" data-testid="compare-a">{number(row.a)}</td>
                            <td class="num" data-testid="compare-b">{number(row.b)}</td>
                            <td class=change_class(row.a, row.b) data-testid="compare-change">
                                {change(row.a, row.b)}
                            </td>
                        </tr>
                    </For>
                </tbody>
            </table>
        </section>
    }
}

/// Fetches what [`compare_rows`] needs for moments `a` and `b`.
#[cfg(feature = "hydrate")]
async fn fetch_compare(a: i64, b: i64) -> Result<Vec<CompareRow>, String> {
    let query = |at: i64| format!("window=1m&at={}", crate::travel::at_param(at));
    let (ra, rb) = (
        RatesPart::fetch(&query(a)).await?,
        RatesPart::fetch(&query(b)).await?,
    );
    let metrics = |at: i64| async move {
        let url = format!("/api/v1/projections/metrics?{}", query(at));
        let state = crate::fetch::get_json::<serde_json::Value>(url).await?;
        body_field::<Vec<MetricStats>>(&state, "metrics", "series")
            .ok_or_else(|| "the server sent no metrics".to_string())
    };
    let (ma, mb) = (metrics(a).await?, metrics(b).await?);
    Ok(compare_rows((&ra, &rb), (&ma, &mb)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ProjectionBody, ProjectionState};

    /// The JSON of a state with `body`, as the server sends it.
    fn state(body: ProjectionBody) -> serde_json::Value {
        serde_json::to_value(ProjectionState {
            name: "x".into(),
            window: None,
            at_ms: 0,
            last_event_id: None,
            live: false,
            scoped: false,
            body,
        })
        .expect("json")
    }

    fn rates(total: u64, subjects: &[(&str, u64, f64)]) -> RatesPart {
        let keyed = |(k, c, r): &(&str, u64, f64)| KeyedRate {
            key: k.to_string(),
            rate: Rate {
                count: *c,
                per_sec: *r,
            },
        };
        let s = state(ProjectionBody::Rates {
            total: Rate {
                count: total,
                per_sec: total as f64 / 10.0,
            },
            subjects: subjects.iter().map(keyed).collect(),
            services: vec![],
            levels: vec![],
        });
        RatesPart::of(&s).expect("a rates state")
    }

    #[test]
    fn body_fields_are_read_only_from_their_kind() {
        let s = state(ProjectionBody::TopK { items: vec![] });
        assert_eq!(RatesPart::of(&s), None);
        let items: Option<Vec<crate::api::TopItem>> = body_field(&s, "top_k", "items");
        assert_eq!(items, Some(vec![]));
        assert_eq!(
            body_field::<Vec<crate::api::TopItem>>(&s, "top_k", "nope"),
            None
        );
    }

    #[test]
    fn past_counts_take_counts_from_the_long_window_and_rates_from_the_short() {
        let c = counts_from(
            &rates(30, &[("a", 20, 0.0), ("b", 10, 0.0)]),
            &rates(5, &[("a", 5, 0.5)]),
        );
        assert_eq!((c.total, c.rate), (30, 0.5));
        assert_eq!(c.subjects["a"].count, 20);
        assert_eq!(c.subjects["a"].rate, 0.5);
        assert_eq!(c.subjects["b"].rate, 0.0, "not in the short window");
    }

    #[test]
    fn comparing_two_moments_pairs_subjects_and_percentiles() {
        let stats = |series: &str, p50: f64| MetricStats {
            series: series.into(),
            count: 1,
            sum: p50,
            min: p50,
            max: p50,
            mean: p50,
            p50,
            p90: p50,
            p99: p50 * 2.0,
        };
        let m = |s: Vec<MetricStats>| {
            body_field::<Vec<MetricStats>>(
                &state(ProjectionBody::Metrics { series: s }),
                "metrics",
                "series",
            )
            .expect("a metrics state")
        };
        let rows = compare_rows(
            (&rates(4, &[("a", 4, 0.0)]), &rates(6, &[("b", 6, 0.0)])),
            (&m(vec![stats("lat", 10.0)]), &m(vec![])),
        );
        // Shown as the page shows them (NaN, "absent", does not compare).
        let got: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{} {}: {} -> {}",
                    r.group,
                    r.label,
                    number(r.a),
                    number(r.b)
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "Events all events: 4 -> 6",
                "Subject a: 4 -> 0",
                "Subject b: 0 -> 6",
                "Metric lat p50: 10 -> –",
                "Metric lat p99: 20 -> –",
            ]
        );
        assert_eq!(rows.len(), 5);
        assert_eq!(change(4.0, 6.0), "+2 (+50%)");
        assert_eq!(change(6.0, 0.0), "−6 (−100%)");
        assert_eq!(change(0.0, 3.0), "+3");
        assert_eq!(change(f64::NAN, 3.0), "–");
        assert_eq!(
            (number(12.3456), number(0.01234)),
            ("12.3".into(), "0.0123".into())
        );
    }
}
