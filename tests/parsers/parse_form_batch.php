<?php
// Reads {"b": base64 body} lines on stdin and parses each body the way a PHP upstream fills
// $_POST (parse_str: the same parser, bracket notation, `.` and spaces in names as `_`),
// printing one {"ok": [[path, kind, text], ...]} line per input, in order.

function flatten($v, array $path, array &$out): void
{
    if (is_array($v)) {
        $out[] = [$path, 'arr', ''];
        foreach ($v as $i => $c) {
            flatten($c, array_merge($path, [$i]), $out);
        }
    } else {
        $out[] = [$path, 'str', (string) $v];
    }
}

while (($line = fgets(STDIN)) !== false) {
    if (trim($line) === '') {
        continue;
    }
    $req = json_decode($line, true);
    $parsed = [];
    parse_str(base64_decode($req['b']), $parsed);
    $out = [];
    flatten($parsed, [], $out);
    echo json_encode(['ok' => $out], JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR), "\n";
}
