<?php
/**
 * Opens a Klarna-style payment session, a partner that takes HTTP Basic
 * credentials, through egress-guard.
 *
 * PHP sends no user name and no password: the proxy injects
 * `Authorization: Basic base64(username:password)` from its own secret
 * sources, removes any Authorization PHP would send, and upgrades the http://
 * URL to verified HTTPS. The policy snippet is klarna-session.policy.yaml.
 *
 *   EGRESS_GUARD_PROXY=http://127.0.0.1:3128 php examples/php/klarna-session.php
 *
 * Settings (environment): EGRESS_GUARD_PROXY (default http://127.0.0.1:3128),
 * KLARNA_API_HOST (default api.klarna.com). Prints one line of JSON:
 * {"status": <HTTP status>, "body": <decoded answer>}.
 */

declare(strict_types=1);

$proxy = getenv('EGRESS_GUARD_PROXY') ?: 'http://127.0.0.1:3128';
$host = getenv('KLARNA_API_HOST') ?: 'api.klarna.com';

$session = [
    'purchase_country' => 'DE',
    'purchase_currency' => 'EUR',
    'locale' => 'de-DE',
    'order_amount' => 4250,
    'order_tax_amount' => 679,
    'order_lines' => [[
        'name' => 'Red mug', 'reference' => 'MUG-RED', 'quantity' => 2,
        'unit_price' => 2125, 'tax_rate' => 1900, 'total_amount' => 4250, 'total_tax_amount' => 679,
    ]],
];

$ch = curl_init("http://{$host}/payments/v1/sessions"); // http: the proxy upgrades it
curl_setopt_array($ch, [
    CURLOPT_PROXY => $proxy,
    CURLOPT_POST => true,
    CURLOPT_POSTFIELDS => json_encode($session, JSON_THROW_ON_ERROR),
    CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_TIMEOUT => 20,
]);
$answer = curl_exec($ch);
if ($answer === false) {
    fwrite(STDERR, 'proxy unreachable: ' . curl_error($ch) . "\n");
    exit(2);
}
$status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
echo json_encode(['status' => $status, 'body' => json_decode((string) $answer, true)]), "\n";
exit($status >= 200 && $status < 300 ? 0 : 1);
