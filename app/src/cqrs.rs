//! The CQRS page (PRODUCT.md F8's CQRS view, F4's read models): each
//! command/event/read-model pair configured (`[[cqrs]]`) with its
//! throughput and the lag from a command to its read-model update; and the
//! read models defined in the config file (`[[projection]]`; in the demo,
//! the accounts' balances), folded from the log, so time travel rebuilds
//! them as of any moment (`at=` applies to the whole page).

use crate::api::{CqrsState, CustomGroup, ProjectionInfo, Window};
use crate::flows::duration;
use crate::format;
use leptos::prelude::*;

/// The CQRS page.
#[component]
pub fn Cqrs() -> impl IntoView {
    let window = RwSignal::new(Window::M15);
    view! {
        <main class="page">
            <div class="page-head">
                <h2 class="page-title">"CQRS"</h2>
                <span class="muted">
                    "Commands, the events they cause and the read models those update; read models folded from the log."
                </span>
                <span class="spacer"></span>
                <crate::charts::WindowPicker
                    current=window.into()
                    pick=Callback::new(move |w| window.set(w))
                    testid="cqrs-window"
                />
            </div>
            <CqrsPanel window/>
            <ReadModels/>
        </main>
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
            <h2>"Commands, events and read-model updates"</h2>
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
    // Each row with whether the whole column is whole numbers.
    let shown = move || {
        groups.with(|g| match g {
            Some(Ok(v)) => {
                let rows = &v[..v.len().min(MODEL_ROWS)];
                let whole = rows
                    .iter()
                    .filter_map(|g| g.value)
                    .all(|v| v.fract() == 0.0 && v.abs() < 1e15);
                rows.iter().map(|g| (g.clone(), whole)).collect()
            }
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
    // One format down the column: whole numbers with separators when every
    // value is whole (balances, counts), else each by its size.
    let shown_value = |g: &CustomGroup, whole: bool| match (g.value, g.p50, g.p99) {
        (Some(v), _, _) if whole => {
            let n = format::thousands(v.abs() as u64);
            if v < 0.0 { format!("-{n}") } else { n }
        }
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
                    <For each=shown key=|row| format!("{row:?}") let:row>
                        <tr data-testid="read-model-row" data-key=row.0.key.clone()>
                            <td class="mono">{if row.0.key.is_empty() { "(all)".to_string() } else { row.0.key.clone() }}</td>
                            <td class="num" data-testid="read-model-value">{shown_value(&row.0, row.1)}</td>
                            <td class="num muted">{format::thousands(row.0.count)}</td>
                        </tr>
                    </For>
                </tbody>
            </table>
            {move || more().map(|m| view! { <p class="muted small">{m}</p> })}
        </div>
    }
}
