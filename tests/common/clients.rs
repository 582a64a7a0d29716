//! The real clients, curl and php, run off the async threads with a bound
//! on how long they may take.

use std::path::Path;
use std::process::Output;

/// Runs `curl -sS --max-time 10 ARGS...` off the async threads.
pub async fn curl(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(&args)
            .output()
            .expect("curl must be installed")
    })
    .await
    .unwrap()
}

/// Runs `php SCRIPT` with `env` added, bounded by 30 s.
pub async fn php(script: &Path, env: &[(&str, &str)]) -> Output {
    let script = script.to_path_buf();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg("30")
            .arg("php")
            .arg(&script)
            .envs(env)
            .output()
            .expect("php must be installed")
    })
    .await
    .unwrap()
}

/// stdout and stderr of a finished process, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
