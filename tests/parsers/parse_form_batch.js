// Reads {"b": base64 body} lines on stdin and runs each body through Express's extended
// urlencoded body-parser (qs), as an Express upstream fills req.body, printing one
// {"ok": flatten(body)} or {"err": type} line per input, in order.
'use strict'
const { PassThrough } = require('stream')
const readline = require('readline')
const bodyParser = require('body-parser')
const { flatten } = require('./flatten')

const parser = bodyParser.urlencoded({ extended: true, limit: '10mb' })

function parse (buf) {
  return new Promise((resolve) => {
    const req = new PassThrough()
    req.headers = {
      'content-length': String(buf.length),
      'content-type': 'application/x-www-form-urlencoded'
    }
    req.end(buf)
    parser(req, {}, (err) => {
      if (err) resolve({ err: err.type || String(err.status || err) })
      else resolve({ ok: flatten(req.body) })
    })
  })
}

async function main () {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line) continue
    const { b } = JSON.parse(line)
    process.stdout.write(JSON.stringify(await parse(Buffer.from(b, 'base64'))) + '\n')
  }
}

main()
