//! The schemas page (PRODUCT.md F9): the shape of each kind of JSON payload
//! as the server inferred it (fields, their types, how often each is there,
//! an example), with the drifts raised. Drifts are events too (subject
//! `eventscope.schema.drift`): the page links to them in the tail.

use crate::api::{SchemaInfo, SchemaList};
use crate::format;
use leptos::prelude::*;

/// Subject of the drift events.
pub const DRIFT_SUBJECT: &str = "eventscope.schema.drift";

/// A field's types as text, most seen first (`number 98% · string 2%`).
pub fn types_text(types: &std::collections::BTreeMap<String, u64>) -> String {
    let total: u64 = types.values().sum();
    let mut v: Vec<(&String, &u64)> = types.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    if v.len() == 1 {
        return v[0].0.clone();
    }
    v.iter()
        .map(|(t, n)| format!("{t} {:.0}%", **n as f64 / total.max(1) as f64 * 100.0))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The schemas page.
#[component]
pub fn Schemas() -> impl IntoView {
    // Served with the server's schemas (see `FirstViews`), then polled.
    let first = crate::shell::first_view::<SchemaList>("schemas".to_string());
    let list = RwSignal::new(first.map(Ok::<_, String>));
    #[cfg(feature = "hydrate")]
    {
        let load = move || {
            leptos::task::spawn_local(async move {
                list.set(Some(
                    crate::fetch::get_json::<SchemaList>("/api/v1/schemas".into()).await,
                ));
            })
        };
        load();
        let handle = set_interval_with_handle(load, std::time::Duration::from_secs(3)).ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    }
    let schemas = move || {
        list.with(|l| match l {
            Some(Ok(s)) => {
                // Drifted first, then by name.
                let mut v = s.schemas.clone();
                v.sort_by(|a, b| {
                    (b.drifts > 0)
                        .cmp(&(a.drifts > 0))
                        .then_with(|| a.key.cmp(&b.key))
                });
                v
            }
            _ => Vec::new(),
        })
    };
    let summary = move || {
        list.with(|l| match l {
            None => "Loading…".to_string(),
            Some(Err(e)) => e.clone(),
            Some(Ok(s)) => format!(
                "{} · {} · {} not read (over the per-subject budget)",
                format::count_of(s.schemas.len() as u64, "schema"),
                format::count_of(s.drifts, "drift"),
                format::count_of(s.skipped, "payload")
            ),
        })
    };
    let drift_href =
        crate::travel::url_with("/tail", [], &[("subject", Some(DRIFT_SUBJECT.to_string()))]);
    view! {
        <main class="page">
            <div class="page-head">
                <h2 class="page-title">"Schemas"</h2>
                <span class="muted" data-testid="schemas-summary">{summary}</span>
                <span class="spacer"></span>
                <a class="btn" href=drift_href data-testid="drift-events">"Drift events in the tail"</a>
            </div>
            <Show
                when=move || !schemas().is_empty()
                fallback=|| view! { <p class="empty">"No JSON payloads read yet. Each subject (or event type field) gets a schema from its payloads."</p> }
            >
                <For each=schemas key=|s| (s.key.clone(), s.samples, s.drifts) let:schema>
                    <SchemaPanel schema/>
                </For>
            </Show>
        </main>
    }
}

#[component]
fn SchemaPanel(schema: SchemaInfo) -> impl IntoView {
    let fields = schema.fields.clone();
    let drifted = schema.drifts > 0;
    view! {
        <details class={if drifted { "panel schema drifted" } else { "panel schema" }} open=drifted data-testid="schema" data-key=schema.key.clone()>
            <summary>
                <span class="mono schema-key">{schema.key.clone()}</span>
                <span class="muted">{format!(" · {} · {}", format::count_of(schema.samples, "payload"), format::count_of(schema.fields.len() as u64, "field"))}</span>
                {drifted.then(|| view! {
                    <span class="badge badge-warn" data-testid="drift-badge">
                        {format::count_of(schema.drifts, "drift")}
                    </span>
                    {schema.last_drift_ms.map(|t| view! { <span class="muted small">{format!(" last at {}", format::clock(t))}</span> })}
                })}
            </summary>
            <table class="fields">
                <thead>
                    <tr>
                        <th scope="col">"Field"</th>
                        <th scope="col">"Types"</th>
                        <th scope="col" class="num">"Present"</th>
                        <th scope="col">"Example"</th>
                    </tr>
                </thead>
                <tbody>
                    {fields
                        .into_iter()
                        .map(|f| {
                            let mixed = f.types.len() > 1;
                            view! {
                                <tr data-testid="schema-field" data-path=f.path.clone()>
                                    <td class="mono">{f.path.clone()}</td>
                                    <td class={if mixed { "warn" } else { "" }}>{types_text(&f.types)}</td>
                                    <td class="num">{format!("{:.0}%", f.presence * 100.0)}</td>
                                    <td class="mono example">{f.example.clone()}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_most_seen_first() {
        let one = [("string".to_string(), 4)].into();
        assert_eq!(types_text(&one), "string");
        let two = [("string".to_string(), 1), ("number".to_string(), 3)].into();
        assert_eq!(types_text(&two), "number 75% · string 25%");
    }
}
