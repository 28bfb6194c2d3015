//! The flows page (PRODUCT.md F8): flows (events sharing a correlation id)
//! counted by status, the most recent listed with where each stopped, one
//! flow's steps on a timeline with a lane per service; and, when this
//! Eventscope runs the demo, its scenarios' rates, adjustable. (The CQRS
//! pairs and the read models have their own page, `crate::cqrs`.)
//!
//! The URL holds the choices (`status=`, `flow=<correlation id>`), so a
//! flow is a link; time travel (`at=`) applies to all of it.

use crate::api::{
    DemoScenario, DemoState, FlowCounts, FlowDetail, FlowStatus, FlowSummary, Window,
};
use crate::format;
use crate::travel::{AT, url_with, use_travel};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// What the page shows of the `flows` projection.
type FlowsView = (FlowCounts, i64, Vec<FlowSummary>);

/// `ms` as a short duration (`850 ms`, `2.4 s`, `3 min 5 s`).
pub fn duration(ms: i64) -> String {
    match ms {
        i64::MIN..=999 => format!("{} ms", ms.max(0)),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1_000.0),
        _ => format!("{} min {} s", ms / 60_000, ms / 1_000 % 60),
    }
}

/// The badge class of a status.
fn status_class(s: FlowStatus) -> &'static str {
    match s {
        FlowStatus::Running => "status status-running",
        FlowStatus::Completed => "status status-completed",
        FlowStatus::Compensated => "status status-compensated",
        FlowStatus::Stalled => "status status-stalled",
    }
}

/// The flows page.
#[component]
pub fn Flows() -> impl IntoView {
    let query = use_query_map();
    let window = RwSignal::new(Window::M15);
    let status = Memo::new(move |_| {
        query.with(|q| {
            q.get("status")
                .and_then(|s| FlowStatus::ALL.into_iter().find(|x| x.as_str() == s))
        })
    });
    let selected = Memo::new(move |_| query.with(|q| q.get("flow")));
    // Served with the server's flows (see `FirstViews`), then live.
    let first = crate::shell::first_view::<FlowsView>(crate::shell::first_key(
        "projection",
        "flows",
        Window::M15,
    ));
    let flows = RwSignal::new(first.map(Ok::<_, String>));
    #[cfg(feature = "hydrate")]
    crate::travel::follow_projection(
        "flows",
        move || window.get(),
        |state| {
            use crate::api::body_field as part;
            Some((
                part(state, "flows", "counts")?,
                part(state, "flows", "stall_ms")?,
                part(state, "flows", "flows")?,
            ))
        },
        move |r| flows.set(Some(r)),
    );
    let go = crate::travel::use_go("/flows");
    // A flow's panel is drawn in the browser only (it is fetched there),
    // from its own wasm chunk.
    let hydrated = crate::shell::hydrated();
    let counts = move || {
        flows.with(|f| match f {
            Some(Ok((c, ..))) => c.clone(),
            _ => FlowCounts::default(),
        })
    };
    let stall_ms =
        move || flows.with(|f| f.as_ref().and_then(|r| r.as_ref().ok()).map_or(0, |v| v.1));
    let rows = move || {
        flows.with(|f| match f {
            Some(Ok((_, _, list))) => list
                .iter()
                .filter(|s| status.get().is_none_or(|want| s.status == want))
                .cloned()
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    };
    let note = move || {
        flows.with(|f| match f {
            None => "Waiting for the flows…".to_string(),
            Some(Err(e)) => e.clone(),
            Some(Ok(_)) if status.get().is_some() => {
                "No flow with this status in the window.".to_string()
            }
            Some(Ok(_)) => "No flows in the window. Flows are events that share a correlation id \
                            (a Nats-Correlation-Id or traceparent header, or a correlation_id field)."
                .to_string(),
        })
    };
    let card = move |label: &'static str,
                     s: Option<FlowStatus>,
                     value: Box<dyn Fn() -> u64 + Send + Sync>| {
        let testid = format!("flows-{}", s.map_or("started", FlowStatus::as_str));
        let class = move || {
            if status.get() == s && s.is_some() {
                "card card-button on"
            } else {
                "card card-button"
            }
        };
        view! {
            <button
                class=class
                data-testid=testid
                aria-pressed=move || (status.get() == s && s.is_some()).to_string()
                on:click=move |_| go.run(vec![("status", s.map(|s| s.as_str().to_string()))])
            >
                <div class="card-label">{label}</div>
                <div class="card-value">{move || format::thousands(value())}</div>
            </button>
        }
    };
    view! {
        <main class="page">
            <div class="page-head">
                <h2 class="page-title">"Flows"</h2>
                <span class="muted">
                    "Events grouped by correlation id; stalled after "
                    {move || duration(stall_ms())}
                    " without a step."
                </span>
                <span class="spacer"></span>
                <crate::charts::WindowPicker
                    current=window.into()
                    pick=Callback::new(move |w| window.set(w))
                    testid="flows-window"
                />
            </div>
            <section class="cards">
                {card("Started", None, Box::new(move || counts().started))}
                {card("Running now", Some(FlowStatus::Running), Box::new(move || counts().running))}
                {card("Completed", Some(FlowStatus::Completed), Box::new(move || counts().completed))}
                {card("Compensated", Some(FlowStatus::Compensated), Box::new(move || counts().compensated))}
                {card("Stalled", Some(FlowStatus::Stalled), Box::new(move || counts().stalled))}
            </section>
            <crate::charts::RateChart
                name="flows"
                title="Flows ending, per time bucket: completed, compensated, stalled"
                testid="flows-chart"
                legend_testid="flows-legend"
                window
                first=true
            />
            <Show when=move || hydrated.get() && selected.get().is_some()>
                {crate::shell::lazy_view(flow_panel(
                    Signal::derive(move || selected.get().unwrap_or_default()),
                    flows,
                ))}
            </Show>
            // Above the list (up to 200 rows), where a presenter finds it.
            <DemoPanel/>
            <section class="panel">
                <h2>"Recent flows"</h2>
                <Show when=move || !rows().is_empty() fallback=move || view! { <p class="empty" data-testid="flows-empty">{note}</p> }>
                    <table class="flows" data-testid="flows-table">
                        <thead>
                            <tr>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Correlation id"</th>
                                <th scope="col">"Started"</th>
                                <th scope="col" class="num">"Duration"</th>
                                <th scope="col" class="num">"Steps"</th>
                                <th scope="col">"Stopped at"</th>
                                <th scope="col">"Services"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=rows key=|f| (f.id.clone(), f.status, f.steps) let:flow>
                                {
                                    let id = flow.id.clone();
                                    let is_selected = {
                                        let id = id.clone();
                                        move || selected.get().as_deref() == Some(id.as_str())
                                    };
                                    view! {
                                        <tr
                                            data-testid="flow-row"
                                            data-status=flow.status.as_str()
                                            class=move || if is_selected() { "selected" } else { "" }
                                            on:click=move |_| go.run(vec![("flow", Some(id.clone()))])
                                        >
                                            <td><span class=status_class(flow.status)>{flow.status.as_str()}</span></td>
                                            <td class="mono">{flow.id.clone()}</td>
                                            <td class="muted">{format::clock(flow.started_ms)}</td>
                                            <td class="num">{duration(flow.last_ms - flow.started_ms)}</td>
                                            <td class="num">
                                                {flow.steps}
                                                {(flow.errors > 0).then(|| view! { <span class="err-count">{format!(" ({} err)", flow.errors)}</span> })}
                                            </td>
                                            <td class="mono">{flow.stopped_at.clone().unwrap_or_default()}</td>
                                            <td class="muted">{flow.services.join(" → ")}</td>
                                        </tr>
                                    }
                                }
                            </For>
                        </tbody>
                    </table>
                </Show>
            </section>
        </main>
    }
}

/// Where a step sits on the timeline: x in 0..=1000 and its lane.
pub fn place(detail: &FlowDetail) -> (Vec<String>, Vec<(f64, usize)>) {
    let mut lanes: Vec<String> = Vec::new();
    let start = detail.flow.started_ms;
    let span = (detail.flow.last_ms - start).max(1) as f64;
    let points = detail
        .steps
        .iter()
        .map(|s| {
            let lane = s.service.clone().unwrap_or_else(|| "(no service)".into());
            let i = lanes.iter().position(|l| *l == lane).unwrap_or_else(|| {
                lanes.push(lane);
                lanes.len() - 1
            });
            ((s.t_ms - start) as f64 / span * 1_000.0, i)
        })
        .collect();
    (lanes, points)
}

/// The panel of the flow with correlation id `id`: loaded lazily, in its
/// own wasm chunk (`cargo leptos build --split`), with the decoder of
/// [`FlowDetail`], as most visits open no flow.
#[leptos::lazy]
fn flow_panel(id: Signal<String>, flows: RwSignal<Option<Result<FlowsView, String>>>) -> AnyView {
    view! { <FlowTimeline id flows/> }.into_any()
}

/// One flow's steps: a lane per service, a dot per step at its time, a
/// line through them in order; then the steps as a table.
#[component]
fn FlowTimeline(
    id: Signal<String>,
    flows: RwSignal<Option<Result<FlowsView, String>>>,
) -> impl IntoView {
    let travel = use_travel();
    let detail = RwSignal::new(None::<Result<FlowDetail, String>>);
    // Refetched when the flow's summary changes (a new step, a new status).
    let summary = Memo::new(move |_| {
        let id = id.get();
        flows.with(|f| {
            f.as_ref()
                .and_then(|r| r.as_ref().ok())
                .and_then(|v| v.2.iter().find(|s| s.id == id))
                .map(|s| (s.steps, s.status))
        })
    });
    Effect::new(move |_| {
        let (id, at, _) = (id.get(), travel.at.get(), summary.get());
        let url = match at {
            Some(at) => format!(
                "/api/v1/flows/{}?at={}",
                format::url_component(&id),
                crate::travel::at_param(at)
            ),
            None => format!("/api/v1/flows/{}", format::url_component(&id)),
        };
        leptos::task::spawn_local(async move {
            let got = crate::fetch::get_json::<FlowDetail>(url).await;
            detail.set(Some(got));
        });
    });
    let go = crate::travel::use_go("/flows");
    let close = move |_| go.run(vec![("flow", None)]);
    let body = move || {
        detail.with(|d| match d {
            None => view! { <p class="empty">"Loading the flow…"</p> }.into_any(),
            Some(Err(e)) => {
                view! { <p class="empty error" data-testid="flow-error">{e.clone()}</p> }.into_any()
            }
            Some(Ok(d)) => timeline_view(d, travel.at.get()).into_any(),
        })
    };
    view! {
        <section class="panel flow-detail" data-testid="flow-detail">
            <div class="panel-head">
                <h2>"Flow " <span class="mono">{move || id.get()}</span></h2>
                <span class="spacer"></span>
                <button class="btn" on:click=close data-testid="flow-close">"Close"</button>
            </div>
            {body}
        </section>
    }
}

fn timeline_view(d: &FlowDetail, at: Option<i64>) -> impl IntoView + use<> {
    const LANE: f64 = 34.0;
    const LEFT: f64 = 140.0;
    let (lanes, points) = place(d);
    let height = LANE * lanes.len() as f64 + 30.0;
    let x = move |p: f64| LEFT + p * 0.82;
    let line: String = points
        .iter()
        .map(|(p, lane)| format!("{:.1},{:.1}", x(*p), LANE * *lane as f64 + LANE / 2.0))
        .collect::<Vec<_>>()
        .join(" ");
    let span = d.flow.last_ms - d.flow.started_ms;
    let lane_views = lanes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let y = LANE * i as f64;
            view! {
                <g>
                    <rect class="lane" x="0" y=y width="1000" height=LANE></rect>
                    <text class="lane-label" x="8" y=y + LANE / 2.0 + 4.0>{name.clone()}</text>
                </g>
            }
        })
        .collect_view();
    let dots = d
        .steps
        .iter()
        .zip(&points)
        .map(|(s, (p, lane))| {
            let class = if s
                .level
                .as_deref()
                .is_some_and(|l| l == "error" || l == "fatal")
            {
                "dot dot-error"
            } else {
                match s.role.as_str() {
                    "completion" => "dot dot-completion",
                    "compensation" => "dot dot-compensation",
                    _ => "dot",
                }
            };
            let title = format!(
                "{} · {} · +{}",
                s.subject,
                s.role,
                duration(s.t_ms - d.flow.started_ms)
            );
            view! {
                <circle class=class cx=x(*p) cy=LANE * *lane as f64 + LANE / 2.0 r="6">
                    <title>{title}</title>
                </circle>
            }
        })
        .collect_view();
    let ticks = (0..=4)
        .map(|i| {
            let p = i as f64 * 250.0;
            view! {
                <text class="tick" x=x(p) y=height - 8.0 text-anchor="middle">
                    {format!("+{}", duration(span * i / 4))}
                </text>
            }
        })
        .collect_view();
    let rows = d
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let href = url_with(
                "/tail",
                [],
                &[
                    ("event", Some(s.event_id.to_string())),
                    (AT, at.map(|a| a.to_string())),
                ],
            );
            let level = s.level.clone().unwrap_or_default();
            view! {
                <tr data-testid="flow-step" data-role=s.role.clone()>
                    <td class="num muted">{i + 1}</td>
                    <td class="num">{format!("+{}", duration(s.t_ms - d.flow.started_ms))}</td>
                    <td class="num muted">{if i == 0 { String::new() } else { format!("+{}", duration(s.gap_ms)) }}</td>
                    <td>{s.service.clone().unwrap_or_default()}</td>
                    <td class="mono">{s.subject.clone()}</td>
                    <td><span class=format::level_class(&level)>{level.clone()}</span></td>
                    <td class=format!("role role-{}", s.role)>{s.role.clone()}</td>
                    <td><a href=href data-testid="flow-step-inspect">"inspect"</a></td>
                </tr>
            }
        })
        .collect_view();
    let dropped = (d.steps_dropped > 0).then(|| {
        view! { <p class="muted">{format!("{} more steps counted but not kept.", d.steps_dropped)}</p> }
    });
    view! {
        <p class="flow-meta">
            <span class=status_class(d.flow.status) data-testid="flow-status">{d.flow.status.as_str()}</span>
            " " {d.flow.steps} " steps over " {duration(span)}
            {d.flow.stopped_at.clone().map(|s| view! { " · stopped at " <span class="mono" data-testid="flow-stopped-at">{s}</span> })}
        </p>
        <svg class="flow-svg" viewBox=format!("0 0 1000 {height}") role="img" aria-label="Steps of the flow over time, one lane per service">
            {lane_views}
            <polyline class="flow-line" points=line></polyline>
            {dots}
            {ticks}
        </svg>
        <table class="steps">
            <thead>
                <tr>
                    <th scope="col" class="num">"#"</th>
                    <th scope="col" class="num">"At"</th>
                    <th scope="col" class="num">"Gap"</th>
                    <th scope="col">"Service"</th>
                    <th scope="col">"Subject"</th>
                    <th scope="col">"Level"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col"></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        {dropped}
    }
}

/// The demo's scenarios with their rates (editable) and what each has
/// generated; absent when this Eventscope runs no demo.
#[component]
fn DemoPanel() -> impl IntoView {
    let state = RwSignal::new(None::<Result<DemoState, String>>);
    #[cfg(feature = "hydrate")]
    {
        let load = move || {
            leptos::task::spawn_local(async move {
                state.set(Some(
                    crate::fetch::get_json::<DemoState>("/api/v1/demo".into()).await,
                ));
            })
        };
        load();
        let handle = set_interval_with_handle(load, std::time::Duration::from_secs(2)).ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    }
    let running = move || state.with(|s| matches!(s, Some(Ok(d)) if d.running));
    // Rows are keyed by scenario and their numbers update in place, so a
    // rate being typed is not lost when the counts move on (every 2 s).
    let names = Memo::new(move |_| {
        state.with(|s| match s {
            Some(Ok(d)) => d.scenarios.iter().map(|s| s.name.clone()).collect(),
            _ => Vec::new(),
        })
    });
    let error = RwSignal::new(None::<String>);
    // Rates change for operators; others see them (the server refuses
    // their changes anyway).
    let can_change = crate::shell::may(crate::api::Role::Operator);
    let set_rate = move |name: String, value: String| {
        // (Read by serde_json's number parser, which every page has
        // already, rather than `str::parse`'s, 5 KB of wasm more.)
        let Ok(rate) = serde_json::from_str::<f64>(value.trim()) else {
            error.set(Some(format!("{value:?} is not a number")));
            return;
        };
        let body = serde_json::json!({"rates": {name: rate}}).to_string();
        leptos::task::spawn_local(async move {
            match crate::fetch::send_json::<DemoState>("PUT", "/api/v1/demo", body).await {
                Ok(d) => {
                    error.set(None);
                    state.set(Some(Ok(d)));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <Show when=running>
            <section class="panel" data-testid="demo-panel">
                <h2>"Demo scenarios"</h2>
                <p class="muted small">
                    "The built-in producer: ordinary NATS clients publishing these flows. Change a rate and press Enter; 0 stops new flows (those under way finish)."
                </p>
                <Show when=move || !can_change>
                    <p class="muted small" data-testid="demo-read-only">
                        "Your role may not change the rates: an operator or admin can."
                    </p>
                </Show>
                <Show when=move || error.get().is_some()>
                    <p class="error-banner" role="alert">{move || error.get()}</p>
                </Show>
                <table class="demo">
                    <thead>
                        <tr>
                            <th scope="col">"Scenario"</th>
                            <th scope="col">"Rate"</th>
                            <th scope="col" class="num">"Started"</th>
                            <th scope="col" class="num">"Completed"</th>
                            <th scope="col" class="num">"Compensated"</th>
                            <th scope="col" class="num">"Stalled"</th>
                            <th scope="col" class="num">"Published"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || names.get() key=|n| n.clone() let:name>
                            {
                                let row = {
                                    let name = name.clone();
                                    Memo::new(move |_| {
                                        state.with(|s| match s {
                                            Some(Ok(d)) => d.scenarios.iter().find(|s| s.name == name).cloned(),
                                            _ => None,
                                        })
                                        .unwrap_or_default()
                                    })
                                };
                                let rate = Memo::new(move |_| row.with(|r| r.rate));
                                let unit = row.with_untracked(|r| r.unit.clone());
                                let (label, changed, shown) =
                                    (format!("Rate of {name}"), name.clone(), name.clone());
                                view! {
                                    <tr data-testid="demo-row" data-scenario=name.clone()>
                                        <td><strong>{shown}</strong></td>
                                        <td>
                                            {if can_change {
                                                view! {
                                                    <label class="rate">
                                                        <input
                                                            type="number"
                                                            min="0"
                                                            step="any"
                                                            aria-label=label
                                                            data-testid="demo-rate"
                                                            prop:value=move || rate.get().to_string()
                                                            on:change=move |ev| set_rate(changed.clone(), event_target_value(&ev))
                                                        />
                                                        <span class="muted small">{unit}</span>
                                                    </label>
                                                }
                                                    .into_any()
                                            } else {
                                                let _ = (label, changed);
                                                view! {
                                                    <span data-testid="demo-rate-fixed">
                                                        {move || rate.get().to_string()}
                                                        " "
                                                        <span class="muted small">{unit}</span>
                                                    </span>
                                                }
                                                    .into_any()
                                            }}
                                        </td>
                                        {count_cell(row, |s| s.started)}
                                        {count_cell(row, |s| s.completed)}
                                        {count_cell(row, |s| s.compensated)}
                                        {count_cell(row, |s| s.stalled)}
                                        {count_cell(row, |s| s.published)}
                                    </tr>
                                }
                            }
                        </For>
                    </tbody>
                </table>
            </section>
        </Show>
    }
}

/// A count of the demo's table, kept up to date in place.
fn count_cell(row: Memo<DemoScenario>, part: fn(&DemoScenario) -> u64) -> impl IntoView {
    view! { <td class="num">{move || format::thousands(row.with(part))}</td> }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FlowStep;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(2_400), "2.4 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(duration(-5), "0 ms");
    }

    #[test]
    fn steps_get_a_lane_per_service_and_a_place_in_time() {
        let step = |t_ms: i64, service: &str| FlowStep {
            event_id: 1,
            t_ms,
            gap_ms: 0,
            subject: "s".into(),
            service: Some(service.into()),
            level: None,
            role: "step".into(),
        };
        let d = FlowDetail {
            flow: FlowSummary {
                id: "f".into(),
                status: FlowStatus::Completed,
                started_ms: 1_000,
                last_ms: 1_400,
                steps: 3,
                errors: 0,
                first_subject: "s".into(),
                last_subject: "s".into(),
                stopped_at: None,
                services: vec![],
            },
            steps: vec![step(1_000, "a"), step(1_100, "b"), step(1_400, "a")],
            steps_dropped: 0,
            stall_ms: 30_000,
        };
        let (lanes, points) = place(&d);
        assert_eq!(lanes, ["a", "b"]);
        assert_eq!(points, [(0.0, 0), (250.0, 1), (1_000.0, 0)]);
    }
}
