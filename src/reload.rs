//! Live policy reload: on SIGHUP and when the policy's directory changes
//! (editors that write a new file and rename it included), the file is
//! compiled in full, secrets read, and only then swapped in. An invalid
//! policy is logged and counted; the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::policy;
use crate::store::PolicyStore;
use crate::systemd::Notifier;

/// Editors and `cp` produce bursts of events; one reload per burst.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Compiles `path` and installs it. Returns the new generation.
pub async fn reload_once(path: &Path, store: &PolicyStore) -> Result<u64, policy::PolicyErrors> {
    let owned = path.to_owned();
    let compiled = tokio::task::spawn_blocking(move || policy::load_file(&owned))
        .await
        .unwrap_or_else(|_| {
            Err(policy::PolicyErrors(vec![policy::PolicyError {
                line: None,
                key: String::new(),
                message: "policy compilation stopped unexpectedly".to_owned(),
            }]))
        });
    let old = store.load();
    match compiled {
        Ok(new) => {
            if new.server != old.policy.server {
                tracing::warn!(
                    policy_generation = old.generation,
                    "the `server` section changed: it takes effect at the next restart"
                );
            }
            let hash = new.hash.clone();
            let generation = store.replace(new);
            tracing::info!(policy_generation = generation, policy_hash = %hash, "policy reloaded");
            Ok(generation)
        }
        Err(errors) => {
            store.telemetry.metrics.reload_failures.inc();
            for e in &errors.0 {
                tracing::error!(
                    policy_generation = old.generation,
                    policy_hash = %old.policy.hash,
                    line = e.line,
                    key = %e.key,
                    "reload refused, the old policy keeps serving: {}",
                    e.message
                );
            }
            Err(errors)
        }
    }
}

/// Starts reloading for the life of the server: the watcher and the SIGHUP
/// handler are in place when this returns, before the caller says READY=1,
/// so no edit made and no SIGHUP sent after that is lost (an unhandled
/// SIGHUP would kill the proxy).
pub fn spawn(watched: Option<PathBuf>, store: Arc<PolicyStore>, notifier: Option<Arc<Notifier>>) {
    let hup = hangups();
    match watched {
        Some(path) => {
            let changes = Changes::start(&path);
            drop(tokio::spawn(watch(path, store, notifier, hup, changes)));
        }
        None => drop(tokio::spawn(async move {
            let mut hup = hup;
            while let Some(h) = hup.as_mut() {
                if h.recv().await.is_none() {
                    break;
                }
                tracing::warn!("SIGHUP ignored: the built-in policy has no file to reload");
            }
        })),
    }
}

/// Reloads on SIGHUP and on changes in the policy file's directory, for the
/// life of the server; tells systemd RELOADING=1 then READY=1 around each.
/// `hup` is installed by the caller before it says READY=1, so that a SIGHUP
/// right after start reloads instead of killing the process.
async fn watch(
    path: PathBuf,
    store: Arc<PolicyStore>,
    notifier: Option<Arc<Notifier>>,
    mut hup: Option<Signal>,
    changes: Changes,
) {
    let Changes { _watcher, mut rx } = changes;
    loop {
        tokio::select! {
            got = rx.recv() => {
                if got.is_none() {
                    return;
                }
                // Let the burst settle: a rename-over or a multi-write save.
                while tokio::time::timeout(DEBOUNCE, rx.recv()).await.is_ok_and(|m| m.is_some()) {}
            }
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {}
        }
        if let Some(n) = &notifier {
            n.reloading();
        }
        let _ = reload_once(&path, &store).await;
        if let Some(n) = &notifier {
            n.ready();
        }
    }
}

/// The SIGHUP stream; `None` (logged) when it cannot be had.
fn hangups() -> Option<Signal> {
    signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e.kind(), "cannot listen for SIGHUP"))
        .ok()
}

/// Change events of the policy's directory. Started before the proxy says
/// it is ready, so that no edit made after READY=1 goes unseen.
pub struct Changes {
    _watcher: Option<notify::RecommendedWatcher>,
    rx: mpsc::Receiver<()>,
}

impl Changes {
    pub fn start(path: &Path) -> Changes {
        let (tx, rx) = mpsc::channel::<()>(16);
        Changes {
            _watcher: start_watcher(path, tx),
            rx,
        }
    }
}

/// Watches the directory, not the file: a rename-over replaces the inode a
/// file watch would follow. `None` (logged) when the platform refuses.
fn start_watcher(path: &Path, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "cannot watch the policy directory; SIGHUP still reloads"))
    .ok()?;
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .map_err(|e| tracing::warn!(error = %e, "cannot watch the policy directory; SIGHUP still reloads"))
        .ok()?;
    Some(watcher)
}
