"""Reads {"ct", "b": base64 body} lines on stdin and parses each body the way a Python
upstream does (json.loads on the raw bytes, which guesses UTF-8/16/32 and accepts a BOM),
printing one {"ok": [[path, kind, text], ...]} or {"err": type} line per input, in order."""
import base64
import json
import math
import sys


def num(v):
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return repr(v)


def flatten(v, path, out):
    if isinstance(v, dict):
        out.append([path, "obj", ""])
        for k, c in v.items():
            flatten(c, path + [k], out)
    elif isinstance(v, list):
        out.append([path, "arr", ""])
        for i, c in enumerate(v):
            flatten(c, path + [i], out)
    elif isinstance(v, str):
        out.append([path, "str", v])
    elif isinstance(v, bool):
        out.append([path, "bool", "true" if v else "false"])
    elif v is None:
        out.append([path, "null", ""])
    else:
        out.append([path, "num", num(v)])
    return out


for line in sys.stdin:
    if not line.strip():
        continue
    body = base64.b64decode(json.loads(line)["b"])
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as e:
        print(json.dumps({"err": type(e).__name__}))
        continue
    print(json.dumps({"ok": flatten(parsed, [], [])}))
