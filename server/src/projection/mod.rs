//! Projections: pure folds over stored events (read models, in CQRS terms).
//! Nothing here knows about tokio, NATS or sockets: a projection is fed
//! events with `apply` and asked for its state as of a moment. The live hub
//! (`crate::live`) owns the live instances; [`timetravel`] rebuilds past
//! states from checkpoints and the event log.

pub mod builtin;
pub mod counts;
pub mod cqrs;
pub mod custom;
pub mod flows;
pub mod partition;
pub mod schema;
pub mod timetravel;
pub mod topology;
pub mod weight;
pub mod window;
