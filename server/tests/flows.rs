//! Flows and CQRS against a real nats-server: the demo producer runs the
//! saga, fan-out and CQRS scenarios, and the dashboard's flow counts
//! (completed, compensated, stalled) equal what the producer reports it
//! generated; the CQRS view pairs every command with its read-model update.

mod common;

use app::api::{ApiError, DemoState, FlowDetail, FlowStatus, ProjectionBody, ProjectionState};
use common::*;
use eventscope::config::Config;
use eventscope::demo::producer::{DemoControl, run};
use eventscope::demo::scenarios::Scenario;
use eventscope::projection::cqrs::CqrsPair;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const STALL: Duration = Duration::from_millis(1_500);

fn flows_body(state: ProjectionState) -> (app::api::FlowCounts, Vec<app::api::FlowSummary>) {
    match state.body {
        ProjectionBody::Flows { counts, flows, .. } => (counts, flows),
        other => panic!("not flows: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_statuses_equal_what_the_producer_generated() {
    let Harness {
        nats,
        running,
        mut ws,
        mut mirror,
        probes,
        ..
    } = Harness::start(
        |url| {
            let mut c = Config::attach(url, &[">"]);
            c.flows.stall_after = STALL;
            c.cqrs = vec![CqrsPair::demo()];
            c
        },
        "flows.probe",
    )
    .await;
    let addr = running.addr;

    let rates = [
        (Scenario::Saga, 40.0),
        (Scenario::Fanout, 20.0),
        (Scenario::Cqrs, 30.0),
    ]
    .into_iter()
    .collect();
    let control = Arc::new(DemoControl::new(&rates));
    let stop = CancellationToken::new();
    let producer = tokio::spawn(run(
        publisher(&nats.url()).await,
        Arc::clone(&control),
        42,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in [Scenario::Saga, Scenario::Fanout, Scenario::Cqrs] {
        control.set_rate(s, 0.0);
    }
    // Every flow under way finishes publishing, then the log has it all.
    within("the producer's flows to finish", async {
        while control.snapshot().pending > 0 || control.snapshot().scenarios.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report: DemoState = control.snapshot();
    let published: u64 = report.scenarios.iter().map(|s| s.published).sum();
    mirror
        .until(&mut ws, "every demo message stored", |c| {
            c.health.store_events >= probes + published
        })
        .await;
    // Let the stall timeout pass for the flows written to stall.
    tokio::time::sleep(STALL + Duration::from_millis(300)).await;

    let sum =
        |f: fn(&app::api::DemoScenario) -> u64| -> u64 { report.scenarios.iter().map(f).sum() };
    let (started, completed, compensated, stalled) = (
        sum(|s| s.started),
        sum(|s| s.completed),
        sum(|s| s.compensated),
        sum(|s| s.stalled),
    );
    assert!(
        started >= 100 && compensated > 0 && stalled > 0,
        "{report:?}"
    );

    let (status, live): (u16, ProjectionState) =
        json(addr, "/api/v1/projections/flows?window=1m").await;
    assert_eq!(status, 200);
    let at_ms = live.at_ms;
    let (counts, list) = flows_body(live);
    assert_eq!(
        (
            counts.started,
            counts.completed,
            counts.compensated,
            counts.stalled,
            counts.running
        ),
        (started, completed, compensated, stalled, 0),
        "dashboard {counts:?} vs producer {report:?}"
    );

    // Time travel folds flows too: rebuilt as of now, the same counts.
    let (status, past): (u16, ProjectionState) = json(
        addr,
        &format!("/api/v1/projections/flows?window=1m&at={}", rfc3339(at_ms)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(flows_body(past).0, counts);

    // One compensated saga, step by step.
    let comp = list
        .iter()
        .find(|f| f.status == FlowStatus::Compensated && f.id.starts_with("ord-"))
        .expect("a compensated saga among the recent flows");
    let (status, detail): (u16, FlowDetail) =
        json(addr, &format!("/api/v1/flows/{}", comp.id)).await;
    assert_eq!(status, 200);
    assert_eq!(detail.steps[0].subject, "orders.placed");
    assert_eq!(detail.steps[0].gap_ms, 0);
    assert!(detail.steps.iter().any(|s| s.role == "compensation"));
    assert!(
        matches!(
            comp.stopped_at.as_deref(),
            Some(
                "payments.declined" | "inventory.out_of_stock" | "logs.payments" | "logs.inventory"
            )
        ),
        "{comp:?}"
    );
    assert_eq!(
        detail.steps.iter().map(|s| s.gap_ms).sum::<i64>(),
        comp.last_ms - comp.started_ms
    );
    let (status, err): (u16, ApiError) = json(addr, "/api/v1/flows/no-such-flow").await;
    assert_eq!(status, 404);
    assert!(err.error.contains("no-such-flow"), "{}", err.error);

    // CQRS: every command met its read-model update.
    let cqrs = report
        .scenarios
        .iter()
        .find(|s| s.name == "cqrs")
        .expect("cqrs reported");
    let (_, state): (u16, ProjectionState) = json(addr, "/api/v1/projections/cqrs?window=1m").await;
    let ProjectionBody::Cqrs { pairs } = state.body else {
        panic!("not cqrs: {:?}", state.body)
    };
    let pair = &pairs[0];
    assert_eq!(pair.commands.count, cqrs.started);
    assert_eq!(pair.updates.count, cqrs.started);
    assert_eq!((pair.lag.count, pair.waiting), (cqrs.started, 0));
    assert!(
        pair.lag.p50_ms >= 20.0 && pair.lag.p99_ms >= pair.lag.p50_ms,
        "{pair:?}"
    );

    stop.cancel();
    producer.await.expect("producer stops");
    running.stop().await;
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .replace('+', "%2B")
}
