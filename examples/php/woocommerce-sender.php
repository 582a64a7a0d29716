<?php
/**
 * Sends a WooCommerce order to the shipping partner through egress-guard.
 *
 * There is no API key in this file, nor anywhere in PHP: the proxy adds the
 * partner's credential itself, upgrades the http:// URL to verified HTTPS,
 * and cuts the payload down to the fields its policy allows. PHP sends what
 * it has; the policy decides what leaves the shop.
 *
 * Configuration (environment, or constants in wp-config.php):
 *   EGRESS_GUARD_PROXY   proxy URL, default http://127.0.0.1:3128
 *   EGRESS_GUARD_SOCKET  optional: the proxy's unix socket (used instead of the URL)
 *   EGRESS_GUARD_TOKEN   optional: the proxy's client_token (sent as "shop:<token>")
 */

declare(strict_types=1);

const SHIPPER_SHIPMENTS_URL = 'http://api.shipper.example/v1/shipments'; // http: the proxy upgrades it

/** A setting from a wp-config.php constant or the environment, or null. */
function egress_guard_setting(string $name): ?string
{
    if (defined($name)) {
        $value = (string) constant($name);
    } else {
        $env = getenv($name);
        $value = $env === false ? '' : $env;
    }
    return $value === '' ? null : $value;
}

/** Everything we know about the order; the proxy's policy removes what the partner must not get. */
function shipper_order_payload(object $order): array
{
    $address = static function (object $order, string $kind): array {
        $fields = ['first_name', 'last_name', 'company', 'address_1', 'address_2', 'city', 'state', 'postcode', 'country'];
        if ($kind === 'billing') {
            $fields[] = 'email';
            $fields[] = 'phone';
        }
        $out = [];
        foreach ($fields as $field) {
            $getter = "get_{$kind}_{$field}";
            $out[$field] = method_exists($order, $getter) ? (string) $order->$getter() : '';
        }
        return $out;
    };

    $meta = static function (array $entries): array {
        $out = [];
        foreach ($entries as $entry) {
            $data = $entry->get_data();
            $out[] = ['key' => $data['key'], 'value' => $data['value']];
        }
        return $out;
    };

    $items = [];
    foreach ($order->get_items() as $item) {
        $product = $item->get_product();
        $items[] = [
            'sku'       => $product ? (string) $product->get_sku() : '',
            'name'      => $item->get_name(),
            'quantity'  => (int) $item->get_quantity(),
            'total'     => (string) $item->get_total(),
            'meta_data' => $meta($item->get_meta_data()),
        ];
    }

    return [
        'order_id'      => (int) $order->get_id(),
        'status'        => $order->get_status(),
        'currency'      => $order->get_currency(),
        'total'         => (string) $order->get_total(),
        'customer_note' => $order->get_customer_note(),
        'billing'       => $address($order, 'billing'),
        'shipping'      => $address($order, 'shipping'),
        'line_items'    => $items,
        'meta_data'     => $meta($order->get_meta_data()),
    ];
}

/**
 * Hook for `woocommerce_order_status_changed` ($order_id, $from, $to, $order).
 * Returns ['status' => HTTP status or 0, 'body' => decoded JSON answer or null,
 * 'error' => cURL error text or null].
 */
function shipper_send_order(int $order_id, string $from = '', string $to = '', ?object $order = null): array
{
    if ($order === null && function_exists('wc_get_order')) {
        $order = wc_get_order($order_id) ?: null;
    }
    if ($order === null) {
        return ['status' => 0, 'body' => null, 'error' => 'no such order'];
    }
    $payload = json_encode(
        shipper_order_payload($order),
        JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
    );

    $ch = curl_init(SHIPPER_SHIPMENTS_URL);
    $options = [
        CURLOPT_POST           => true,
        CURLOPT_HTTPHEADER     => ['Content-Type: application/json', 'Accept: application/json'],
        CURLOPT_POSTFIELDS     => $payload,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT => 5,
        CURLOPT_TIMEOUT        => 20,
    ];
    $socket = egress_guard_setting('EGRESS_GUARD_SOCKET');
    if ($socket !== null) {
        // Origin form over the socket; the proxy reads the target from Host.
        $options[CURLOPT_UNIX_SOCKET_PATH] = $socket;
    } else {
        $options[CURLOPT_PROXY] = egress_guard_setting('EGRESS_GUARD_PROXY') ?? 'http://127.0.0.1:3128';
        $token = egress_guard_setting('EGRESS_GUARD_TOKEN');
        if ($token !== null) {
            // Like WordPress: credentials are sent once the proxy asks for them.
            $options[CURLOPT_PROXYUSERPWD] = 'shop:' . $token;
            $options[CURLOPT_PROXYAUTH] = CURLAUTH_ANY;
        }
    }
    curl_setopt_array($ch, $options);

    $raw = curl_exec($ch);
    $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    $error = $raw === false ? curl_error($ch) : null;
    curl_close($ch);

    $body = is_string($raw) && $raw !== '' ? json_decode($raw, true) : null;
    if ($status >= 400 && is_array($body) && isset($body['error'])) {
        // A refusal from the proxy: a reason code and a request id to quote to the operator.
        error_log(sprintf('shipper: order %d refused: %s (request %s)', $order_id, $body['error'], $body['request_id'] ?? '-'));
    }
    return ['status' => $status, 'body' => $body, 'error' => $error];
}

if (function_exists('add_action')) {
    add_action('woocommerce_order_status_changed', 'shipper_send_order', 10, 4);
}
