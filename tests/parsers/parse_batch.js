// Reads {"ct": content type or null, "b": base64 body} lines on stdin and runs each body
// through Express's JSON body-parser (charset handling included, as an upstream would),
// printing one {"ok": flatten(body)} or {"err": type} line per input, in order.
'use strict'
const { PassThrough } = require('stream')
const readline = require('readline')
const bodyParser = require('body-parser')
const { flatten } = require('./flatten')

const parser = bodyParser.json({ limit: '10mb' })

function parse (ct, buf) {
  return new Promise((resolve) => {
    const req = new PassThrough()
    req.headers = { 'content-length': String(buf.length) }
    if (ct !== null) req.headers['content-type'] = ct
    req.end(buf)
    parser(req, {}, (err) => {
      if (err) resolve({ err: err.type || String(err.status || err) })
      // Not a type express.json() parses (e.g. application/vnd.api+json): nothing read.
      else if (!req._body) resolve({ err: 'skipped' })
      else resolve({ ok: flatten(req.body) })
    })
  })
}

async function main () {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line) continue
    const { ct, b } = JSON.parse(line)
    process.stdout.write(JSON.stringify(await parse(ct, Buffer.from(b, 'base64'))) + '\n')
  }
}

main()
