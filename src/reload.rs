//! Live policy reload. SIGHUP reloads at once, always. A change to a file
//! the policy reads (the policy itself and its `file:` secrets; editors that
//! write a new file and rename it included) reloads after a short quiet
//! moment, or at the latest after [`MAX_WAIT`], so a directory that never
//! goes quiet cannot starve it; changes to other files are ignored. A policy
//! is compiled in full, secrets read, and only then swapped in; an invalid one
//! is logged and counted, and the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    // The new policy's dialers keep the proxy's own side: its addresses and connection count.
    let side = store.load().policy.side.clone();
    let compiled = tokio::task::spawn_blocking(move || policy::load_file_with(&owned, &side))
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
            if new.server.differs_at_start(&old.policy.server) {
                tracing::warn!(
                    policy_generation = old.generation,
                    "a `server` key read only at start changed (listen, unix_socket, admin, audit_*, shared_limits): it takes effect at the next restart"
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

/// The files a policy is read from: the policy file, its `file:` secrets
/// and its `schema:` files.
fn files_read(path: &Path, policy: &policy::Policy) -> Vec<PathBuf> {
    let mut files = vec![path.to_owned()];
    for d in &policy.destinations {
        let sources = d
            .credential
            .iter()
            .flat_map(|c| std::iter::once(&c.source).chain(&c.more_sources));
        for source in sources {
            if let policy::secret::Source::File(f) = source {
                if !files.contains(f) {
                    files.push(f.clone());
                }
            }
        }
    }
    for s in policy::schema::every(&policy.destinations) {
        // Events name absolute paths (a policy given by a relative path reads its schemas relative too).
        let f = std::path::absolute(&s.path).unwrap_or_else(|_| s.path.clone());
        if !files.contains(&f) {
            files.push(f);
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
        // Taken before the files are read: a change made while they are read still counts.
        let before = changes.files.load().now();
        let _ = reload_once(&path, &store).await;
        if let Some(n) = &notifier {
            n.ready();
        }
        changes.follow(files_read(&path, &store.load().policy), &before);
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

/// What a file looked like: new content, or another file swapped in under
/// its name (a rename-over, a symlink pointed elsewhere), changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

type Stamped = Vec<(PathBuf, Option<Stamp>)>;

/// The files a policy reads, each with what it looked like when last seen.
#[derive(Debug, Default)]
struct Watched {
    seen: Mutex<Stamped>,
}

impl Watched {
    /// `files`, stamped as in `before` where it has them (taken before they
    /// were read), otherwise now.
    fn new(files: Vec<PathBuf>, before: &Stamped) -> Watched {
        let seen = files
            .into_iter()
            .map(|f| {
                let s = before
                    .iter()
                    .find(|(b, _)| *b == f)
                    .map_or_else(|| stamp(&f), |(_, s)| *s);
                (f, s)
            })
            .collect();
        Watched { seen: Mutex::new(seen) }
    }

    /// The files, stamped now.
    fn now(&self) -> Stamped {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.iter().map(|(f, _)| (f.clone(), stamp(f))).collect()
    }

    /// Whether a change event in a watched directory concerns a file the
    /// policy reads: it names one (a rename-over names the temporary file and
    /// the policy), or one is no longer what it was (a symlink swapped above
    /// it, as Kubernetes updates mounted secrets). Any other file's change,
    /// and any read, does not count.
    fn counts(&self, event: &notify::Event) -> bool {
        if event.kind.is_access() {
            return false;
        }
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let named = event.paths.iter().any(|p| seen.iter().any(|(f, _)| f == p));
        let mut changed = false;
        for (f, s) in seen.iter_mut() {
            let now = stamp(f);
            changed |= now != *s;
            *s = now;
        }
        named || changed
    }
}

/// Change events for the files the policy reads. Started before the proxy
/// says it is ready, so that no edit made after READY=1 goes unseen.
struct Changes {
    watcher: Option<notify::RecommendedWatcher>,
    dirs: Vec<PathBuf>,
    /// The files whose changes count; read by the watcher's thread.
    files: Arc<ArcSwap<Watched>>,
    rx: mpsc::Receiver<()>,
    open: bool,
}

impl Changes {
    fn start(files: Vec<PathBuf>) -> Changes {
        let (tx, rx) = mpsc::channel::<()>(16);
        let filter = Arc::new(ArcSwap::from_pointee(Watched::default()));
        let seen = filter.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| seen.load().counts(&e)) {
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
        changes.follow(files, &Vec::new());
        changes
    }

    /// Watches the directories of `files`, not the files: a rename-over
    /// replaces the inode a file watch would follow. Only changes to `files`
    /// count (see [`Watched::counts`]).
    fn follow(&mut self, files: Vec<PathBuf>, before: &Stamped) {
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
        self.files.store(Arc::new(Watched::new(files, before)));
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
    use super::Watched;
    use notify::event::{AccessKind, CreateKind, DataChange, EventKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, paths: &[&std::path::Path]) -> notify::Event {
        notify::Event {
            kind,
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            attrs: Default::default(),
        }
    }

    #[test]
    fn only_changes_to_a_file_the_policy_reads_count() {
        let dir = tempfile::tempdir().unwrap();
        let (policy, log, tmp) = (
            dir.path().join("policy.yaml"),
            dir.path().join("shop.log"),
            dir.path().join(".p.swp"),
        );
        std::fs::write(&policy, "v1").unwrap();
        let w = Watched::new(vec![policy.clone()], &Vec::new());
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        std::fs::write(&log, "noise").unwrap();
        assert!(!w.counts(&event(write, &[&log])), "a log beside the policy");
        std::fs::write(&tmp, "v2").unwrap();
        assert!(
            !w.counts(&event(EventKind::Create(CreateKind::File), &[&tmp])),
            "a temporary file"
        );
        assert!(
            !w.counts(&event(EventKind::Access(AccessKind::Any), &[&policy])),
            "the policy read"
        );
        std::fs::rename(&tmp, &policy).unwrap();
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(w.counts(&event(renamed, &[&tmp, &policy])), "renamed over the policy");
        assert!(w.counts(&event(write, &[&policy])), "the policy named");
    }

    #[test]
    fn a_symlink_swapped_above_a_secret_counts() {
        // How Kubernetes updates a mounted secret: `key -> ..data/key`, and `..data` is re-pointed.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (v, text) in [("v1", "k-1"), ("v2", "k-2")] {
            std::fs::create_dir(d.join(v)).unwrap();
            std::fs::write(d.join(v).join("key"), text).unwrap();
        }
        std::os::unix::fs::symlink("v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/key", d.join("key")).unwrap();
        let w = Watched::new(vec![d.join("key")], &Vec::new());
        std::os::unix::fs::symlink("v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(w.counts(&event(renamed, &[&d.join("..data_tmp"), &d.join("..data")])));
        assert!(
            !w.counts(&event(renamed, &[&d.join("..data_tmp"), &d.join("..data")])),
            "once"
        );
    }
}
