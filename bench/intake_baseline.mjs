// The baseline for bench/intake.py: a minimal Node.js HTTP server that reads the body,
// parses the JSON and answers 200 {"success":true}. Prints its port on stdout once listening.
import http from "node:http";

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString("utf8"));
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"success":true}');
    } catch (e) {
      res.writeHead(400, { "content-type": "application/json" });
      res.end('{"success":false}');
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => { console.log(server.address().port); });
process.on("SIGTERM", () => server.close(() => process.exit(0)));
