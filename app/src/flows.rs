//! The flows page (PRODUCT.md F8): flows (events sharing a correlation id)
//! counted by status, the most recent listed with where each stopped, one
//! flow's steps on a timeline with a lane per service; the CQRS pairs'
//! throughput and read-model lag; the read models defined in the config
//! file (in the demo, the accounts' balances, rebuilt from the log for any
//! moment); and, when this Eventscope runs the demo, its scenarios' rates,
//! adjustable.
//!
//! The URL holds the choices (`status=`, `flow=<correlation id>`), so a
//! flow is a link; time travel (`at=`) applies to all of it.

use crate::api::{
    CqrsState, CustomGroup, DemoState, FlowCounts, FlowDetail, FlowStatus, FlowSummary,
    ProjectionInfo, Window,
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
            <Show when=move || selected.get().is_some()>
                <FlowTimeline id=Signal::derive(move || selected.get().unwrap_or_default()) flows/>
            </Show>
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
            <CqrsPanel window/>
            <ReadModels/>
            <DemoPanel/>
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

/// One flow's steps: a lane per service, a dot per step at its time, a
/// line through them in order; then the steps as a table.
#[component]
fn FlowTimeline(
    id: Signal<String>,
    flows: RwSignal<Option<Result<FlowsView, String>>>,
) -> impl IntoView {
    let travel = use_travel();
    // Fetched as JSON; decoded and drawn by `flow_view`, in its own wasm
    // chunk, as most visits open no flow.
    let detail = RwSignal::new(None::<Result<serde_json::Value, String>>);
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
            let got = crate::fetch::get_json::<serde_json::Value>(url).await;
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
            Some(Ok(json)) => {
                // (The browser is one thread: the wrapper only tells the
                // compiler so.)
                let drawn =
                    send_wrapper::SendWrapper::new(flow_view(json.clone(), travel.at.get()));
                Suspend::new(drawn).into_any()
            }
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

/// A flow (`GET /api/v1/flows/{id}`'s JSON) drawn: loaded lazily, in its
/// own wasm chunk (`cargo leptos build --split`), with the decoder of
/// [`FlowDetail`].
#[leptos::lazy]
fn flow_view(json: serde_json::Value, at: Option<i64>) -> AnyView {
    match serde_json::from_value::<FlowDetail>(json) {
        Ok(d) => timeline_view(&d, at).into_any(),
        Err(e) => view! {
            <p class="empty error" data-testid="flow-error">
                {format!("the server sent a flow this page cannot read: {e}")}
            </p>
        }
        .into_any(),
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

/// The CQRS pairs over the page's window.
#[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
#[component]
fn CqrsPanel(window: RwSignal<Window>) -> impl IntoView {
    let first = crate::shell::first_view::<Vec<CqrsState>>(crate::shell::first_key(
        "projection",
        "cqrs",
        Window::M15,
    ));
    let pairs = RwSignal::new(first.map(Ok::<_, String>));
    #[cfg(feature = "hydrate")]
    crate::travel::follow_projection(
        "cqrs",
        move || window.get(),
        |state| crate::api::body_field(state, "cqrs", "pairs"),
        move |r| pairs.set(Some(r)),
    );
    let list = move || {
        pairs.with(|p| match p {
            Some(Ok(v)) => v.clone(),
            _ => Vec::new(),
        })
    };
    let ms = |v: f64| duration(v.round() as i64);
    view! {
        <section class="panel" data-testid="cqrs-panel">
            <h2>"CQRS: commands, events and the read model"</h2>
            <Show
                when=move || !list().is_empty()
                fallback=|| view! {
                    <p class="empty">"No CQRS pair configured: add a [[cqrs]] entry (name, command, events, read_model subject patterns) to the config file."</p>
                }
            >
                <table class="cqrs">
                    <thead>
                        <tr>
                            <th scope="col">"Pair"</th>
                            <th scope="col" class="num">"Commands / s"</th>
                            <th scope="col" class="num">"Events / s"</th>
                            <th scope="col" class="num">"Read model / s"</th>
                            <th scope="col" class="num">"Lag p50"</th>
                            <th scope="col" class="num">"Lag p99"</th>
                            <th scope="col" class="num">"Lag max"</th>
                            <th scope="col" class="num">"Waiting"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=list key=|p| format!("{p:?}") let:p>
                            <tr data-testid="cqrs-row">
                                <td>
                                    <strong>{p.name.clone()}</strong>
                                    <div class="muted mono small">
                                        {format!("{} → {} → {}", p.command_subject, p.event_subject, p.read_model_subject)}
                                    </div>
                                </td>
                                <td class="num">{format::rate(p.commands.per_sec)}</td>
                                <td class="num">{format::rate(p.events.per_sec)}</td>
                                <td class="num">{format::rate(p.updates.per_sec)}</td>
                                <td class="num" data-testid="cqrs-p50">{ms(p.lag.p50_ms)}</td>
                                <td class={if p.lag.p99_ms > 1_000.0 { "num warn" } else { "num" }} data-testid="cqrs-p99">{ms(p.lag.p99_ms)}</td>
                                <td class="num">{ms(p.lag.max_ms)}</td>
                                <td class="num">{format::thousands(p.waiting)}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

/// Rows a read model's table shows at most.
const MODEL_ROWS: usize = 25;

/// The user-defined projections (`[[projection]]` in the config file: read
/// models folded from the log), each a table of its groups, live or as of
/// the moment viewed.
#[component]
fn ReadModels() -> impl IntoView {
    let models = RwSignal::new(Vec::<ProjectionInfo>::new());
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        let list =
            crate::fetch::get_json::<crate::api::ProjectionList>("/api/v1/projections".into())
                .await;
        if let Ok(list) = list {
            models.set(
                list.projections
                    .into_iter()
                    .filter(|p| p.window.is_some())
                    .collect(),
            );
        }
    });
    view! {
        <Show when=move || models.with(|m| !m.is_empty())>
            <section class="panel" data-testid="read-models">
                <h2>"Read models"</h2>
                <p class="card-note">"Projections defined in the config file ([[projection]]), folded from the event log: time travel rebuilds them as of any moment."</p>
                <div class="read-models">
                    <For each=move || models.get() key=|m| m.name.clone() let:m>
                        <ReadModel info=m/>
                    </For>
                </div>
            </section>
        </Show>
    }
}

/// One read model: its groups (key, value, events), first by key.
#[component]
fn ReadModel(info: ProjectionInfo) -> impl IntoView {
    let groups = RwSignal::new(None::<Result<Vec<CustomGroup>, String>>);
    #[cfg(feature = "hydrate")]
    let window = info.window.unwrap_or(Window::M15);
    #[cfg(feature = "hydrate")]
    crate::travel::follow_projection(
        info.name.clone(),
        move || window,
        |state| crate::api::body_field(state, "custom", "groups"),
        move |r| groups.set(Some(r)),
    );
    let shown = move || {
        groups.with(|g| match g {
            Some(Ok(v)) => v.iter().take(MODEL_ROWS).cloned().collect(),
            _ => Vec::new(),
        })
    };
    let more = move || {
        groups.with(|g| match g {
            Some(Ok(v)) if v.len() > MODEL_ROWS => Some(format!(
                "and {} more",
                format::thousands((v.len() - MODEL_ROWS) as u64)
            )),
            _ => None,
        })
    };
    let status = move || {
        groups.with(|g| match g {
            None => Some("Loading…".to_string()),
            Some(Err(e)) => Some(e.clone()),
            Some(Ok(v)) if v.is_empty() => Some("Nothing matched yet.".to_string()),
            Some(Ok(_)) => None,
        })
    };
    let shown_value = |g: &CustomGroup| match (g.value, g.p50, g.p99) {
        (Some(v), _, _) => format::value(v),
        (None, Some(p50), Some(p99)) => {
            format!("p50 {} · p99 {}", format::value(p50), format::value(p99))
        }
        _ => "-".to_string(),
    };
    view! {
        <div class="read-model" data-testid="read-model" data-name=info.name.clone()>
            <h3>{info.name.clone()}</h3>
            <p class="muted small">{info.description.clone()}</p>
            {move || status().map(|s| view! { <p class="empty">{s}</p> })}
            <table class="model">
                <thead>
                    <tr>
                        <th scope="col">"Key"</th>
                        <th scope="col" class="num">"Value"</th>
                        <th scope="col" class="num">"Events"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=shown key=|g| format!("{g:?}") let:g>
                        <tr data-testid="read-model-row" data-key=g.key.clone()>
                            <td class="mono">{if g.key.is_empty() { "(all)".to_string() } else { g.key.clone() }}</td>
                            <td class="num" data-testid="read-model-value">{shown_value(&g)}</td>
                            <td class="num muted">{format::thousands(g.count)}</td>
                        </tr>
                    </For>
                </tbody>
            </table>
            {move || more().map(|m| view! { <p class="muted small">{m}</p> })}
        </div>
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
    let scenarios = move || {
        state.with(|s| match s {
            Some(Ok(d)) => d.scenarios.clone(),
            _ => Vec::new(),
        })
    };
    let error = RwSignal::new(None::<String>);
    let set_rate = move |name: String, value: String| {
        let Ok(rate) = value.trim().parse::<f64>() else {
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
                        <For each=scenarios key=|s| format!("{s:?}") let:s>
                            {
                                let name = s.name.clone();
                                view! {
                                    <tr data-testid="demo-row" data-scenario=s.name.clone()>
                                        <td><strong>{s.name.clone()}</strong></td>
                                        <td>
                                            <label class="rate">
                                                <input
                                                    type="number"
                                                    min="0"
                                                    step="any"
                                                    aria-label=format!("Rate of {}", s.name)
                                                    data-testid="demo-rate"
                                                    prop:value=s.rate.to_string()
                                                    on:change=move |ev| set_rate(name.clone(), event_target_value(&ev))
                                                />
                                                <span class="muted small">{s.unit.clone()}</span>
                                            </label>
                                        </td>
                                        <td class="num">{format::thousands(s.started)}</td>
                                        <td class="num">{format::thousands(s.completed)}</td>
                                        <td class="num">{format::thousands(s.compensated)}</td>
                                        <td class="num">{format::thousands(s.stalled)}</td>
                                        <td class="num">{format::thousands(s.published)}</td>
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
