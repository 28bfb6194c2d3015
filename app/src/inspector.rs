//! The event inspector: one stored event in full (`GET /api/v1/events/{id}`).
//! Its payload as a collapsible JSON tree when it is JSON, as text when it
//! is not, as base64 when it is not even UTF-8; its headers, subject, source
//! sequence, times, size and how it was decoded. Copy the payload, or a
//! `nats pub` command that publishes it again.
//!
//! Payloads are untrusted: every part of them reaches the page as text
//! nodes (Leptos escapes text), never as HTML.

use crate::api::EventDetail;
use crate::fetch::get_json;
use crate::format;
use leptos::prelude::*;
use serde_json::Value;

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A `nats pub` command that publishes this event again.
pub fn nats_pub_command(subject: &str, headers: &[(String, String)], payload: &str) -> String {
    let mut cmd = format!("nats pub {}", shell_quote(subject));
    for (k, v) in headers {
        cmd.push_str(&format!(" -H {}", shell_quote(&format!("{k}:{v}"))));
    }
    cmd.push(' ');
    cmd.push_str(&shell_quote(payload));
    cmd
}

/// Payload fields that tie events of one flow together, in the order
/// they are looked for.
pub const CORRELATION_KEYS: [&str; 8] = [
    "correlation_id",
    "correlationId",
    "trace_id",
    "traceId",
    "saga_id",
    "order_id",
    "orderId",
    "request_id",
];

/// The payload's correlation field and its value (as the field filter
/// compares it: strings bare, other scalars as JSON), if it has one.
pub fn correlation(payload: &Value) -> Option<(&'static str, String)> {
    let obj = payload.as_object()?;
    CORRELATION_KEYS.iter().find_map(|k| {
        let v = match obj.get(*k)? {
            Value::String(s) => s.clone(),
            v @ (Value::Number(_) | Value::Bool(_)) => v.to_string(),
            _ => return None,
        };
        Some((*k, v))
    })
}

/// Copies `text` to the clipboard (in the browser).
fn copy(text: String) {
    #[cfg(feature = "hydrate")]
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(&text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// A JSON value as a tree of `<details>`: objects and arrays fold.
/// What the server shows in place of a value masked for the reader's role.
const MASKED: &str = "[masked]";

fn json_tree(key: Option<String>, v: &Value, depth: usize) -> AnyView {
    let label =
        key.map(|k| view! { <span class="jt-key">{k}</span><span class="jt-colon">": "</span> });
    match v {
        Value::Object(m) => {
            let children = m
                .iter()
                .map(|(k, v)| json_tree(Some(k.clone()), v, depth + 1))
                .collect_view();
            let n = m.len();
            view! {
                <details class="jt" open=depth < 3>
                    <summary>{label}<span class="jt-brace">"{ "</span><span class="jt-count">{format!("{n} keys")}</span><span class="jt-brace">" }"</span></summary>
                    <div class="jt-children">{children}</div>
                </details>
            }
            .into_any()
        }
        Value::Array(a) => {
            let children = a
                .iter()
                .enumerate()
                .map(|(i, v)| json_tree(Some(i.to_string()), v, depth + 1))
                .collect_view();
            let n = a.len();
            view! {
                <details class="jt" open=depth < 3>
                    <summary>{label}<span class="jt-brace">"[ "</span><span class="jt-count">{format!("{n} items")}</span><span class="jt-brace">" ]"</span></summary>
                    <div class="jt-children">{children}</div>
                </details>
            }
            .into_any()
        }
        scalar => {
            let class = match scalar {
                // What the server masked for the reader's role.
                Value::String(s) if s == MASKED => "jt-masked",
                Value::String(_) => "jt-str",
                Value::Number(_) => "jt-num",
                Value::Bool(_) => "jt-bool",
                _ => "jt-null",
            };
            let text = scalar.to_string();
            view! { <div class="jt-leaf">{label}<span class=class>{text}</span></div> }.into_any()
        }
    }
}

/// The inspector panel for event `id`.
#[component]
pub fn Inspector(id: Signal<u64>, on_close: Callback<()>) -> impl IntoView {
    // Fetched in the browser only (the page is served with "Loading"), as
    // JSON; decoded and drawn by `detail_view`, in its own wasm chunk.
    let detail = LocalResource::new(move || {
        let id = id.get();
        get_json::<Value>(format!("/api/v1/events/{id}"))
    });
    let body = move || {
        let Some(result) = detail.get() else {
            return view! { <p class="empty">"Loading the event…"</p> }.into_any();
        };
        match result {
            Err(message) => error_view(message).into_any(),
            Ok(json) => crate::shell::lazy_view(detail_view(json)).into_any(),
        }
    };
    view! {
        <aside class="panel inspector" data-testid="inspector" aria-label="Event inspector">
            <div class="inspector-head">
                <h2>"Event #" {move || id.get()}</h2>
                <span class="spacer"></span>
                <a class="btn" href=move || format!("/api/v1/events/{}", id.get()) target="_blank" rel="noopener">"JSON"</a>
                <button class="btn" on:click=move |_| on_close.run(()) aria-label="Close the inspector" data-testid="inspector-close">"✕"</button>
            </div>
            {body}
        </aside>
    }
}

fn error_view(message: String) -> impl IntoView {
    view! { <p class="empty error" data-testid="inspector-error">{message}</p> }
}

/// The event (`GET /api/v1/events/{id}`'s JSON) drawn: loaded lazily, in its
/// own wasm chunk (`cargo leptos build --split`), with the decoder of
/// [`EventDetail`], as most visits never open an event.
#[leptos::lazy]
fn detail_view(json: Value) -> AnyView {
    match serde_json::from_value::<EventDetail>(json) {
        Ok(e) => detail_of(e).into_any(),
        Err(e) => error_view(format!(
            "the server sent an event this page cannot read: {e}"
        ))
        .into_any(),
    }
}

fn detail_of(e: EventDetail) -> impl IntoView {
    let s = &e.summary;
    let payload_text = e.payload_text.clone();
    let parsed: Option<Value> = payload_text
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    let decode = match s.format.as_str() {
        "raw" => "not decoded: kept as raw bytes".to_string(),
        f => format!("{f}, as a {}", s.kind),
    };
    let copy_payload = payload_text
        .clone()
        .or_else(|| e.payload_base64.clone())
        .unwrap_or_default();
    let related = parsed.as_ref().and_then(correlation).map(|(k, v)| {
        let href = format!("/tail?field={}", format::url_component(&format!("{k}={v}")));
        view! {
            <p class="related">
                <a href=href data-testid="inspector-related">
                    "Events with the same " {k} " (" {v} ")"
                </a>
            </p>
        }
    });
    // The flow it belongs to (the correlation id the server grouped it by).
    let flow = e.correlation.clone().map(|c| {
        let href = format!("/flows?flow={}", format::url_component(&c));
        view! {
            <p class="related">
                <a href=href data-testid="inspector-flow">"Its flow (" {c} ")"</a>
            </p>
        }
    });
    let pub_cmd = payload_text
        .as_deref()
        .map(|p| nats_pub_command(&s.subject, &e.headers, p));
    let source = match (&s.stream, s.seq) {
        (Some(stream), Some(seq)) => format!("JetStream {stream} #{seq}"),
        _ => "core NATS".to_string(),
    };
    let mut rows: Vec<(&'static str, String, &'static str)> = vec![
        ("Subject", s.subject.clone(), "inspector-subject"),
        ("Source", source, "inspector-source"),
        (
            "Received",
            format::datetime(s.received_ms),
            "inspector-received",
        ),
        ("Event time", format::datetime(s.time_ms), "inspector-time"),
        (
            "Size",
            format!("{} bytes", format::thousands(s.size as u64)),
            "inspector-size",
        ),
        ("Decoded", decode, "inspector-decoded"),
        (
            "Level",
            s.level.clone().unwrap_or_else(|| "-".into()),
            "inspector-level",
        ),
        (
            "Service",
            s.service.clone().unwrap_or_else(|| "-".into()),
            "inspector-service",
        ),
    ];
    if let Some(reply) = e.reply.clone() {
        rows.insert(1, ("Reply to", reply, "inspector-reply"));
    }
    let duplicate = s.duplicate;
    let masked = (!e.masked.is_empty()).then(|| {
        view! {
            <p class="card-note masked-note" data-testid="inspector-masked">
                "Masked for your role (the stored event has them): " {e.masked.join(", ")}
            </p>
        }
    });
    let headers = e.headers.clone();
    let has_headers = !headers.is_empty();
    let payload = match (parsed, payload_text, e.payload_base64.clone()) {
        (Some(v), Some(text), _) => {
            let pretty = serde_json::to_string_pretty(&v).unwrap_or(text);
            view! {
                <div class="payload-tree" data-testid="inspector-tree">{json_tree(None, &v, 0)}</div>
                <details class="raw">
                    <summary>"Pretty text"</summary>
                    <pre class="payload" data-testid="inspector-payload">{pretty}</pre>
                </details>
            }
            .into_any()
        }
        (None, Some(text), _) => {
            view! { <pre class="payload" data-testid="inspector-payload">{text}</pre> }.into_any()
        }
        (_, None, Some(b64)) => view! {
            <p class="card-note">"Not UTF-8 text: the bytes in base64."</p>
            <pre class="payload" data-testid="inspector-payload">{b64}</pre>
        }
        .into_any(),
        _ => view! { <p class="empty">"Empty payload."</p> }.into_any(),
    };
    view! {
        <dl class="meta">
            {rows
                .into_iter()
                .map(|(k, v, id)| view! { <dt>{k}</dt><dd data-testid=id>{v}</dd> })
                .collect_view()}
        </dl>
        {flow}
        {related}
        <Show when=move || duplicate>
            <p class="tail-note warn">"A duplicate: its Nats-Msg-Id was seen before; kept, not counted."</p>
        </Show>
        <h3>"Payload"</h3>
        {masked}
        <div class="inspector-actions">
            <button class="btn" data-testid="copy-payload" on:click=move |_| copy(copy_payload.clone())>"Copy payload"</button>
            {pub_cmd.clone().map(|cmd| {
                let c = cmd.clone();
                view! { <button class="btn" data-testid="copy-nats-pub" title=cmd on:click=move |_| copy(c.clone())>"Copy as nats pub"</button> }
            })}
        </div>
        {payload}
        <h3>"Headers"</h3>
        <Show when=move || has_headers fallback=|| view! { <p class="card-note">"No headers."</p> }>
            <table class="headers" data-testid="inspector-headers">
                <tbody>
                    {headers
                        .iter()
                        .map(|(k, v)| view! { <tr><th scope="row">{k.clone()}</th><td>{v.clone()}</td></tr> })
                        .collect_view()}
                </tbody>
            </table>
        </Show>
        {pub_cmd.map(|cmd| view! { <h3>"Publish it again"</h3><pre class="payload cmd" data-testid="inspector-nats-pub">{cmd}</pre> })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_correlation_field() {
        let v: Value =
            serde_json::from_str(r#"{"msg":"x","order_id":42,"trace_id":"t-1"}"#).expect("json");
        assert_eq!(correlation(&v), Some(("trace_id", "t-1".to_string())));
        let v: Value = serde_json::from_str(r#"{"orderId":7}"#).expect("json");
        assert_eq!(correlation(&v), Some(("orderId", "7".to_string())));
        assert_eq!(correlation(&Value::Null), None);
    }

    #[test]
    fn nats_pub_commands_survive_the_shell() {
        assert_eq!(
            nats_pub_command(
                "orders.new",
                &[("Nats-Msg-Id".into(), "a'1".into())],
                r#"{"q":"it's"}"#
            ),
            r#"nats pub 'orders.new' -H 'Nats-Msg-Id:a'\''1' '{"q":"it'\''s"}'"#
        );
    }
}
