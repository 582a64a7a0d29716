<?php
// Reads {"ct", "b": base64 body} lines on stdin and parses each body the way a PHP upstream
// does (json_decode, objects as stdClass, default depth and flags), printing one
// {"ok": [[path, kind, text], ...]} or {"err": message} line per input, in order.

function num(float $v): string
{
    if (is_nan($v)) {
        return 'nan';
    }
    if (is_infinite($v)) {
        return $v > 0 ? 'inf' : '-inf';
    }
    if (floor($v) == $v && abs($v) < 1e21) {
        return sprintf('%.0f', $v);
    }
    return sprintf('%.17g', $v);
}

function flatten($v, array $path, array &$out): void
{
    if (is_array($v)) {
        $out[] = [$path, 'arr', ''];
        foreach ($v as $i => $c) {
            flatten($c, array_merge($path, [$i]), $out);
        }
    } elseif (is_object($v)) {
        $out[] = [$path, 'obj', ''];
        foreach (get_object_vars($v) as $k => $c) {
            flatten($c, array_merge($path, [(string) $k]), $out);
        }
    } elseif (is_string($v)) {
        $out[] = [$path, 'str', $v];
    } elseif (is_int($v)) {
        $out[] = [$path, 'num', (string) $v];
    } elseif (is_float($v)) {
        $out[] = [$path, 'num', num($v)];
    } elseif (is_bool($v)) {
        $out[] = [$path, 'bool', $v ? 'true' : 'false'];
    } else {
        $out[] = [$path, 'null', ''];
    }
}

while (($line = fgets(STDIN)) !== false) {
    if (trim($line) === '') {
        continue;
    }
    $req = json_decode($line, true);
    $parsed = json_decode(base64_decode($req['b']));
    if (json_last_error() !== JSON_ERROR_NONE) {
        echo json_encode(['err' => json_last_error_msg()]), "\n";
        continue;
    }
    $out = [];
    flatten($parsed, [], $out);
    echo json_encode(['ok' => $out], JSON_THROW_ON_ERROR), "\n";
}
