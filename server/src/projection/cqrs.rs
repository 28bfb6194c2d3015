//! The CQRS view (PRODUCT.md F8): a command subject beside the events it
//! produces and the read model updated from them, with the lag from a
//! command to its read-model update (matched by correlation id through
//! [`super::flows`]). Pairs come from the config file (`[[cqrs]]`); demo
//! mode supplies one for its own inventory commands when none is given.

use super::builtin::Projections;
use crate::event::subject_matches;
use crate::store::Store;
use app::api::{CqrsState, LagStats, ProjectionBody, Rate, Window};
use foldhash::HashMap;

/// One `[[cqrs]]` entry.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CqrsPair {
    /// A name to show.
    pub name: String,
    /// Subject pattern of the commands (`commands.inventory.>`).
    pub command: String,
    /// Subject pattern of the events they produce.
    pub events: String,
    /// Subject pattern of the read model's updates.
    pub read_model: String,
}

impl CqrsPair {
    /// The pair demo mode watches.
    pub fn demo() -> Self {
        CqrsPair {
            name: "inventory".to_string(),
            command: "commands.inventory.>".to_string(),
            events: "events.inventory.>".to_string(),
            read_model: "readmodel.inventory.>".to_string(),
        }
    }
}

/// Subject ids a pattern takes, worked out once per snapshot.
struct Matcher<'a> {
    store: &'a Store,
    pattern: &'a str,
    seen: std::cell::RefCell<HashMap<u32, bool>>,
}

impl Matcher<'_> {
    fn takes(&self, id: u32) -> bool {
        *self.seen.borrow_mut().entry(id).or_insert_with(|| {
            self.store
                .subjects()
                .name(id)
                .is_some_and(|s| subject_matches(self.pattern, s))
        })
    }
}

fn quantile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64
}

/// The `cqrs` projection over `window` as of `now_ms`.
pub fn snapshot(
    p: &Projections,
    store: &Store,
    pairs: &[CqrsPair],
    window: Window,
    now_ms: i64,
) -> ProjectionBody {
    let since = now_ms - window.ms();
    let per_sec = |count: u64| Rate {
        count,
        per_sec: count as f64 * 1_000.0 / window.ms() as f64,
    };
    let states = pairs
        .iter()
        .map(|pair| {
            let m = |pattern| Matcher {
                store,
                pattern,
                seen: Default::default(),
            };
            let (command, events, read_model) = (
                m(pair.command.as_str()),
                m(pair.events.as_str()),
                m(pair.read_model.as_str()),
            );
            let lags = p.flows().lags(
                |id| command.takes(id),
                |id| read_model.takes(id),
                since,
                now_ms,
            );
            let waiting = lags.iter().filter(|l| l.is_none()).count() as u64;
            let mut done: Vec<i64> = lags.into_iter().flatten().collect();
            done.sort_unstable();
            CqrsState {
                name: pair.name.clone(),
                command_subject: pair.command.clone(),
                event_subject: pair.events.clone(),
                read_model_subject: pair.read_model.clone(),
                commands: per_sec(p.subject_count(|id| command.takes(id), window, now_ms)),
                events: per_sec(p.subject_count(|id| events.takes(id), window, now_ms)),
                updates: per_sec(p.subject_count(|id| read_model.takes(id), window, now_ms)),
                lag: LagStats {
                    count: done.len() as u64,
                    p50_ms: quantile(&done, 0.5),
                    p99_ms: quantile(&done, 0.99),
                    max_ms: done.last().copied().unwrap_or(0) as f64,
                },
                waiting,
            }
        })
        .collect();
    ProjectionBody::Cqrs { pairs: states }
}
