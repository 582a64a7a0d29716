<?php
/**
 * Creates a PayPal-style order (Orders v2) through egress-guard.
 *
 * PHP holds no client id, no client secret and no token: the proxy fetches
 * an OAuth2 token itself (client credentials, RFC 6749 4.4), caches it until
 * shortly before it expires, and injects `Authorization: Bearer ...`. The
 * http:// URL goes out as verified HTTPS. The policy snippet for it is
 * paypal-order.policy.yaml, next to this file.
 *
 *   EGRESS_GUARD_PROXY=http://127.0.0.1:3128 php examples/php/paypal-order.php
 *
 * Settings (environment): EGRESS_GUARD_PROXY (default http://127.0.0.1:3128),
 * PAYPAL_API_HOST (default api-m.paypal.com). Prints one line of JSON:
 * {"status": <HTTP status>, "body": <decoded answer>}; a proxy refusal
 * (e.g. 502 credential_unavailable) comes back the same way.
 */

declare(strict_types=1);

$proxy = getenv('EGRESS_GUARD_PROXY') ?: 'http://127.0.0.1:3128';
$host = getenv('PAYPAL_API_HOST') ?: 'api-m.paypal.com';

$order = [
    'intent' => 'CAPTURE',
    'purchase_units' => [[
        'reference_id' => 'wc-order-1042',
        'amount' => ['currency_code' => 'EUR', 'value' => '42.50'],
    ]],
];

$ch = curl_init("http://{$host}/v2/checkout/orders"); // http: the proxy upgrades it
curl_setopt_array($ch, [
    CURLOPT_PROXY => $proxy,
    CURLOPT_POST => true,
    CURLOPT_POSTFIELDS => json_encode($order, JSON_THROW_ON_ERROR),
    CURLOPT_HTTPHEADER => [
        'Content-Type: application/json',
        'PayPal-Request-Id: wc-order-1042', // idempotency: a retry creates no second order
        'Prefer: return=minimal',
    ],
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
