// Node.js as muxtrace's real-server tier runs it (harness/src/servers.rs):
// `node node-http.js PORT BODY_BYTES`, on loopback only. An http server
// answering every request with the same body, beside a worker thread that
// wakes ten times a second to do nothing, as an app's background worker
// would: a second event loop, idle. On SIGUSR2 it prints its main loop's
// utilisation as Node measures it, `elu IDLE_MS ACTIVE_MS` since the loop
// started, the witness for muxtrace's busy share.
'use strict';
const http = require('http');
const { Worker } = require('worker_threads');
const { performance } = require('perf_hooks');

const port = Number(process.argv[2]);
const body = Buffer.alloc(Number(process.argv[3]), 'x');
new Worker('setInterval(() => {}, 100);', { eval: true });
process.on('SIGUSR2', () => {
  const elu = performance.eventLoopUtilization();
  console.log(`elu ${elu.idle} ${elu.active}`);
});
http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  })
  .listen(port, '127.0.0.1', () => console.log(`ready ${process.pid}`));
