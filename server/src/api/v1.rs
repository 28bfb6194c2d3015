//! HTTP API v1: the event log (`/events`, `/events/{id}`), the projections
//! (`/projections`, `/projections/{name}` with `at=` for time travel) and
//! the timeline. Documented in `docs/API.md`. Reads take the store's read
//! lock for the length of one query; the hub only writes between batches.

use super::error::AppError;
use crate::AppState;
use crate::access::Lens;
use crate::ingest::decode::{self, Kind, Level};
use crate::projection::builtin;
use crate::projection::timetravel::{self, TravelError};
use crate::store::query::{Query, TextFilter};
use crate::store::{EventRef, Store};
use app::api::{
    EventDetail, EventPage, EventSummary, ProjectionList, ProjectionState, Sample, Timeline, Window,
};
use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::get;
use base64::Engine;
use std::sync::Arc;

/// Default and largest page sizes.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
const PREVIEW_CHARS: usize = 240;
/// Characters of a message an event summary carries (then `…`).
pub(crate) const MESSAGE_CHARS: usize = 500;
/// Events one request examines at most; with [`MAX_SCAN_BYTES`] and
/// [`QUERY_DEADLINE`], whichever comes first, the page ends early with a
/// cursor to go on from.
pub(crate) const MAX_SCAN: usize = 200_000;
/// Payload bytes one request's text and field filters read at most.
pub(crate) const MAX_SCAN_BYTES: usize = 64 << 20;
/// How long one request examines events at most.
pub(crate) const QUERY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);
/// Events examined under one hold of the log's read lock, at most, and how
/// long one hold lasts at most: between slices the lock is let go, so the
/// hub (which appends under the write lock) waits for one slice at most,
/// not a whole query (the reads run at a low priority: a long hold would
/// be a long wait for the hub).
pub(crate) const SLICE_EVENTS: usize = 20_000;
pub(crate) const SLICE_TIME: std::time::Duration = std::time::Duration::from_millis(2);
/// Events a time-travel rebuild folds under one hold of the log (about
/// 2 ms).
const TRAVEL_SLICE: u64 = 2_000;
/// Field predicates (`field=`) in one query, at most (distinct ones).
pub(crate) const MAX_FIELDS: usize = 8;
/// Bytes of a `subject`, `q` or field value, at most.
pub(crate) const MAX_PARAM_BYTES: usize = 1_024;
/// Bytes of a `service` or a field's path, at most.
pub(crate) const MAX_NAME_BYTES: usize = 256;

/// The v1 routes, to be nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/projections", get(list_projections))
        .route("/projections/{name}", get(get_projection))
        .route("/charts/{name}", get(get_chart))
        .route("/timeline", get(get_timeline))
        .route("/flows/{id}", get(get_flow))
        .route("/demo", get(get_demo).put(put_demo))
        .route("/schemas", get(get_schemas))
        .route("/audit", get(list_audit))
        .fallback(super::error::not_found)
        .layer(axum::middleware::map_response(super::error::json_errors))
}

/// Key/value pairs of a query string.
fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| AppError::BadRequest(format!("cannot read the query string: {e}")))
}

fn unknown_param(other: &str, known: &str) -> AppError {
    AppError::BadRequest(format!(
        "unknown parameter {:?}; known: {known}",
        cut(other)
    ))
}

/// What a client sent, cut for an error message (errors echo input: it
/// must not make the answer as large as the request).
fn cut(s: &str) -> String {
    const SHOWN: usize = 64;
    if s.len() <= SHOWN {
        return s.to_string();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A moment or an event, as `after`/`before` accept it.
enum Bound {
    Id(u64),
    Time(i64),
}

fn parse_bound(key: &str, value: &str) -> Result<Bound, AppError> {
    if let Ok(id) = value.parse::<u64>() {
        return Ok(Bound::Id(id));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| Bound::Time(t.timestamp_millis()))
        .map_err(|_| {
            AppError::BadRequest(format!(
                "{key}={value_shown:?} is neither an event id (a whole number) nor an RFC 3339 time \
                 such as 2026-11-26T06:00:00Z",
                value_shown = cut(value)
            ))
        })
}

/// Parses the query string of `GET /api/v1/events`.
fn parse_query(raw: Option<&str>) -> Result<Query, AppError> {
    let pairs = pairs(raw)?;
    let mut q = Query {
        limit: DEFAULT_LIMIT,
        max_scan: MAX_SCAN,
        ..Query::default()
    };
    let too_long =
        |key: &str, max: usize| AppError::BadRequest(format!("{key}= is longer than {max} bytes"));
    for (key, value) in pairs {
        match key.as_str() {
            "subject" | "q" if value.len() > MAX_PARAM_BYTES => {
                return Err(too_long(&key, MAX_PARAM_BYTES));
            }
            "service" if value.len() > MAX_NAME_BYTES => {
                return Err(too_long(&key, MAX_NAME_BYTES));
            }
            "subject" => q.subject = Some(value),
            "service" => q.service = Some(value),
            "q" => {
                q.text = Some(value)
                    .filter(|t| !t.is_empty())
                    .map(|t| TextFilter::new(&t))
            }
            "level" => {
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    let level = Level::parse(name).ok_or_else(|| {
                        AppError::BadRequest(format!(
                            "level={:?} is not a level; use trace, debug, info, warn, error \
                             or fatal (several separated by commas)",
                            cut(name)
                        ))
                    })?;
                    if !q.levels.contains(&level) {
                        q.levels.push(level);
                    }
                }
            }
            "kind" => {
                q.kind = Some(match value.as_str() {
                    "log" => Kind::Log,
                    "metric" => Kind::Metric,
                    "raw" => Kind::Raw,
                    other => {
                        return Err(AppError::BadRequest(format!(
                            "kind={other_shown:?} is not a kind; use log, metric or raw",
                            other_shown = cut(other)
                        )));
                    }
                })
            }
            "field" => {
                let (path, want) = value.split_once('=').ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "field={:?} needs the form path=value, e.g. field=user.id=42",
                        cut(&value)
                    ))
                })?;
                if path.len() > MAX_NAME_BYTES || want.len() > MAX_PARAM_BYTES {
                    return Err(AppError::BadRequest(format!(
                        "field= takes a path of at most {MAX_NAME_BYTES} bytes and a value of \
                         at most {MAX_PARAM_BYTES}"
                    )));
                }
                let field = (path.to_string(), want.to_string());
                if !q.fields.contains(&field) {
                    if q.fields.len() == MAX_FIELDS {
                        return Err(AppError::BadRequest(format!(
                            "at most {MAX_FIELDS} field= filters in one query"
                        )));
                    }
                    q.fields.push(field);
                }
            }
            "after" => match parse_bound("after", &value)? {
                Bound::Id(id) => q.after_id = Some(id),
                Bound::Time(ms) => q.since_ms = Some(ms.saturating_add(1)),
            },
            "before" => match parse_bound("before", &value)? {
                Bound::Id(id) => q.before_id = Some(id),
                Bound::Time(ms) => q.until_ms = Some(ms.saturating_sub(1)),
            },
            "cursor" => {
                let id = value.parse::<u64>().map_err(|_| {
                    AppError::BadRequest(format!(
                        "cursor={value_shown:?} is not a cursor this server gave out; pass next_cursor \
                         from the previous page unchanged",
                        value_shown = cut(&value)
                    ))
                })?;
                q.before_id = Some(q.before_id.map_or(id, |b| b.min(id)));
            }
            "limit" => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        AppError::BadRequest(format!(
                            "limit={value_shown:?} must be a whole number from 1 to {MAX_LIMIT}",
                            value_shown = cut(&value)
                        ))
                    })?;
            }
            other => {
                return Err(unknown_param(
                    other,
                    "subject, level, service, kind, q, field, after, before, cursor, limit",
                ));
            }
        }
    }
    Ok(q)
}

/// Parses a live tail's filter: the filter keys of `GET /api/v1/events`
/// (no paging or bounds); the error says which key is wrong and why.
pub(crate) fn parse_filter(filter: &str) -> Result<Query, String> {
    let q = parse_query(Some(filter)).map_err(|e| e.to_string())?;
    if q.after_id.is_some()
        || q.before_id.is_some()
        || q.since_ms.is_some()
        || q.until_ms.is_some()
        || q.limit != DEFAULT_LIMIT
    {
        return Err(format!(
            "a live tail's filter takes subject, level, service, kind, q and field; \
             {filter_shown:?} also bounds or pages the results",
            filter_shown = cut(filter)
        ));
    }
    Ok(q)
}

fn preview(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(PREVIEW_CHARS * 4)]);
    text.chars().take(PREVIEW_CHARS).collect()
}

/// An event as listed, for the API and the live tail.
pub(crate) fn summary(decoders: &decode::Decoders, e: &EventRef<'_>) -> EventSummary {
    summary_of(decoders, e, e.payload())
}

/// An event as listed to someone with `masks`: its message and preview
/// read from the masked payload.
pub(crate) fn summary_masked(
    decoders: &decode::Decoders,
    e: &EventRef<'_>,
    masks: Option<&crate::access::mask::Masks>,
) -> EventSummary {
    match masks.and_then(|m| m.payload(e.payload())) {
        Some((masked, _)) => summary_of(decoders, e, masked.as_bytes()),
        None => summary(decoders, e),
    }
}

/// An event as listed, its message and preview read from `payload` (the
/// stored one, or a masked copy).
fn summary_of(decoders: &decode::Decoders, e: &EventRef<'_>, payload: &[u8]) -> EventSummary {
    // The message is not in the index (only warn+ ones are interned):
    // decoding the payload again is cheap for a page of events, and exact
    // because decoding is deterministic.
    let decoded = decoders.decode(e.subject(), payload);
    let (stream, seq) = match e.stream_seq() {
        Some((s, q)) => (Some(s.to_string()), Some(q)),
        None => (None, None),
    };
    EventSummary {
        id: e.id,
        received_ms: e.received_ms(),
        time_ms: e.time_ms(),
        subject: e.subject().to_string(),
        kind: e.kind().as_str().to_string(),
        format: e.format().as_str().to_string(),
        level: e.level().map(|l| l.as_str().to_string()),
        service: e.service().map(str::to_string),
        // Cut for lists and tail frames (a stack trace as an error message
        // would make every frame megabytes); the event's page has it whole.
        message: decoded.message.map(|m| {
            let m = m.into_string();
            if m.chars().count() > MESSAGE_CHARS {
                let mut cut: String = m.chars().take(MESSAGE_CHARS).collect();
                cut.push('…');
                cut
            } else {
                m
            }
        }),
        size: e.payload().len(),
        duplicate: e.is_duplicate(),
        stream,
        seq,
        preview: preview(payload),
    }
}

/// Event queries running at once, at most, each on a blocking thread (off
/// the async workers that serve ingest, sockets and health).
pub(crate) const MAX_QUERIES: usize = 4;
/// Time-travel rebuilds running at once, at most (each folds up to a
/// checkpoint interval of events).
pub(crate) const MAX_TRAVELS: usize = 2;
/// How long a query waits for a turn before the answer is 503.
const QUERY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A turn among `most` of `what`, waited for [`QUERY_WAIT`] at most (then
/// 503).
async fn turn(
    turns: &Arc<tokio::sync::Semaphore>,
    most: usize,
    what: &str,
) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
    tokio::time::timeout(QUERY_WAIT, Arc::clone(turns).acquire_owned())
        .await
        .map_err(|_| {
            AppError::Unavailable(format!(
                "{most} {what} are running and more are waiting; try again shortly"
            ))
        })?
        .map_err(|_| AppError::Unavailable("the server is shutting down".to_string()))
}

async fn list_events(
    State(state): State<AppState>,
    Extension(lens): Extension<Lens>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventPage>, AppError> {
    page_of(&state, seen_through(parse_query(raw.as_deref())?, &lens)).await
}

/// `q` limited to what `lens` shows: its scope's subjects, its masks.
pub(crate) fn seen_through(mut q: Query, lens: &Lens) -> Query {
    q.scope = lens.scope.clone();
    q.masks = lens.masks.clone();
    q.hide_audit = lens.hides_audit();
    q
}

/// The page of events `q` asks for, with a query's turn, off the async
/// workers.
async fn page_of(state: &AppState, q: Query) -> Result<Json<EventPage>, AppError> {
    let permit = turn(&state.queries, MAX_QUERIES, "event queries").await?;
    let (store, decoders) = (Arc::clone(&state.store), Arc::clone(&state.decoders));
    let page = super::reads::run(move || {
        let _turn = permit;
        query_sliced(&store, &decoders, q)
    })
    .await
    .ok_or_else(|| AppError::Unavailable("the query failed; try again".to_string()))?;
    Ok(Json(page))
}

/// `GET /api/v1/audit` (admins: `crate::access::needed`): the audit trail,
/// newest first, as `GET /api/v1/events` lists events, with the same
/// filters and paging, on the `eventscope.audit.>` subjects only.
async fn list_audit(
    State(state): State<AppState>,
    Extension(lens): Extension<Lens>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventPage>, AppError> {
    let mut q = parse_query(raw.as_deref())?;
    q.subject = Some(format!("{}>", crate::access::audit::SUBJECT_PREFIX));
    page_of(&state, seen_through(q, &lens)).await
}

/// Runs `q` on the log in slices of [`SLICE_EVENTS`] examined events,
/// taking the read lock for each slice only, within the request's budgets
/// ([`MAX_SCAN`] events, [`MAX_SCAN_BYTES`] payload bytes,
/// [`QUERY_DEADLINE`]); a page cut short by one has a cursor to go on.
/// Blocking: call it off the async workers.
pub(crate) fn query_sliced(
    store: &crate::store::SharedStore,
    decoders: &decode::Decoders,
    mut q: Query,
) -> EventPage {
    let limit = q.limit.max(1);
    let mut left_events = if q.max_scan == 0 {
        MAX_SCAN
    } else {
        q.max_scan
    };
    let mut left_bytes = MAX_SCAN_BYTES;
    let deadline = std::time::Instant::now() + QUERY_DEADLINE;
    let mut events = Vec::new();
    let mut scanned = 0;
    loop {
        q.deadline = Some(deadline.min(std::time::Instant::now() + SLICE_TIME));
        q.limit = limit - events.len();
        q.max_scan = left_events.min(SLICE_EVENTS);
        q.max_scan_bytes = left_bytes;
        let (found, next, n, bytes) = {
            let store = store.read();
            let page = store.query(&q);
            let masks = q.masks.as_deref();
            let found: Vec<EventSummary> = page
                .events
                .iter()
                .map(|e| summary_masked(decoders, e, masks))
                .collect();
            (found, page.next_before, page.scanned, page.scanned_bytes)
        };
        events.extend(found);
        scanned += n;
        left_events = left_events.saturating_sub(n);
        left_bytes = left_bytes.saturating_sub(bytes);
        let Some(before) = next else {
            return EventPage {
                events,
                next_cursor: None,
                scanned,
            };
        };
        if events.len() >= limit
            || left_events == 0
            || left_bytes == 0
            || std::time::Instant::now() >= deadline
        {
            return EventPage {
                events,
                next_cursor: Some(before.to_string()),
                scanned,
            };
        }
        q.before_id = Some(before);
    }
}

async fn get_event(
    State(state): State<AppState>,
    Extension(lens): Extension<Lens>,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, AppError> {
    let id: u64 = id.parse().map_err(|_| {
        AppError::BadRequest(format!(
            "{id_shown:?} is not an event id (a whole number)",
            id_shown = cut(&id)
        ))
    })?;
    let store = state.store.read();
    // An event out of the asker's scope is as absent as an evicted one.
    let Some(e) = store
        .get(id)
        .filter(|e| lens.allows_event(e.subject(), e.payload()))
    else {
        let held = match (store.first_id(), store.last_id()) {
            (Some(a), Some(b)) => format!("the log holds events {a} to {b}"),
            _ => "the log is empty".to_string(),
        };
        return Err(AppError::NotFound(format!(
            "event {id} is not in the log ({held}; older events are evicted past the byte cap)"
        )));
    };
    let payload = e.payload();
    let masks = lens.masks.as_deref();
    let (mut masked, mut headers) = (Vec::new(), e.headers());
    let (payload_text, payload_base64) = match masks.and_then(|m| m.payload(payload)) {
        Some((text, paths)) => {
            masked = paths;
            (Some(text), None)
        }
        None => match std::str::from_utf8(payload) {
            Ok(t) => (Some(t.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(payload)),
            ),
        },
    };
    if let Some(m) = masks {
        masked.extend(m.headers(&mut headers));
    }
    // What the index kept at ingest from masked fields or headers: metric
    // samples are read from the payload (not shown once anything in it is
    // masked); the correlation id is shown only if it is still in sight.
    let mut samples: Vec<Sample> = e
        .samples()
        .map(|s| Sample {
            series: s.series.to_string(),
            value: s.value,
        })
        .collect();
    let mut correlation = e.correlation().map(str::to_string);
    if !masked.is_empty() {
        samples.clear();
        let text = payload_text.as_deref().unwrap_or("");
        if let Some(c) = &correlation
            && !text.contains(c.as_str())
            && !headers.iter().any(|(_, v)| v.contains(c.as_str()))
        {
            correlation = Some(crate::access::mask::MASKED.to_string());
        }
    }
    Ok(Json(EventDetail {
        summary: summary_masked(&state.decoders, &e, masks),
        headers,
        masked,
        payload_text,
        payload_base64,
        samples,
        correlation,
        reply: e.reply().map(str::to_string),
    }))
}

async fn list_projections(State(state): State<AppState>) -> Json<ProjectionList> {
    Json(ProjectionList {
        projections: builtin::catalogue(&state.projection_defs),
    })
}

async fn get_projection(
    State(state): State<AppState>,
    Extension(lens): Extension<Lens>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ProjectionState>, AppError> {
    let names: Vec<String> = builtin::catalogue(&state.projection_defs)
        .into_iter()
        .map(|p| p.name)
        .collect();
    if !names.contains(&name) {
        return Err(AppError::NotFound(format!(
            "no projection named {name_shown:?}; there are: {}",
            names.join(", "),
            name_shown = cut(&name)
        )));
    }
    let window = state
        .projection_defs
        .iter()
        .find(|d| d.name == name)
        .map_or(Window::M1, |d| d.default_window());
    let (window, at) = window_and_at(raw.as_deref(), window)?;
    let mut projection = projection_state(&state, name, window, at).await?;
    lens.projection(&mut projection);
    Ok(Json(projection))
}

fn parse_window(value: &str) -> Result<Window, AppError> {
    Window::parse(value).ok_or_else(|| {
        AppError::BadRequest(format!(
            "window={value_shown:?} is not a window; use 1s, 10s, 1m, 15m or 1h",
            value_shown = cut(value)
        ))
    })
}

/// The `window` and `at` parameters (the only ones accepted).
fn window_and_at(raw: Option<&str>, default: Window) -> Result<(Window, Option<Bound>), AppError> {
    let mut window = default;
    let mut at: Option<Bound> = None;
    for (key, value) in pairs(raw)? {
        match key.as_str() {
            "window" => window = parse_window(&value)?,
            "at" => at = Some(parse_bound("at", &value)?),
            other => return Err(unknown_param(other, "window, at")),
        }
    }
    Ok((window, at))
}

/// Projection `name`'s state over `window`: live, or as of `at`.
async fn projection_state(
    state: &AppState,
    name: String,
    window: Window,
    at: Option<Bound>,
) -> Result<ProjectionState, AppError> {
    let Some(at) = at else {
        let live = state
            .hub
            .projection(&name, window)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        return live.ok_or_else(|| {
            AppError::NotFound(format!(
                "no projection named {name_shown:?}",
                name_shown = cut(&name)
            ))
        });
    };
    at_moment(state, at, move |rebuilt, store, now| {
        let body = rebuilt.snapshot(store, &name, window, now).ok_or_else(|| {
            AppError::NotFound(format!(
                "no projection named {name_shown:?}",
                name_shown = cut(&name)
            ))
        })?;
        Ok(ProjectionState {
            window: (name != "rate_history").then_some(window),
            name,
            at_ms: now,
            last_event_id: rebuilt.last_id(),
            live: false,
            scoped: false,
            body,
        })
    })
    .await
}

/// Runs `f` on the projections as they were at `at` (rebuilt by folding the
/// log forward from the nearest checkpoint), with the log and the moment.
/// On a blocking thread, so a long fold never stalls the async workers.
async fn at_moment<T: Send + 'static>(
    state: &AppState,
    at: Bound,
    f: impl FnOnce(&builtin::Projections, &Store, i64) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let (shared, checkpoints) = (state.store.clone(), state.checkpoints.clone());
    let permit = turn(&state.travels, MAX_TRAVELS, "time-travel rebuilds").await?;
    super::reads::run(move || {
        let _turn = permit;
        let store = shared.read();
        let (target, now) = match at {
            Bound::Id(id) => {
                let e = store.get(id).ok_or_else(|| {
                    AppError::NotFound(format!(
                        "event {id} is not in the log, so at={id} cannot be rebuilt"
                    ))
                })?;
                (id, e.received_ms())
            }
            Bound::Time(ms) => (store.last_id_at(ms).unwrap_or(0), ms),
        };
        let cps = checkpoints.lock();
        let earliest = || match cps.earliest_id(store.first_id()) {
            Some(0) => store
                .span_ms()
                .map_or("the first event".to_string(), |(a, _)| time_text(a)),
            Some(id) => store
                .get(id)
                .map_or(format!("event {id}"), |e| time_text(e.received_ms())),
            None => "nothing: the log is empty".to_string(),
        };
        let gone = |e: TravelError| AppError::Gone(e.to_string());
        let base = cps.base_for(target).ok_or_else(|| {
            gone(TravelError::TooOld {
                earliest: earliest(),
            })
        })?;
        let too_old = TravelError::TooOld {
            earliest: earliest(),
        };
        drop(cps);
        // Folded in slices, the log let go between them: a rebuild from a
        // checkpoint far back does not hold the hub's appends for long.
        let mut rebuilt = base.state();
        let mut done = base.last_id;
        let mut store = store;
        loop {
            let upto = target.min(done.saturating_add(TRAVEL_SLICE));
            timetravel::fold_range(&mut rebuilt, &store, done, upto)
                .map_err(|_| gone(too_old.clone()))?;
            done = upto;
            if done >= target {
                return f(&rebuilt, &store, now);
            }
            drop(store);
            store = shared.read();
        }
    })
    .await
    .ok_or_else(|| AppError::Unavailable("time travel failed; try again".to_string()))?
}

/// `GET /api/v1/charts/{name}`: the chart as JSON (SVG, legend, total), or
/// with a `.svg` suffix the bare SVG, for export. `window` and `at` as for
/// projections; the `metrics` chart also takes `metric`, `tags` and `p`.
async fn get_chart(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let (name, svg) = match name.strip_suffix(".svg") {
        Some(n) => (n.to_string(), true),
        None => (name, false),
    };
    if !crate::charts::CHARTS.iter().any(|c| c.0 == name) {
        let names: Vec<&str> = crate::charts::CHARTS.iter().map(|c| c.0).collect();
        return Err(AppError::NotFound(format!(
            "no chart named {name_shown:?}; there are: {}",
            names.join(", "),
            name_shown = cut(&name)
        )));
    }
    let mut window = Window::M15;
    let mut at = None;
    let mut filter: Vec<(String, String)> = Vec::new();
    for (key, value) in pairs(raw.as_deref())? {
        match key.as_str() {
            "window" => window = parse_window(&value)?,
            "at" => at = Some(parse_bound("at", &value)?),
            "metric" | "tags" | "p" => filter.push((key, value)),
            other => return Err(unknown_param(other, "window, at, metric, tags, p")),
        }
    }
    let filter = serde_urlencoded::to_string(&filter).unwrap_or_default();
    let chart = match at {
        None => state
            .hub
            .chart(&name, window, filter)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?
            .map_err(AppError::BadRequest)?,
        Some(at) => {
            at_moment(&state, at, move |rebuilt, store, now| {
                crate::charts::draw(rebuilt, store, &name, &filter, window, now, false)
                    .map_err(AppError::BadRequest)
            })
            .await?
        }
    };
    Ok(if svg {
        (
            [(axum::http::header::CONTENT_TYPE, "image/svg+xml")],
            chart.svg,
        )
            .into_response()
    } else {
        Json(chart).into_response()
    })
}

/// `GET /api/v1/flows/{id}`: one flow (events sharing correlation id
/// `id`) with its steps, live or as of `at`.
async fn get_flow(
    State(state): State<AppState>,
    Extension(lens): Extension<Lens>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<app::api::FlowDetail>, AppError> {
    let (_, at) = window_and_at(raw.as_deref(), Window::M1)?;
    let missing = |id: &str| {
        AppError::NotFound(format!(
            "no flow with correlation id {id_shown:?} is tracked (the newest {} are; \
             see the `flows` projection for the list)",
            crate::projection::flows::MAX_FLOWS,
            id_shown = cut(id)
        ))
    };
    let detail = match at {
        None => {
            let key = id.clone();
            state
                .hub
                .query(move |p, store, now| p.flows().detail(store, &key, now))
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?
        }
        Some(at) => {
            let key = id.clone();
            at_moment(&state, at, move |rebuilt, store, now| {
                Ok(rebuilt.flows().detail(store, &key, now))
            })
            .await?
        }
    };
    detail
        .and_then(|d| lens.flow(d))
        .map(Json)
        .ok_or_else(|| missing(&id))
}

/// `GET /api/v1/schemas`: every inferred payload schema, live.
async fn get_schemas(
    State(state): State<AppState>,
    Extension(lens): Extension<Lens>,
) -> Result<Json<app::api::SchemaList>, AppError> {
    let mut list = state
        .hub
        .schemas()
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    lens.schemas(&mut list);
    Ok(Json(list))
}

/// `GET /api/v1/demo`: the demo producer's scenarios, rates and what each
/// has generated (`running: false` when this Eventscope runs no demo).
async fn get_demo(State(state): State<AppState>) -> Json<app::api::DemoState> {
    Json(
        state
            .demo
            .as_ref()
            .map(|d| d.snapshot())
            .unwrap_or_default(),
    )
}

/// The body of `PUT /api/v1/demo`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoRates {
    /// Scenario name to its new rate.
    rates: std::collections::BTreeMap<String, f64>,
}

/// The scenarios and rates a `PUT /api/v1/demo` body asks for, or why it
/// cannot be done (nothing is changed unless all of it can).
fn demo_changes(
    rates: std::collections::BTreeMap<String, f64>,
) -> Result<Vec<(crate::demo::scenarios::Scenario, f64)>, String> {
    use crate::demo::scenarios::Scenario;
    let mut changes = Vec::new();
    for (name, rate) in rates {
        let scenario = Scenario::parse(&name).ok_or_else(|| {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            format!(
                "no demo scenario {name_shown:?}; there are: {}",
                names.join(", "),
                name_shown = cut(&name)
            )
        })?;
        if !(0.0..=crate::demo::producer::MAX_RATE).contains(&rate) {
            return Err(format!("rate {rate} of {name} is outside 0..=100000"));
        }
        changes.push((scenario, rate));
    }
    Ok(changes)
}

/// `PUT /api/v1/demo` with `{"rates": {"saga": 5, "logs": 0}}`: changes
/// scenarios' rates while the demo runs (0 stops new flows).
async fn put_demo(
    State(state): State<AppState>,
    body: Result<Json<DemoRates>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<app::api::DemoState>, AppError> {
    let Some(demo) = state.demo.as_ref() else {
        return Err(AppError::Conflict(
            "the demo producer is not running here; start eventscope with no --nats-url, or with --demo"
                .to_string(),
        ));
    };
    let Json(body) = body.map_err(|e| {
        AppError::BadRequest(format!(
            "the body must be JSON such as {{\"rates\": {{\"saga\": 5}}}}: {e}"
        ))
    })?;
    let changes = demo_changes(body.rates).map_err(AppError::BadRequest)?;
    for (scenario, rate) in changes {
        demo.set_rate(scenario, rate);
    }
    tracing::info!(state = ?demo.snapshot().scenarios.iter().map(|s| (s.name.clone(), s.rate)).collect::<Vec<_>>(), "demo rates changed");
    Ok(Json(demo.snapshot()))
}

/// Buckets of the timeline by default, and at most.
const TIMELINE_BUCKETS: usize = 120;
pub(crate) const MAX_TIMELINE_BUCKETS: usize = 2_000;

async fn get_timeline(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Timeline>, AppError> {
    let mut buckets = TIMELINE_BUCKETS;
    for (key, value) in pairs(raw.as_deref())? {
        match key.as_str() {
            "buckets" => {
                buckets = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_TIMELINE_BUCKETS).contains(n))
                    .ok_or_else(|| {
                        AppError::BadRequest(format!(
                            "buckets={value_shown:?} must be a whole number from 1 to {MAX_TIMELINE_BUCKETS}",
                            value_shown = cut(&value)
                        ))
                    })?;
            }
            other => return Err(unknown_param(other, "buckets")),
        }
    }
    let store = state.store.read();
    let earliest_id = state.checkpoints.lock().earliest_id(store.first_id());
    Ok(Json(timeline(&store, earliest_id, buckets)))
}

/// Event density over the log's span in about `buckets` buckets of whole
/// seconds, for the API and the live timeline.
pub(crate) fn timeline(store: &Store, earliest_id: Option<u64>, buckets: usize) -> Timeline {
    let Some((start, end)) = store.span_ms() else {
        return Timeline {
            start_ms: crate::event::now_ms(),
            step_ms: 1_000,
            counts: Vec::new(),
            first_id: None,
            last_id: None,
            earliest_at_ms: None,
        };
    };
    // Whole seconds per bucket, enough buckets to cover the span.
    let raw_step = ((end - start) / buckets as i64 + 1).max(1_000);
    let step = (raw_step + 999) / 1_000 * 1_000;
    let start = start.div_euclid(1_000) * 1_000;
    let n = ((end - start) / step + 1) as usize;
    let counts = store.counts_per_bucket(start, step, n);
    let earliest_at_ms = earliest_id.map(|id| match store.get(id) {
        Some(e) => e.received_ms(),
        None => start,
    });
    Timeline {
        start_ms: start,
        step_ms: step,
        counts,
        first_id: store.first_id(),
        last_id: store.last_id(),
        earliest_at_ms,
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(1_000)))]

        /// Any `PUT /api/v1/demo` body: read or refused with a short
        /// reason, never a panic; what is taken names real scenarios at
        /// rates within bounds.
        #[test]
        fn fuzz_demo_bodies_are_taken_or_refused_briefly(
            names in prop::collection::vec(prop_oneof![
                prop::sample::select(vec!["saga", "fanout", "cqrs", "logs", "metrics", "orders", ""]).prop_map(str::to_string),
                ".{0,300}",
            ], 0..6),
            rates in prop::collection::vec(prop_oneof![
                0.0f64..=100_000.0,
                any::<f64>(),
                Just(f64::NAN),
                Just(-0.0),
                Just(1e300),
            ], 0..6),
            raw in ".{0,200}",
        ) {
            let body: std::collections::BTreeMap<String, f64> =
                names.into_iter().zip(rates).collect();
            match demo_changes(body.clone()) {
                Ok(changes) => {
                    prop_assert_eq!(changes.len(), body.len());
                    for (scenario, rate) in changes {
                        prop_assert!(body.contains_key(scenario.name()) || crate::demo::scenarios::Scenario::parse(scenario.name()).is_some());
                        prop_assert!((0.0..=crate::demo::producer::MAX_RATE).contains(&rate));
                    }
                }
                Err(why) => prop_assert!(why.len() < 600, "{} bytes: {}", why.len(), why),
            }
            // As the handler reads it: JSON or a refusal, never a panic.
            let _ = serde_json::from_str::<DemoRates>(&raw).map(|b| demo_changes(b.rates));
        }
    }

    /// A query-string key: the known ones mostly, sometimes anything.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::sample::select(vec![
                "subject", "level", "service", "kind", "q", "field", "after", "before",
                "cursor", "limit",
            ])
            .prop_map(str::to_string),
            1 => ".{0,12}",
        ]
    }

    /// A value: plausible ones, long ones, odd bytes.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z.>*]{0,20}",
            "(trace|debug|info|warn|error|fatal|loud)(,(info|error|x))*",
            "[a-z.]{1,10}=[a-z0-9]{0,10}",
            "[0-9]{1,25}",
            "-?[0-9]{1,4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z",
            ".{0,40}",
            "x{1000,1100}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(2_000)))]

        /// Any query string: no panic; an error is short and says what
        /// was wrong; what parses respects every bound.
        #[test]
        fn fuzz_query_strings_parse_or_say_why(
            pairs in prop::collection::vec((key(), value()), 0..40),
            raw in prop::option::of(".{0,200}"),
        ) {
            let encoded = serde_urlencoded::to_string(&pairs).expect("encodes");
            for text in [Some(encoded.as_str()), raw.as_deref()] {
                match parse_query(text) {
                    Ok(q) => {
                        prop_assert!(q.fields.len() <= MAX_FIELDS);
                        prop_assert!(q.levels.len() <= 6);
                        prop_assert!((1..=MAX_LIMIT).contains(&q.limit));
                        prop_assert!(q.subject.as_ref().is_none_or(|s| s.len() <= MAX_PARAM_BYTES));
                        prop_assert!(q.text.as_ref().is_none_or(|t| t.as_str().len() <= MAX_PARAM_BYTES));
                        prop_assert!(q.fields.iter().all(|(p, v)| p.len() <= MAX_NAME_BYTES && v.len() <= MAX_PARAM_BYTES));
                    }
                    Err(e) => {
                        let e = e.to_string();
                        prop_assert!(!e.is_empty());
                        prop_assert!(e.len() < 400, "{} bytes: {e}", e.len());
                    }
                }
                // A live tail's filter: the same parser, fewer keys.
                if let Err(e) = parse_filter(text.unwrap_or("")) {
                    prop_assert!(e.len() < 600, "{} bytes: {e}", e.len());
                }
            }
        }
    }
}
