<?php
/**
 * Plugin Name: egress-guard CA
 * Description: Makes WordPress's HTTP API trust the local egress-guard CA, so https:// calls that egress-guard intercepts verify. Every other host is verified exactly as before.
 * Version: 1.0.0
 * License: Apache-2.0
 *
 * A must-use plugin: copy this file to wp-content/mu-plugins/.
 *
 * WordPress verifies TLS against its own bundle (the `sslcertificates`
 * argument of every request; wp-includes/certificates/ca-bundle.crt, or the
 * system bundle on Debian), not against the system store that
 * update-ca-certificates fills. This plugin hands cURL a bundle made of that
 * same bundle plus the egress-guard CA certificate: certificates the bundle
 * trusted still verify, and so do the leaves egress-guard mints. It never
 * turns verification off, and the CA that `egress-guard ca init` makes is
 * name-constrained to the intercepted hosts, so trusting it vouches for
 * nothing else.
 *
 * Settings (wp-config.php, all optional):
 *   define( 'EGRESS_GUARD_CA', '/etc/egress-guard/ca.pem' );   // the CA certificate (PEM)
 *   define( 'EGRESS_GUARD_CA_CACHE_DIR', '/path/to/dir' );     // default: wp-content/uploads/egress-guard
 *
 * If the CA file cannot be read, requests keep their bundle unchanged: calls
 * through interception then fail verification (closed), and the reason is
 * written to the PHP error log.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The certificate blocks of a PEM text, and nothing else: a private key
 * named by mistake in EGRESS_GUARD_CA must never be copied into a bundle.
 *
 * @param string $pem PEM text.
 * @return string[] Each `-----BEGIN CERTIFICATE-----` block.
 */
function egress_guard_ca_certificates( $pem ) {
	$found = preg_match_all(
		'/-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+\/=\r\n]+-----END CERTIFICATE-----/',
		$pem,
		$matches
	);
	return $found ? $matches[0] : array();
}

/**
 * Where combined bundles are cached: a directory only this site writes to.
 *
 * @return string Directory path, without a trailing slash.
 */
function egress_guard_ca_cache_dir() {
	if ( defined( 'EGRESS_GUARD_CA_CACHE_DIR' ) ) {
		return rtrim( EGRESS_GUARD_CA_CACHE_DIR, '/' );
	}
	return rtrim( WP_CONTENT_DIR, '/' ) . '/uploads/egress-guard';
}

/**
 * The combined bundle (`$base` plus the egress-guard CA) as a file, written
 * once per content and reused: its name is the SHA-256 of its content, and a
 * cached file is used only if its content still has that hash. Written to a
 * unique temporary name and renamed into place, so no request ever reads a
 * half-written bundle.
 *
 * @param string $base Path of the bundle the request would have used.
 * @return string|null Path of the combined bundle, or null when it cannot be made.
 */
function egress_guard_ca_bundle( $base ) {
	static $memo = array();
	if ( isset( $memo[ $base ] ) ) {
		return $memo[ $base ];
	}
	$ca_file = defined( 'EGRESS_GUARD_CA' ) ? EGRESS_GUARD_CA : '/etc/egress-guard/ca.pem';
	$ca_pem  = is_readable( $ca_file ) ? file_get_contents( $ca_file ) : false;
	$certs   = false === $ca_pem ? array() : egress_guard_ca_certificates( $ca_pem );
	if ( ! $certs ) {
		error_log( 'egress-guard CA: no certificate readable in ' . $ca_file . '; bundle left unchanged' );
		return null;
	}
	$base_pem = is_readable( $base ) ? file_get_contents( $base ) : false;
	if ( false === $base_pem ) {
		error_log( 'egress-guard CA: the request bundle ' . $base . ' is not readable; bundle left unchanged' );
		return null;
	}
	$bundle = rtrim( $base_pem ) . "\n\n# egress-guard local CA (" . $ca_file . ")\n" . implode( "\n", $certs ) . "\n";
	$hash   = hash( 'sha256', $bundle );
	$dir    = egress_guard_ca_cache_dir();
	$path   = $dir . '/ca-bundle-' . $hash . '.crt';

	if ( ! is_link( $path ) && is_file( $path ) && hash_file( 'sha256', $path ) === $hash ) {
		$memo[ $base ] = $path;
		return $path;
	}
	if ( ! is_dir( $dir ) && ! wp_mkdir_p( $dir ) ) {
		error_log( 'egress-guard CA: cannot create ' . $dir . '; bundle left unchanged' );
		return null;
	}
	// Checked first: tempnam() falls back to the system temp dir, shared with
	// other users, when $dir is not writable.
	$tmp = is_writable( $dir ) ? tempnam( $dir, '.ca-bundle-' ) : false;
	if ( false === $tmp ) {
		error_log( 'egress-guard CA: cannot write in ' . $dir . '; bundle left unchanged' );
		return null;
	}
	if ( strlen( $bundle ) !== file_put_contents( $tmp, $bundle ) || ! chmod( $tmp, 0644 ) || ! rename( $tmp, $path ) ) {
		unlink( $tmp );
		error_log( 'egress-guard CA: cannot write ' . $path . '; bundle left unchanged' );
		return null;
	}
	egress_guard_ca_prune( $dir, $path );
	$memo[ $base ] = $path;
	return $path;
}

/**
 * Removes bundles of earlier contents (an older CA, an older base bundle)
 * once they are a day old; a request that picked one just now still finds it.
 *
 * @param string $dir  The cache directory.
 * @param string $keep The bundle in use.
 */
function egress_guard_ca_prune( $dir, $keep ) {
	foreach ( (array) glob( $dir . '/ca-bundle-*.crt' ) as $old ) {
		if ( $old !== $keep && is_file( $old ) && filemtime( $old ) < time() - DAY_IN_SECONDS ) {
			unlink( $old );
		}
	}
}

/**
 * `http_request_args`: swap the request's bundle for the combined one. Only
 * `sslcertificates` changes; `sslverify` is never touched.
 *
 * @param array $args Request arguments.
 * @return array
 */
function egress_guard_ca_request_args( $args ) {
	$base = isset( $args['sslcertificates'] ) && is_string( $args['sslcertificates'] ) && '' !== $args['sslcertificates']
		? $args['sslcertificates']
		: ABSPATH . WPINC . '/certificates/ca-bundle.crt';
	$combined = egress_guard_ca_bundle( $base );
	if ( null !== $combined ) {
		$args['sslcertificates'] = $combined;
	}
	return $args;
}

// Late, so a bundle another plugin chose is the one extended, not replaced.
add_filter( 'http_request_args', 'egress_guard_ca_request_args', 99 );
