//! What one request sees of the events ([`Lens`]): the subject scope of
//! who sent it and the masks of their role, applied to every answer that
//! carries events or numbers about them: lists, the tail, an event's page,
//! flows, the topology, the schemas, the projections and the counts
//! (docs/SECURITY.md). An aggregate is kept only where its rows can be
//! tied to an allowed subject; a row that cannot (per service, per level,
//! per metric series, the whole log's rate) is left out for a scoped user,
//! and the state says `scoped`.

use super::Role;
use super::mask::{MASKED, Masks};
use super::scope::Scope;
use app::api::{
    FlowCounts, FlowDetail, FlowStatus, ProjectionBody, ProjectionState, Rate, SchemaList,
};
use app::wire::{Counts, OVERFLOW_SUBJECT};
use std::sync::Arc;

/// What one request sees of the events: the subject scope of who sent it
/// and the masks of their role. In the request's extensions after the
/// gate; the API, the pages and the live hub apply it to everything they
/// answer with.
#[derive(Clone, Debug, Default)]
pub struct Lens {
    /// Subjects they may see events of; `None`: all.
    pub scope: Option<Arc<Scope>>,
    /// Fields and headers they see masked; `None`: none.
    pub masks: Option<Arc<Masks>>,
    /// Their role (the masks are the role's).
    pub role: Role,
}

impl Lens {
    /// Whether it shows everything as stored.
    pub fn is_clear(&self) -> bool {
        self.scope.is_none() && self.masks.is_none()
    }

    /// Whether events on `subject` may be seen.
    pub fn allows(&self, subject: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.allows(subject))
    }

    /// Whether every subject `pattern` matches may be seen.
    pub fn covers(&self, pattern: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.covers(pattern))
    }

    /// A name for what it shows, the same for every request that sees the
    /// same (live views are shared by it): empty when clear.
    pub fn key(&self) -> String {
        if self.is_clear() {
            return String::new();
        }
        format!(
            "{}/{}",
            self.scope.as_ref().map_or("", |s| s.name.as_str()),
            if self.masks.is_some() {
                self.role.name()
            } else {
                ""
            }
        )
    }
}

impl Lens {
    /// Whether the asker has a subject scope.
    pub fn is_scoped(&self) -> bool {
        self.scope.is_some()
    }

    /// A subject row of an aggregate may be shown: an allowed subject (the
    /// overflow row stands for unknown subjects: never).
    pub fn allows_row(&self, subject: &str) -> bool {
        self.row(subject)
    }

    fn row(&self, subject: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| subject != OVERFLOW_SUBJECT && s.allows(subject))
    }

    /// A projection's state as the asker may see it.
    pub fn projection(&self, state: &mut ProjectionState) {
        if !self.is_scoped() {
            return;
        }
        state.scoped = true;
        let sum = |rates: &mut dyn Iterator<Item = &Rate>| {
            rates.fold(
                Rate {
                    count: 0,
                    per_sec: 0.0,
                },
                |a, r| Rate {
                    count: a.count + r.count,
                    per_sec: a.per_sec + r.per_sec,
                },
            )
        };
        match &mut state.body {
            ProjectionBody::Rates {
                total,
                subjects,
                services,
                levels,
            } => {
                subjects.retain(|k| self.row(&k.key));
                *total = sum(&mut subjects.iter().map(|k| &k.rate));
                services.clear();
                levels.clear();
            }
            ProjectionBody::TopK { items } if state.name == "top_subjects" => {
                items.retain(|i| self.row(&i.key));
            }
            ProjectionBody::TopK { items } => items.clear(),
            ProjectionBody::LogLevels { totals, services } => {
                totals.clear();
                services.clear();
            }
            ProjectionBody::Metrics { series } => series.clear(),
            ProjectionBody::Custom { groups, .. } => groups.clear(),
            ProjectionBody::RateHistory { total, levels, .. } => {
                total.iter_mut().for_each(|n| *n = 0);
                levels.clear();
            }
            ProjectionBody::Flows { counts, flows, .. } => {
                flows.retain(|f| {
                    self.row(&f.first_subject)
                        && self.row(&f.last_subject)
                        && f.stopped_at.as_deref().is_none_or(|s| self.row(s))
                });
                let of =
                    |status: FlowStatus| flows.iter().filter(|f| f.status == status).count() as u64;
                *counts = FlowCounts {
                    started: flows.len() as u64,
                    completed: of(FlowStatus::Completed),
                    compensated: of(FlowStatus::Compensated),
                    stalled: of(FlowStatus::Stalled),
                    running: of(FlowStatus::Running),
                };
            }
            ProjectionBody::Topology { nodes, edges } => {
                edges.retain(|e| self.covers(&e.subject));
                nodes.retain(|n| edges.iter().any(|e| e.from == n.id || e.to == n.id));
            }
            ProjectionBody::Cqrs { pairs } => pairs.retain(|p| {
                self.covers(&p.command_subject)
                    && self.covers(&p.event_subject)
                    && self.covers(&p.read_model_subject)
            }),
        }
    }

    /// A counts snapshot as the asker may see it: their subjects' rows,
    /// and totals of those rows.
    pub fn counts(&self, counts: &mut Counts) {
        if !self.is_scoped() {
            return;
        }
        counts.subjects.retain(|s, _| self.row(s));
        counts.total = counts.subjects.values().map(|c| c.count).sum();
        counts.rate = counts.subjects.values().map(|c| c.rate).sum();
    }

    /// The schemas as the asker may see them: subject groups in scope, the
    /// examples of masked fields masked (removed fields left out).
    pub fn schemas(&self, list: &mut SchemaList) {
        if self.is_clear() {
            return;
        }
        list.schemas.retain(|s| self.covers(&s.subject));
        if let Some(masks) = &self.masks {
            for schema in &mut list.schemas {
                schema.fields.retain_mut(|f| {
                    let path: Vec<&str> = f.path.split('.').collect();
                    match masks.field(&path) {
                        Some(true) => false,
                        Some(false) => {
                            f.example = MASKED.to_string();
                            true
                        }
                        None => true,
                    }
                });
            }
        }
        if self.is_scoped() {
            list.drifts = list.schemas.iter().map(|s| s.drifts).sum();
        }
    }

    /// A flow as the asker may see it: its steps in scope, the summary
    /// made of those; `None` when none is.
    pub fn flow(&self, mut detail: FlowDetail) -> Option<FlowDetail> {
        if !self.is_scoped() {
            return Some(detail);
        }
        detail.steps.retain(|s| self.row(&s.subject));
        let (first, last) = (detail.steps.first()?, detail.steps.last()?);
        let flow = &mut detail.flow;
        flow.first_subject = first.subject.clone();
        flow.last_subject = last.subject.clone();
        flow.started_ms = first.t_ms;
        flow.last_ms = last.t_ms;
        flow.steps = detail.steps.len() as u32;
        flow.errors = detail
            .steps
            .iter()
            .filter(|s| matches!(s.level.as_deref(), Some("error" | "fatal")))
            .count() as u32;
        flow.services = Vec::new();
        for s in &detail.steps {
            if let Some(svc) = &s.service
                && !flow.services.contains(svc)
            {
                flow.services.push(svc.clone());
            }
        }
        flow.stopped_at = flow.stopped_at.take().filter(|s| self.row(s));
        detail.steps_dropped = 0;
        Some(detail)
    }
}
