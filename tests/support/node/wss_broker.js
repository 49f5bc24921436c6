// An MQTT broker (aedes) on a TLS WebSocket listener, for tests/support/wsbroker.py.
// Usage: node wss_broker.js CONFIG.json
// CONFIG: {"host", "port", "path", "cert", "key", "users": {"name": "password"} | null}
// Prints one JSON line per event on stdout: ready, connection (remote address and
// port of each TCP peer), client, auth_failed.
"use strict";
const fs = require("fs");
const https = require("https");
const { WebSocketServer, createWebSocketStream } = require("ws");
const aedes = require("aedes")();

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

aedes.authenticate = (client, username, password, done) => {
  if (!config.users) return done(null, true);
  const expected = config.users[username];
  if (expected !== undefined && password && password.toString() === expected) {
    return done(null, true);
  }
  say({ event: "auth_failed", username: username || null });
  const error = new Error("bad username or password");
  error.returnCode = 4;
  return done(error, null);
};
aedes.on("client", (client) => say({ event: "client", id: client.id }));

const server = https.createServer({
  cert: fs.readFileSync(config.cert),
  key: fs.readFileSync(config.key),
});
server.on("connection", (socket) =>
  say({ event: "connection", remote: socket.remoteAddress, port: socket.remotePort })
);
const wss = new WebSocketServer({ server, path: config.path });
wss.on("connection", (ws) => aedes.handle(createWebSocketStream(ws)));
server.listen(config.port, config.host, () => say({ event: "ready", port: config.port }));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => aedes.close(() => server.close(() => process.exit(0))));
}
