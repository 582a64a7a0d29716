//! Live policy reload. SIGHUP reloads at once, always. A change to a file
//! the policy reads (the policy itself and its `file:` secrets; editors that
//! write a new file and rename it included) reloads after a short quiet
//! moment, or at the latest after [`MAX_WAIT`], so a directory that never
//! goes quiet cannot starve it; changes to other files are ignored. A policy
//! is compiled in full, secrets read, and only then swapped in; an invalid one
//! is logged and counted, and the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::Watcher;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::policy;
use crate::store::PolicyStore;
use crate::systemd::Notifier;

/// Editors and `cp` produce bursts of events: one reload once a burst is
/// quiet this long...
const QUIET: Duration = Duration::from_millis(150);
/// ...or at the latest this long after its first event.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

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
            // Events name absolute paths: compare like with like.
            let path = std::path::absolute(&path).unwrap_or(path);
            let changes = Changes::start(files_read(&path, &store.load().policy));
            drop(tokio::spawn(watch(path, store, notifier, hup, changes)));
        }
        None => drop(tokio::spawn(async move {
            let mut hup = hup;
            loop {
                next_hangup(&mut hup).await;
                tracing::warn!("SIGHUP ignored: the built-in policy has no file to reload");
            }
        })),
    }
}

/// The files a policy is read from: the policy file and its `file:` secrets.
fn files_read(path: &Path, policy: &policy::Policy) -> Vec<PathBuf> {
    let mut files = vec![path.to_owned()];
    for d in &policy.destinations {
        if let Some(policy::secret::Source::File(f)) = d.credential.as_ref().map(|c| &c.source) {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
    }
    files
}

/// A burst of change events not yet reloaded.
#[derive(Debug, Clone, Copy)]
struct Burst {
    first: Instant,
    last: Instant,
}

impl Burst {
    fn due(self) -> Instant {
        (self.last + QUIET).min(self.first + MAX_WAIT)
    }
}

/// Reloads on SIGHUP (at once) and on changes to the files the policy reads
/// (debounced), for the life of the server; tells systemd RELOADING=1 then
/// READY=1 around each. After each reload the watch follows the files the
/// policy in force reads.
async fn watch(
    path: PathBuf,
    store: Arc<PolicyStore>,
    notifier: Option<Arc<Notifier>>,
    mut hup: Option<Signal>,
    mut changes: Changes,
) {
    let mut burst: Option<Burst> = None;
    loop {
        let due = burst.map(Burst::due);
        tokio::select! {
            got = changes.rx.recv(), if changes.open => {
                match got {
                    Some(()) => {
                        let now = Instant::now();
                        burst = Some(Burst { first: burst.map_or(now, |b| b.first), last: now });
                    }
                    // The watcher is gone: SIGHUP still reloads.
                    None => changes.open = false,
                }
                continue;
            }
            () = next_hangup(&mut hup) => {}
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {}
        }
        // A reload reads every file afresh: it covers the burst so far.
        burst = None;
        if let Some(n) = &notifier {
            n.reloading();
        }
        let _ = reload_once(&path, &store).await;
        if let Some(n) = &notifier {
            n.ready();
        }
        changes.follow(files_read(&path, &store.load().policy));
    }
}

/// The next SIGHUP; never, when there is no SIGHUP stream.
async fn next_hangup(hup: &mut Option<Signal>) {
    if let Some(h) = hup.as_mut() {
        if h.recv().await.is_some() {
            return;
        }
    }
    *hup = None;
    std::future::pending().await
}

/// The SIGHUP stream; `None` (logged) when it cannot be had.
fn hangups() -> Option<Signal> {
    signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e.kind(), "cannot listen for SIGHUP"))
        .ok()
}

/// Whether a change event is about one of `files`. A rename-over names both
/// the temporary file and the policy: the policy's name is enough.
fn counts(event: &notify::Event, files: &[PathBuf]) -> bool {
    !event.kind.is_access() && event.paths.iter().any(|p| files.contains(p))
}

/// Change events for the files the policy reads. Started before the proxy
/// says it is ready, so that no edit made after READY=1 goes unseen.
struct Changes {
    watcher: Option<notify::RecommendedWatcher>,
    dirs: Vec<PathBuf>,
    /// The files whose events count; read by the watcher's thread.
    files: Arc<ArcSwap<Vec<PathBuf>>>,
    rx: mpsc::Receiver<()>,
    open: bool,
}

impl Changes {
    fn start(files: Vec<PathBuf>) -> Changes {
        let (tx, rx) = mpsc::channel::<()>(16);
        let filter = Arc::new(ArcSwap::from_pointee(Vec::<PathBuf>::new()));
        let seen = filter.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| counts(&e, &seen.load())) {
                let _ = tx.try_send(());
            }
        })
        .map_err(|e| tracing::warn!(error = %e, "cannot watch the policy's files; SIGHUP still reloads"))
        .ok();
        let mut changes = Changes {
            watcher,
            dirs: Vec::new(),
            files: filter,
            rx,
            open: true,
        };
        changes.follow(files);
        changes
    }

    /// Watches the directories of `files`, not the files: a rename-over
    /// replaces the inode a file watch would follow. Only events naming one
    /// of `files` count.
    fn follow(&mut self, files: Vec<PathBuf>) {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in &files {
            let dir = f
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_owned());
            }
        }
        self.files.store(Arc::new(files));
        let Some(watcher) = self.watcher.as_mut() else { return };
        for gone in self.dirs.iter().filter(|d| !dirs.contains(d)) {
            let _ = watcher.unwatch(gone);
        }
        for new in dirs.iter().filter(|d| !self.dirs.contains(d)) {
            if let Err(e) = watcher.watch(new, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(error = %e, "cannot watch a directory of the policy's files; SIGHUP still reloads");
            }
        }
        self.dirs = dirs;
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, CreateKind, DataChange, EventKind, ModifyKind, RenameMode};

    #[test]
    fn only_events_naming_a_file_the_policy_reads_count() {
        let files = vec![super::PathBuf::from("/etc/eg/policy.yaml"), "/run/keys/shipper".into()];
        let event = |kind, paths: &[&str]| notify::Event {
            kind,
            paths: paths.iter().map(Into::into).collect(),
            attrs: Default::default(),
        };
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let cases = [
            ("policy written", event(write, &["/etc/eg/policy.yaml"]), true),
            ("secret written", event(write, &["/run/keys/shipper"]), true),
            (
                "renamed over the policy",
                event(renamed, &["/etc/eg/.policy.swp", "/etc/eg/policy.yaml"]),
                true,
            ),
            (
                "temporary file created",
                event(EventKind::Create(CreateKind::File), &["/etc/eg/.policy.swp"]),
                false,
            ),
            ("a log beside the policy", event(write, &["/etc/eg/shop.log"]), false),
            (
                "policy read",
                event(EventKind::Access(AccessKind::Any), &["/etc/eg/policy.yaml"]),
                false,
            ),
        ];
        for (name, e, want) in cases {
            assert_eq!(super::counts(&e, &files), want, "{name}");
        }
    }
}
