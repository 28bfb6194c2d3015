//! Time travel in the UI (PRODUCT.md F7): the moment being viewed is part
//! of the URL (`at=`, Unix ms), so a view of the past is a link like any
//! other, and the back button steps back through the moments visited.
//! Every page reads it with [`use_travel`]: with no `at` a page follows the
//! live views; with one it fetches the same views as of then from the API
//! (projections and charts rebuilt by the server, events before the moment).
//!
//! The [`TimeBar`] under the top bar shows the density of the whole log;
//! clicking it (or the arrow keys on it) picks a moment. While in the past
//! it says so, plainly, and offers play (1× is the original pacing, or 10×),
//! pause, a step of a second either way, a second moment to compare with
//! (`cmp=`), and one click back to live.

use crate::api::Timeline;
use crate::format;
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_location, use_navigate, use_query_map};

/// The URL parameter of the moment viewed.
pub const AT: &str = "at";
/// The URL parameter of the moment compared with.
pub const CMP: &str = "cmp";
/// Buckets of the density strip.
pub const STRIP_BUCKETS: u32 = 240;
/// The strip's key in [`crate::shell::FirstViews`] (every page has it).
pub const TIMELINE_FIRST: &str = "timeline";
/// How often playback moves the moment on, in ms.
pub const PLAY_TICK_MS: i64 = 500;

/// A moment from the URL: Unix milliseconds.
pub fn parse_moment(v: &str) -> Option<i64> {
    v.trim().parse::<i64>().ok().filter(|ms| *ms > 0)
}

/// The moments in the URL.
#[derive(Clone, Copy, Debug)]
pub struct Travel {
    /// The moment viewed; `None` when live.
    pub at: Memo<Option<i64>>,
    /// The moment compared with, if any (only while viewing the past).
    pub cmp: Memo<Option<i64>>,
}

/// The moments of the current URL.
pub fn use_travel() -> Travel {
    let query = use_query_map();
    let at = Memo::new(move |_| query.with(|q| q.get(AT).as_deref().and_then(parse_moment)));
    let cmp = Memo::new(move |_| {
        at.get()?;
        query.with(|q| q.get(CMP).as_deref().and_then(parse_moment))
    });
    Travel { at, cmp }
}

/// `path` with the query `params`, after setting (or, with `None`,
/// removing) the parameters in `changes`.
pub fn url_with<'a>(
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    changes: &[(&str, Option<String>)],
) -> String {
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in changes {
        if let Some(v) = v {
            pairs.push((k.to_string(), v.clone()));
        }
    }
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", format::url_component(v.trim())))
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// A callback that goes to `path` with the current URL's parameters after
/// `changes` (as [`url_with`] makes them).
pub fn use_go(path: &'static str) -> Callback<Vec<(&'static str, Option<String>)>> {
    let query = use_query_map();
    let navigate = use_navigate();
    Callback::new(move |changes: Vec<(&'static str, Option<String>)>| {
        let url = query.with_untracked(|q| {
            let pairs = q.into_iter().map(|(k, v)| (k.as_ref(), v));
            url_with(path, pairs, &changes)
        });
        navigate(&url, leptos_router::NavigateOptions::default());
    })
}

/// A moment as the API's `at=` takes it: an RFC 3339 time, URL-encoded (a
/// bare number would be read as an event id).
pub fn at_param(at: i64) -> String {
    format::url_component(&format::datetime(at))
}

/// How long before `now` a moment is, in words (`2 min 5 s ago`).
pub fn ago(ms: i64, now: i64) -> String {
    let s = ((now - ms) / 1_000).max(0);
    match s {
        0 => "just now".to_string(),
        1..=59 => format!("{s} s ago"),
        60..=3_599 => format!("{} min {} s ago", s / 60, s % 60),
        _ => format!("{} h {} min ago", s / 3_600, s / 60 % 60),
    }
}

/// The moment at `fraction` (0 to 1) across a timeline, kept within what
/// the server can rebuild and not after `now`.
pub fn moment_at(t: &Timeline, fraction: f64, now: i64) -> i64 {
    let span = t.counts.len().max(1) as i64 * t.step_ms;
    let ms = t.start_ms + (fraction.clamp(0.0, 1.0) * span as f64) as i64;
    let earliest = t.earliest_at_ms.unwrap_or(t.start_ms);
    ms.clamp(earliest, now.max(earliest))
}

/// The browser's clock (Unix ms); the server renders with its own.
pub fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// The density strip, the "viewing the past" banner and the playback
/// controls, shown on every page.
#[component]
pub fn TimeBar() -> impl IntoView {
    let Travel { at, cmp } = use_travel();
    let query = use_query_map();
    let location = use_location();
    let navigate = use_navigate();
    // Served with the log's density (see `FirstViews`), then live.
    let timeline = RwSignal::new(crate::shell::first_view::<Timeline>(
        TIMELINE_FIRST.to_string(),
    ));
    // Playback speed (1 or 10), while playing.
    let playing = RwSignal::new(None::<i64>);

    let go = {
        let navigate = navigate.clone();
        Callback::new(
            move |(changes, replace): (Vec<(&'static str, Option<String>)>, bool)| {
                let url = query.with_untracked(|q| {
                    let pairs = q.into_iter().map(|(k, v)| (k.as_ref(), v));
                    url_with(&location.pathname.get_untracked(), pairs, &changes)
                });
                navigate(
                    &url,
                    NavigateOptions {
                        replace,
                        scroll: false,
                        ..NavigateOptions::default()
                    },
                );
            },
        )
    };
    let travel_to = move |ms: Option<i64>, replace: bool| {
        let mut changes = vec![(AT, ms.map(|m| m.to_string()))];
        if ms.is_none() {
            changes.push((CMP, None));
        }
        go.run((changes, replace));
    };
    let back_to_live = move |_| {
        playing.set(None);
        travel_to(None, false);
    };
    let step = move |by: i64| {
        if let Some(t) = at.get_untracked() {
            playing.set(None);
            travel_to(Some((t + by).min(now_ms())), true);
        }
    };

    // No strip of the whole log for a reader with a subject scope.
    let scoped = crate::shell::scoped();
    #[cfg(feature = "hydrate")]
    {
        let key: StoredValue<Option<String>> = StoredValue::new(None);
        Effect::new(move |done: Option<()>| {
            if done.is_none() && !scoped {
                let view = crate::wire::View::Timeline {
                    buckets: STRIP_BUCKETS,
                };
                key.set_value(Some(crate::live::watch(view, move |state| {
                    if let Some(t) = state.timeline() {
                        timeline.set(Some(t));
                    }
                })));
            }
        });
        on_cleanup(move || {
            if let Some(k) = key.get_value() {
                crate::live::unwatch(&k);
            }
        });
        // Playback: the moment moves on every PLAY_TICK_MS by the speed;
        // catching up with the present is being live again.
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if let (Some(speed), Some(t)) = (playing.get_untracked(), at.get_untracked()) {
                    let next = t + PLAY_TICK_MS * speed;
                    if next >= now_ms() {
                        playing.set(None);
                        travel_to(None, true);
                    } else {
                        travel_to(Some(next), true);
                    }
                }
            },
            std::time::Duration::from_millis(PLAY_TICK_MS as u64),
        ) {
            on_cleanup(move || handle.clear());
        }
        // Leaving the past (back button, a link) stops playback.
        Effect::new(move |_| {
            if at.get().is_none() {
                playing.set(None);
            }
        });
    }

    let strip = NodeRef::<leptos::html::Div>::new();
    let pick = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        let fraction = {
            let Some(el) = strip.get_untracked() else {
                return;
            };
            let rect = el.get_bounding_client_rect();
            (f64::from(ev.client_x()) - rect.left()) / rect.width().max(1.0)
        };
        #[cfg(not(feature = "hydrate"))]
        let fraction = {
            let _ = (ev, strip);
            0.0
        };
        if let Some(ms) =
            timeline.with_untracked(|t| t.as_ref().map(|t| moment_at(t, fraction, now_ms())))
        {
            playing.set(None);
            travel_to(Some(ms), false);
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let Some(step_ms) = timeline.with_untracked(|t| t.as_ref().map(|t| t.step_ms)) else {
            return;
        };
        match ev.key().as_str() {
            "ArrowLeft" => {
                ev.prevent_default();
                let from = at.get_untracked().unwrap_or_else(now_ms);
                travel_to(Some(from - step_ms), true);
            }
            "ArrowRight" if at.get_untracked().is_some() => {
                ev.prevent_default();
                step(step_ms);
            }
            "End" => travel_to(None, false),
            _ => {}
        }
    };

    // Bars of the strip, in a 0..n × 0..100 box, and the marker's place.
    let bars = move || {
        timeline.with(|t| {
            let Some(t) = t else { return Vec::new() };
            let max = t.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
            t.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| (i, (*c as f64 / max * 100.0).max(4.0)))
                .collect::<Vec<_>>()
        })
    };
    let n = move || timeline.with(|t| t.as_ref().map_or(1, |t| t.counts.len().max(1)));
    let place = move |ms: i64| {
        timeline.with(|t| {
            t.as_ref().map(|t| {
                let span = (t.counts.len().max(1) as i64 * t.step_ms) as f64;
                ((ms - t.start_ms) as f64 / span * 100.0).clamp(0.0, 100.0)
            })
        })
    };
    let marker = move || at.get().and_then(place);
    let cmp_marker = move || cmp.get().and_then(place);
    let span_text = move || {
        timeline.with(|t| match t {
            Some(t) if !t.counts.is_empty() => format!(
                "{} → {}",
                format::clock(t.start_ms),
                format::clock(t.start_ms + t.counts.len() as i64 * t.step_ms)
            ),
            Some(_) => "The log is empty: nothing to travel to yet.".to_string(),
            None if scoped => crate::shell::SCOPED_NOTE.to_string(),
            None => "Waiting for the live connection…".to_string(),
        })
    };

    view! {
        <section class=move || if at.get().is_some() { "timebar past" } else { "timebar" } data-testid="timebar">
            <div
                class="strip"
                node_ref=strip
                on:click=pick
                on:keydown=on_key
                tabindex="0"
                role="slider"
                aria-label="Event density over the whole log; click or use the arrow keys to view a moment"
                aria-valuetext=move || at.get().map_or("live".to_string(), format::datetime)
                data-testid="timeline-strip"
                data-buckets=move || n().to_string()
            >
                <svg viewBox=move || format!("0 0 {} 100", n()) preserveAspectRatio="none" aria-hidden="true">
                    <For each=bars key=|b| (b.0, (b.1 * 10.0) as i64) let:bar>
                        <rect x=bar.0.to_string() y=format!("{:.2}", 100.0 - bar.1) width="0.8" height=format!("{:.2}", bar.1)></rect>
                    </For>
                </svg>
                <Show when=move || cmp_marker().is_some()>
                    <div class="strip-marker cmp" style:left=move || format!("{:.3}%", cmp_marker().unwrap_or(0.0))></div>
                </Show>
                <Show when=move || marker().is_some()>
                    <div class="strip-marker" style:left=move || format!("{:.3}%", marker().unwrap_or(0.0))></div>
                </Show>
                <span class="strip-span">{span_text}</span>
            </div>
            <Show
                when=move || at.get().is_some()
                fallback=|| view! { <span class="timebar-hint">"Live. Click the strip to view any moment in the log."</span> }
            >
                <div class="past-banner" role="status" data-testid="past-banner">
                    <span class="past-label">"Viewing the past"</span>
                    <time data-testid="past-at" datetime=move || at.get().map(format::datetime).unwrap_or_default()>
                        {move || at.get().map(format::datetime).unwrap_or_default()}
                    </time>
                    <span class="past-ago">{move || at.get().map(|t| ago(t, now_ms())).unwrap_or_default()}</span>
                    <div class="seg" role="group" aria-label="Playback">
                        <button class="seg-btn" title="One second back" data-testid="step-back" on:click=move |_| step(-1_000)>"−1 s"</button>
                        {[(1, "Play at the original pacing"), (10, "Play ten times faster")]
                            .into_iter()
                            .map(|(speed, title)| {
                                view! {
                                    <button
                                        class=move || if playing.get() == Some(speed) { "seg-btn on" } else { "seg-btn" }
                                        aria-pressed=move || (playing.get() == Some(speed)).to_string()
                                        title=title
                                        data-testid=format!("play-{speed}x")
                                        on:click=move |_| playing.set(Some(speed))
                                    >
                                        {format!("▶ {speed}×")}
                                    </button>
                                }
                            })
                            .collect_view()}
                        <button class="seg-btn" title="Pause" data-testid="pause" on:click=move |_| playing.set(None)>"❚❚"</button>
                        <button class="seg-btn" title="One second on" data-testid="step-on" on:click=move |_| step(1_000)>"+1 s"</button>
                    </div>
                    <button
                        class=move || if cmp.get().is_some() { "btn btn-on" } else { "btn" }
                        title="Keep this moment to compare with the next one you pick"
                        data-testid="pin-compare"
                        on:click=move |_| {
                            let pinned = if cmp.get_untracked().is_some() { None } else { at.get_untracked().map(|t| t.to_string()) };
                            go.run((vec![(CMP, pinned)], false));
                        }
                    >
                        {move || if cmp.get().is_some() { "Stop comparing" } else { "Compare with…" }}
                    </button>
                    <span class="spacer"></span>
                    <button class="btn btn-primary" data-testid="back-to-live" on:click=back_to_live>"Back to live"</button>
                </div>
            </Show>
        </section>
    }
}

/// Follows a value live while the page views the present and fetches it as
/// of the moment viewed otherwise: `live()` names the view to watch (or
/// `None` when the page gets the live value elsewhere), `read` takes the
/// value from the view's state, `past(at)` fetches it, and `set` receives
/// every value (or the error of a fetch). Reruns when `live` or `past` read
/// signals that change; a late answer for a moment no longer viewed is
/// dropped.
#[cfg(feature = "hydrate")]
pub fn follow<T, F>(
    live: impl Fn() -> Option<crate::wire::View> + Send + Sync + 'static,
    read: impl Fn(&crate::wire::ViewState) -> Option<T> + Clone + 'static,
    past: impl Fn(i64) -> Option<F> + Send + Sync + 'static,
    set: impl Fn(Result<T, String>) + Clone + 'static,
) where
    T: 'static,
    F: std::future::Future<Output = Result<T, String>> + 'static,
{
    let travel = use_travel();
    let key: StoredValue<Option<String>> = StoredValue::new(None);
    let generation = StoredValue::new(0u64);
    Effect::new(move |_| {
        if let Some(old) = key.get_value() {
            crate::live::unwatch(&old);
            key.set_value(None);
        }
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        match travel.at.get() {
            Some(at) => {
                if let Some(fetch) = past(at) {
                    let set = set.clone();
                    leptos::task::spawn_local(async move {
                        let got = fetch.await;
                        if generation.try_get_value() == Some(mine) {
                            set(got);
                        }
                    });
                }
            }
            None => {
                if let Some(view) = live() {
                    let (set, read) = (set.clone(), read.clone());
                    key.set_value(Some(crate::live::watch(view, move |state| {
                        if let Some(v) = read(state) {
                            set(Ok(v));
                        }
                    })));
                }
            }
        }
    });
    on_cleanup(move || {
        if let Some(k) = key.get_value() {
            crate::live::unwatch(&k);
        }
    });
}

/// [`follow`] for a projection over the window `window()` returns: `pick`
/// takes the part wanted from the state's JSON (with
/// [`crate::api::body_field`]).
#[cfg(feature = "hydrate")]
pub fn follow_projection<T: 'static>(
    name: impl Into<String>,
    window: impl Fn() -> crate::api::Window + Copy + Send + Sync + 'static,
    pick: fn(&serde_json::Value) -> Option<T>,
    set: impl Fn(Result<T, String>) + Clone + 'static,
) {
    let name: String = name.into();
    let view_name = name.clone();
    follow(
        move || {
            Some(crate::wire::View::Projection {
                name: view_name.clone(),
                window: window(),
            })
        },
        move |state| pick(state.json()?),
        move |at| {
            let name = name.clone();
            let url = format!(
                "/api/v1/projections/{name}?window={}&at={}",
                window().as_str(),
                at_param(at)
            );
            Some(async move {
                let p = crate::fetch::get_json::<serde_json::Value>(url).await?;
                pick(&p).ok_or_else(|| format!("{name} sent an unexpected body"))
            })
        },
        set,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_other_parameters_and_drop_cleared_ones() {
        let p = [("level", "error"), (AT, "5")];
        assert_eq!(
            url_with("/tail", p, &[(AT, Some("9".into()))]),
            "/tail?level=error&at=9"
        );
        assert_eq!(
            url_with("/", p, &[(AT, None), (CMP, None)]),
            "/?level=error"
        );
        assert_eq!(url_with("/", [], &[(AT, None)]), "/");
        assert_eq!(parse_moment("1764144000000"), Some(1_764_144_000_000));
        assert_eq!((parse_moment("x"), parse_moment("-3")), (None, None));
    }

    #[test]
    fn a_click_maps_to_a_moment_the_server_can_rebuild() {
        let t = Timeline {
            start_ms: 10_000,
            step_ms: 1_000,
            counts: vec![1; 100],
            first_id: Some(1),
            last_id: Some(100),
            earliest_at_ms: Some(20_000),
        };
        assert_eq!(moment_at(&t, 0.5, 1_000_000), 60_000);
        assert_eq!(
            moment_at(&t, 0.0, 1_000_000),
            20_000,
            "not before the earliest"
        );
        assert_eq!(moment_at(&t, 1.0, 90_000), 90_000, "not after now");
        assert_eq!(ago(0, 125_000), "2 min 5 s ago");
        assert_eq!(at_param(1_000), "1970-01-01T00%3A00%3A01.000Z");
        assert_eq!(ago(0, 500), "just now");
    }
}
