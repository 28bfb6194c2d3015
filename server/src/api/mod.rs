//! HTTP: health probes and the v1 JSON API.

pub mod error;
pub mod health;
pub mod lenient;
pub mod metrics;
pub mod reads;
pub mod v1;
