// The load a Node.js user would write with MQTT.js (npm `mqtt`, pinned in testing/node), in the
// manner of emqtt-bench's `conn` and `pub`: the peer of `edgekit sim`'s connect-and-publish
// comparison (scripts/scale-test). One process, one event loop, like the simulator.
//
//   NODE_PATH=testing/node/node_modules node bench/peers/mqttjs_load.cjs \
//     --url mqtt://127.0.0.1:1883 --clients N [--connect-rate R] [--in-flight K]
//     [--messages M] [--bytes B] [--qos Q] [--prefix P] [--timeout-s S]
//     [--ca F --cert-dir D]   (mqtts://: DIR/<prefix>-<i>.crt/.key per client, like the simulator)
//
// Phase 1 connects N clients (at most R new connects started per second, at most K awaiting
// their CONNACK); phase 2 has every client publish M messages of B bytes at QoS Q to its own
// topic `<prefix>/<i>/telemetry`, one in flight per client (QoS 0: written one after another).
// Prints one JSON line: connects/s, messages/s and the process's CPU per connect and per message,
// measured with process.cpuUsage() around each phase. Exit 1 when a client failed or a message
// was not acknowledged before the timeout (every failure is counted by cause, never dropped).
'use strict';
const fs = require('fs');
const path = require('path');
const mqtt = require('mqtt');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const url = option('url', 'mqtt://127.0.0.1:1883');
const clients = Number(option('clients', '100'));
const connectRate = Number(option('connect-rate', '0'));  // 0: unbounded
const inFlight = Number(option('in-flight', '64'));
const messages = Number(option('messages', '10'));
const bytes = Number(option('bytes', '64'));
const qos = Number(option('qos', '1'));
const prefix = option('prefix', 'mqttjs');
const timeoutMs = Number(option('timeout-s', '120')) * 1000;
const caFile = option('ca', '');
const certDir = option('cert-dir', '');

const errors = new Map();
function fail(cause) { errors.set(cause, (errors.get(cause) || 0) + 1); }
function cpuUs(since) { const u = process.cpuUsage(since); return u.user + u.system; }

const payload = Buffer.alloc(bytes, 0x61);
const list = new Array(clients);
let connected = 0;
let finishedConnecting = 0;

function connectOne(i, done) {
  const options = { clientId: `${prefix}-${i}`, clean: true, keepalive: 60, reconnectPeriod: 0,
                    connectTimeout: 30000, protocolVersion: 4 };
  if (caFile) {
    options.ca = fs.readFileSync(caFile);
    options.cert = fs.readFileSync(path.join(certDir, `${prefix}-${i}.crt`));
    options.key = fs.readFileSync(path.join(certDir, `${prefix}-${i}.key`));
    options.servername = 'localhost';
  }
  const c = mqtt.connect(url, options);
  let settled = false;
  c.once('connect', () => { if (!settled) { settled = true; connected++; list[i] = c; done(); } });
  c.on('error', (e) => { if (!settled) { settled = true; fail(`connect: ${e.code || e.message}`); done(); } });
  c.once('close', () => { if (!settled) { settled = true; fail('connect: closed'); done(); } });
}

function connectAll() {
  return new Promise((resolve) => {
    let next = 0, pending = 0;
    const t0 = Date.now();
    const pump = () => {
      while (next < clients && pending < inFlight &&
             (connectRate <= 0 || next < ((Date.now() - t0) / 1000) * connectRate + 1)) {
        pending++;
        connectOne(next++, () => {
          pending--; finishedConnecting++;
          if (finishedConnecting === clients) resolve(); else pump();
        });
      }
      if (next < clients && pending < inFlight) setTimeout(pump, 5);
    };
    pump();
  });
}

function publishAll() {
  return new Promise((resolve) => {
    let running = 0;
    let acked = 0;
    const live = list.filter(Boolean);
    if (live.length === 0 || messages === 0) { resolve(0); return; }
    running = live.length;
    live.forEach((c, k) => {
      const topic = `${prefix}/${k}/telemetry`;
      let sent = 0;
      const step = () => {
        if (sent === messages) { if (--running === 0) resolve(acked); return; }
        sent++;
        c.publish(topic, payload, { qos }, (err) => {
          if (err) fail(`publish: ${err.code || err.message}`); else acked++;
          step();
        });
      };
      step();
    });
  });
}

(async () => {
  const guard = setTimeout(() => {
    fail('timeout');
    report(0, 0, 0, 0, 0);
    process.exit(1);
  }, timeoutMs);
  const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
  await connectAll();
  const connectS = Number(process.hrtime.bigint() - t0) / 1e9; const connectCpu = cpuUs(c0);
  const c1 = process.cpuUsage(); const t1 = process.hrtime.bigint();
  const acked = await publishAll();
  const publishS = Number(process.hrtime.bigint() - t1) / 1e9; const publishCpu = cpuUs(c1);
  clearTimeout(guard);
  report(connectS, connectCpu, publishS, publishCpu, acked);
  await Promise.all(list.filter(Boolean).map((c) => new Promise((r) => c.end(false, {}, r))));
  process.exit(errors.size === 0 && acked === connected * messages ? 0 : 1);
})();

function report(connectS, connectCpu, publishS, publishCpu, acked) {
  const out = {
    tool: `MQTT.js ${require('mqtt/package.json').version} (node ${process.version})`,
    clients, connected, connect_s: connectS,
    connects_per_s: connectS > 0 ? connected / connectS : 0,
    cpu_us_per_connect: connected > 0 ? connectCpu / connected : 0,
    messages: acked, publish_s: publishS,
    messages_per_s: publishS > 0 ? acked / publishS : 0,
    cpu_us_per_message: acked > 0 ? publishCpu / acked : 0,
    rss_mb: process.memoryUsage().rss / 1048576,
    errors: Object.fromEntries(errors),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}
