//! Where costly reads of the log run: event queries, tail views' first
//! pages and time-travel rebuilds. A pool of half the cores (at least one)
//! at a lower CPU priority than ingest and the live hub (nice 10 on
//! Linux), so a storm of such reads takes what the cores have spare and
//! slows itself, not ingest: measured with the load tool's hostile step
//! (docs/PERFORMANCE.md), four reads at normal priority on two cores left
//! ingest a third of the CPU it needed.

use std::sync::OnceLock;

/// How much lower the pool's threads run (Linux `nice`; 0 is normal).
const NICE: i32 = 10;

fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        rayon::ThreadPoolBuilder::new()
            .num_threads((cores / 2).max(1))
            .thread_name(|i| format!("eventscope-reads-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .expect("the reads pool starts")
    })
}

/// Lowers the calling thread's CPU priority (its own `nice`, which Linux
/// keeps per thread).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // reason: setpriority and gettid have no safe wrapper
fn lower_priority() {
    // SAFETY: both calls only read or set this thread's scheduling value.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE) != 0 {
            tracing::debug!("could not lower the reads pool's priority");
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs `f` on the reads pool and waits for it; `None` if it panicked.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool().spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}
