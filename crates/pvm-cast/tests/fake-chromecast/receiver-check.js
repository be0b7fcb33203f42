// Runs the script of receiver/receiver.html against a stand-in of the Cast receiver SDK and a
// minimal DOM: the real SDK only runs on a Chromecast, so this checks the page's own logic
// (what it frames, where it navigates, what it refuses, the options it starts with).
// Usage: node receiver-check.js <receiver.html>. Exits non-zero on the first failed check.
'use strict';

const fs = require('fs');
const vm = require('vm');
const assert = require('assert');

const html = fs.readFileSync(process.argv[2], 'utf8');
const script = html.match(/<script>\s*([\s\S]*?)<\/script>/)[1];

function element() {
  return { style: {}, textContent: '', src: '', onload: null };
}

function load(pageUrl, withSdk) {
  const page = new URL(pageUrl);
  const elements = { page: element(), note: element() };
  const world = {
    listeners: {},
    started: null,
    navigatedTo: null,
    elements,
  };
  const context = {
    URL,
    URLSearchParams,
    JSON,
    Number,
    setInterval: () => 1,
    clearInterval: () => {},
    document: { getElementById: (id) => elements[id] },
    window: {
      location: {
        protocol: page.protocol,
        href: page.href,
        search: page.search,
        replace: (to) => { world.navigatedTo = to; },
      },
    },
  };
  if (withSdk) {
    function CastReceiverOptions() {}
    context.cast = {
      framework: {
        CastReceiverContext: {
          getInstance: () => ({
            addCustomMessageListener: (ns, fn) => { world.listeners[ns] = fn; },
            start: (options) => { world.started = options; },
          }),
        },
        CastReceiverOptions,
        system: { MessageType: { JSON: 'json' } },
      },
    };
  }
  vm.runInNewContext(script, context);
  world.send = (data) => world.listeners['urn:x-cast:org.pvm.display']({ data });
  return world;
}

const checks = {
  'starts on its namespace with the idle timeout off'() {
    const w = load('http://10.0.0.5:8080/cast/receiver.html', true);
    assert.strictEqual(w.started.disableIdleTimeout, true);
    assert.strictEqual(w.started.customNamespaces['urn:x-cast:org.pvm.display'], 'json');
  },
  'served over http it frames the display page and stays in charge'() {
    const w = load('http://10.0.0.5:8080/cast/receiver.html', true);
    w.send({ url: 'http://10.0.0.5:8080/display/abc', force: true, reload: false, reload_time: 0 });
    assert.strictEqual(w.elements.page.src, 'http://10.0.0.5:8080/display/abc');
    assert.strictEqual(w.navigatedTo, null);
    w.send({ url: 'http://10.0.0.5:8080/display/def', force: true });
    assert.strictEqual(w.elements.page.src, 'http://10.0.0.5:8080/display/def');
  },
  'served over https it navigates to an http page instead of framing it'() {
    const w = load('https://cast.example.org/receiver.html', true);
    w.send({ url: 'http://10.0.0.5:8080/display/abc', force: true });
    assert.strictEqual(w.navigatedTo, 'http://10.0.0.5:8080/display/abc');
    assert.strictEqual(w.elements.page.src, '');
  },
  'served over https it frames an https page'() {
    const w = load('https://cast.example.org/receiver.html', true);
    w.send({ url: 'https://node-7.example.org:8443/display/abc' });
    assert.strictEqual(w.elements.page.src, 'https://node-7.example.org:8443/display/abc');
    assert.strictEqual(w.navigatedTo, null);
  },
  'refuses anything but a web page'() {
    const w = load('http://10.0.0.5:8080/cast/receiver.html', true);
    for (const bad of [{ url: 'javascript:alert(1)' }, { url: 42 }, null, 'not json', { url: 'data:text/html,x' }]) {
      w.send(bad);
      assert.strictEqual(w.elements.page.src, '');
      assert.strictEqual(w.navigatedTo, null);
    }
    assert.match(w.elements.note.textContent, /not a web page/);
  },
  'without the SDK it says the TV needs the internet, or shows ?url= for a layout check'() {
    const offline = load('http://10.0.0.5:8080/cast/receiver.html', false);
    assert.match(offline.elements.note.textContent, /internet/);
    const preview = load('http://10.0.0.5:8080/cast/receiver.html?url=/display/abc', false);
    assert.strictEqual(preview.elements.page.src, 'http://10.0.0.5:8080/display/abc');
  },
};

let passed = 0;
let failed = 0;
for (const [name, check] of Object.entries(checks)) {
  try {
    check();
    passed += 1;
  } catch (e) {
    failed += 1;
    console.error(`FAILED: ${name}\n${e.stack}`);
  }
}
console.log(`receiver page: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
