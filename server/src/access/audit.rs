//! The audit trail: every sign-in, failed sign-in, sign-out, refused
//! request and change is an event on `eventscope.audit.<action>` in
//! Eventscope's own log (so the tail, flows and time travel show it) and a
//! line of the tracing log (target `eventscope::audit`). Refusals and
//! failed sign-ins are kept at most [`NOISY_PER_SECOND`] a second, so a
//! scanner cannot fill the log with them; those left out are counted.

use super::Role;
use crate::event::NewEvent;
use crate::ingest::queue;
use crate::stats::Stats;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The subject prefix of audit events.
pub const SUBJECT_PREFIX: &str = "eventscope.audit.";

/// The header naming the instance that published an audit record to NATS
/// (`--audit-to-nats`), so that it does not take its own records in twice.
pub const ORIGIN_HEADER: &str = "Eventscope-Instance";

/// Audit records waiting to be published to NATS, at most; past this they
/// are counted as dropped (the log and the tracing log still have them).
pub const NATS_QUEUE: usize = 1_024;

/// Refusals and failed sign-ins recorded per second at most.
pub const NOISY_PER_SECOND: u32 = 20;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A user signed in.
    SignIn,
    /// A sign-in with a wrong name or password.
    SignInFailed,
    /// A user signed out.
    SignOut,
    /// A request refused: a bad token or session, a role that may not, a
    /// foreign `Host` or `Origin`.
    Denied,
    /// A state-changing request (the demo's rates) that succeeded.
    Change,
}

impl Action {
    /// The subject's last token.
    pub fn name(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::SignInFailed => "sign_in_failed",
            Action::SignOut => "sign_out",
            Action::Denied => "denied",
            Action::Change => "change",
        }
    }

    fn noisy(self) -> bool {
        matches!(self, Action::SignInFailed | Action::Denied)
    }
}

/// One audit record: the event's JSON payload.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    /// `info` or `warn` (refusals), so the tail's level filter finds them.
    pub level: &'static str,
    /// Always `eventscope`.
    pub service: &'static str,
    /// What happened, for people.
    pub message: String,
    /// The action (the subject's last token).
    pub action: &'static str,
    /// The user or token name; empty when unknown.
    pub user: &'a str,
    /// Their role, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<IpAddr>,
    /// The request: method and path.
    pub request: &'a str,
}

/// Where audit records go.
#[derive(Clone, Debug)]
pub struct Audit {
    tx: Option<queue::Sender>,
    /// Records to publish to NATS (`--audit-to-nats`): subject and payload.
    nats: Option<tokio::sync::mpsc::Sender<(String, Vec<u8>)>>,
    stats: Arc<Stats>,
    /// The second of the last noisy record, and how many it had.
    noisy: Arc<parking_lot::Mutex<(i64, u32)>>,
}

impl Audit {
    /// Records into the hub's queue `tx` (none: only the tracing log).
    pub fn new(tx: Option<queue::Sender>, stats: Arc<Stats>) -> Audit {
        Audit {
            tx,
            nats: None,
            stats,
            noisy: Default::default(),
        }
    }

    /// Also publishes each record to NATS, through `client`, with this
    /// instance's id (`instance`) in [`ORIGIN_HEADER`]; the task that
    /// publishes runs until `shutdown`.
    pub fn publishing(
        mut self,
        client: async_nats::Client,
        instance: Arc<str>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> (Audit, impl std::future::Future<Output = ()>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Vec<u8>)>(NATS_QUEUE);
        self.nats = Some(tx);
        let stats = Arc::clone(&self.stats);
        let task = async move {
            loop {
                let (subject, payload) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = rx.recv() => match next {
                        Some(next) => next,
                        None => break,
                    },
                };
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(ORIGIN_HEADER, instance.as_ref());
                match client
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                {
                    Ok(()) => stats.audit_published.fetch_add(1, Ordering::Relaxed),
                    Err(_) => stats.audit_unpublished.fetch_add(1, Ordering::Relaxed),
                };
            }
        };
        (self, task)
    }

    /// Records `action` by `user` (with `role`) from `from` on `request`
    /// (`PUT /api/v1/demo`), with a message for people.
    pub fn record(
        &self,
        action: Action,
        user: &str,
        role: Option<Role>,
        from: Option<IpAddr>,
        request: &str,
        message: String,
    ) {
        let now = crate::event::now_ms();
        if action.noisy() {
            let mut noisy = self.noisy.lock();
            let second = now / 1000;
            if noisy.0 != second {
                *noisy = (second, 0);
            }
            if noisy.1 >= NOISY_PER_SECOND {
                self.stats.audit_suppressed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            noisy.1 += 1;
        }
        let request: String = request.chars().take(300).collect();
        let record = Record {
            level: if action.noisy() { "warn" } else { "info" },
            service: "eventscope",
            message,
            action: action.name(),
            user,
            role,
            from,
            request: &request,
        };
        if action.noisy() {
            tracing::warn!(target: "eventscope::audit", action = record.action, user, ?from, request = %request, "{}", record.message);
        } else {
            tracing::info!(target: "eventscope::audit", action = record.action, user, ?from, request = %request, "{}", record.message);
        }
        self.stats.audit_events.fetch_add(1, Ordering::Relaxed);
        let Some(tx) = &self.tx else { return };
        let payload = serde_json::to_vec(&record).unwrap_or_default();
        let subject = format!("{SUBJECT_PREFIX}{}", action.name());
        if let Some(nats) = &self.nats
            && nats.try_send((subject.clone(), payload.clone())).is_err()
        {
            self.stats.audit_unpublished.fetch_add(1, Ordering::Relaxed);
        }
        let mut events = vec![NewEvent::core(&subject, payload, now)];
        if tx.send_what_fits(&mut events).is_err() || !events.is_empty() {
            // The hub's queue is full (or closed): the tracing log has it.
            self.stats.audit_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
