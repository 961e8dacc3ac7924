/**
 * The live view's page: static HTML and its script, served by {@link startLiveView} beside
 * Mermaid's single-file build. The page fetches the diagrams, draws them with Mermaid, and only
 * then subscribes to the stream (`/events`, Server-Sent Events): a viewer counts as connected
 * once it can show what it is sent. Everything that comes from the session is put in the page
 * with `textContent` or as attributes, never as HTML; the SVGs are Mermaid's, from our diagrams.
 *
 * Attributes a test (or a curious user) can read: `body[data-status]` (`loading`, `drawing`,
 * `live`, `reconnecting`, `ended`, `failed`), `body[data-connected-at-event]` (how many events the
 * session had sent when this page subscribed), `[data-actor]` cards with `data-state`, and
 * `[data-live-active]` (the state's id) on the active states' boxes in each SVG.
 */

/** The page, for `GET /`. `eventsShown` is how many events the list keeps. */
export function liveViewHtml(eventsShown: number): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aistock live view</title>
<style>${STYLE}</style>
</head>
<body data-status="loading" data-events-shown="${eventsShown}">
<header>
  <h1>aistock live view</h1>
  <span id="status">loading…</span>
  <span id="count"></span>
</header>
<main>
  <nav><h2>Session tree</h2><ul id="tree"></ul></nav>
  <div id="actors"></div>
  <aside><h2>Recent events <small>(newest first, the last ${eventsShown})</small></h2><ol id="events"></ol></aside>
</main>
<script src="/mermaid.min.js"></script>
<script src="/live.js"></script>
</body>
</html>
`;
}

const STYLE = `
* { box-sizing: border-box; }
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933; margin: 0; }
header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; border-bottom: 1px solid #e4e7eb; }
h1 { font-size: 18px; margin: 0; } h2 { font-size: 14px; margin: 0 0 8px; } h3 { font-size: 14px; margin: 0; }
#status { color: #52606d; } body[data-status="live"] #status { color: #15803d; } body[data-status="failed"] #status { color: #b91c1c; }
main { display: grid; grid-template-columns: 220px 1fr 380px; gap: 12px; padding: 12px 16px; align-items: start; }
nav ul { list-style: none; padding-left: 14px; margin: 0; } nav > ul { padding-left: 0; }
nav li { margin: 2px 0; white-space: nowrap; } nav code { color: #52606d; }
#actors { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
.actor { border: 1px solid #e4e7eb; border-radius: 6px; padding: 8px 10px; min-width: 0; }
.actor[data-machine="session"] { grid-column: 1 / -1; } /* the largest diagram: the whole row */
.actor header { padding: 0; border: 0; gap: 8px; }
.actor .state { font-family: ui-monospace, monospace; background: #fff7d6; padding: 1px 4px; border-radius: 3px; }
.actor .diagram { overflow: auto; max-height: 520px; margin: 6px 0; }
.actor .diagram svg { max-width: 100%; height: auto; }
.actor ol.trail { margin: 4px 0 0; padding-left: 18px; color: #52606d; font-family: ui-monospace, monospace; font-size: 12px; max-height: 90px; overflow: auto; }
.actor ul.workers { margin: 4px 0 0; padding-left: 18px; font-size: 12px; }
aside ol { list-style: none; margin: 0; padding: 0; max-height: calc(100vh - 120px); overflow: auto; font-family: ui-monospace, monospace; font-size: 12px; }
aside li { border-bottom: 1px solid #f0f2f4; padding: 2px 0; overflow-wrap: anywhere; }
aside .type { font-weight: 600; } aside .at, aside .route, aside .preview { color: #52606d; }
g.node[data-live-active] > rect { fill: #ffd54f !important; stroke: #e65100 !important; stroke-width: 2px !important; }
g.statediagram-cluster[data-live-active] rect { stroke: #e65100 !important; stroke-width: 2px !important; }
g.statediagram-cluster[data-live-active] > rect.inner { fill: #fff8e1 !important; }
`;

/** The page's script, for `GET /live.js`. Plain browser JavaScript; `mermaid` is the global of its single-file build. */
export const LIVE_VIEW_SCRIPT = String.raw`
(function () {
  'use strict';
  var body = document.body;
  var eventsShown = Number(body.getAttribute('data-events-shown'));
  var svgs = {};        // machine id -> Promise of its SVG text
  var drawnSvgs = {};   // machine id -> its SVG text, once drawn
  var actors = {};      // sessionId -> the actor as last sent
  var cards = {};       // sessionId -> its card
  var lastSeq = 0;
  var drawn = 0;
  var queue = Promise.resolve();

  function status(name, text) {
    body.setAttribute('data-status', name);
    document.getElementById('status').textContent = text;
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function seconds(ms) { return '+' + (ms / 1000).toFixed(1) + ' s'; }

  // One render at a time: Mermaid's renderer is not reentrant.
  function draw(diagram) {
    if (svgs[diagram.machineId] === undefined) {
      svgs[diagram.machineId] = queue = queue.then(function () {
        drawn += 1;
        return mermaid.render('live-diagram-' + drawn, diagram.source).then(function (result) {
          drawnSvgs[diagram.machineId] = result.svg;
          return result.svg;
        });
      });
    }
    return svgs[diagram.machineId];
  }

  // Mermaid names each state's group "<svg id>-state-<state id>-<n>": the state ids are ours (stateIds).
  function indexStates(card) {
    var svg = card.querySelector('.diagram svg');
    var prefix = svg.id + '-state-';
    card.states = {};
    svg.querySelectorAll('g[id^="' + prefix + '"]').forEach(function (node) {
      var id = node.id.slice(prefix.length).replace(/-\d+$/, '');
      (card.states[id] = card.states[id] || []).push(node);
    });
  }

  function highlight(card, activeIds) {
    if (card.states === undefined) return;
    card.querySelectorAll('[data-live-active]').forEach(function (node) { node.removeAttribute('data-live-active'); });
    activeIds.forEach(function (id) {
      (card.states[id] || []).forEach(function (node) { node.setAttribute('data-live-active', id); });
    });
  }

  function cardOf(actor) {
    var card = cards[actor.sessionId];
    if (card !== undefined) return card;
    card = el('section', 'actor');
    card.setAttribute('data-machine', actor.machineId);
    var head = el('header');
    head.appendChild(el('h3'));
    head.appendChild(el('code', 'state'));
    head.appendChild(el('span', 'status'));
    card.appendChild(head);
    card.appendChild(el('div', 'diagram', 'drawing…'));
    card.appendChild(el('ul', 'workers'));
    card.appendChild(el('ol', 'trail'));
    cards[actor.sessionId] = card;
    document.getElementById('actors').appendChild(card);
    function attach(svg) {
      card.querySelector('.diagram').innerHTML = svg;
      indexStates(card);
      card.setAttribute('data-drawn', '');
      highlight(card, actors[actor.sessionId].activeIds);
    }
    // Drawn already (the usual case): at once, so the first state shown is lit too.
    if (drawnSvgs[actor.machineId] !== undefined) attach(drawnSvgs[actor.machineId]);
    else draw({ machineId: actor.machineId, source: '' }).then(attach, function (error) {
      card.querySelector('.diagram').textContent = 'the diagram could not be drawn: ' + (error && error.message || error);
    });
    return card;
  }

  function showActor(actor) {
    actors[actor.sessionId] = actor;
    if (actor.machineId === null) return;
    var card = cardOf(actor);
    card.setAttribute('data-actor', actor.name);
    card.querySelector('h3').textContent = actor.name;
    card.setAttribute('data-state', actor.state === null ? '' : actor.state);
    card.setAttribute('data-status', actor.status);
    card.querySelector('.state').textContent = actor.state === null ? '' : actor.state;
    card.querySelector('.status').textContent = actor.status === 'active' ? '' : actor.status;
    var trail = card.querySelector('.trail');
    trail.textContent = '';
    actor.trail.forEach(function (step) { trail.appendChild(el('li', '', seconds(step.at) + '  ' + step.state)); });
    highlight(card, actor.activeIds);
  }

  function showWorkers() {
    Object.keys(cards).forEach(function (id) { cards[id].querySelector('.workers').textContent = ''; });
    Object.keys(actors).forEach(function (id) {
      var actor = actors[id];
      var parent = cards[actor.parentId];
      if (actor.machineId !== null || parent === undefined) return;
      var item = el('li', '', 'invoked: ' + actor.name + ' (running)');
      item.setAttribute('data-worker', actor.name);
      parent.querySelector('.workers').appendChild(item);
    });
  }

  function showTree() {
    var lists = {};
    var root = document.getElementById('tree');
    root.textContent = '';
    Object.keys(actors).forEach(function (id) {
      var actor = actors[id];
      var item = el('li');
      item.setAttribute('data-tree-actor', actor.name);
      item.appendChild(el('span', '', actor.name + ' '));
      item.appendChild(el('code', '', actor.state === null ? '(worker)' : actor.state));
      lists[id] = el('ul');
      item.appendChild(lists[id]);
      var parentList = lists[actor.parentId];
      (parentList === undefined ? root : parentList).appendChild(item);
    });
  }

  function showEvents(events, count) {
    var list = document.getElementById('events');
    var fresh = document.createDocumentFragment();
    events.forEach(function (event) {
      if (event.seq <= lastSeq) return;
      var item = el('li');
      item.setAttribute('data-seq', String(event.seq));
      item.setAttribute('data-type', event.type);
      item.appendChild(el('span', 'at', seconds(event.at) + ' '));
      item.appendChild(el('span', 'type', event.type));
      item.appendChild(el('span', 'route', ' ' + (event.from === null ? '' : event.from + ' → ') + event.to + ' '));
      if (event.preview !== '') item.appendChild(el('span', 'preview', event.preview));
      fresh.appendChild(item);
    });
    if (events.length > 0 && events[0].seq > lastSeq) lastSeq = events[0].seq;
    list.insertBefore(fresh, list.firstChild);
    while (list.children.length > eventsShown) list.removeChild(list.lastChild);
    document.getElementById('count').textContent = count + ' events';
  }

  function apply(message) {
    message.diagrams.forEach(draw);
    (message.removed || []).forEach(function (id) { delete actors[id]; });
    message.actors.forEach(showActor);
    showWorkers();
    showTree();
    showEvents(message.events, message.eventCount);
  }

  function subscribe() {
    var stream = new EventSource('/events');
    stream.addEventListener('view', function (e) {
      var view = JSON.parse(e.data);
      if (!body.hasAttribute('data-connected-at-event')) body.setAttribute('data-connected-at-event', String(view.eventCount));
      status('live', 'live');
      apply(view);
    });
    stream.addEventListener('update', function (e) { apply(JSON.parse(e.data)); });
    stream.addEventListener('end', function () {
      stream.close();
      status('ended', 'the session has ended; this is its last state');
    });
    stream.onerror = function () { if (body.getAttribute('data-status') !== 'ended') status('reconnecting', 'connection lost, reconnecting…'); };
  }

  try {
    mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'neutral' });
  } catch (error) {
    status('failed', 'Mermaid did not load: ' + (error && error.message || error));
    return;
  }
  status('drawing', 'drawing the diagrams…');
  fetch('/diagrams').then(function (response) { return response.json(); }).then(function (diagrams) {
    return Promise.all(diagrams.map(draw));
  }).then(subscribe, function (error) {
    status('failed', 'the diagrams could not be drawn: ' + (error && error.message || error));
  });
})();
`;
