// The status page (GET /) in Debian's chromium, headless, driven by
// playwright-core (never a downloaded browser). Run by
// tests/integration/test_status_page.c, which owns the replicas and kills
// them; the two talk through files in --dir:
//
//   this script writes   the test then              this script waits for
//   leader-1 (name)      SIGKILLs that leader       killed
//   leader-2 (name)      stops its clients, then    kill-self
//   kill-self-ok         SIGKILLs the page's        killed-self
//                        own replica
//   done                 checks screenshots
//
// Steps: in a second tab, feed the page odd answers (an HTTP 500, not
// JSON, {}, fields of the wrong types, a "replicas" list as
// /v1/status?cluster=1 gives) and check what it shows for each; then open the page; wait until its member table shows three members
// and exactly one leader, named in the leader card too (and the lock and
// election the test made, when given); after the kill,
// wait until it names another leader (one leader row, the killed replica
// shown down); screenshot; after its own replica is killed, wait until it
// says that replica is not answering (and keeps polling); screenshot.
// Fails (exit 1) on any uncaught exception in the page and on any console
// message of type error, except the browser's own "Failed to load
// resource" lines once the page's replica is dead (its polls then fail,
// which is the point). Every wait is bounded.
import { chromium } from 'playwright-core';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    dir: { type: 'string' },            // handshake files, profile
    screenshots: { type: 'string' },    // kept after the test
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    lock: { type: 'string' },           // a lock held with one waiter
    election: { type: 'string' },       // an election led by pod-a
    'first-timeout-ms': { type: 'string', default: '30000' },
    'failover-timeout-ms': { type: 'string', default: '15000' },
  },
});
for (const k of ['url', 'dir', 'screenshots']) {
  if (!opt[k]) {
    console.error(`usage: status_page.mjs --url URL --dir DIR --screenshots DIR`);
    process.exit(2);
  }
}
const firstTimeout = Number(opt['first-timeout-ms']);
const failoverTimeout = Number(opt['failover-timeout-ms']);

const t0 = Date.now();
function log(msg) {
  console.log(`${((Date.now() - t0) / 1000).toFixed(2)}s ${msg}`);
}

function handOver(name, text) {
  const path = join(opt.dir, name);
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function waitForFile(name, timeoutMs) {
  const path = join(opt.dir, name);
  const until = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > until) {
      throw new Error(`the test did not write ${path} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return readFileSync(path, 'utf8').trim();
}

// What the page shows now: the leader card, the connection badge and the
// member table's rows.
function pageView() {
  const leader = document.getElementById('leader');
  const conn = document.getElementById('conn');
  const rows = [...document.querySelectorAll('#members tbody tr[data-name]')];
  return {
    leader: leader ? leader.getAttribute('data-leader') : null,
    conn: conn ? conn.getAttribute('data-state') : null,
    agree: (document.getElementById('agree') || {}).textContent,
    connText: conn ? conn.textContent : null,
    members: rows.map((r) => ({ name: r.dataset.name, role: r.dataset.role,
                                answered: r.dataset.answered })),
    locks: [...document.querySelectorAll('#locks tbody tr[data-name]')].map((r) => (
      { name: r.dataset.name, held: r.dataset.held, waiters: r.dataset.waiters })),
    elections: [...document.querySelectorAll('#elections tbody tr[data-name]')].map((r) => (
      { name: r.dataset.name, leader: r.dataset.leader })),
  };
}

// Waits until pred(view) holds in the page, polling; on timeout, throws
// with what the page showed last.
async function waitForView(page, what, timeoutMs, pred) {
  const until = Date.now() + timeoutMs;
  let view = null;
  for (;;) {
    if (errors.length) {
      throw new Error(`the page logged an error while we waited for ${what}`);
    }
    view = await page.evaluate(pageView);
    if (pred(view)) {
      return view;
    }
    if (Date.now() > until) {
      throw new Error(`the page did not show ${what} within ${timeoutMs} ms; ` +
                      `it shows ${JSON.stringify(view)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function leaders(view) {
  return view.members.filter((m) => m.role === 'leader').map((m) => m.name);
}

const errors = [];       // the page's JavaScript errors and console errors
let ownReplicaDead = false;
let context = null;

// Collects page's uncaught exceptions and console errors into `errors`,
// but for those `allowed` (a function of the message text) excuses.
function watchErrors(page, tab, allowed) {
  page.on('pageerror', (e) => {
    errors.push(`${tab}: page error: ${e.stack || e}`);
    log(`${tab}: page error: ${e}`);
  });
  page.on('console', (m) => {
    if (m.type() !== 'error' || allowed(m.text())) {
      return;
    }
    errors.push(`${tab}: console error: ${m.text()}`);
    log(`${tab}: console error: ${m.text()}`);
  });
}

// Odd answers to the page's polls, in order, each with what the page must
// show then; after them, the replica's real answers. The route holds each
// answer until the page has shown the one before, so no state is missed.
const oddAnswers = [
  { what: 'an HTTP 500 shown as not answering', status: 500,
    body: '{"error":"injected failure"}',
    shows: (v) => v.conn === 'down' && /not answering.*HTTP 500: injected failure/.test(v.connText) },
  { what: 'an answer that is not JSON shown as not answering', status: 200,
    body: '<html>a proxy error page</html>',
    shows: (v) => v.conn === 'down' && /not a JSON object/.test(v.connText) },
  { what: 'an empty object drawn without members', status: 200, body: '{}',
    shows: (v) => v.conn === 'live' && v.members.length === 0 && v.leader === '' },
  { what: 'fields of the wrong types drawn without a throw', status: 200,
    body: JSON.stringify({
      name: 5, role: null, term: 'x', leader: ['a'], members: 'no', replicas: {},
      leader_changes: [null, 7, { term: 'x' }], sessions: null,
      locks: { total: 'many', items: [null, 3, { name: 7, held: 'yes' }] },
      elections: { items: [{}] }, now_unix_ms: 'later', log_syncs: -1 }),
    shows: (v) => v.conn === 'live' && v.members.length === 0 && v.locks.length === 3 },
  { what: 'replicas (from ?cluster=1): one unreachable, one naming another leader',
    status: 200, patch: true,
    shows: (v) => v.conn === 'live' && v.members.length === 3 &&
      v.members.filter((m) => m.answered === 'false').length === 1 &&
      !v.members.some((m) => m.role === 'down') && /says someone-else/.test(v.agree) },
  { what: 'the real answers again', real: true,
    shows: (v) => v.conn === 'live' && v.members.length === 3 &&
      !v.members.some((m) => m.role === 'down' || m.answered === 'false') },
];

// The real status with a made-up "replicas" list (GET /v1/status?cluster=1
// adds it): one other member unreachable, the rest reachable, one of
// them naming another leader than the serving replica does.
function withReplicas(s) {
  const ms = Array.isArray(s.members) ? s.members : [];
  const down = ms.findIndex((m) => !m.self);
  const odd = ms.findIndex((m, i) => i !== down);
  s.replicas = ms.map((m, i) => i === down
    ? { name: m.name, reachable: false, error: 'connect: connection refused' }
    : { name: m.name, reachable: true, role: m.role, term: s.term,
        leader: i === odd ? 'someone-else' : s.leader,
        commit_index: s.commit_index, applied_index: s.applied_index - i,
        last_index: s.last_index, error: '' });
  return s;
}

// A second tab whose polls get oddAnswers: the page must show each the
// way it should and never throw.
async function checkOddAnswers() {
  const page = await context.newPage();
  watchErrors(page, 'odd answers', (text) =>
    /^Failed to load resource: the server responded with a status of 500/.test(text));
  const gates = oddAnswers.map(() => { let open; const p = new Promise((r) => { open = r; }); return { p, open }; });
  gates[0].open();
  let served = 0;
  await page.route('**/v1/status*', async (route) => {
    const i = served++;
    if (i >= oddAnswers.length - 1) {
      return route.continue();
    }
    await gates[i].p;
    const a = oddAnswers[i];
    try {
      if (a.patch) {
        const resp = await route.fetch();
        await route.fulfill({ response: resp, json: withReplicas(await resp.json()) });
      } else {
        await route.fulfill({ status: a.status, contentType: 'application/json', body: a.body });
      }
    } catch (e) {
      log(`odd answers: answer ${i} not delivered: ${e.message || e}`);
    }
  });
  await page.goto(opt.url, { timeout: 15000 });
  for (let i = 0; i < oddAnswers.length; i++) {
    gates[i].open();
    await waitForView(page, oddAnswers[i].what, 10000, oddAnswers[i].shows);
    log(`odd answers: ${oddAnswers[i].what}: ok`);
    if (oddAnswers[i].patch) {
      await page.screenshot({ path: join(opt.screenshots, 'status_page-replicas.png'),
                              fullPage: true });
    }
  }
  await page.close();
}

async function main() {
  context = await chromium.launchPersistentContext(join(opt.dir, 'chromium-profile'), {
    executablePath: opt.chromium,
    headless: true,
    timeout: 30000,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync'],
  });
  await checkOddAnswers();
  const page = context.pages()[0] || await context.newPage();
  // Once its replica is dead its polls fail, and the browser says so.
  watchErrors(page, 'page', (text) =>
    ownReplicaDead && /^Failed to load resource: net::ERR_/.test(text));

  log(`open ${opt.url}`);
  const resp = await page.goto(opt.url, { timeout: 15000 });
  if (!resp || resp.status() !== 200) {
    throw new Error(`GET ${opt.url}: ${resp ? resp.status() : 'no response'}`);
  }
  const type = resp.headers()['content-type'] || '';
  if (!type.startsWith('text/html')) {
    throw new Error(`GET ${opt.url}: Content-Type ${type}, want text/html`);
  }

  const first = await waitForView(page, 'three members and one leader' +
    (opt.lock ? `, lock ${opt.lock} held with a waiter` : '') +
    (opt.election ? `, election ${opt.election} led by pod-a` : ''), firstTimeout,
    (v) => v.conn === 'live' && v.members.length === 3 && leaders(v).length === 1 &&
           v.leader === leaders(v)[0] &&
           (!opt.lock || v.locks.some((l) => l.name === opt.lock && l.held === 'true' &&
                                           l.waiters === '1')) &&
           (!opt.election || v.elections.some((e) => e.name === opt.election &&
                                                   e.leader === 'pod-a')));
  log(`page shows leader ${first.leader}: ${JSON.stringify(first.members)}`);
  handOver('leader-1', first.leader);

  await waitForFile('killed', 30000);
  const t1 = Date.now();
  log(`the test killed ${first.leader}`);
  const second = await waitForView(page, `a leader other than ${first.leader}, ` +
    `with ${first.leader} down`, failoverTimeout,
    (v) => v.conn === 'live' && v.members.length === 3 && leaders(v).length === 1 &&
           v.leader === leaders(v)[0] && v.leader !== first.leader &&
           v.members.some((m) => m.name === first.leader && m.role === 'down'));
  log(`page shows new leader ${second.leader} after ${Date.now() - t1} ms: ` +
      JSON.stringify(second.members));
  await page.screenshot({ path: join(opt.screenshots, 'status_page.png'), fullPage: true });
  handOver('leader-2', second.leader);

  await waitForFile('kill-self', 30000);
  ownReplicaDead = true; // from now on its polls may fail
  handOver('kill-self-ok', 'ok');
  await waitForFile('killed-self', 30000);
  log('the test killed the page\'s own replica');
  const down = await waitForView(page, '"this replica is not answering"', 10000,
    (v) => v.conn === 'down' && /not answering/.test(v.connText));
  log(`page says: ${down.connText}`);
  // Still polling: the time since the failure keeps growing.
  const before = down.connText;
  await waitForView(page, 'the failure banner updating', 5000,
    (v) => v.conn === 'down' && v.connText !== before);
  await page.screenshot({ path: join(opt.screenshots, 'status_page-down.png'), fullPage: true });
}

let rc = 0;
try {
  await main();
} catch (e) {
  console.error(`FAIL: ${e.message || e}`);
  rc = 1;
}
if (errors.length) {
  console.error(`FAIL: the page logged ${errors.length} error(s); the first:\n  ` +
                errors.slice(0, 3).join('\n  '));
  rc = 1;
}
if (context) {
  await context.close().catch((e) => console.error(`closing chromium: ${e}`));
}
handOver('done', rc === 0 ? 'ok' : 'failed');
log(rc === 0 ? 'ok' : 'failed');
process.exit(rc);
