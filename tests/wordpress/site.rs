//! A stock WordPress for the tests: Debian's `wordpress` package (ABSPATH
//! /usr/share/wordpress) with a generated wp-config.php and its own
//! wp-content in a temp dir, on a throwaway MariaDB that listens only on a
//! unix socket in that dir. PHP CLI scripts `require` the config: no web server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::common::{describe, php, wait_until, DEADLINE};

/// Where Debian's `wordpress` package puts WordPress.
const ABSPATH: &str = "/usr/share/wordpress/";

/// A MariaDB server of its own: data dir and socket in a temp dir, no TCP
/// (`skip-networking`), killed when dropped.
pub struct MariaDb {
    child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl MariaDb {
    pub async fn start() -> MariaDb {
        let dir = tempfile::Builder::new().prefix("eg-mariadb-").tempdir().unwrap();
        let data = dir.path().join("data");
        let socket = dir.path().join("mysqld.sock");
        // mariadbd refuses to run as root unless told to; CI runs as root.
        let as_root = run_ok(Command::new("id").arg("-u")).trim() == "0";
        let user: &[&str] = if as_root { &["--user=root"] } else { &[] };
        run_ok(
            Command::new("mariadb-install-db")
                .args([
                    "--no-defaults",
                    "--skip-test-db",
                    "--auth-root-authentication-method=normal",
                ])
                .arg(format!("--datadir={}", data.display()))
                .args(user),
        );
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.path().join("error.log").display()))
            .args(["--skip-networking", "--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            // A test database: losing the last second on a crash costs nothing.
            .args(["--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0"])
            .args(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd (apt-get install mariadb-server, as .ci/run does)");
        let db = MariaDb {
            child,
            socket,
            _dir: dir,
        };
        // mariadbd creates its socket once it accepts connections.
        let sock = db.socket.clone();
        assert!(
            wait_until(DEADLINE, || sock.exists()).await,
            "mariadbd did not open its socket; log:\n{}",
            std::fs::read_to_string(db._dir.path().join("error.log")).unwrap_or_default()
        );
        db
    }

    /// Runs one SQL statement as root over the socket.
    pub fn sql(&self, statement: &str) {
        run_ok(
            Command::new("mariadb")
                .args(["--no-defaults", "-u", "root"])
                .arg(format!("--socket={}", self.socket.display()))
                .args(["-e", statement]),
        );
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion; panics with its output when it fails.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An installed WordPress site: the config, its wp-content (two mu-plugin
/// dirs: `mu-plain` without the egress-guard plugin, `mu-plugin` with it) and
/// the scripts the tests run.
pub struct WordPress {
    pub dir: tempfile::TempDir,
    _db: MariaDb,
}

/// How one call runs: through a proxy or not, with the plugin or not.
#[derive(Default, Clone)]
pub struct Call {
    /// `WP_PROXY_HOST`/`WP_PROXY_PORT`: every call goes through this proxy.
    pub proxy: Option<std::net::SocketAddr>,
    /// Load wp-content/mu-plugin (the shipped egress-guard-ca.php) instead of mu-plain.
    pub plugin: bool,
    /// `EGRESS_GUARD_CA` in wp-config.php.
    pub ca: Option<String>,
    /// Stands in for WordPress's own bundle: set as `sslcertificates` by a
    /// test mu-plugin before egress-guard-ca.php runs.
    pub base_bundle: Option<String>,
}

/// What `wp_remote_*` returned, and the arguments the request went out with.
#[derive(Debug)]
pub struct Answer {
    pub code: Option<u16>,
    pub body: String,
    pub error: Option<String>,
    pub sslverify: Value,
    pub sslcertificates: String,
}

impl WordPress {
    /// A fresh database, config, wp-content and `wp_install()`.
    pub async fn install() -> WordPress {
        assert!(
            Path::new(ABSPATH).join("wp-settings.php").exists(),
            "WordPress is not installed (apt-get install wordpress, as .ci/run does)"
        );
        let db = MariaDb::start().await;
        db.sql("CREATE DATABASE wp");
        let dir = tempfile::Builder::new().prefix("eg-wordpress-").tempdir().unwrap();
        let content = dir.path().join("wp-content");
        for sub in ["uploads", "mu-plain", "mu-plugin"] {
            std::fs::create_dir_all(content.join(sub)).unwrap();
        }
        let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wordpress/egress-guard-ca.php");
        std::fs::copy(&plugin, content.join("mu-plugin/egress-guard-ca.php")).unwrap();
        for mu in ["mu-plain", "mu-plugin"] {
            std::fs::write(content.join(mu).join("00-base-bundle.php"), BASE_BUNDLE_PHP).unwrap();
        }
        let config = WP_CONFIG
            .replace("@SOCKET@", &db.socket.display().to_string())
            .replace("@CONTENT@", &content.display().to_string())
            .replace("@ABSPATH@", ABSPATH);
        std::fs::write(dir.path().join("wp-config.php"), config).unwrap();
        std::fs::write(dir.path().join("install.php"), INSTALL_PHP).unwrap();
        std::fs::write(dir.path().join("request.php"), REQUEST_PHP).unwrap();
        let wp = WordPress { dir, _db: db };
        let out = php(&wp.dir.path().join("install.php"), &[]).await;
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(r#""installed":true"#),
            "wp_install: {}",
            describe(&out)
        );
        wp
    }

    /// The combined bundles egress-guard-ca.php has cached.
    pub fn cached_bundles(&self) -> Vec<PathBuf> {
        let dir = self.dir.path().join("wp-content/uploads/egress-guard");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries.map(|e| e.unwrap().path()).collect()
    }

    /// `wp_remote_post` (method POST) or `wp_remote_get` (GET) from a PHP CLI
    /// script that loads this site, configured by `call`.
    pub async fn request(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &str, call: &Call) -> Answer {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let headers = Value::Object(headers).to_string();
        let mu = if call.plugin { "mu-plugin" } else { "mu-plain" };
        let proxy = call.proxy.map(|a| a.to_string()).unwrap_or_default();
        let env = [
            ("EG_METHOD", method),
            ("EG_URL", url),
            ("EG_HEADERS", headers.as_str()),
            ("EG_BODY", body),
            ("EG_MU", mu),
            ("EG_PROXY", proxy.as_str()),
            ("EG_CA", call.ca.as_deref().unwrap_or("")),
            ("EG_BASE_BUNDLE", call.base_bundle.as_deref().unwrap_or("")),
        ];
        let out = php(&self.dir.path().join("request.php"), &env).await;
        assert!(out.status.success(), "request.php: {}", describe(&out));
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("request.php printed no JSON ({e}): {}", describe(&out)));
        Answer {
            code: v["code"].as_u64().map(|c| u16::try_from(c).unwrap()),
            body: v["body"].as_str().unwrap_or_default().to_owned(),
            error: v["error"].as_str().map(str::to_owned),
            sslverify: v["sslverify"].clone(),
            sslcertificates: v["sslcertificates"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

/// The site's config; the per-call settings come from the environment.
const WP_CONFIG: &str = r#"<?php
define( 'DB_NAME', 'wp' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', 'localhost:@SOCKET@' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
$table_prefix = 'wp_';
// A closed loopback port: WordPress's calls to its own URL fail at once.
define( 'WP_HOME', 'http://127.0.0.1:9' );
define( 'WP_SITEURL', 'http://127.0.0.1:9' );
define( 'DISABLE_WP_CRON', true );
define( 'WP_CONTENT_DIR', '@CONTENT@' );
define( 'WPMU_PLUGIN_DIR', '@CONTENT@/' . ( getenv( 'EG_MU' ) ?: 'mu-plain' ) );
if ( getenv( 'EG_PROXY' ) ) {
	list( $eg_host, $eg_port ) = explode( ':', getenv( 'EG_PROXY' ) );
	define( 'WP_PROXY_HOST', $eg_host );
	define( 'WP_PROXY_PORT', $eg_port );
}
if ( getenv( 'EG_CA' ) ) {
	define( 'EGRESS_GUARD_CA', getenv( 'EG_CA' ) );
}
define( 'ABSPATH', '@ABSPATH@' );
$_SERVER['HTTP_HOST'] = '127.0.0.1:9';
require_once ABSPATH . 'wp-settings.php';
"#;

const INSTALL_PHP: &str = r#"<?php
define( 'WP_INSTALLING', true );
function wp_new_blog_notification() {} // no mail from a test
require __DIR__ . '/wp-config.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install( 'egress-guard test shop', 'admin', 'admin@example.test', false, '', wp_generate_password() );
echo json_encode( array( 'installed' => is_blog_installed() ) ), "\n";
"#;

/// Stands in for WordPress's own CA bundle where a test needs one it controls.
const BASE_BUNDLE_PHP: &str = r#"<?php
if ( getenv( 'EG_BASE_BUNDLE' ) ) {
	add_filter( 'http_request_args', function ( $args ) {
		$args['sslcertificates'] = getenv( 'EG_BASE_BUNDLE' );
		return $args;
	}, 10 );
}
"#;

/// One call through WordPress's HTTP API; prints what came back and the
/// arguments the request finally went out with.
const REQUEST_PHP: &str = r#"<?php
require __DIR__ . '/wp-config.php';
$seen = array();
add_filter( 'http_request_args', function ( $args ) use ( &$seen ) {
	$seen = $args;
	return $args;
}, PHP_INT_MAX );
$args = array( 'timeout' => 10, 'headers' => json_decode( getenv( 'EG_HEADERS' ), true ) );
if ( 'POST' === getenv( 'EG_METHOD' ) ) {
	$args['body'] = getenv( 'EG_BODY' );
	$r = wp_remote_post( getenv( 'EG_URL' ), $args );
} else {
	$r = wp_remote_get( getenv( 'EG_URL' ), $args );
}
echo json_encode( array(
	'code'            => is_wp_error( $r ) ? null : wp_remote_retrieve_response_code( $r ),
	'body'            => is_wp_error( $r ) ? '' : wp_remote_retrieve_body( $r ),
	'error'           => is_wp_error( $r ) ? $r->get_error_message() : null,
	'sslverify'       => $seen['sslverify'] ?? null,
	'sslcertificates' => $seen['sslcertificates'] ?? null,
) ), "\n";
"#;
