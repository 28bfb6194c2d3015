//! The demo's event-driven flows (PRODUCT.md F10), as scripts: each new
//! flow is written out in full when it starts (every message with its
//! delay), and the producer publishes the messages when they fall due. The
//! outcome is decided up front, so the producer can report exactly what it
//! generated and tests can hold the dashboard to it.
//!
//! - **Order saga** (choreography): `orders.placed` → `payments.authorised`
//!   or `payments.declined` → `inventory.reserved` or
//!   `inventory.out_of_stock` → `shipping.scheduled` → `orders.completed`.
//!   A declined payment cancels the order; missing stock refunds the
//!   payment and cancels the order (compensations). A share of sagas stall:
//!   shipping never answers.
//! - **Fan-out**: `users.registered`, consumed by email, analytics and CRM,
//!   each acknowledging with its own event; then
//!   `users.onboarding.completed`. Now and then the email bounces and the
//!   onboarding never completes.
//! - **Event-sourced account**: `accounts.<id>.opened`, `.deposited`,
//!   `.withdrawn`, `.frozen`, with a signed `amount`: the balance is the
//!   sum (a projection). Published to the `ACCOUNTS` JetStream stream.
//! - **CQRS**: `commands.inventory.adjust` → `events.inventory.adjusted` →
//!   `readmodel.inventory.updated`, with a read-model lag that now and then
//!   grows for a while.
//!
//! Every step carries `Nats-Correlation-Id`, a unique `Nats-Msg-Id` and a
//! `Causation-Id` (the message that caused it), and every service logs
//! what it does (the correlation id in a header; the log's payload has the
//! shape of the service's other logs).
//!
//! A minute after the producer starts, the payments service "deploys v2":
//! `PaymentAuthorised` gains a `currency` field, a schema drift to show.

use serde_json::{Value, json};

/// A kind of demo traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// The order saga.
    Saga,
    /// User registration fanned out to three services.
    Fanout,
    /// An event-sourced bank account on JetStream.
    Account,
    /// Commands, events and a lagging read model.
    Cqrs,
    /// Background logs and metrics from every service, with incidents.
    Logs,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 5] = [
        Scenario::Saga,
        Scenario::Fanout,
        Scenario::Account,
        Scenario::Cqrs,
        Scenario::Logs,
    ];

    /// Its name on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Saga => "saga",
            Scenario::Fanout => "fanout",
            Scenario::Account => "account",
            Scenario::Cqrs => "cqrs",
            Scenario::Logs => "logs",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its default rate: flows per second (events per second for `account`
    /// and `logs`).
    pub fn default_rate(self) -> f64 {
        match self {
            Scenario::Saga => 2.0,
            Scenario::Fanout => 1.0,
            Scenario::Account => 2.0,
            Scenario::Cqrs => 3.0,
            Scenario::Logs => 200.0,
        }
    }

    /// What the rate counts.
    pub fn unit(self) -> &'static str {
        match self {
            Scenario::Account | Scenario::Logs => "events/s",
            _ => "flows/s",
        }
    }
}

/// How a flow the producer started ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It reaches its completion step.
    Completed,
    /// It is undone by compensation steps.
    Compensated,
    /// It stops before finishing.
    Stalled,
}

/// One message to publish, `delay_ms` after the flow started.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Milliseconds after the flow's start.
    pub delay_ms: u64,
    /// Subject.
    pub subject: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// JSON payload.
    pub payload: String,
    /// Reply subject (a request's inbox), if it is a request.
    pub reply: Option<String>,
}

/// A flow written out in full.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    /// The correlation id its messages carry (none for account events).
    pub correlation: Option<String>,
    /// How it ends (none for account events).
    pub outcome: Option<Outcome>,
    /// Its messages, in time order.
    pub messages: Vec<Message>,
}

/// Writes scripts; deterministic for a seed.
#[derive(Debug)]
pub struct Scripts {
    rng: fastrand::Rng,
    n: u64,
    /// Share of sagas whose payment is declined.
    pub declined_share: f64,
    /// Share of sagas that find no stock.
    pub out_of_stock_share: f64,
    /// Share of sagas (and onboardings) that stall.
    pub stall_share: f64,
    accounts: Vec<(String, i64, bool)>,
    /// From this moment (Unix ms) payments publish their v2 shape.
    pub v2_from_ms: u64,
}

/// Reply subjects each requester answers are sent to.
const REPLY_POOL: u8 = 16;

/// Builds one flow's messages: each step caused by the one before.
struct Flow<'a> {
    rng: &'a mut fastrand::Rng,
    start_ms: u64,
    t: u64,
    n: u64,
    correlation: String,
    cause: Option<String>,
    messages: Vec<Message>,
}

impl Flow<'_> {
    /// Waits `lo..hi` ms, then `service` publishes `subject` (an event of
    /// type `kind` with `fields`) and logs `log` at `level`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        wait: std::ops::Range<u64>,
        service: &str,
        subject: &str,
        kind: &str,
        fields: Value,
        level: &str,
        log: &str,
    ) -> &mut Self {
        self.t += self.rng.u64(wait);
        self.n += 1;
        let msg_id = format!("{}-{}", self.correlation, self.n);
        let mut headers = vec![
            ("Nats-Correlation-Id".to_string(), self.correlation.clone()),
            ("Nats-Msg-Id".to_string(), msg_id.clone()),
            ("Event-Type".to_string(), kind.to_string()),
        ];
        if let Some(cause) = &self.cause {
            headers.push(("Causation-Id".to_string(), cause.clone()));
        }
        let ts = self.start_ms + self.t;
        self.emit(
            subject,
            headers,
            json!({"type": kind, "service": service, "ts": ts}),
            fields,
            None,
        );
        self.cause = Some(msg_id);
        // The service logs what it did, a few ms later: the same shape as
        // its other logs, the flow's id in a header.
        let request_id = format!("{:016x}", self.rng.u64(..));
        self.messages.push(Message {
            delay_ms: self.t + 1 + self.rng.u64(0..5),
            subject: format!("logs.{service}"),
            headers: vec![("Nats-Correlation-Id".to_string(), self.correlation.clone())],
            payload: json!({
                "ts": ts + 1,
                "level": level,
                "service": service,
                "msg": log,
                "request_id": request_id,
            })
            .to_string(),
            reply: None,
        });
        self
    }

    /// Schedules a message now (at `self.t`): the payload `base` with
    /// `fields` added.
    fn emit(
        &mut self,
        subject: &str,
        headers: Vec<(String, String)>,
        mut payload: Value,
        fields: Value,
        reply: Option<String>,
    ) {
        if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), fields) {
            p.extend(extra);
        }
        self.messages.push(Message {
            delay_ms: self.t,
            subject: subject.to_string(),
            headers,
            payload: payload.to_string(),
            reply,
        });
    }

    /// Waits `lo..hi` ms, then `requester` asks `subject` (request/reply,
    /// the answer to its inbox) and `responder` answers `answer` ms later.
    /// The answer names its service in an `X-Service` header only (an
    /// inbox names no service, and the payload has no `service` field).
    /// What the requester does next is still caused by what caused the
    /// request.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        wait: std::ops::Range<u64>,
        requester: &str,
        subject: &str,
        fields: Value,
        responder: &str,
        answer: std::ops::Range<u64>,
        reply_fields: Value,
    ) -> &mut Self {
        self.t += self.rng.u64(wait);
        self.n += 1;
        let request_id = format!("{}-{}", self.correlation, self.n);
        // A small pool of reply subjects per requester (one inbox per
        // request would make a new subject every saga: the log's subject
        // dictionary would fill in a long demo).
        let inbox = format!("_INBOX.{requester}.{}", self.rng.u8(..REPLY_POOL));
        let mut headers = vec![
            ("Nats-Correlation-Id".to_string(), self.correlation.clone()),
            ("Nats-Msg-Id".to_string(), request_id.clone()),
        ];
        if let Some(cause) = &self.cause {
            headers.push(("Causation-Id".to_string(), cause.clone()));
        }
        let base = json!({"service": requester, "ts": self.start_ms + self.t});
        self.emit(subject, headers, base, fields, Some(inbox.clone()));
        self.t += self.rng.u64(answer);
        self.n += 1;
        self.messages.push(Message {
            delay_ms: self.t,
            subject: inbox,
            headers: vec![
                ("Nats-Correlation-Id".to_string(), self.correlation.clone()),
                (
                    "Nats-Msg-Id".to_string(),
                    format!("{}-{}", self.correlation, self.n),
                ),
                ("Causation-Id".to_string(), request_id),
                ("X-Service".to_string(), responder.to_string()),
            ],
            payload: reply_fields.to_string(),
            reply: None,
        });
        self
    }
}

impl Scripts {
    /// A writer seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Scripts {
            rng: fastrand::Rng::with_seed(seed),
            n: 0,
            declined_share: 0.1,
            out_of_stock_share: 0.08,
            stall_share: 0.05,
            accounts: Vec::new(),
            v2_from_ms: u64::MAX,
        }
    }

    fn flow(&mut self, prefix: &str, start_ms: u64) -> Flow<'_> {
        self.n += 1;
        let correlation = format!("{prefix}-{:06}-{:04x}", self.n, self.rng.u16(..));
        Flow {
            rng: &mut self.rng,
            start_ms,
            t: 0,
            n: 0,
            correlation,
            cause: None,
            messages: Vec::new(),
        }
    }

    /// The next flow of `scenario`, starting at `start_ms` (Unix ms).
    /// `Logs` has no flows: use [`super::producer::Generator`].
    pub fn next(&mut self, scenario: Scenario, start_ms: u64) -> Script {
        match scenario {
            Scenario::Saga => self.saga(start_ms),
            Scenario::Fanout => self.fanout(start_ms),
            Scenario::Account => self.account(start_ms),
            Scenario::Cqrs => self.cqrs(start_ms),
            Scenario::Logs => Script {
                correlation: None,
                outcome: None,
                messages: Vec::new(),
            },
        }
    }

    fn saga(&mut self, start_ms: u64) -> Script {
        let roll = self.rng.f64();
        let (declined, no_stock, stall) = (
            roll < self.declined_share,
            (self.declined_share..self.declined_share + self.out_of_stock_share).contains(&roll),
            (self.declined_share + self.out_of_stock_share
                ..self.declined_share + self.out_of_stock_share + self.stall_share)
                .contains(&roll),
        );
        let amount = (self.rng.u32(5..500) as f64) + 0.99;
        let items = self.rng.u32(1..6);
        let customer = format!("c-{:04}", self.rng.u32(..5_000));
        let v2 = start_ms >= self.v2_from_ms;
        let score = if declined {
            0.6 + self.rng.f64() * 0.3
        } else {
            self.rng.f64() * 0.3
        };
        let mut f = self.flow("ord", start_ms);
        let order = f.correlation.clone();
        let o = json!({"order_id": order});
        f.step(
            0..1,
            "orders",
            "orders.placed",
            "OrderPlaced",
            json!({"order_id": order, "customer": customer, "amount": amount, "items": items}),
            "info",
            "order placed",
        );
        // Payments asks the fraud service before it charges (request/reply).
        f.request(
            5..30,
            "payments",
            "fraud.check",
            json!({"order_id": order, "customer": customer, "amount": amount}),
            "fraud",
            5..40,
            json!({"order_id": order, "score": (score * 100.0).round() / 100.0}),
        );
        let outcome = if declined {
            f.step(
                40..250,
                "payments",
                "payments.declined",
                "PaymentDeclined",
                json!({"order_id": order, "amount": amount, "reason": "insufficient funds"}),
                "warn",
                "payment declined",
            )
            .step(
                20..120,
                "orders",
                "orders.cancelled",
                "OrderCancelled",
                o.clone(),
                "info",
                "order cancelled: payment declined",
            );
            Outcome::Compensated
        } else {
            let mut paid = json!({"order_id": order, "amount": amount});
            if v2 {
                paid["currency"] = json!("EUR");
            }
            f.step(
                40..250,
                "payments",
                "payments.authorised",
                "PaymentAuthorised",
                paid,
                "info",
                "payment authorised",
            );
            if no_stock {
                f.step(
                    30..200,
                    "inventory",
                    "inventory.out_of_stock",
                    "OutOfStock",
                    json!({"order_id": order, "items": items}),
                    "error",
                    "out of stock",
                )
                .step(
                    30..200,
                    "payments",
                    "payments.refunded",
                    "PaymentRefunded",
                    json!({"order_id": order, "amount": amount}),
                    "info",
                    "payment refunded",
                )
                .step(
                    20..120,
                    "orders",
                    "orders.cancelled",
                    "OrderCancelled",
                    o.clone(),
                    "info",
                    "order cancelled: out of stock",
                );
                Outcome::Compensated
            } else {
                f.step(
                    30..200,
                    "inventory",
                    "inventory.reserved",
                    "StockReserved",
                    json!({"order_id": order, "items": items}),
                    "info",
                    "stock reserved",
                );
                if stall {
                    Outcome::Stalled
                } else {
                    f.step(
                        50..400,
                        "shipping",
                        "shipping.scheduled",
                        "ShipmentScheduled",
                        o.clone(),
                        "info",
                        "shipment scheduled",
                    )
                    .step(
                        20..120,
                        "orders",
                        "orders.completed",
                        "OrderCompleted",
                        o,
                        "info",
                        "order completed",
                    );
                    Outcome::Completed
                }
            }
        };
        Script {
            correlation: Some(f.correlation.clone()),
            outcome: Some(outcome),
            messages: f.messages,
        }
    }

    fn fanout(&mut self, start_ms: u64) -> Script {
        let bounce = self.rng.f64() < self.stall_share;
        let user = format!("u-{:05}", self.rng.u32(..100_000));
        let mut f = self.flow("usr", start_ms);
        let u = json!({"user_id": user});
        f.step(
            0..1,
            "users",
            "users.registered",
            "UserRegistered",
            json!({"user_id": user, "plan": "free"}),
            "info",
            "user registered",
        );
        // The three consumers each react to the registration itself.
        let registered = f.cause.clone();
        let t0 = f.t;
        let consumers: [(&str, &str, &str, &str); 3] = [
            (
                "email",
                "email.welcome_sent",
                "WelcomeEmailSent",
                "welcome email sent",
            ),
            (
                "analytics",
                "analytics.user_tracked",
                "UserTracked",
                "user tracked",
            ),
            (
                "crm",
                "crm.contact_created",
                "ContactCreated",
                "contact created",
            ),
        ];
        let mut last = t0;
        for (i, (service, subject, kind, log)) in consumers.into_iter().enumerate() {
            f.t = t0;
            f.cause = registered.clone();
            if i == 0 && bounce {
                f.step(
                    20..200,
                    service,
                    "email.bounced",
                    "EmailBounced",
                    u.clone(),
                    "error",
                    "welcome email bounced",
                );
            } else {
                f.step(20..300, service, subject, kind, u.clone(), "info", log);
            }
            last = last.max(f.t);
        }
        f.t = last;
        let outcome = if bounce {
            Outcome::Stalled
        } else {
            f.step(
                20..100,
                "users",
                "users.onboarding.completed",
                "OnboardingCompleted",
                u,
                "info",
                "onboarding completed",
            );
            Outcome::Completed
        };
        f.messages.sort_by_key(|m| m.delay_ms);
        Script {
            correlation: Some(f.correlation.clone()),
            outcome: Some(outcome),
            messages: f.messages,
        }
    }

    fn account(&mut self, start_ms: u64) -> Script {
        self.n += 1;
        let open = self.accounts.len() < 5 || (self.accounts.len() < 40 && self.rng.u8(..10) == 0);
        let (subject, kind, account, amount) = if open {
            let id = format!("acc-{:04}", self.accounts.len() + 1);
            self.accounts.push((id.clone(), 0, false));
            (format!("accounts.{id}.opened"), "AccountOpened", id, 0)
        } else {
            let i = self.rng.usize(..self.accounts.len());
            let roll = self.rng.u8(..100);
            let (id, balance, frozen) = &mut self.accounts[i];
            if *frozen || roll < 1 {
                *frozen = true;
                (
                    format!("accounts.{id}.frozen"),
                    "AccountFrozen",
                    id.clone(),
                    0,
                )
            } else if roll < 60 || *balance < 100 {
                let amount = i64::from(self.rng.u32(10..1_000));
                *balance += amount;
                (
                    format!("accounts.{id}.deposited"),
                    "MoneyDeposited",
                    id.clone(),
                    amount,
                )
            } else {
                let amount = self.rng.i64(1..=*balance);
                *balance -= amount;
                (
                    format!("accounts.{id}.withdrawn"),
                    "MoneyWithdrawn",
                    id.clone(),
                    -amount,
                )
            }
        };
        let msg_id = format!("acct-{}", self.n);
        Script {
            correlation: None,
            outcome: None,
            messages: vec![Message {
                delay_ms: 0,
                subject,
                headers: vec![
                    ("Nats-Msg-Id".to_string(), msg_id),
                    ("Event-Type".to_string(), kind.to_string()),
                ],
                payload: json!({
                    "type": kind,
                    "service": "accounts",
                    "account": account,
                    "amount": amount,
                    "ts": start_ms,
                })
                .to_string(),
                reply: None,
            }],
        }
    }

    /// The read model's extra lag at `now_ms`: none most of the time; for
    /// 20 s of every 2 min it grows by 150 ms a second (an incident).
    pub fn cqrs_backlog_ms(now_ms: u64) -> u64 {
        let phase = (now_ms / 1_000) % 120;
        if (90..110).contains(&phase) {
            (phase - 90) * 150
        } else {
            0
        }
    }

    fn cqrs(&mut self, start_ms: u64) -> Script {
        let sku = format!("sku-{:03}", self.rng.u32(..200));
        let delta = self.rng.i32(-5..=20);
        let backlog = Scripts::cqrs_backlog_ms(start_ms);
        let mut f = self.flow("cmd", start_ms);
        f.step(
            0..1,
            "inventory-api",
            "commands.inventory.adjust",
            "AdjustStock",
            json!({"sku": sku, "delta": delta}),
            "info",
            "adjust stock accepted",
        )
        .step(
            5..30,
            "inventory",
            "events.inventory.adjusted",
            "StockAdjusted",
            json!({"sku": sku, "delta": delta}),
            "info",
            "stock adjusted",
        );
        let lag_from = 20 + backlog;
        f.step(
            lag_from..lag_from + 60,
            "inventory-view",
            "readmodel.inventory.updated",
            "StockViewUpdated",
            json!({"sku": sku}),
            if backlog > 1_500 { "warn" } else { "debug" },
            if backlog > 1_500 {
                "read model lagging"
            } else {
                "read model updated"
            },
        );
        Script {
            correlation: Some(f.correlation.clone()),
            outcome: Some(Outcome::Completed),
            messages: f.messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::flows::{FlowRules, Role};

    fn roles(script: &Script, rules: &FlowRules) -> Vec<Role> {
        script
            .messages
            .iter()
            .map(|m| rules.role(&m.subject))
            .collect()
    }

    #[test]
    fn saga_outcomes_match_their_steps_under_the_default_rules() {
        let rules = FlowRules::default();
        let mut s = Scripts::new(11);
        let mut seen = std::collections::HashSet::new();
        for i in 0..2_000 {
            let script = s.next(Scenario::Saga, 1_000 + i);
            let r = roles(&script, &rules);
            let expected = match script.outcome.expect("sagas have outcomes") {
                Outcome::Compensated => r.contains(&Role::Compensation),
                Outcome::Completed => {
                    r.contains(&Role::Completion) && !r.contains(&Role::Compensation)
                }
                Outcome::Stalled => r.iter().all(|x| *x == Role::Step),
            };
            assert!(expected, "{script:?}");
            seen.insert(format!("{:?}", script.outcome));
            // Every message belongs to the flow and is in time order.
            let corr = script.correlation.clone().expect("correlated");
            assert!(
                script
                    .messages
                    .windows(2)
                    .all(|w| w[0].delay_ms <= w[1].delay_ms)
            );
            for m in &script.messages {
                let v: Value = serde_json::from_str(&m.payload).expect("json");
                let in_header = m
                    .headers
                    .iter()
                    .any(|(k, v)| k == "Nats-Correlation-Id" && *v == corr);
                assert!(in_header || v["correlation_id"] == corr.as_str(), "{m:?}");
            }
        }
        assert_eq!(seen.len(), 3, "all three outcomes occur: {seen:?}");
    }

    #[test]
    fn fanout_reaches_three_consumers_caused_by_the_registration() {
        let mut s = Scripts::new(5);
        let script = s.next(Scenario::Fanout, 0);
        let first = &script.messages[0];
        assert_eq!(first.subject, "users.registered");
        let id = first
            .headers
            .iter()
            .find(|(k, _)| k == "Nats-Msg-Id")
            .map(|(_, v)| v.clone())
            .expect("msg id");
        let caused: Vec<&str> = script
            .messages
            .iter()
            .filter(|m| {
                m.headers
                    .iter()
                    .any(|(k, v)| k == "Causation-Id" && *v == id)
            })
            .map(|m| m.subject.split('.').next().unwrap_or(""))
            .collect();
        assert_eq!(caused.len(), 3, "{caused:?}");
        for service in ["email", "analytics", "crm"] {
            assert!(caused.contains(&service), "{caused:?}");
        }
    }

    #[test]
    fn every_saga_asks_fraud_and_the_answer_comes_to_the_inbox() {
        let mut s = Scripts::new(9);
        for i in 0..200 {
            let script = s.next(Scenario::Saga, i);
            let header = |m: &Message, name: &str| {
                m.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let asks: Vec<&Message> = script
                .messages
                .iter()
                .filter(|m| m.reply.is_some())
                .collect();
            assert_eq!(asks.len(), 1);
            let ask = asks[0];
            assert_eq!(ask.subject, "fraud.check");
            let inbox = ask.reply.clone().expect("reply");
            assert!(inbox.starts_with("_INBOX.payments."), "{inbox}");
            let answers: Vec<&Message> = script
                .messages
                .iter()
                .filter(|m| m.subject == inbox)
                .collect();
            assert_eq!(answers.len(), 1);
            let answer = answers[0];
            assert!(answer.delay_ms >= ask.delay_ms);
            assert_eq!(header(answer, "X-Service").as_deref(), Some("fraud"));
            assert_eq!(header(answer, "Causation-Id"), header(ask, "Nats-Msg-Id"));
            // What payments does next was caused by the order, not the check.
            let order = header(&script.messages[0], "Nats-Msg-Id");
            let payment = script
                .messages
                .iter()
                .find(|m| m.subject.starts_with("payments."))
                .expect("a payment step");
            assert_eq!(header(payment, "Causation-Id"), order);
        }
    }

    #[test]
    fn account_amounts_never_overdraw() {
        let mut s = Scripts::new(3);
        let mut balances: std::collections::HashMap<String, i64> = Default::default();
        for i in 0..5_000 {
            let script = s.next(Scenario::Account, i);
            let v: Value = serde_json::from_str(&script.messages[0].payload).expect("json");
            let b = balances
                .entry(v["account"].as_str().expect("account").to_string())
                .or_default();
            *b += v["amount"].as_i64().expect("amount");
            assert!(*b >= 0, "{v}");
        }
        assert!(balances.len() >= 5);
    }

    #[test]
    fn payments_v2_adds_a_currency_from_its_moment() {
        let mut s = Scripts::new(9);
        s.v2_from_ms = 1_000;
        let authorised = |s: &mut Scripts, t: u64| -> Vec<Value> {
            (0..50)
                .flat_map(|_| s.next(Scenario::Saga, t).messages)
                .filter(|m| m.subject == "payments.authorised")
                .map(|m| serde_json::from_str(&m.payload).expect("json"))
                .collect()
        };
        assert!(
            authorised(&mut s, 999)
                .iter()
                .all(|v| v.get("currency").is_none())
        );
        let after = authorised(&mut s, 1_000);
        assert!(!after.is_empty() && after.iter().all(|v| v["currency"] == "EUR"));
    }

    #[test]
    fn cqrs_lag_grows_during_the_incident() {
        assert_eq!(Scripts::cqrs_backlog_ms(10_000), 0);
        assert_eq!(Scripts::cqrs_backlog_ms(100_000), 1_500);
        let mut s = Scripts::new(1);
        let lag = |s: &mut Scripts, t: u64| {
            let m = s.next(Scenario::Cqrs, t).messages;
            let last = m
                .iter()
                .rfind(|m| m.subject.starts_with("readmodel"))
                .expect("read model");
            last.delay_ms
        };
        assert!(lag(&mut s, 0) < 200);
        assert!(lag(&mut s, 109_000) > 2_500);
    }
}
