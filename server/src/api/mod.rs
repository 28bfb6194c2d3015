//! HTTP API: health probes now; the v1 JSON API joins here.

pub mod health;
