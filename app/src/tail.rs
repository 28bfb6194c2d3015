//! The live tail: the newest events matching a filter, streaming in.
//!
//! The filter (subject pattern, level, service, kind, free text, a field
//! predicate) lives in the URL, so a tail is a link and the back button
//! works; it is applied by the server (a `tail` view of the live protocol),
//! so only matching events cross the network. The page keeps up to
//! [`HISTORY`] events but puts only the rows in sight (plus a few) in the
//! DOM: rows have a fixed height, the list is a tall spacer, and the slice
//! shown follows the scroll position. "Follow" keeps the newest row in
//! view; scrolling up stops following, and pausing holds new events aside
//! (counted) until resumed.
//!
//! Selecting a row opens the [inspector](crate::inspector) beside the list,
//! its id also in the URL (`&event=`), so it is a permalink.

use crate::api::EventSummary;
use crate::format;
use crate::inspector::Inspector;
use crate::shell::{Link, LiveCtx};
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::params::ParamsMap;
use std::collections::VecDeque;

/// Events the page holds (the oldest are let go past this).
pub const HISTORY: usize = 100_000;
/// Height of one row, in CSS pixels (the stylesheet agrees).
pub const ROW_PX: f64 = 28.0;
/// Rows rendered beyond those in sight, above and below.
const OVERSCAN: usize = 8;
/// Events per frame the tail view asks the server for.
pub const LIMIT: u32 = crate::wire::MAX_TAIL_LIMIT;

/// The filter keys, in the order they appear in the view's key.
pub const FILTER_KEYS: [&str; 6] = ["subject", "level", "service", "kind", "q", "field"];

/// The server-side filter (the query-string form of `GET /api/v1/events`)
/// for the page's URL parameters.
pub fn filter_of(params: &ParamsMap) -> String {
    filter_from(|k| params.get(k))
}

/// The key of the tail's first rows in [`crate::shell::FirstViews`].
pub fn first_key(filter: &str) -> String {
    format!("tail:{filter}")
}

/// [`filter_of`], reading parameters with `get`.
pub fn filter_from(get: impl Fn(&str) -> Option<String>) -> String {
    FILTER_KEYS
        .iter()
        .filter_map(|k| {
            let v = get(k)?;
            let v = v.trim();
            (!v.is_empty()).then(|| format!("{k}={}", format::url_component(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The tail's history: oldest first, bounded, and, while paused, the events
/// that arrived since, held aside.
#[derive(Clone, Debug, Default)]
pub struct TailBuffer {
    events: VecDeque<EventSummary>,
    held: VecDeque<EventSummary>,
    newest: Option<u64>,
    cap: usize,
    /// Events let go from the front (over the cap) since the last reset.
    pub trimmed: u64,
    /// Matching events the server left out (more than one frame holds).
    pub skipped: u64,
    paused: bool,
}

impl TailBuffer {
    /// An empty buffer holding at most `cap` events.
    pub fn new(cap: usize) -> Self {
        TailBuffer {
            cap,
            ..TailBuffer::default()
        }
    }

    /// Takes from `incoming` (the view's state, oldest first) the events
    /// newer than any seen. Returns how many rows were let go from the
    /// front of the visible list.
    pub fn offer<'a>(
        &mut self,
        incoming: impl DoubleEndedIterator<Item = &'a EventSummary>,
        skipped: u64,
    ) -> usize {
        let newest = self.newest;
        let mut fresh: Vec<&EventSummary> = incoming
            .rev()
            .take_while(|e| newest.is_none_or(|n| e.id > n))
            .collect();
        fresh.reverse();
        if let Some(last) = fresh.last() {
            self.newest = Some(last.id);
        }
        self.skipped = self.skipped.max(skipped);
        let target = if self.paused {
            &mut self.held
        } else {
            &mut self.events
        };
        target.extend(fresh.into_iter().cloned());
        let over = target.len().saturating_sub(self.cap);
        target.drain(..over);
        self.trimmed += over as u64;
        if self.paused { 0 } else { over }
    }

    /// Holds new events aside until [`TailBuffer::resume`].
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Shows the events held while paused. Returns rows let go from the front.
    pub fn resume(&mut self) -> usize {
        self.paused = false;
        self.events.append(&mut self.held);
        let over = self.events.len().saturating_sub(self.cap);
        self.events.drain(..over);
        self.trimmed += over as u64;
        over
    }

    /// Events shown.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is shown.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events that arrived while paused.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The event after (`down`) or before the one with id `from`, with its
    /// position; from nothing, the newest.
    pub fn neighbour(&self, from: Option<u64>, down: bool) -> Option<(usize, u64)> {
        let last = self.events.len().checked_sub(1)?;
        let pos = match from.map(|id| self.events.binary_search_by_key(&id, |e| e.id)) {
            Some(Ok(i)) if down => (i + 1).min(last),
            Some(Ok(i)) => i.saturating_sub(1),
            // Gone (let go past the cap) or never selected: the newest.
            _ => last,
        };
        Some((pos, self.events[pos].id))
    }

    /// Up to `n` shown events from position `first`, with their positions.
    pub fn slice(&self, first: usize, n: usize) -> Vec<(usize, EventSummary)> {
        self.events
            .iter()
            .enumerate()
            .skip(first)
            .take(n)
            .map(|(i, e)| (i, e.clone()))
            .collect()
    }
}

/// The live tail page.
#[component]
pub fn Tail() -> impl IntoView {
    let LiveCtx { link, .. } = expect_context::<LiveCtx>();
    let travel = crate::travel::use_travel();
    let query = use_query_map();
    // Why the past could not be shown, if it could not.
    let past_error = RwSignal::new(None::<String>);
    let filter = Memo::new(move |_| query.with(filter_of));
    let selected =
        Memo::new(move |_| query.with(|q| q.get("event").and_then(|v| v.parse::<u64>().ok())));

    // Served with the newest matching events (see `FirstViews`); the live
    // view then adds what is newer.
    let first =
        crate::shell::first_view::<(Vec<EventSummary>, u64)>(first_key(&filter.get_untracked()));
    let seeded = first.is_some();
    let mut start = TailBuffer::new(HISTORY);
    if let Some((events, skipped)) = &first {
        start.offer(events.iter(), *skipped);
    }
    let buffer = StoredValue::new(start);
    // Bumped whenever the buffer changes: what the list reads.
    let version = RwSignal::new(0u64);
    let shown = RwSignal::new(buffer.with_value(TailBuffer::len));
    let held = RwSignal::new(0usize);
    let skipped = RwSignal::new(first.map_or(0, |(_, s)| s));
    let paused = RwSignal::new(false);
    let follow = RwSignal::new(true);
    let subscribed = RwSignal::new(seeded);
    let scroll_top = RwSignal::new(0.0f64);
    let viewport = RwSignal::new(560.0f64);
    let scroller = NodeRef::<leptos::html::Div>::new();
    let filter_q = NodeRef::<leptos::html::Input>::new();

    let refresh = move |dropped_front: usize| {
        buffer.with_value(|b| {
            shown.set(b.len());
            held.set(b.held());
            skipped.set(b.skipped);
        });
        if dropped_front > 0 && !follow.get_untracked() {
            // Keep the rows in sight where they were.
            let top = (scroll_top.get_untracked() - dropped_front as f64 * ROW_PX).max(0.0);
            if let Some(el) = scroller.get_untracked() {
                el.set_scroll_top(top as i32);
            }
            scroll_top.set(top);
        }
        version.update(|v| *v += 1);
    };

    #[cfg(feature = "hydrate")]
    {
        // The tail view for the current filter: resubscribed when the
        // filter (the URL) changes, dropped when the page goes.
        let current: StoredValue<Option<String>> = StoredValue::new(None);
        let generation = StoredValue::new(0u64);
        Effect::new(move |before: Option<()>| {
            let filter = filter.get();
            let at = travel.at.get();
            if let Some(old) = current.get_value() {
                crate::live::unwatch(&old);
                current.set_value(None);
            }
            // The first run keeps the rows the page was served with (the
            // live view only adds newer ones); a new filter starts over.
            if before.is_some() || !seeded {
                buffer.update_value(|b| *b = TailBuffer::new(HISTORY));
                if paused.get_untracked() && at.is_none() {
                    buffer.update_value(TailBuffer::pause);
                }
                subscribed.set(false);
                past_error.set(None);
                refresh(0);
            }
            generation.update_value(|g| *g += 1);
            if let Some(at) = at {
                // The past: the newest matching events before the moment.
                let mine = generation.get_value();
                let url = past_url(&filter, at);
                leptos::task::spawn_local(async move {
                    let got = crate::fetch::get_json::<crate::api::EventPage>(url).await;
                    if generation.try_get_value() != Some(mine) {
                        return;
                    }
                    match got {
                        Ok(page) => {
                            buffer.update_value(|b| {
                                b.offer(page.events.iter().rev(), 0);
                            });
                            subscribed.set(true);
                            follow.set(true);
                            refresh(0);
                        }
                        Err(e) => past_error.set(Some(e)),
                    }
                });
                return;
            }
            let key = crate::live::watch(
                crate::wire::View::Tail {
                    filter,
                    limit: LIMIT,
                },
                move |state| {
                    if let crate::wire::ViewState::Tail {
                        events, skipped, ..
                    } = state
                    {
                        let dropped = buffer
                            .try_update_value(|b| b.offer(events.iter(), *skipped))
                            .unwrap_or(0);
                        subscribed.set(true);
                        refresh(dropped);
                    }
                },
            );
            current.set_value(Some(key));
        });
        on_cleanup(move || {
            if let Some(key) = current.get_value() {
                crate::live::unwatch(&key);
            }
        });
        // Follow: keep the newest row in view after every change.
        Effect::new(move |_| {
            version.track();
            if follow.get_untracked()
                && let Some(el) = scroller.get_untracked()
            {
                el.set_scroll_top(el.scroll_height());
            }
        });
    }

    let on_scroll = move |_| {
        if let Some(el) = scroller.get_untracked() {
            let top = f64::from(el.scroll_top());
            let height = f64::from(el.client_height());
            scroll_top.set(top);
            viewport.set(height);
            let at_bottom = top + height >= f64::from(el.scroll_height()) - ROW_PX;
            if follow.get_untracked() != at_bottom {
                follow.set(at_bottom);
            }
        }
    };

    let rows = move || {
        version.track();
        let first = ((scroll_top.get() / ROW_PX).floor() as usize).saturating_sub(OVERSCAN);
        let n = (viewport.get() / ROW_PX).ceil() as usize + 2 * OVERSCAN;
        buffer.with_value(|b| b.slice(first, n))
    };

    let navigate = use_navigate();
    let select = {
        let navigate = navigate.clone();
        Callback::new(move |id: Option<u64>| {
            let mut params: Vec<(String, String)> = query.with_untracked(|q| {
                FILTER_KEYS
                    .iter()
                    .chain(&[crate::travel::AT, crate::travel::CMP])
                    .filter_map(|k| q.get(k).map(|v| (k.to_string(), v)))
                    .collect()
            });
            if let Some(id) = id {
                params.push(("event".into(), id.to_string()));
            }
            navigate(&tail_url(&params), NavigateOptions::default());
        })
    };
    let toggle_pause = move || {
        if paused.get_untracked() {
            let dropped = buffer.try_update_value(TailBuffer::resume).unwrap_or(0);
            paused.set(false);
            follow.set(true);
            refresh(dropped);
        } else {
            buffer.update_value(TailBuffer::pause);
            paused.set(true);
        }
    };

    let on_pause = move |_| toggle_pause();
    // The inspector's event: the selected one, kept while the panel closes
    // (so closing it fetches nothing).
    let inspected = Signal::from(Memo::new(move |prev: Option<&u64>| {
        selected.get().unwrap_or_else(|| prev.copied().unwrap_or(0))
    }));
    let follow_newest = move || {
        follow.set(true);
        if let Some(el) = scroller.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
    };

    // The tail's keys (see crate::keys::SHORTCUTS).
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if crate::keys::in_field(&ev) || crate::keys::modified(&ev) {
                return;
            }
            match ev.key().as_str() {
                key @ ("j" | "k") => {
                    let from = selected.get_untracked();
                    let Some((pos, id)) = buffer.with_value(|b| b.neighbour(from, key == "j"))
                    else {
                        return;
                    };
                    select.run(Some(id));
                    // Keep the selected row in sight.
                    if let Some(el) = scroller.get_untracked() {
                        let (top, height) =
                            (f64::from(el.scroll_top()), f64::from(el.client_height()));
                        let y = pos as f64 * ROW_PX;
                        if y < top || y + ROW_PX > top + height {
                            follow.set(false);
                            el.set_scroll_top((y - height / 2.0).max(0.0) as i32);
                        }
                    }
                }
                "p" => toggle_pause(),
                "f" => follow_newest(),
                "/" => {
                    if let Some(input) = filter_q.get_untracked() {
                        let _ = input.focus();
                    }
                }
                "Escape" if selected.get_untracked().is_some() => select.run(None),
                _ => return,
            }
            ev.prevent_default();
        });
        on_cleanup(move || handle.remove());
    }

    let empty = move || {
        if let Some(e) = past_error.get() {
            format!("Cannot show this moment: {e}")
        } else if travel.at.get().is_some() {
            if subscribed.get() {
                "No matching event before this moment.".to_string()
            } else {
                "Reading the log…".to_string()
            }
        } else if link.get() != Link::Live || !subscribed.get() {
            "Waiting for the live connection…".to_string()
        } else if filter.with(String::is_empty) {
            "No events yet. They appear here as they are published.".to_string()
        } else {
            "No event matches this filter yet. New matches appear here as they arrive.".to_string()
        }
    };

    view! {
        <main class="page tail-page">
            <FilterForm query navigate filter_q/>
            <div class="tail-bar">
                <span class="tail-count" data-testid="tail-count">
                    {move || format::thousands(shown.get() as u64)}
                    {move || if shown.get() == 1 { " event" } else { " events" }}
                </span>
                <Show when=move || { skipped.get() > 0 }>
                    <span class="tail-note warn" data-testid="tail-skipped">
                        {move || format::thousands(skipped.get())}
                        " more matched than the server sends per tick (showing the newest)"
                    </span>
                </Show>
                <Show when=move || travel.at.get().is_some()>
                    <span class="tail-note" data-testid="tail-past">
                        "the newest "
                        {format::thousands(PAST_PAGE as u64)}
                        " at most before the moment viewed"
                    </span>
                </Show>
                <span class="spacer"></span>
                <Show when=move || paused.get()>
                    <span class="tail-note" data-testid="tail-held">
                        {move || format::thousands(held.get() as u64)}
                        " new while paused"
                    </span>
                </Show>
                <button class="btn" on:click=on_pause data-testid="tail-pause" aria-pressed=move || paused.get().to_string()>
                    {move || if paused.get() { "Resume" } else { "Pause" }}
                </button>
                <button
                    class=move || if follow.get() { "btn btn-on" } else { "btn" }
                    data-testid="tail-follow"
                    on:click=move |_| follow_newest()
                >
                    "Follow"
                </button>
            </div>
            <div class="tail-split">
                <section class="panel tail-panel">
                    <div class="tail-head" aria-hidden="true">
                        <span class="c-time">"Received (UTC)"</span>
                        <span class="c-level">"Level"</span>
                        <span class="c-subject">"Subject"</span>
                        <span class="c-service">"Service"</span>
                        <span class="c-msg">"Message"</span>
                    </div>
                    <div
                        class="tail-scroll"
                        node_ref=scroller
                        on:scroll=on_scroll
                        data-testid="tail-scroll"
                        role="list"
                        aria-label="Events, oldest first"
                    >
                        <Show when=move || { shown.get() > 0 } fallback=move || view! { <p class="empty" data-testid="tail-empty">{empty}</p> }>
                            <div class="tail-spacer" style:height=move || format!("{}px", shown.get() as f64 * ROW_PX)>
                                <For each=rows key=|(i, e)| (*i, e.id) let:row>
                                    <TailRow index=row.0 event=row.1 selected select/>
                                </For>
                            </div>
                        </Show>
                    </div>
                </section>
                <Show when=move || selected.get().is_some()>
                    <Inspector id=inspected on_close=Callback::new(move |_: ()| select.run(None))/>
                </Show>
            </div>
        </main>
    }
}

/// Events the tail shows of the past (the API's largest page).
pub const PAST_PAGE: u32 = 1_000;

/// `GET /api/v1/events` for the newest events matching `filter` before `at`.
pub fn past_url(filter: &str, at: i64) -> String {
    let sep = if filter.is_empty() { "" } else { "&" };
    format!(
        "/api/v1/events?{filter}{sep}before={}&limit={PAST_PAGE}",
        crate::travel::at_param(at)
    )
}

/// `/tail` with these query parameters (empty ones left out).
fn tail_url(params: &[(String, String)]) -> String {
    let pairs = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    crate::travel::url_with("/tail", pairs, &[])
}

/// One row, absolutely placed at its position in the list.
#[component]
fn TailRow(
    index: usize,
    event: EventSummary,
    selected: Memo<Option<u64>>,
    select: Callback<Option<u64>>,
) -> impl IntoView {
    let id = event.id;
    let level = event.level.clone().unwrap_or_default();
    let level_class = format!("lvl lvl-{}", format::level_class(&level));
    let text = event
        .message
        .clone()
        .unwrap_or_else(|| event.preview.clone());
    let time = format::clock(event.received_ms);
    let title = format!(
        "#{id} · received {} · {} bytes · {}",
        format::datetime(event.received_ms),
        event.size,
        event.format
    );
    let open = move || select.run(Some(id));
    let open_key = open;
    view! {
        <div
            class=move || if selected.get() == Some(id) { "tail-row selected" } else { "tail-row" }
            style:top=format!("{}px", index as f64 * ROW_PX)
            role="listitem"
            tabindex="0"
            data-testid="tail-row"
            data-id=id.to_string()
            title=title
            on:click=move |_| open()
            on:keydown=move |ev| {
                if ev.key() == "Enter" {
                    open_key()
                }
            }
        >
            <span class="c-time">{time}</span>
            <span class="c-level"><span class=level_class>{level}</span></span>
            <span class="c-subject">{event.subject.clone()}</span>
            <span class="c-service">{event.service.clone().unwrap_or_default()}</span>
            <span class="c-msg">{text}</span>
        </div>
    }
}

/// The filter form. Submitting navigates to the filtered URL (the server
/// applies the filter); without the wasm bundle it is a plain GET form.
#[component]
fn FilterForm(
    query: Memo<ParamsMap>,
    filter_q: NodeRef<leptos::html::Input>,
    navigate: impl Fn(&str, NavigateOptions) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let value = move |k: &'static str| move || query.with(|q| q.get(k).unwrap_or_default());
    let form = NodeRef::<leptos::html::Form>::new();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(form) = form.get_untracked() {
            navigate(&tail_url(&form_values(&form)), NavigateOptions::default());
        }
    };
    view! {
        <form class="filters" method="get" action="/tail" node_ref=form on:submit=on_submit data-testid="tail-filters">
            <label>
                "Subject"
                <input name="subject" placeholder="logs.>" prop:value=value("subject") data-testid="filter-subject"/>
            </label>
            <label>
                "Level"
                <input name="level" placeholder="error,warn" prop:value=value("level") data-testid="filter-level"/>
            </label>
            <label>
                "Service"
                <input name="service" placeholder="payments" prop:value=value("service") data-testid="filter-service"/>
            </label>
            <label>
                "Kind"
                <select name="kind" prop:value=value("kind") data-testid="filter-kind">
                    <option value="">"any"</option>
                    <option value="log">"log"</option>
                    <option value="metric">"metric"</option>
                    <option value="event">"event"</option>
                </select>
            </label>
            <label class="grow">
                "Text"
                <input name="q" type="search" placeholder="declined" prop:value=value("q") node_ref=filter_q data-testid="filter-q"/>
            </label>
            <label>
                "Field"
                <input name="field" placeholder="order.id=42" prop:value=value("field") data-testid="filter-field"/>
            </label>
            <button class="btn btn-primary" type="submit" data-testid="filter-apply">"Apply"</button>
            <a class="btn" href="/tail" data-testid="filter-clear">"Clear"</a>
        </form>
    }
}

/// The filter form's values, by name.
#[cfg(feature = "hydrate")]
fn form_values(form: &web_sys::HtmlFormElement) -> Vec<(String, String)> {
    use wasm_bindgen::JsCast;
    let controls = form.elements();
    FILTER_KEYS
        .iter()
        .filter_map(|k| {
            let el = controls.named_item(k)?;
            let value = if let Some(i) = el.dyn_ref::<web_sys::HtmlInputElement>() {
                i.value()
            } else {
                el.dyn_ref::<web_sys::HtmlSelectElement>()?.value()
            };
            Some((k.to_string(), value))
        })
        .collect()
}

/// On the server, forms are not submitted from here.
#[cfg(not(feature = "hydrate"))]
fn form_values<T>(_form: &T) -> Vec<(String, String)> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: u64) -> EventSummary {
        EventSummary {
            id,
            received_ms: 0,
            time_ms: 0,
            subject: "s".into(),
            kind: "log".into(),
            format: "json".into(),
            level: None,
            service: None,
            message: None,
            size: 0,
            duplicate: false,
            stream: None,
            seq: None,
            preview: String::new(),
        }
    }

    #[test]
    fn takes_only_new_events_and_keeps_the_cap() {
        let mut b = TailBuffer::new(5);
        let a: Vec<_> = (1..=3).map(ev).collect();
        assert_eq!(b.offer(a.iter(), 0), 0);
        // The view's state still holds 1..=3, plus 4..=7.
        let a: Vec<_> = (1..=7).map(ev).collect();
        assert_eq!(b.offer(a.iter(), 2), 2, "two let go over the cap");
        let ids: Vec<u64> = b.slice(0, 10).iter().map(|(_, e)| e.id).collect();
        assert_eq!(ids, vec![3, 4, 5, 6, 7]);
        assert_eq!(b.trimmed, 2);
        assert_eq!(b.skipped, 2);
        assert_eq!(b.slice(3, 10)[0], (3, ev(6)));
    }

    #[test]
    fn neighbours_step_through_the_list_and_stop_at_its_ends() {
        let mut b = TailBuffer::new(10);
        assert_eq!(b.neighbour(None, true), None, "empty");
        b.offer([ev(3), ev(5), ev(8)].iter(), 0);
        assert_eq!(
            b.neighbour(None, true),
            Some((2, 8)),
            "nothing selected: the newest"
        );
        assert_eq!(b.neighbour(Some(5), true), Some((2, 8)));
        assert_eq!(b.neighbour(Some(5), false), Some((0, 3)));
        assert_eq!(
            b.neighbour(Some(3), false),
            Some((0, 3)),
            "stops at the oldest"
        );
        assert_eq!(
            b.neighbour(Some(8), true),
            Some((2, 8)),
            "stops at the newest"
        );
        assert_eq!(
            b.neighbour(Some(4), false),
            Some((2, 8)),
            "gone: the newest"
        );
    }

    #[test]
    fn pausing_holds_new_events_until_resumed() {
        let mut b = TailBuffer::new(100);
        b.offer([ev(1)].iter(), 0);
        b.pause();
        b.offer([ev(1), ev(2), ev(3)].iter(), 0);
        assert_eq!((b.len(), b.held()), (1, 2));
        assert_eq!(b.resume(), 0);
        assert_eq!((b.len(), b.held()), (3, 0));
    }

    #[test]
    fn filter_comes_from_the_url_in_a_fixed_order() {
        let p: std::collections::HashMap<&str, &str> = [
            ("q", "card declined"),
            ("subject", "logs.>"),
            ("level", " "),
            ("event", "7"),
        ]
        .into();
        assert_eq!(
            filter_from(|k| p.get(k).map(|v| v.to_string())),
            "subject=logs.%3E&q=card%20declined"
        );
        assert_eq!(
            tail_url(&[
                ("level".into(), "error,warn".into()),
                ("event".into(), "9".into())
            ]),
            "/tail?level=error%2Cwarn&event=9"
        );
        assert_eq!(
            past_url("level=error", 0),
            "/api/v1/events?level=error&before=1970-01-01T00%3A00%3A00.000Z&limit=1000"
        );
    }
}
