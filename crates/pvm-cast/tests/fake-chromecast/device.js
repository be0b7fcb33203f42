// Stand-in Chromecasts for pvm-cast's tests, built on the independent `castv2` implementation
// (its Server does the TLS, framing and protobuf). One process plays any number of devices.
//
// Control: one JSON command per line on stdin, e.g.
//   {"cmd":"start","device":"tv1","port":0}
//   {"cmd":"stop","device":"tv1"}            power off: close the listener, drop connections
//   {"cmd":"restart","device":"tv1"}         power off then on, same port, nothing running
//   {"cmd":"stopApp","device":"tv1"}         someone pressed "stop casting"
//   {"cmd":"otherApp","device":"tv1","appId":"233637DE","displayName":"YouTube"}
//   {"cmd":"silence","device":"tv1","on":true}  stays connected but never answers
//   {"cmd":"set","device":"tv1","launchError":"NOT_FOUND"}  (null to clear)
// Reports: one JSON object per line on stdout, stamped with `t` (ms): listening, connection,
// disconnect, received (every message, parsed), launched, stopped, appStopped, otherApp.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const Server = require('castv2').Server;

const NS_CONNECTION = 'urn:x-cast:com.google.cast.tp.connection';
const NS_HEARTBEAT = 'urn:x-cast:com.google.cast.tp.heartbeat';
const NS_RECEIVER = 'urn:x-cast:com.google.cast.receiver';
const DASHCAST = { appId: '84912283', namespace: 'urn:x-cast:com.madmod.dashcast' };
const BACKDROP = { appId: 'E8C28D3C', displayName: 'Backdrop', isIdleScreen: true };

const tlsOptions = {
  key: fs.readFileSync(path.join(__dirname, 'device-key.pem')),
  cert: fs.readFileSync(path.join(__dirname, 'device-cert.pem')),
};

// Every report carries the device's clock (ms), so tests can time what the device saw.
function report(obj) {
  obj.t = Date.now();
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let sessionCounter = 0;

class Device {
  constructor(name, opts) {
    this.name = name;
    this.port = opts.port || 0;
    // Namespaces each app id announces once ready; unknown app ids get `appNamespace`.
    this.appNamespace = opts.appNamespace || DASHCAST.namespace;
    this.readyDelayMs = opts.readyDelayMs === undefined ? 100 : opts.readyDelayMs;
    this.launchError = opts.launchError || null;
    this.silent = false;
    this.app = null;
    this.server = null;
  }

  listen(done) {
    this.server = new Server(tlsOptions);
    this.server.on('message', (client, src, dst, ns, data) => this.onMessage(client, src, dst, ns, data));
    this.server.on('error', (err) => report({ event: 'error', device: this.name, error: String(err) }));
    this.server.listen(this.port, '127.0.0.1', () => {
      this.port = this.server.server.address().port;
      this.server.server.on('secureConnection', (socket) => {
        // Small request/answer messages: Nagle's algorithm would only add delayed-ACK stalls.
        socket.setNoDelay(true);
        report({ event: 'connection', device: this.name });
        socket.once('close', () => report({ event: 'disconnect', device: this.name }));
      });
      report({ event: 'listening', device: this.name, port: this.port });
      if (done) done();
    });
  }

  powerOff(done) {
    const server = this.server;
    this.server = null;
    this.app = null;
    if (!server) return done && done();
    for (const id of Object.keys(server.clients)) {
      server.clients[id].socket.destroy();
    }
    server.server.close(() => {
      report({ event: 'stopped', device: this.name });
      if (done) done();
    });
  }

  send(client, src, dst, ns, obj) {
    if (!this.server || !this.server.clients[client]) return;
    this.server.send(client, src, dst, ns, JSON.stringify(obj));
  }

  broadcastStatus() {
    if (!this.server) return;
    for (const client of Object.keys(this.server.clients)) {
      this.send(client, 'receiver-0', '*', NS_RECEIVER, this.status(0));
    }
  }

  status(requestId) {
    const app = this.app
      ? {
          appId: this.app.appId,
          displayName: this.app.displayName,
          isIdleScreen: false,
          namespaces: this.app.ready ? this.app.namespaces.map((name) => ({ name })) : [],
          sessionId: this.app.sessionId,
          statusText: this.app.displayName,
          transportId: this.app.transportId,
        }
      : { ...BACKDROP, namespaces: [], sessionId: 'backdrop', transportId: 'backdrop', statusText: '' };
    return {
      type: 'RECEIVER_STATUS',
      requestId,
      status: { applications: [app], volume: { level: 1, muted: false } },
    };
  }

  startApp(appId, displayName, namespaces) {
    sessionCounter += 1;
    const app = {
      appId,
      displayName,
      namespaces,
      sessionId: `session-${this.name}-${sessionCounter}`,
      transportId: `web-${sessionCounter}`,
      ready: false,
    };
    this.app = app;
    return app;
  }

  closeAppConnections(app) {
    if (!this.server) return;
    for (const client of Object.keys(this.server.clients)) {
      this.send(client, app.transportId, '*', NS_CONNECTION, { type: 'CLOSE' });
    }
  }

  onMessage(client, src, dst, ns, data) {
    if (this.silent) return;
    let body = null;
    try {
      body = JSON.parse(data);
    } catch (e) {
      body = { unparsed: String(data) };
    }
    report({ event: 'received', device: this.name, src, dst, ns, data: body });
    if (ns === NS_HEARTBEAT && body.type === 'PING') {
      this.send(client, dst, src, NS_HEARTBEAT, { type: 'PONG' });
    } else if (ns === NS_RECEIVER && body.type === 'GET_STATUS') {
      this.send(client, 'receiver-0', src, NS_RECEIVER, this.status(body.requestId));
    } else if (ns === NS_RECEIVER && body.type === 'LAUNCH') {
      if (this.launchError) {
        this.send(client, 'receiver-0', src, NS_RECEIVER, {
          type: 'LAUNCH_ERROR',
          reason: this.launchError,
          requestId: body.requestId,
        });
        return;
      }
      const previous = this.app;
      if (previous) this.closeAppConnections(previous);
      const ns = body.appId === DASHCAST.appId ? DASHCAST.namespace : this.appNamespace;
      const app = this.startApp(body.appId, body.appId === DASHCAST.appId ? 'DashCast' : 'Receiver', [ns]);
      report({ event: 'launched', device: this.name, appId: body.appId, transportId: app.transportId });
      // Like a real device: first "starting" (no namespaces yet), then ready a moment later.
      this.send(client, 'receiver-0', src, NS_RECEIVER, this.status(body.requestId));
      setTimeout(() => {
        if (this.app !== app) return;
        app.ready = true;
        this.broadcastStatus();
      }, this.readyDelayMs);
    } else if (ns === NS_RECEIVER && body.type === 'STOP') {
      if (this.app && this.app.sessionId === body.sessionId) {
        const app = this.app;
        this.app = null;
        this.closeAppConnections(app);
      }
      this.send(client, 'receiver-0', src, NS_RECEIVER, this.status(body.requestId));
      this.broadcastStatus();
    }
  }
}

const devices = new Map();

function handle(command) {
  const name = command.device;
  let device = devices.get(name);
  switch (command.cmd) {
    case 'start':
      device = new Device(name, command);
      devices.set(name, device);
      device.listen();
      break;
    case 'stop':
      if (device) device.powerOff();
      break;
    case 'restart':
      if (device) device.powerOff(() => device.listen());
      break;
    case 'stopApp':
      if (device && device.app) {
        const app = device.app;
        device.app = null;
        device.closeAppConnections(app);
        device.broadcastStatus();
        report({ event: 'appStopped', device: name });
      }
      break;
    case 'otherApp':
      if (device) {
        if (device.app) device.closeAppConnections(device.app);
        const app = device.startApp(command.appId, command.displayName, ['urn:x-cast:other']);
        app.ready = true;
        device.broadcastStatus();
        report({ event: 'otherApp', device: name });
      }
      break;
    case 'silence':
      if (device) device.silent = !!command.on;
      break;
    case 'set':
      if (device) device.launchError = command.launchError || null;
      break;
    default:
      report({ event: 'error', error: `unknown command ${command.cmd}` });
  }
}

// castv2 loads its .proto file asynchronously; take commands only once it can (de)serialise.
const proto = require('castv2/lib/proto');
function whenProtoLoaded(then) {
  try {
    proto.CastMessage.serialize({
      protocolVersion: 0, sourceId: 'a', destinationId: 'b', namespace: 'c', payloadType: 0, payloadUtf8: '',
    });
  } catch (e) {
    setTimeout(() => whenProtoLoaded(then), 10);
    return;
  }
  then();
}

whenProtoLoaded(() => {
  report({ event: 'ready' });
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  try {
    handle(JSON.parse(line));
  } catch (e) {
    report({ event: 'error', error: String(e) });
  }
  });
});
// The test owns this process: when it closes our stdin, we go.
process.stdin.on('end', () => process.exit(0));
