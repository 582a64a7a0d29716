// An Express app over HTTPS on 127.0.0.1 (port 0): express.json() parses each request and
// the answer is what it parsed ({"parsed": flatten(body)}), or {"error": type} with the
// parser's status. Prints "PORT <n>" once listening. Env: CERT and KEY (PEM file paths).
'use strict'
const fs = require('fs')
const https = require('https')
const express = require('express')
const { flatten } = require('./flatten')

const app = express()
app.use(express.json({ limit: '10mb' }))
app.all('*', (req, res) => res.json({ parsed: flatten(req.body), ct: req.headers['content-type'] || null }))
app.use((err, req, res, next) => res.status(err.status || 500).json({ error: err.type || 'error' }))

const server = https.createServer({ cert: fs.readFileSync(process.env.CERT), key: fs.readFileSync(process.env.KEY) }, app)
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.address().port}\n`))
// The test closes stdin when it is done (or dies): stop with it.
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
