<?php
/**
 * Creates a Stripe-style payment intent through egress-guard: a form body
 * (http_build_query, bracket notation for metadata), as Stripe's API takes it.
 *
 * No secret key in PHP: the proxy injects `Authorization: Bearer sk_...`,
 * upgrades the http:// URL to verified HTTPS and keeps only the fields its
 * policy allows (stripe-policy.yaml): the customer's e-mail address and the
 * order note in `metadata` never leave the shop.
 *
 *   EGRESS_GUARD_PROXY=http://127.0.0.1:3128 php examples/php/stripe-payment-intent.php
 *
 * Environment:
 *   EGRESS_GUARD_PROXY   proxy URL, default http://127.0.0.1:3128
 *   STRIPE_API_BASE      default http://api.stripe.com (http: the proxy upgrades it)
 *
 * Prints one line of JSON: {"status": ..., "sent": <the form body PHP sent>, "body": <answer>}.
 */

declare(strict_types=1);

/** Everything the shop knows about the payment; the policy decides what leaves. */
function payment_intent_params(): array
{
    return [
        'amount'               => 4990,
        'currency'             => 'eur',
        'customer'             => 'cus_Q8x1042',
        'payment_method_types' => ['card', 'sepa_debit'],
        'description'          => 'Order 1042',
        'receipt_email'        => 'erika.mustermann@example.org',
        'metadata'             => [
            'order_id'   => '1042',
            'email'      => 'erika.mustermann@example.org',
            'order_note' => 'Fuer Max, bitte klingeln',
        ],
    ];
}

function create_payment_intent(array $params): array
{
    $proxy = getenv('EGRESS_GUARD_PROXY') ?: 'http://127.0.0.1:3128';
    $base = getenv('STRIPE_API_BASE') ?: 'http://api.stripe.com';
    $body = http_build_query($params); // metadata[order_id]=1042&payment_method_types[0]=card ...
    $ch = curl_init($base . '/v1/payment_intents');
    curl_setopt_array($ch, [
        CURLOPT_PROXY          => $proxy,
        CURLOPT_POST           => true,
        CURLOPT_POSTFIELDS     => $body, // a string: sent as application/x-www-form-urlencoded
        CURLOPT_HTTPHEADER     => ['Idempotency-Key: order-1042-intent'],
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT        => 15,
    ]);
    $answer = curl_exec($ch);
    $result = [
        'status' => (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE),
        'sent'   => $body,
        'body'   => is_string($answer) ? json_decode($answer, true) : null,
        'error'  => $answer === false ? curl_error($ch) : null,
    ];
    curl_close($ch);
    return $result;
}

echo json_encode(create_payment_intent(payment_intent_params())), "\n";
