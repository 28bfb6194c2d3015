//! Eventscope's server. The modules follow the data's path:
//! NATS -> [`ingest`] -> [`projection`] (folded by the [`live`] hub) ->
//! WebSocket clients, with [`api`] for HTTP and [`demo`] for the managed
//! nats-server and the built-in producer. `main.rs` only wires [`start`]
//! to the command line and to signals.

#![recursion_limit = "256"]

pub mod access;
pub mod api;
pub mod charts;
pub mod config;
pub mod demo;
pub mod event;
pub mod ingest;
pub mod live;
pub mod projection;
pub mod stats;
pub mod store;
pub mod traffic;

/// Cases a fuzz (property) test runs: `short` in the test suite, or
/// `EVENTSCOPE_FUZZ_CASES` for a long run (`scripts/fuzz.sh`).
#[cfg(test)]
pub(crate) fn fuzz_cases(short: u32) -> u32 {
    std::env::var("EVENTSCOPE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(short)
}

use app::{App, shell};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use config::Config;
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{LeptosRoutes, generate_route_list};
use live::{Hub, HubHandle};
use stats::Stats;
use std::net::SocketAddr;
use std::sync::Arc;
use store::{SharedStore, Store};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A time-travel checkpoint every this many events…
pub const CHECKPOINT_EVENTS: u64 = 50_000;
/// …or this much received time, whichever comes first.
pub const CHECKPOINT_MS: i64 = 60_000;
/// Checkpoints kept (thinned, never simply dropped, past this).
pub const MAX_CHECKPOINTS: usize = 64;

/// What every HTTP handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Leptos's options (site root, output name) for SSR and static files.
    pub leptos: LeptosOptions,
    /// The live hub.
    pub hub: HubHandle,
    /// Pipeline counters.
    pub stats: Arc<Stats>,
    /// The event log.
    pub store: SharedStore,
    /// The decoder with the config file's overrides (the API decodes stored
    /// payloads again with it for messages).
    pub decoders: Arc<ingest::decode::Decoders>,
    /// Origins besides the server's own allowed to open `/ws`.
    pub allowed_origins: Arc<[String]>,
    /// What `/metrics` serves.
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// The user-defined projections (from the config file).
    pub projection_defs: Arc<[projection::custom::ProjectionDef]>,
    /// Checkpoints of the built-in projections, for time travel.
    pub checkpoints: projection::timetravel::SharedCheckpoints,
    /// The NATS URL being watched, for messages.
    pub nats_url: Arc<str>,
    /// Fires on shutdown; long-lived handlers (WebSockets) watch it.
    pub shutdown: CancellationToken,
    /// The demo producer's dials, when it runs.
    pub demo: Option<Arc<demo::producer::DemoControl>>,
    /// Turns for event queries ([`api::v1::MAX_QUERIES`] at once).
    pub queries: Arc<tokio::sync::Semaphore>,
    /// Turns for time-travel rebuilds ([`api::v1::MAX_TRAVELS`] at once).
    pub travels: Arc<tokio::sync::Semaphore>,
    /// Live-socket subscriptions per client address.
    pub ws_quotas: Arc<live::ws::AddressQuotas>,
    /// Live connections open at once, at most (`--ws-max-clients`).
    pub ws_max_clients: u32,
    /// Sign-in, roles, the serving defences and the audit trail.
    pub access: Arc<access::Access>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// The HTTP routes: the UI (server-rendered), `/ws`, health, static files.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let leptos = state.leptos.clone();
    // Pages are rendered with the counts of the moment, so the first paint
    // shows real numbers before the live connection opens.
    let pages = Router::new()
        .leptos_routes(&state, routes, move || shell(leptos.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            with_first_paint,
        ));
    Router::new()
        .route("/ws", get(live::ws::handler))
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .route("/metrics", get(api::metrics::handler))
        .nest("/api/v1", api::v1::routes())
        .merge(access::routes())
        .merge(pages)
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Every request passes the gate first: Host, Origin, sign-in, role.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::gate,
        ))
        .with_state(state)
}

/// Puts the hub's counts, and the views the page shows first, in a page
/// request's extensions, where the app reads them for its first paint
/// ([`app::shell::FirstCounts`], [`app::shell::FirstViews`]).
async fn with_first_paint(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(app::shell::NatsTarget(state.nats_url.to_string()));
    // What the asker may see: a scope thins the counts and leaves out the
    // first views (the live socket and the API send them thinned); masks
    // leave out the first views too (the tail's rows would need masking).
    // (Without the gate's decision, the page is treated as scoped: no
    // first views.)
    let lens = request
        .extensions()
        .get::<access::Lens>()
        .cloned()
        .unwrap_or_else(|| access::Lens {
            scope: Some(Arc::new(access::scope::Scope::new(
                "none",
                &access::scope::ScopeEntry {
                    allow: Vec::new(),
                    deny: vec![">".to_string()],
                },
            ))),
            ..Default::default()
        });
    if let Ok(mut counts) = state.hub.counts().await {
        lens.counts(&mut counts);
        request
            .extensions_mut()
            .insert(app::shell::FirstCounts(counts));
    }
    if !lens.is_clear() {
        request
            .extensions_mut()
            .insert(app::shell::FirstViews::default());
        return next.run(request).await;
    }
    // Every page's time bar; for the live moment, what the page shows
    // first (see `first_views`).
    let live = !request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("at=")));
    let mut views = if live {
        first_views(&state, request.uri().path(), request.uri().query()).await
    } else {
        app::shell::FirstViews::default()
    };
    let strip = {
        let store = state.store.read();
        let earliest = state.checkpoints.lock().earliest_id(store.first_id());
        api::v1::timeline(&store, earliest, app::travel::STRIP_BUCKETS as usize)
    };
    if let Ok(v) = serde_json::to_value(&strip) {
        views.0.insert(app::travel::TIMELINE_FIRST.to_string(), v);
    }
    request.extensions_mut().insert(views);
    next.run(request).await
}

/// What page `path` shows first, live (see [`app::shell::FirstViews`]):
/// each value has the type the page's component reads it as.
async fn first_views(state: &AppState, path: &str, query: Option<&str>) -> app::shell::FirstViews {
    use app::api::{ProjectionBody, Window};
    use app::shell::first_key;
    let (hub, store, decoders) = (&state.hub, &state.store, &state.decoders);
    let mut views = std::collections::HashMap::new();
    let mut put = |key: String, value: Result<serde_json::Value, serde_json::Error>| {
        if let Ok(v) = value {
            views.insert(key, v);
        }
    };
    let body = |name: &'static str, window: Window| async move {
        hub.projection(name, window)
            .await
            .ok()
            .flatten()
            .map(|s| s.body)
    };
    match path {
        "/" => {
            if let Ok(Ok(chart)) = hub.chart("levels", Window::M15, String::new()).await {
                put(
                    first_key("chart", "levels", Window::M15),
                    serde_json::to_value(&chart),
                );
            }
            for name in ["top_errors", "top_subjects", "top_services"] {
                if let Some(ProjectionBody::TopK { items }) = body(name, Window::M15).await {
                    put(
                        first_key("projection", name, Window::M15),
                        serde_json::to_value(&items),
                    );
                }
            }
        }
        "/flows" => {
            if let Some(ProjectionBody::Flows {
                counts,
                stall_ms,
                flows,
            }) = body("flows", Window::M15).await
            {
                put(
                    first_key("projection", "flows", Window::M15),
                    serde_json::to_value((counts, stall_ms, flows)),
                );
            }
            if let Ok(Ok(chart)) = hub.chart("flows", Window::M15, String::new()).await {
                put(
                    first_key("chart", "flows", Window::M15),
                    serde_json::to_value(&chart),
                );
            }
        }
        "/cqrs" => {
            if let Some(ProjectionBody::Cqrs { pairs }) = body("cqrs", Window::M15).await {
                put(
                    first_key("projection", "cqrs", Window::M15),
                    serde_json::to_value(&pairs),
                );
            }
        }
        "/topology" => {
            if let Some(ProjectionBody::Topology { nodes, edges }) =
                body("topology", Window::M1).await
            {
                put(
                    first_key("projection", "topology", Window::M1),
                    serde_json::to_value((nodes, edges)),
                );
            }
        }
        "/tail" => {
            // The newest events matching the page's filter, as the live
            // tail view would send them first.
            let params: std::collections::HashMap<String, String> =
                serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
            let filter = app::tail::filter_from(|k| params.get(k).cloned());
            // As the live view reads its first page: off the async
            // workers, in slices of the log, within a query's budgets, and
            // only with a query's turn free now (else the live view fills
            // the page).
            if let Ok(q) = api::v1::parse_filter(&filter)
                && let Ok(turn) = Arc::clone(&state.queries).try_acquire_owned()
            {
                let (store, decoders) = (Arc::clone(store), Arc::clone(decoders));
                let upto = store.read().last_id();
                let events = api::reads::run(move || {
                    let _turn = turn;
                    live::hub::tail_snapshot(&store, &decoders, &q, app::tail::LIMIT as usize, upto)
                })
                .await;
                if let Some(events) = events {
                    put(
                        app::tail::first_key(&filter),
                        serde_json::to_value((&events, 0u64)),
                    );
                }
            }
        }
        "/explore" => {
            let params: std::collections::HashMap<String, String> =
                serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
            let (filter, window) = app::explore::from_params(|k| params.get(k).cloned());
            if let Some(ProjectionBody::Metrics { series }) = body("metrics", window).await {
                put(
                    first_key("projection", "metrics", window),
                    serde_json::to_value(&series),
                );
            }
            if !filter.metric.is_empty()
                && let Ok(Ok(chart)) = hub.chart("metrics", window, filter.to_query()).await
            {
                put(
                    app::explore::first_chart_key(window, &filter),
                    serde_json::to_value(&chart),
                );
            }
        }
        "/schemas" => {
            if let Ok(list) = hub.schemas().await {
                put("schemas".to_string(), serde_json::to_value(&list));
            }
        }
        _ => {}
    }
    app::shell::FirstViews(views)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The NATS URL is malformed.
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    /// No free port for the managed nats-server.
    #[error("cannot find a free port for the managed nats-server: {0}")]
    Port(std::io::Error),
    /// The sign-in settings are refused.
    #[error(transparent)]
    Access(#[from] access::AccessError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another eventscope running? try --addr)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A started server: its address, and the handle to stop it.
#[derive(Debug)]
pub struct Running {
    /// Where HTTP is served (the real port when the config said 0).
    pub addr: SocketAddr,
    /// The NATS URL watched.
    pub nats_url: String,
    /// Pipeline counters (for tools and tests that run it in-process).
    pub stats: Arc<Stats>,
    /// The event log.
    pub store: SharedStore,
    shutdown: CancellationToken,
    tasks: Tasks,
}

/// How long [`Running::stop`] waits for its tasks to finish before it
/// aborts those left; the binary exits at most 10 s after a signal
/// whatever they do (`main.rs`).
pub const STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(6);

/// The server's long-lived tasks, each named, so one that ends early can
/// be told.
#[derive(Debug, Default)]
struct Tasks {
    set: JoinSet<()>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Tasks {
    fn spawn(
        &mut self,
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    fn name(&self, id: tokio::task::Id) -> &'static str {
        self.names.get(&id).copied().unwrap_or("a task")
    }
}

impl Running {
    /// Stops every task (HTTP, WebSockets, ingest, hub, demo, managed NATS)
    /// and waits for them to finish, [`STOP_WITHIN`] at most: those still
    /// running then are aborted (and named in the log).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let tasks = &mut self.tasks;
        let finished = tokio::time::timeout(STOP_WITHIN, async {
            while let Some(ended) = tasks.set.join_next_with_id().await {
                let id = ended.map_or_else(|e| e.id(), |(id, ())| id);
                tasks.names.remove(&id);
            }
        })
        .await;
        if finished.is_err() {
            let left: Vec<&str> = self.tasks.names.values().copied().collect();
            tracing::warn!(
                ?left,
                "tasks still running {STOP_WITHIN:?} after shutdown: aborted"
            );
            self.tasks.set.abort_all();
            while self.tasks.set.join_next().await.is_some() {}
        }
    }

    /// Resolves when one of the server's tasks ends although no stop was
    /// asked for (it panicked, or gave up): what ended and how. The binary
    /// then exits with an error rather than serve data that no longer
    /// moves. Never resolves otherwise.
    pub async fn failed(&mut self) -> String {
        let ended = self.tasks.set.join_next_with_id().await;
        if self.shutdown.is_cancelled() {
            std::future::pending::<()>().await;
        }
        match ended {
            Some(Ok((id, ()))) => {
                let name = self.tasks.names.remove(&id).unwrap_or("a task");
                format!("{name} stopped")
            }
            Some(Err(e)) => {
                let name = self.tasks.name(e.id());
                let how = if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                format!("{name} {how}")
            }
            None => std::future::pending().await,
        }
    }
}

/// Starts everything `config` asks for and returns once HTTP is listening.
/// NATS need not be up: the client connects in the background and retries.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let shutdown = CancellationToken::new();
    let stats = Arc::new(Stats::default());
    let mut tasks = Tasks::default();
    // Checked before anything starts: an open dashboard on the network is
    // refused, not served.
    let mut access =
        access::Access::from_config(&config, access::audit::Audit::new(None, Arc::clone(&stats)))?;

    let nats_url = match &config.nats_url {
        Some(url) => url.clone(),
        None => {
            let port = demo::managed_nats::free_port().map_err(StartError::Port)?;
            tasks.spawn(
                "the managed nats-server",
                demo::managed_nats::supervise(
                    config.nats_server_bin.clone(),
                    port,
                    shutdown.clone(),
                ),
            );
            format!("nats://127.0.0.1:{port}")
        }
    };

    let client = ingest::connect(
        &nats_url,
        "eventscope",
        &config.auth,
        config.nats_client_buffer(),
        Arc::clone(&stats),
    )
    .await?;
    let (tx, rx) = ingest::queue::queue();
    access.audit = access::audit::Audit::new(Some(tx.clone()), Arc::clone(&stats));
    // With --audit-to-nats, the records are published too, marked with
    // this instance's id so that its own ingest does not take them twice.
    let own_audit: Option<Arc<str>> = config
        .audit_to_nats
        .then(|| access::users::random_token().into());
    if let Some(instance) = &own_audit {
        let (audit, publish) =
            access
                .audit
                .clone()
                .publishing(client.clone(), Arc::clone(instance), shutdown.clone());
        access.audit = audit;
        tasks.spawn("the audit publisher", publish);
    }
    let store: SharedStore = Arc::new(parking_lot::RwLock::new(Store::new(
        usize::try_from(config.store_bytes.as_u64()).unwrap_or(usize::MAX),
    )));
    // JetStream consumers, polled for the topology.
    let consumers = ingest::consumers::SharedConsumers::default();
    tasks.spawn(
        "the JetStream consumer poll",
        ingest::consumers::watch(
            client.clone(),
            Arc::clone(&consumers),
            std::time::Duration::from_millis(config.consumer_poll_ms.max(100)),
            shutdown.clone(),
        ),
    );
    let projections = config.projections().with_consumers(consumers);
    let checkpoints = Arc::new(parking_lot::Mutex::new(
        projection::timetravel::Checkpoints::starting_from(
            projections.clone(),
            CHECKPOINT_EVENTS,
            CHECKPOINT_MS,
            MAX_CHECKPOINTS,
        )
        .with_budget(usize::try_from(config.projection_bytes.as_u64()).unwrap_or(usize::MAX)),
    ));
    let decoders = Arc::new(config.decoders());
    let (hub, hub_handle) = Hub::new(
        rx,
        Arc::clone(&stats),
        Arc::clone(&store),
        Arc::clone(&checkpoints),
        projection::partition::Folds::new(projections, config.partitions()),
        Arc::clone(&decoders),
        config.tick(),
    );
    tasks.spawn("the live hub", hub.run(shutdown.clone()));
    let pipe = ingest::Pipe {
        tx,
        stats: Arc::clone(&stats),
        decoders: Arc::clone(&decoders),
        shutdown: shutdown.clone(),
        own_audit,
    };
    for source in config.streams.clone() {
        tasks.spawn(
            "a JetStream source",
            ingest::jetstream::run(client.clone(), source, config.durable.clone(), pipe.clone()),
        );
    }
    let subjects = config.core_subjects();
    if !subjects.is_empty() {
        tasks.spawn("core NATS ingest", async move {
            if let Err(e) = ingest::run(client, subjects, pipe).await {
                tracing::error!(error = %e, "ingest stopped");
            }
        });
    }
    tasks.spawn(
        "the NATS reachability watch",
        ingest::watch_reachability(nats_url.clone(), Arc::clone(&stats), shutdown.clone()),
    );

    let mut demo_control = None;
    if config.demo_producer() {
        // Its own connection, like any other publisher.
        let producer_client = ingest::connect(
            &nats_url,
            "eventscope-demo",
            &config.auth,
            ingest::ClientBuffer::default(),
            Arc::new(Stats::default()),
        )
        .await?;
        let control = Arc::new(demo::producer::DemoControl::new(&config.demo_rates()));
        demo_control = Some(Arc::clone(&control));
        tasks.spawn(
            "the demo producer",
            demo::producer::run(
                producer_client,
                control,
                crate::event::now_ms() as u64,
                shutdown.clone(),
            ),
        );
    }

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?;
    let leptos = LeptosOptions::builder()
        .output_name("eventscope")
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .env(Env::PROD)
        .site_addr(addr)
        .build();
    let metrics = Arc::new(api::metrics::registry(
        Arc::clone(&stats),
        Arc::clone(&store),
    ));
    let (running_stats, running_store) = (Arc::clone(&stats), Arc::clone(&store));
    let state = AppState {
        leptos,
        hub: hub_handle,
        stats,
        store,
        checkpoints,
        decoders,
        projection_defs: config.projection_defs().into(),
        metrics,
        allowed_origins: config.allowed_origins.clone().into(),
        nats_url: ingest::redact_url(&nats_url).into(),
        shutdown: shutdown.clone(),
        demo: demo_control,
        queries: Arc::new(tokio::sync::Semaphore::new(api::v1::MAX_QUERIES)),
        travels: Arc::new(tokio::sync::Semaphore::new(api::v1::MAX_TRAVELS)),
        ws_quotas: live::ws::AddressQuotas::new(config.ws_per_address),
        ws_max_clients: config.ws_max_clients,
        access: Arc::new(access),
    };
    let router = app(state);
    let http_shutdown = shutdown.clone();
    tasks.spawn("the HTTP server", async move {
        let served = axum::serve(
            api::lenient::LenientListener::new(
                listener,
                config.max_connections as usize,
                config.head_timeout,
            ),
            router.into_make_service_with_connect_info::<api::lenient::Peer>(),
        )
        .with_graceful_shutdown(http_shutdown.cancelled_owned())
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "http server failed");
        }
    });
    Ok(Running {
        addr,
        nats_url,
        stats: running_stats,
        store: running_store,
        shutdown,
        tasks,
    })
}
