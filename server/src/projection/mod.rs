//! Projections: pure folds over ingested events (read models, in CQRS
//! terms). Nothing here knows about tokio, NATS or sockets: a projection is
//! fed events with `apply`, told the time with `tick`, and asked for its
//! `snapshot` or for the `take_delta` since the last one. The live hub
//! (`crate::live`) owns them and drives them from one task.

pub mod counts;
