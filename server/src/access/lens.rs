//! What one request sees of the events ([`Lens`]): the subject scope of
//! who sent it and the masks of their role, applied to every answer that
//! carries events or numbers about them: lists, the tail, an event's page,
//! flows, the topology, the schemas, the projections and the counts
//! (docs/SECURITY.md). An aggregate is kept only where its rows can be
//! tied to an allowed subject; a row that cannot (per service, per level,
//! per metric series, the whole log's rate) is left out for a scoped user,
//! and the state says `scoped`.

use super::Role;
use super::mask::{MASKED, Masks, Relation};
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
        self.scope.is_none() && self.masks.is_none() && !self.hides_audit()
    }

    /// Whether the audit trail's records are left out of the events it
    /// shows: they are the admins' (`GET /api/v1/audit`).
    pub fn hides_audit(&self) -> bool {
        self.role != Role::Admin
    }

    /// Whether events on `subject` may be seen.
    pub fn allows(&self, subject: &str) -> bool {
        !(self.hides_audit() && subject.starts_with(super::audit::SUBJECT_PREFIX))
            && self.scope.as_ref().is_none_or(|s| s.allows(subject))
    }

    /// Whether an event may be seen: its subject, and for a schema drift
    /// (Eventscope's own event about another subject) the subject it names.
    pub fn allows_event(&self, subject: &str, payload: &[u8]) -> bool {
        self.allows(subject)
            && self
                .scope
                .as_ref()
                .is_none_or(|s| s.allows_named(subject, payload))
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
            "{}/{}/{}",
            self.scope.as_ref().map_or("", |s| s.name.as_str()),
            if self.masks.is_some() {
                self.role.name()
            } else {
                ""
            },
            if self.hides_audit() { "no-audit" } else { "" }
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
        self.scope
            .as_ref()
            .is_none_or(|s| subject != OVERFLOW_SUBJECT && s.allows(subject))
    }

    /// A projection's state as the asker may see it.
    pub fn projection(&self, state: &mut ProjectionState) {
        // A user-defined projection over a masked field would show its
        // values (as group keys) or what they add up to.
        if let (
            Some(masks),
            ProjectionBody::Custom {
                field,
                group_by,
                groups,
                ..
            },
        ) = (&self.masks, &mut state.body)
        {
            // Masked, inside a masked field, or holding one.
            let masked = |path: &Option<String>| {
                path.as_deref().is_some_and(|p| {
                    masks.relation(&p.split('.').collect::<Vec<_>>()) != Relation::Clear
                })
            };
            if masked(field) || masked(group_by) {
                groups.clear();
            }
        }
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
                subjects.retain(|k| self.allows_row(&k.key));
                *total = sum(&mut subjects.iter().map(|k| &k.rate));
                services.clear();
                levels.clear();
            }
            ProjectionBody::TopK { items } if state.name == "top_subjects" => {
                items.retain(|i| self.allows_row(&i.key));
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
                    self.allows_row(&f.first_subject)
                        && self.allows_row(&f.last_subject)
                        && f.stopped_at.as_deref().is_none_or(|s| self.allows_row(s))
                });
                // Middle steps may be on other subjects: their services
                // are not named (the flow's own page lists its allowed
                // steps and their services).
                for f in flows.iter_mut() {
                    f.services.clear();
                }
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
                // An edge with no subject (a consumer with no filter) is
                // not tied to one: not shown.
                edges.retain(|e| !e.subject.is_empty() && self.covers(&e.subject));
                let kept: std::collections::HashSet<&str> = edges
                    .iter()
                    .flat_map(|e| [e.from.as_str(), e.to.as_str()])
                    .collect();
                nodes.retain(|n| kept.contains(n.id.as_str()));
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
        counts.subjects.retain(|s, _| self.allows_row(s));
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
                // A field's example is its first value, cut: an object's
                // shows what it holds, so one holding a masked field is
                // masked too.
                schema.fields.retain_mut(|f| {
                    let path: Vec<&str> = f.path.split('.').collect();
                    match masks.relation(&path) {
                        Relation::Masked(true) => false,
                        Relation::Masked(false) | Relation::Holds => {
                            f.example = MASKED.to_string();
                            true
                        }
                        Relation::Clear => true,
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
        detail.steps.retain(|s| self.allows_row(&s.subject));
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
        flow.stopped_at = flow.stopped_at.take().filter(|s| self.allows_row(s));
        detail.steps_dropped = 0;
        Some(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::mask::{MaskEntry, Masking};
    use crate::access::scope::ScopeEntry;
    use app::api::{CustomGroup, FlowStep, FlowSummary, KeyedRate, TopoEdge, TopoNode, Window};

    fn lens(masked: &[&str]) -> Lens {
        let scope = ScopeEntry {
            allow: vec!["orders.>".into()],
            deny: vec!["orders.internal.>".into()],
        };
        let masking = Masking::new(&[MaskEntry {
            fields: masked.iter().map(|s| s.to_string()).collect(),
            headers: vec![],
            roles: vec![Role::Viewer],
            remove: false,
        }]);
        Lens {
            scope: Some(Arc::new(Scope::new("orders", &scope))),
            masks: masking.for_role(Role::Viewer),
            role: Role::Viewer,
        }
    }

    fn state(name: &str, body: ProjectionBody) -> ProjectionState {
        ProjectionState {
            name: name.into(),
            window: Some(Window::M1),
            at_ms: 0,
            last_event_id: None,
            live: true,
            scoped: false,
            body,
        }
    }

    fn rate(count: u64) -> Rate {
        Rate {
            count,
            per_sec: count as f64,
        }
    }

    #[test]
    fn aggregates_keep_the_rows_of_allowed_subjects_only() {
        let lens = lens(&["customer"]);
        let keyed = |k: &str, n| KeyedRate {
            key: k.into(),
            rate: rate(n),
        };
        let mut rates = state(
            "rates",
            ProjectionBody::Rates {
                total: rate(100),
                subjects: vec![
                    keyed("orders.placed", 5),
                    keyed("payments.done", 90),
                    keyed("orders.internal.audit", 5),
                ],
                services: vec![keyed("payments", 90)],
                levels: vec![keyed("info", 100)],
            },
        );
        lens.projection(&mut rates);
        assert!(rates.scoped);
        let ProjectionBody::Rates {
            total,
            subjects,
            services,
            levels,
        } = &rates.body
        else {
            panic!()
        };
        assert_eq!(total.count, 5);
        assert_eq!(subjects.len(), 1);
        assert!(services.is_empty() && levels.is_empty());

        let node = |id: &str| TopoNode {
            id: id.into(),
            kind: "subject".into(),
            label: id.into(),
            column: 0,
            row: 0,
        };
        let edge = |from: &str, to: &str, subject: &str| TopoEdge {
            from: from.into(),
            to: to.into(),
            kind: "publishes".into(),
            subject: subject.into(),
            rate: rate(1),
            errors: 0,
            pending: None,
        };
        let mut topo = state(
            "topology",
            ProjectionBody::Topology {
                nodes: vec![
                    node("svc:orders"),
                    node("sub:orders.placed"),
                    node("svc:payments"),
                    node("sub:payments.done"),
                ],
                edges: vec![
                    edge("svc:orders", "sub:orders.placed", "orders.placed"),
                    edge("svc:payments", "sub:payments.done", "payments.done"),
                    // A pattern reaching a denied subject is not shown.
                    edge("svc:orders", "sub:orders.>", "orders.>"),
                ],
            },
        );
        lens.projection(&mut topo);
        let ProjectionBody::Topology { nodes, edges } = &topo.body else {
            panic!()
        };
        assert_eq!(edges.len(), 1);
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["svc:orders", "sub:orders.placed"]);

        let mut custom = state(
            "spend",
            ProjectionBody::Custom {
                aggregate: "sum".into(),
                field: Some("amount".into()),
                group_by: Some("customer".into()),
                groups: vec![CustomGroup {
                    key: "c-0042".into(),
                    count: 1,
                    value: Some(10.0),
                    p50: None,
                    p90: None,
                    p99: None,
                }],
            },
        );
        lens.projection(&mut custom);
        let ProjectionBody::Custom { groups, .. } = &custom.body else {
            panic!()
        };
        assert!(groups.is_empty(), "grouped by a masked field");
    }

    #[test]
    fn a_flow_keeps_its_allowed_steps_and_is_absent_without_any() {
        let lens = lens(&[]);
        let step = |subject: &str, service: &str, t_ms| FlowStep {
            event_id: 1,
            t_ms,
            gap_ms: 0,
            subject: subject.into(),
            service: Some(service.into()),
            level: Some("info".into()),
            role: "step".into(),
        };
        let detail = |steps: Vec<FlowStep>| FlowDetail {
            flow: FlowSummary {
                id: "ord-1".into(),
                status: FlowStatus::Completed,
                started_ms: 0,
                last_ms: 30,
                steps: steps.len() as u32,
                errors: 0,
                first_subject: steps[0].subject.clone(),
                last_subject: steps[steps.len() - 1].subject.clone(),
                stopped_at: None,
                services: vec!["orders".into(), "payments".into()],
            },
            steps,
            steps_dropped: 0,
            stall_ms: 1_000,
        };
        let thinned = lens
            .flow(detail(vec![
                step("orders.placed", "orders", 0),
                step("payments.done", "payments", 10),
                step("orders.completed", "orders", 30),
            ]))
            .expect("two steps in scope");
        assert_eq!(thinned.steps.len(), 2);
        assert_eq!(thinned.flow.steps, 2);
        assert_eq!(thinned.flow.services, ["orders"]);
        assert_eq!(thinned.flow.last_subject, "orders.completed");
        assert!(
            lens.flow(detail(vec![step("payments.done", "payments", 0)]))
                .is_none()
        );
    }
}
