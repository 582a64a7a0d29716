// What a parsed body holds, node by node: [path, kind, text], the same shape the PHP and
// Python scripts print, so the Rust test compares them to what the proxy's filter saw.
'use strict'

function numText (v) {
  // Integral values as their digits (a card in a float must show as one), else JS's text.
  return Number.isInteger(v) && Math.abs(v) < 1e21 ? BigInt(v).toString() : String(v)
}

function flatten (v, path = [], out = []) {
  if (Array.isArray(v)) {
    out.push([path, 'arr', ''])
    v.forEach((c, i) => flatten(c, path.concat([i]), out))
  } else if (v !== null && typeof v === 'object') {
    out.push([path, 'obj', ''])
    for (const k of Object.keys(v)) flatten(v[k], path.concat([k]), out)
  } else if (typeof v === 'string') {
    out.push([path, 'str', v])
  } else if (typeof v === 'number') {
    out.push([path, 'num', numText(v)])
  } else if (typeof v === 'boolean') {
    out.push([path, 'bool', String(v)])
  } else {
    out.push([path, 'null', ''])
  }
  return out
}

module.exports = { flatten }
