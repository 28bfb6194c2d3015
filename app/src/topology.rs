//! The topology page (PRODUCT.md F8): services and subjects as a live
//! graph, inferred by the server from traffic (see the `topology`
//! projection), with events per second on every edge; an edge's colour says
//! how many of its events were errors. Click an edge (or its row in the
//! table under the graph) to open the tail filtered to it.
//!
//! The server lays the graph out (columns by distance from where flows
//! start, rows by name), so it stays put between ticks.

use crate::api::{TopoEdge, TopoNode, Window};
use crate::format;
use crate::travel::url_with;
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::use_navigate;

const COL_W: f64 = 210.0;
const ROW_H: f64 = 58.0;
const NODE_W: f64 = 168.0;
const NODE_H: f64 = 34.0;
const PAD: f64 = 16.0;

/// Top-left corner of a node.
fn at(n: &TopoNode) -> (f64, f64) {
    (PAD + n.column as f64 * COL_W, PAD + n.row as f64 * ROW_H)
}

/// Corner radius of a back edge's turns.
const TURN: f64 = 6.0;

/// The SVG path of an edge between two nodes, and where its label goes.
/// Forward: a curve from the right of `a` to the left of `b`. Back (to the
/// same or an earlier column): down from the bottom of `a` into the gap
/// under its row, left along that gap (no node stands in a gap between
/// rows), along the column gap beside `b`, into the left of `b`; rounded
/// corners. A back edge thus never runs through a node.
pub fn edge_path(a: &TopoNode, b: &TopoNode) -> (String, f64, f64) {
    let ((ax, ay), (bx, by)) = (at(a), at(b));
    let y2 = by + NODE_H / 2.0;
    if b.column > a.column {
        let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2.0);
        let dx = (bx - x1) / 2.0;
        let d = format!(
            "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {bx:.1},{y2:.1}",
            x1 + dx,
            bx - dx
        );
        return (d, (x1 + bx) / 2.0, (y1 + y2) / 2.0 - 5.0);
    }
    let (sx, sy) = (ax + NODE_W / 2.0, ay + NODE_H);
    let gap = ay + NODE_H + (ROW_H - NODE_H) / 2.0;
    let vx = bx - 10.0;
    // Down the side of `b`'s column, or up it.
    let dir = if y2 > gap { 1.0 } else { -1.0 };
    let d = format!(
        "M{sx:.1},{sy:.1} V{:.1} Q{sx:.1},{gap:.1} {:.1},{gap:.1} H{:.1} Q{vx:.1},{gap:.1} {vx:.1},{:.1} V{:.1} Q{vx:.1},{y2:.1} {:.1},{y2:.1} H{bx:.1}",
        gap - TURN,
        sx - TURN,
        vx + TURN,
        gap + dir * TURN,
        y2 - dir * TURN,
        vx + TURN,
    );
    (d, (sx + vx) / 2.0, gap - 3.0)
}

/// The tail's URL for the events an edge carries.
pub fn tail_href(e: &TopoEdge) -> String {
    // Published by the edge's service: its own events (and its answers, on
    // the requesters' inboxes).
    let service = if e.kind == "publishes" || e.kind == "replies" {
        e.from.strip_prefix("svc:")
    } else {
        None
    };
    url_with(
        "/tail",
        [],
        &[
            ("subject", Some(e.subject.clone())),
            ("service", service.map(str::to_string)),
        ],
    )
}

/// An edge's label: its rate, and for a JetStream consumer what is pending.
pub fn edge_label(e: &TopoEdge) -> String {
    match e.pending {
        Some(p) => format!(
            "{}/s · {} pending",
            format::rate(e.rate.per_sec),
            format::thousands(p)
        ),
        None => format!("{}/s", format::rate(e.rate.per_sec)),
    }
}

fn edge_class(e: &TopoEdge) -> String {
    let share = e.errors as f64 / e.rate.count.max(1) as f64;
    let health = if share > 0.05 {
        " edge-bad"
    } else if e.errors > 0 {
        " edge-warn"
    } else {
        ""
    };
    format!("edge edge-{}{health}", e.kind)
}

fn short(label: &str) -> String {
    if label.chars().count() > 22 {
        label.chars().take(21).chain(['…']).collect()
    } else {
        label.to_string()
    }
}

/// The topology page.
#[component]
pub fn Topology() -> impl IntoView {
    let window = RwSignal::new(Window::M1);
    let telemetry = RwSignal::new(false);
    // Served with the server's graph (see `FirstViews`), then live.
    let first = crate::shell::first_view::<(Vec<TopoNode>, Vec<TopoEdge>)>(
        crate::shell::first_key("projection", "topology", Window::M1),
    );
    let graph = RwSignal::new(first.map(Ok::<_, String>));
    #[cfg(feature = "hydrate")]
    {
        let pick = |state: &serde_json::Value| {
            use crate::api::body_field as part;
            Some((
                part(state, "topology", "nodes")?,
                part(state, "topology", "edges")?,
            ))
        };
        // Two projections (with and without telemetry); follow the chosen.
        let shown = Memo::new(move |_| telemetry.get());
        Effect::new(move |before: Option<()>| {
            let name = if shown.get() {
                "topology_all"
            } else {
                "topology"
            };
            // A switch clears the graph; the first run keeps what the page
            // was served with.
            if before.is_some() {
                graph.set(None);
            }
            crate::travel::follow_projection(
                name,
                move || window.get(),
                pick,
                move |r| graph.set(Some(r)),
            );
        });
    }
    let navigate = use_navigate();
    let navigate = StoredValue::new(navigate);
    let drawing = move || {
        graph.with(|g| match g {
            None => view! { <p class="empty">"Waiting for the graph…"</p> }.into_any(),
            Some(Err(e)) => view! { <p class="empty error">{e.clone()}</p> }.into_any(),
            Some(Ok((nodes, _))) if nodes.is_empty() => view! {
                <p class="empty" data-testid="topology-empty">
                    "No traffic between services in the window. Services are read from a service header (Nats-Service, X-Service) or the payload's service field, else the subject's first token that is not a category word such as logs or metrics; an edge from a subject to a service needs flows (a correlation id, best with a Causation-Id header) or a request answered on its reply inbox."
                </p>
            }
            .into_any(),
            Some(Ok((nodes, edges))) => {
                let width = PAD * 2.0 + nodes.iter().map(|n| n.column).max().unwrap_or(0) as f64 * COL_W + NODE_W;
                let height = PAD * 2.0 + nodes.iter().map(|n| n.row).max().unwrap_or(0) as f64 * ROW_H + NODE_H + ROW_H;
                let find = |id: &str| nodes.iter().find(|n| n.id == id);
                let edge_views = edges
                    .iter()
                    .filter_map(|e| {
                        let (a, b) = (find(&e.from)?, find(&e.to)?);
                        let (d, mx, mut my) = edge_path(a, b);
                        // A consumer's label (rate and pending) is wider
                        // than the gap between columns: above the row.
                        if e.pending.is_some() && b.column > a.column {
                            my = at(a).1.min(at(b).1) - 4.0;
                        }
                        let href = tail_href(e);
                        let width = 1.2 + 2.2 * (1.0 + e.rate.per_sec).log10();
                        let title = format!(
                            "{} → {}: {} events ({}/s), {} errors. Click for the tail.",
                            a.label, b.label, e.rate.count, format::rate(e.rate.per_sec), e.errors
                        );
                        Some(view! {
                            <g
                                class=edge_class(e)
                                data-testid="topology-edge"
                                data-from=e.from.clone()
                                data-to=e.to.clone()
                                on:click=move |_| navigate.with_value(|n| n(&href, NavigateOptions::default()))
                            >
                                <title>{title}</title>
                                <path class="edge-hit" d=d.clone()></path>
                                <path class="edge-line" d=d stroke-width=format!("{width:.1}") marker-end="url(#arrow)"></path>
                                <text class="edge-label" x=mx y=my text-anchor="middle">{edge_label(e)}</text>
                            </g>
                        })
                    })
                    .collect_view();
                let node_views = nodes
                    .iter()
                    .map(|n| {
                        let (x, y) = at(n);
                        let class = match n.kind.as_str() {
                            "service" => "node node-service",
                            "consumer" => "node node-consumer",
                            "stream" => "node node-stream",
                            _ => "node node-subject",
                        };
                        view! {
                            <g class=class data-testid="topology-node" data-id=n.id.clone()>
                                <title>{format!("{}: {}", n.kind, n.label)}</title>
                                <rect x=x y=y width=NODE_W height=NODE_H rx={match n.kind.as_str() { "service" => "8", "consumer" | "stream" => "3", _ => "17" }}></rect>
                                <text x=x + NODE_W / 2.0 y=y + NODE_H / 2.0 + 4.5 text-anchor="middle">{short(&n.label)}</text>
                            </g>
                        }
                    })
                    .collect_view();
                view! {
                    <div class="topology-scroll">
                        <svg
                            class="topology"
                            data-testid="topology-graph"
                            width="100%"
                            style:max-width=format!("{width:.0}px")
                            viewBox=format!("0 0 {width:.0} {height:.0}")
                            role="img"
                            aria-label="Services and subjects, with events per second on each edge"
                        >
                            <defs>
                                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                                    <path d="M0,0 L10,5 L0,10 z" class="arrow"></path>
                                </marker>
                            </defs>
                            {edge_views}
                            {node_views}
                        </svg>
                    </div>
                }
                .into_any()
            }
        })
    };
    let rows = move || {
        graph.with(|g| match g {
            Some(Ok((_, edges))) => {
                let mut e = edges.clone();
                e.sort_by(|a, b| {
                    b.rate
                        .count
                        .cmp(&a.rate.count)
                        .then_with(|| a.from.cmp(&b.from))
                });
                e
            }
            _ => Vec::new(),
        })
    };
    let name = |id: &str| id.split_once(':').map_or(id, |(_, n)| n).to_string();
    view! {
        <main class="page page-wide">
            <div class="page-head">
                <h2 class="page-title">"Topology"</h2>
                <span class="muted">"Who publishes what, and who reacts to it: inferred from the traffic."</span>
                <span class="spacer"></span>
                <label class="check">
                    <input type="checkbox" data-testid="topology-telemetry" prop:checked=move || telemetry.get() on:change=move |ev| telemetry.set(event_target_checked(&ev))/>
                    " logs and metrics"
                </label>
                <crate::charts::WindowPicker current=window.into() pick=Callback::new(move |w| window.set(w)) testid="topology-window"/>
            </div>
            <section class="panel">
                <div class="legend-row muted small">
                    <span class="key key-service"></span>" service "
                    <span class="key key-subject"></span>" subject "
                    <span class="key key-stream"></span>" JetStream stream "
                    <span class="key key-consumer"></span>" consumer "
                    <span class="key key-edge"></span>" events/s (thicker: more) "
                    <span class="key key-replies"></span>" replies to requests "
                    <span class="key key-bad"></span>" with errors"
                </div>
                {drawing}
            </section>
            <section class="panel">
                <h2>"Edges"</h2>
                <Show when=move || !rows().is_empty() fallback=|| view! { <p class="empty">"No edges in the window."</p> }>
                    <table class="edges" data-testid="topology-edges">
                        <thead>
                            <tr>
                                <th scope="col">"From"</th>
                                <th scope="col">"To"</th>
                                <th scope="col">"Kind"</th>
                                <th scope="col" class="num">"Events"</th>
                                <th scope="col" class="num">"Events / s"</th>
                                <th scope="col" class="num">"Errors"</th>
                                <th scope="col" class="num">"Pending"</th>
                                <th scope="col"></th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=rows key=|e| format!("{e:?}") let:e>
                                <tr data-testid="edge-row">
                                    <td class="mono">{name(&e.from)}</td>
                                    <td class="mono">{name(&e.to)}</td>
                                    <td class="muted">{e.kind.clone()}</td>
                                    <td class="num">{format::thousands(e.rate.count)}</td>
                                    <td class="num">{format::rate(e.rate.per_sec)}</td>
                                    <td class={if e.errors > 0 { "num warn" } else { "num" }}>{format::thousands(e.errors)}</td>
                                    <td class="num">{e.pending.map(format::thousands).unwrap_or_default()}</td>
                                    <td><a href=tail_href(&e) data-testid="edge-tail">"tail"</a></td>
                                </tr>
                            </For>
                        </tbody>
                    </table>
                </Show>
            </section>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Rate;

    fn node(id: &str, column: u32, row: u32) -> TopoNode {
        TopoNode {
            id: id.into(),
            kind: if id.starts_with("svc:") {
                "service"
            } else {
                "subject"
            }
            .into(),
            label: id[4..].into(),
            column,
            row,
        }
    }

    #[test]
    fn edges_curve_forward_and_go_back_along_the_gaps() {
        let (a, b) = (node("svc:a", 0, 0), node("sub:x", 1, 0));
        let (forward, ..) = edge_path(&a, &b);
        assert!(forward.starts_with("M184.0,33.0 C"), "{forward}");
        assert!(forward.ends_with("226.0,33.0"), "{forward}");
        // From x (column 1, row 0) back to a: out of x's bottom middle,
        // along the gap under row 0 (y 62), down beside a's column (x 6),
        // into a's left at its middle (y 33, going up from the gap).
        let (back, lx, ly) = edge_path(&b, &a);
        assert!(back.starts_with("M310.0,50.0 V56.0"), "{back}");
        assert!(back.contains("H12.0 Q6.0,62.0 6.0,56.0 V39.0"), "{back}");
        assert!(back.ends_with("H16.0"), "{back}");
        assert_eq!((lx, ly), (158.0, 59.0));
        // Going down to a lower row instead.
        let c = node("svc:c", 0, 3);
        let (down, ..) = edge_path(&b, &c);
        assert!(down.contains("Q6.0,62.0 6.0,68.0 V201.0"), "{down}");
    }

    #[test]
    fn an_edge_opens_the_tail_on_its_subject() {
        let e = TopoEdge {
            from: "svc:orders".into(),
            to: "sub:orders.*.placed".into(),
            kind: "publishes".into(),
            subject: "orders.*.placed".into(),
            rate: Rate {
                count: 1,
                per_sec: 0.1,
            },
            errors: 0,
            pending: None,
        };
        assert_eq!(edge_label(&e), "0.1/s");
        let queued = TopoEdge {
            pending: Some(1_200),
            ..e.clone()
        };
        assert_eq!(edge_label(&queued), "0.1/s · 1,200 pending");
        assert_eq!(
            tail_href(&e),
            "/tail?subject=orders.%2A.placed&service=orders"
        );
        let c = TopoEdge {
            from: "sub:orders.placed".into(),
            to: "svc:payments".into(),
            kind: "consumes".into(),
            subject: "orders.placed".into(),
            ..e
        };
        assert_eq!(tail_href(&c), "/tail?subject=orders.placed");
        let r = TopoEdge {
            from: "svc:fraud".into(),
            to: "svc:payments".into(),
            kind: "replies".into(),
            subject: "_INBOX.>".into(),
            ..c
        };
        assert_eq!(tail_href(&r), "/tail?subject=_INBOX.%3E&service=fraud");
        assert_eq!(edge_class(&r), "edge edge-replies");
    }
}
