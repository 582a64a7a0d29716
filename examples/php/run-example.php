<?php
/**
 * Runs woocommerce-sender.php without WordPress: a stub WC_Order with
 * realistic personal data, handed straight to the hook function.
 *
 *   EGRESS_GUARD_PROXY=http://127.0.0.1:3128 php examples/php/run-example.php
 *
 * Prints the result as one line of JSON.
 */

declare(strict_types=1);

require __DIR__ . '/woocommerce-sender.php';

final class WC_Meta_Data
{
    public function __construct(private int $id, private string $key, private mixed $value) {}
    public function get_data(): array { return ['id' => $this->id, 'key' => $this->key, 'value' => $this->value]; }
}

final class WC_Product
{
    public function __construct(private string $sku) {}
    public function get_sku(): string { return $this->sku; }
}

final class WC_Order_Item_Product
{
    public function __construct(
        private string $name,
        private string $sku,
        private int $quantity,
        private string $total,
        private array $meta = [],
    ) {}
    public function get_product(): WC_Product { return new WC_Product($this->sku); }
    public function get_name(): string { return $this->name; }
    public function get_quantity(): int { return $this->quantity; }
    public function get_total(): string { return $this->total; }
    public function get_meta_data(): array { return $this->meta; }
}

final class WC_Order
{
    private array $billing = [
        'first_name' => 'Erika', 'last_name' => 'Mustermann', 'company' => 'Mustermann GmbH',
        'address_1' => 'Heidestrasse 17', 'address_2' => '2. OG', 'city' => 'Koeln', 'state' => 'NW',
        'postcode' => '51147', 'country' => 'DE', 'email' => 'erika.mustermann@example.org', 'phone' => '+49 221 1234567',
    ];
    private array $shipping = [
        'first_name' => 'Max', 'last_name' => 'Mustermann', 'company' => '',
        'address_1' => 'Am Markt 3', 'address_2' => '', 'city' => 'Bonn', 'state' => 'NW',
        'postcode' => '53111', 'country' => 'DE',
    ];

    public function __construct(private int $id) {}

    public function get_billing_first_name(): string { return $this->billing['first_name']; }
    public function get_billing_last_name(): string { return $this->billing['last_name']; }
    public function get_billing_company(): string { return $this->billing['company']; }
    public function get_billing_address_1(): string { return $this->billing['address_1']; }
    public function get_billing_address_2(): string { return $this->billing['address_2']; }
    public function get_billing_city(): string { return $this->billing['city']; }
    public function get_billing_state(): string { return $this->billing['state']; }
    public function get_billing_postcode(): string { return $this->billing['postcode']; }
    public function get_billing_country(): string { return $this->billing['country']; }
    public function get_billing_email(): string { return $this->billing['email']; }
    public function get_billing_phone(): string { return $this->billing['phone']; }
    public function get_shipping_first_name(): string { return $this->shipping['first_name']; }
    public function get_shipping_last_name(): string { return $this->shipping['last_name']; }
    public function get_shipping_company(): string { return $this->shipping['company']; }
    public function get_shipping_address_1(): string { return $this->shipping['address_1']; }
    public function get_shipping_address_2(): string { return $this->shipping['address_2']; }
    public function get_shipping_city(): string { return $this->shipping['city']; }
    public function get_shipping_state(): string { return $this->shipping['state']; }
    public function get_shipping_postcode(): string { return $this->shipping['postcode']; }
    public function get_shipping_country(): string { return $this->shipping['country']; }

    public function get_id(): int { return $this->id; }
    public function get_status(): string { return 'processing'; }
    public function get_currency(): string { return 'EUR'; }
    public function get_total(): string { return '39.80'; }
    public function get_customer_note(): string { return 'Bitte beim Nachbarn (Fam. Schmidt) abgeben'; }

    public function get_items(): array
    {
        return [
            new WC_Order_Item_Product('Tasse rot', 'MUG-RED', 2, '19.80', [new WC_Meta_Data(31, 'engraving', 'Fuer Max')]),
            new WC_Order_Item_Product('T-Shirt M', 'TEE-M', 1, '20.00'),
        ];
    }

    public function get_meta_data(): array
    {
        return [
            new WC_Meta_Data(7, '_customer_ip_address', '203.0.113.9'),
            new WC_Meta_Data(8, '_billing_vat_id', 'DE123456789'),
            new WC_Meta_Data(9, '_customer_user_agent', 'Mozilla/5.0 (X11; Linux x86_64)'),
        ];
    }
}

$order = new WC_Order(1042);
$result = shipper_send_order($order->get_id(), 'pending', 'processing', $order);
echo json_encode($result, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
exit($result['status'] >= 200 && $result['status'] < 300 ? 0 : 1);
