//! The `egress-guard` command: parse the command line, set up logging, load
//! and validate the policy before binding anything (exit 64 on a bad one),
//! then hand over to the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use egress_guard::telemetry::audit_file::AuditFile;
use egress_guard::telemetry::log_stamp::{LogStamp, Stamped};
use egress_guard::{cli, policy, reload, server, store::PolicyStore, systemd, telemetry::log_sink};

#[derive(Parser)]
#[command(
    name = "egress-guard",
    version,
    about = "A forward proxy that lets a shop reach only named partners"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the proxy.
    Run {
        /// The policy file. When the default path does not exist, the
        /// built-in example policy (the repo's policy.yaml) is served.
        #[arg(long, default_value = "/etc/egress-guard/policy.yaml")]
        policy: PathBuf,
    },
    /// Validate a policy: exit 0 and a summary, or exit 1 and every error.
    Check { file: PathBuf },
    /// Dry run: the decision and exactly what would be sent upstream.
    Explain {
        #[arg(long, default_value = "/etc/egress-guard/policy.yaml")]
        policy: PathBuf,
        #[arg(long)]
        method: String,
        #[arg(long)]
        url: String,
        /// A file with the request body, or `-` for standard input.
        #[arg(long)]
        body: Option<String>,
        /// Request headers as `Name: value` (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
    /// The hash-chained audit file.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The local CA for intercepting https:// requests.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the chain of an audit file, or of rotated files given oldest
    /// first: exit 0 if intact, 1 and the first bad line otherwise.
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The chain's key as a secret source (`env:NAME`, `file:/path`,
        /// `credential:NAME`); default: the policy's `server.audit_key`.
        #[arg(long, conflicts_with = "policy")]
        key: Option<String>,
        /// The policy whose `server.audit_key` holds the key.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// Accept `chain_break` records (each with the one damaged line before
        /// it), report them, and check on from each break.
        #[arg(long)]
        allow_breaks: bool,
        /// A chain head logged earlier (`audit chain head`, `audit_chain=`):
        /// fail unless a line with this chain is in the files, which shows
        /// lines cut from the end.
        #[arg(long)]
        anchor: Option<String>,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Make ca.pem and ca.key (0600), name-constrained to the intercepted hosts.
    Init {
        /// Where to write ca.pem and ca.key.
        #[arg(long)]
        dir: PathBuf,
        /// Permit the hosts of this policy's `intercept: true` destinations.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Permit this host too (repeatable).
        #[arg(long)]
        permit: Vec<String>,
        /// Replace an existing CA: every client must then trust the new one.
        #[arg(long)]
        force: bool,
    },
}

/// EX_CONFIG-style exit for a policy that does not validate at start.
const EXIT_BAD_POLICY: u8 = 64;
const DEFAULT_POLICY: &str = "/etc/egress-guard/policy.yaml";

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Check { file } => cli::check::run(&file),
        Command::Explain {
            policy,
            method,
            url,
            body,
            headers,
        } => cli::explain::run(&policy, &method, &url, body.as_deref(), &headers),
        Command::Run { policy } => run(policy),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    files,
                    key,
                    policy,
                    allow_breaks,
                    anchor,
                },
        } => {
            let from = match &key {
                Some(k) => cli::audit::KeyFrom::Source(k),
                None => cli::audit::KeyFrom::Policy(&policy),
            };
            let opts = cli::audit::Options {
                allow_breaks,
                anchor: anchor.as_deref(),
            };
            cli::audit::verify(&files, from, &opts)
        }
        Command::Ca {
            command:
                CaCommand::Init {
                    dir,
                    policy,
                    permit,
                    force,
                },
        } => cli::ca::init(&dir, policy.as_deref(), &permit, force),
    }
}

fn run(path: PathBuf) -> ExitCode {
    let stamp = Arc::new(LogStamp::default());
    let _log_guard = init_tracing(stamp.clone());
    // No file at the default path: serve the built-in example (nothing to watch).
    let builtin = path.as_os_str() == DEFAULT_POLICY && !path.exists();
    let loaded = if builtin {
        tracing::warn!("no policy at the default path: serving the built-in example policy");
        policy::compile(policy::EMBEDDED_DEFAULT)
    } else {
        policy::load_file(&path)
    };
    let watched = (!builtin).then_some(path);
    let policy = match loaded {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!(line = e.line, key = %e.key, "policy error: {}", e.message);
            }
            return ExitCode::from(EXIT_BAD_POLICY);
        }
    };
    // On one core (systemd's CPUAffinity=, taskset) a multi-threaded runtime
    // only adds cross-thread wake-ups; the single-threaded one does the same work.
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_core {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(policy, watched, stamp)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "proxy stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(policy: policy::Policy, watched: Option<PathBuf>, stamp: Arc<LogStamp>) -> std::io::Result<()> {
    tracing::info!(policy_generation = 1, policy_hash = %policy.hash, "policy loaded");
    // The store first: from here on every log line names the policy.
    let store = Arc::new(PolicyStore::new(policy).stamping(stamp));
    let server_cfg = store.load().policy.server.clone();
    let listeners = match systemd::activated_listeners()? {
        // systemd holds the proxy sockets; the admin port is ours to bind.
        Some(l) => server::Listeners {
            admin: server::bind_admin(&server_cfg).await?,
            ..l
        },
        None => server::bind(&server_cfg).await?,
    };
    if let Some(cfg) = &server_cfg.audit {
        let metric = store.telemetry.metrics.audit_file_dropped.clone();
        let file = AuditFile::start(cfg, metric)
            .map_err(|e| std::io::Error::new(e.kind(), format!("audit file {}: {e}", cfg.path.display())))?;
        let _ = store.telemetry.audit_file.set(file);
    }
    let notifier = systemd::Notifier::from_env().map(Arc::new);
    reload::spawn(watched, store.clone(), notifier.clone());
    egress_guard::telemetry::key_age::spawn(store.clone());
    tracing::info!("ready");
    if let Some(n) = &notifier {
        n.ready();
    }
    let shutdown = async move {
        shutdown_signal().await;
        if let Some(n) = &notifier {
            n.stopping();
        }
    };
    let served = server::run(listeners, store.clone(), shutdown).await;
    // Drained: every answered request's record is queued; write and fsync them.
    if let Some(file) = store.telemetry.audit_file.get() {
        // Blocking is fine here: nothing else is served any more.
        file.close();
    }
    served
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// JSON lines when stderr is not a terminal (journald, files), readable text when it is.
fn init_tracing(stamp: Arc<LogStamp>) -> log_sink::Guard {
    let (writer, guard) = log_sink::batch_writer(std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_from_env("EGRESS_GUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let writer_for_audit = writer.clone();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    if std::io::stderr().is_terminal() {
        builder
            .event_format(Stamped::new(tracing_subscriber::fmt::format(), stamp))
            .init();
    } else {
        let json = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false);
        builder.json().event_format(Stamped::new(json, stamp)).init();
        // The audit line is written by hand in this layout (telemetry::audit_json).
        log_sink::write_directly(&writer_for_audit);
    }
    guard
}
