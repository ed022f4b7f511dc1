// A fast loopback HTTP sink for benchmarks: answers every request 200 {"ok":true}.
// Usage: node bench/node_sink.mjs [--port N]   prints {"url": "..."} on stdout once listening.
import http from "node:http";

const args = process.argv.slice(2);
const portArg = args.indexOf("--port");
const port = portArg >= 0 ? Number(args[portArg + 1]) : 0;
const body = Buffer.from('{"ok":true}');
let count = 0;

const server = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    count++;
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }) + "\n");
});
process.on("SIGTERM", () => { process.stderr.write(`node_sink: ${count} requests\n`); process.exit(0); });
