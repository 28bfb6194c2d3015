//! The overview page: total events, events per second and a per-subject
//! table, kept live by the counts view the shell watches (see
//! [`crate::shell`]). Rows are keyed by subject and sorted by name, so a row
//! never jumps while counts change.

use crate::format;
use crate::shell::{Link, LiveCtx};
use crate::wire::{Counts, OVERFLOW_SUBJECT};
use leptos::prelude::*;

/// The overview page.
#[component]
pub fn Overview() -> impl IntoView {
    let LiveCtx { counts, link } = expect_context::<LiveCtx>();
    view! {
        <main class="page">
            <Cards counts/>
            <crate::charts::RateChart/>
            <SubjectTable counts link/>
        </main>
    }
}

/// The headline numbers.
#[component]
fn Cards(counts: RwSignal<Counts>) -> impl IntoView {
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
                <div class="card-label">"Events"</div>
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
                <div class="card-label">"Dropped / resyncs"</div>
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
fn SubjectTable(counts: RwSignal<Counts>, link: RwSignal<Link>) -> impl IntoView {
    let subjects = move || counts.with(|c| c.subjects.keys().cloned().collect::<Vec<_>>());
    let empty = move || {
        if link.get() == Link::Live {
            "No events yet. Publish to a watched subject and it appears here."
        } else {
            "Waiting for the live connection…"
        }
    };
    view! {
        <section class="panel">
            <h2>"Subjects"</h2>
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
fn SubjectRow(subject: String, counts: RwSignal<Counts>) -> impl IntoView {
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
