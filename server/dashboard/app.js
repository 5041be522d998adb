// The ledger's dashboard: a small single-page app over ledgerd's JSON API (server/ledger_api.h).
//
// Rules this file keeps:
// - Every value from the API is rendered with textContent or attributes, never as HTML: the DOM
//   is built with h() below, and nothing assigns innerHTML.
// - The token lives in sessionStorage and travels in the Authorization header; the one URL that
//   carries it is the EventSource of the live tail (a browser's EventSource cannot set headers).
// - Views are drawn from the location hash (#/orders, #/orders/<number>, #/payments, #/revenue,
//   #/projections, #/tail); each drawing has an id, and work started for an older drawing
//   (a fetch, a timer) stops touching the page once another one began.
'use strict';

(() => {
  const TOKEN_KEY = 'orderledger.token';
  const PAGE_ORDERS = 25;
  const PAGE_PAYMENTS = 25;
  const TAIL_KEEP = 500;
  const TAIL_BACKLOG = 50;
  const POLL_MS = 1000;
  const ORDER_STATUSES = ['Open', 'Complete', 'Fulfillment Error', 'Refunded'];
  // Not an order status: ops' queue of refunds whose revocation failed (such an order reads
  // Complete), listed by GET /v1/orders?line_status=revocation_error.
  const REVOCATION_ERROR = 'Revocation Error';
  // The event types of the log (domain/events.h); EventSource delivers named events only to
  // listeners of that name.
  const EVENT_TYPES = ['PaymentCaptured', 'OrderCreated', 'PostCheckout', 'LineFulfilled',
    'FulfillmentFailed', 'FulfillmentRetryRequested', 'LineRevoked', 'RevocationFailed',
    'RevocationRequested'];

  const state = {
    token: '',
    ops: false,          // Whether the token may retry, revoke and rebuild.
    roleText: '',
    view: 0,             // Id of the current drawing.
    timers: new Set(),   // Timers of the current drawing.
    onTail: null,        // The current drawing's listener for tail events.
    ordersPages: [''],   // Cursors of the pages seen in the orders list (for "Previous").
    ordersPageKey: '',
    paymentsCursors: { orphans: [''], excess: [''] },
  };

  // Errors and CSP violations, for the browser test (and for anyone opening the console).
  window.dashboardErrors = [];
  window.addEventListener('error', (event) => {
    window.dashboardErrors.push(String(event.message || event.type));
  });
  window.addEventListener('unhandledrejection', (event) => {
    window.dashboardErrors.push('unhandled: ' + String(event.reason && event.reason.message));
  });
  document.addEventListener('securitypolicyviolation', (event) => {
    window.dashboardErrors.push('CSP: ' + event.violatedDirective + ' ' + event.blockedURI);
  });

  // ---- DOM helpers ----

  const $ = (selector, root = document) => root.querySelector(selector);

  // h('a', {href: '#', class: 'x', onclick: fn}, 'text', child, [more]): an element whose
  // strings become text nodes. Attribute values are set with setAttribute, never parsed.
  function h(tag, props, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') element.className = value;
      else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(element.dataset, value);
      else element.setAttribute(key, value === true ? '' : String(value));
    }
    append(element, children);
    return element;
  }

  function append(element, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : String(child));
    }
  }

  function replace(element, ...children) {
    element.replaceChildren();
    append(element, children);
  }

  // "2026-11-22T12:00:00.000000Z" -> "2026-11-22 12:00:00Z" (the full value in the title).
  function time(text) {
    if (!text) return h('span', { class: 'muted' }, '—');
    const short = String(text).replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    return h('time', { datetime: text, title: text }, short);
  }

  // "in 12 s", "3 min ago".
  function relative(text) {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return '';
    const seconds = Math.round((at - Date.now()) / 1000);
    const size = Math.abs(seconds);
    const amount = size < 90 ? `${size} s` : size < 5400 ? `${Math.round(size / 60)} min`
      : size < 172800 ? `${Math.round(size / 3600)} h` : `${Math.round(size / 86400)} d`;
    return seconds >= 0 ? `in ${amount}` : `${amount} ago`;
  }

  function statusClass(status) {
    const text = String(status || '');
    if (text === 'Complete') return 'ok';
    if (text === 'Open') return 'open';
    if (text === 'Refunded' || text === 'Revoked') return 'gone';
    if (text === 'Not placed') return 'warn';
    if (text.includes('Error')) return 'bad';
    return 'plain';
  }

  function badge(status, id) {
    return h('span', { class: 'badge ' + statusClass(status), id }, status || '?');
  }

  function money(amount, currency) {
    if (amount === null || amount === undefined || amount === '') return '—';
    return currency ? `${amount} ${currency}` : String(amount);
  }

  function orderLink(number) {
    return h('a', { href: '#/orders/' + encodeURIComponent(number), class: 'order-link' }, number);
  }

  function hashText(hash) {
    return h('code', { class: 'hash', title: hash }, String(hash).slice(0, 16) + '…');
  }

  function table(headers, rows, props = {}) {
    return h('table', props,
      h('thead', {}, h('tr', {}, headers.map((name) => h('th', {}, name)))),
      h('tbody', {}, rows.length ? rows
        : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, 'Nothing here.'))));
  }

  function section(title, ...children) {
    return h('section', { class: 'card' }, h('h2', {}, title), children);
  }

  // A message at the top of the page; kind: 'info', 'ok' or 'error'.
  function flash(text, kind = 'info') {
    flash.at = Date.now();
    const element = $('#flash');
    element.className = 'flash ' + kind;
    element.textContent = text;
    element.hidden = false;
    clearTimeout(flash.timer);
    if (kind !== 'error') flash.timer = setTimeout(() => { element.hidden = true; }, 6000);
  }

  function errorText(error) {
    if (error.status === 403) {
      return `Forbidden (403): this token lacks the role this needs. ${error.message}`;
    }
    if (error.status) return `${error.code} (${error.status}): ${error.message}`;
    return error.message;
  }

  function errorBox(error) {
    return h('p', { class: 'error' }, errorText(error));
  }

  // ---- The API ----

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + state.token, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, 'unreachable', 'ledgerd did not answer: ' + error.message);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const detail = (data && data.error) || {};
      const error = new ApiError(response.status, detail.code || 'http_' + response.status,
        detail.message || response.statusText);
      if (response.status === 401 && state.token) signOut('The token was refused: ' + error.message);
      throw error;
    }
    return data;
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') search.set(key, value);
    }
    const text = search.toString();
    return text ? '?' + text : '';
  }

  // ---- Sign-in ----

  function showSignIn(message) {
    $('#signin').hidden = false;
    $('#main').hidden = true;
    $('#nav').hidden = true;
    $('#session').hidden = true;
    const error = $('#signin-error');
    error.hidden = !message;
    error.textContent = message || '';
    $('#token-input').focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    tail.stop();
    stopView();
    showSignIn(message);
  }

  // Checks the token by reading the projections, and finds out whether it has the ops role.
  // There is no endpoint that names a token's roles, so this asks for the rebuild of a projection
  // that does not exist: the access check runs first and answers 403 without ops; with ops the
  // answer is 404 unknown_projection and nothing happens.
  async function signIn(token) {
    state.token = token;
    try {
      await api('GET', '/v1/projections');
    } catch (error) {
      state.token = '';
      if (error.status === 401) return 'This token is not known to ledgerd (401).';
      if (error.status === 403) return 'This token may not read (needs reader, ops or auditor).';
      return errorText(error);
    }
    try {
      await api('POST', '/v1/projections/-role-probe-/rebuild');
      state.ops = true;
    } catch (error) {
      state.ops = error.status === 404;  // In doubt (ledgerd unreachable), no ops buttons.
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    const roleBadge = $('#role-badge');
    roleBadge.textContent = state.ops ? 'ops' : 'read only: no ops role';
    roleBadge.className = 'role ' + (state.ops ? 'ops' : 'readonly');
    roleBadge.title = state.ops ? 'This token may retry, revoke and rebuild'
      : 'Retry, revoke and rebuild need a token with the ops role';
    $('#signin').hidden = true;
    $('#main').hidden = false;
    $('#nav').hidden = false;
    $('#session').hidden = false;
    tail.start();
    route();
    return '';
  }

  // A button for an action that needs ops: disabled with a reason when the token lacks it.
  function opsButton(label, props, onclick) {
    const button = h('button', Object.assign({ type: 'button' }, props), label);
    if (state.ops) {
      button.addEventListener('click', onclick);
    } else {
      button.disabled = true;
      button.title = 'Needs a token with the ops role';
    }
    return button;
  }

  // ---- Views ----

  function stopView() {
    state.view += 1;
    for (const timer of state.timers) clearTimeout(timer);
    state.timers.clear();
    state.onTail = null;
  }

  function later(view, ms, fn) {
    if (view !== state.view) return;
    const timer = setTimeout(() => {
      state.timers.delete(timer);
      if (view === state.view) fn();
    }, ms);
    state.timers.add(timer);
  }

  // A timer of `view` that runs `fn`; scheduling again replaces the pending one, so that loads
  // started from several places (a button, the previous poll) keep one chain of polls.
  function poller(view, fn) {
    let timer = null;
    return (ms) => {
      if (view !== state.view) return;
      if (timer !== null) {
        clearTimeout(timer);
        state.timers.delete(timer);
      }
      const scheduled = setTimeout(() => {
        state.timers.delete(scheduled);
        timer = null;
        if (view === state.view) fn();
      }, ms);
      timer = scheduled;
      state.timers.add(scheduled);
    };
  }

  function route() {
    if (!state.token) return;
    stopView();
    // A message outlives the page it was about only when it is brand new (a retry that moved on).
    if (!flash.at || Date.now() - flash.at > 1500) $('#flash').hidden = true;
    const view = state.view;
    const hash = location.hash || '#/orders';
    const [path, search] = hash.slice(1).split('?');
    const params = new URLSearchParams(search || '');
    const parts = path.split('/').filter(Boolean).map((part) => {
      try {
        return decodeURIComponent(part);
      } catch (error) {
        return part;  // A malformed escape: taken as written.
      }
    });
    const main = $('#main');
    main.replaceChildren();
    let name = parts[0] || 'orders';
    if (name === 'orders' && parts.length > 1) {
      drawOrder(main, view, parts.slice(1).join('/'));
    } else if (name === 'payments') {
      drawPayments(main, view);
    } else if (name === 'revenue') {
      drawRevenue(main, view, params);
    } else if (name === 'projections') {
      drawProjections(main, view);
    } else if (name === 'tail') {
      drawTail(main, view);
    } else {
      name = 'orders';
      drawOrders(main, view, params);
    }
    for (const link of document.querySelectorAll('#nav a')) {
      link.classList.toggle('active', link.dataset.view === name);
    }
  }

  // -- Orders --

  function drawOrders(main, view, params) {
    const filters = {
      status: params.get('status') || '',
      user: params.get('user') || '',
      from: params.get('from') || '',
      to: params.get('to') || '',
    };
    const pageKey = JSON.stringify(filters);
    if (state.ordersPageKey !== pageKey) {
      state.ordersPages = [''];
      state.ordersPageKey = pageKey;
    }
    const statusSelect = h('select', { id: 'filter-status' },
      h('option', { value: '' }, 'Any status'),
      ORDER_STATUSES.map((status) => h('option', { value: status }, status)),
      h('option', { value: REVOCATION_ERROR }, 'A line in Revocation Error'));
    statusSelect.value = filters.status;
    const userInput = h('input', { id: 'filter-user', type: 'number', min: '0', placeholder: 'id',
      value: filters.user });
    const fromInput = h('input', { id: 'filter-from', type: 'date', value: filters.from });
    const toInput = h('input', { id: 'filter-to', type: 'date', value: filters.to });
    const form = h('form', { class: 'filters', id: 'orders-filters' },
      h('label', {}, 'Status', statusSelect),
      h('label', {}, 'User id', userInput),
      h('label', {}, 'Placed from', fromInput),
      h('label', {}, 'to', toInput),
      h('button', { type: 'submit', class: 'primary', id: 'filter-apply' }, 'Apply'),
      h('button', { type: 'button', id: 'filter-reset',
        onclick: () => { location.hash = '#/orders'; } }, 'Reset'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const next = '#/orders' + query({ status: statusSelect.value, user: userInput.value.trim(),
        from: fromInput.value, to: toInput.value });
      if (next === location.hash) route(); else location.hash = next;
    });
    const body = h('div', { id: 'orders-body' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(section('Orders', form, body));
    loadOrdersPage(body, view, filters, state.ordersPages.length - 1);
  }

  async function loadOrdersPage(body, view, filters, pageIndex) {
    const cursor = state.ordersPages[pageIndex];
    // The API lists by status, by user, or by placement dates, one at a time: with a user and a
    // status it lists the user's orders and the status is filtered here; dates combined with a
    // user or a status are filtered here too.
    const params = { limit: PAGE_ORDERS, cursor };
    const datesByServer = !filters.user && !filters.status;
    if (filters.user) params.user = filters.user;
    else if (filters.status === REVOCATION_ERROR) params.line_status = 'revocation_error';
    else if (filters.status) params.status = filters.status;
    if (datesByServer && filters.from) params.placed_from = filters.from;
    if (datesByServer && filters.to) params.placed_to = filters.to;
    let page;
    try {
      page = await api('GET', '/v1/orders' + query(params));
    } catch (error) {
      if (view === state.view) replace(body, errorBox(error));
      return;
    }
    if (view !== state.view) return;
    const filtered = page.orders.filter((order) => {
      if (filters.user && filters.status === REVOCATION_ERROR) {
        if (!(order.lines || []).some((line) => line.status === REVOCATION_ERROR)) return false;
      } else if (filters.user && filters.status && order.status !== filters.status) {
        return false;
      }
      if (datesByServer) return true;
      const day = (order.placed_at || '').slice(0, 10);
      if (filters.from && (!day || day < filters.from)) return false;
      if (filters.to && (!day || day > filters.to)) return false;
      return true;
    });
    const rows = filtered.map((order) => h('tr', { dataset: { order: order.order_number } },
      h('td', {}, orderLink(order.order_number)),
      h('td', {}, badge(order.status)),
      h('td', {}, order.user ? `${order.user.username} (${order.user.id})` : '—'),
      h('td', { class: 'num' }, order.lines ? order.lines.length : 0),
      h('td', { class: 'num' }, money(order.order_total, order.currency)),
      h('td', {}, time(order.placed_at)),
      h('td', { class: 'num' }, order.position),
      h('td', {}, order.status === 'Fulfillment Error'
        ? opsButton('Retry', { class: 'small retry-row' },
          (event) => retryOrder(event.currentTarget, order.order_number,
            () => loadOrdersPage(body, view, filters, pageIndex)))
        : '')));
    const clientSide = filtered.length !== page.orders.length;
    const pager = h('div', { class: 'pager' },
      h('button', { type: 'button', id: 'orders-previous', disabled: pageIndex === 0,
        onclick: () => {
          state.ordersPages.length = pageIndex;
          loadOrdersPage(body, view, filters, pageIndex - 1);
        } }, '← Previous'),
      h('span', { class: 'muted' }, `Page ${pageIndex + 1}`),
      h('button', { type: 'button', id: 'orders-next', disabled: !page.next_cursor,
        onclick: () => {
          state.ordersPages[pageIndex + 1] = page.next_cursor;
          loadOrdersPage(body, view, filters, pageIndex + 1);
        } }, 'Next →'),
      h('button', { type: 'button', onclick: () => loadOrdersPage(body, view, filters, pageIndex) },
        'Refresh'),
      h('span', { class: 'muted' }, `projection at position ${page.projection_position}`));
    replace(body,
      table(['Order', 'Status', 'User', 'Lines', 'Total', 'Placed (UTC)', 'Position', ''], rows,
        { id: 'orders-table', class: 'data' }),
      clientSide ? h('p', { class: 'muted' },
        `${filtered.length} of ${page.orders.length} orders of this page match the filters ` +
        '(a status with a user, and dates with either, are filtered in the browser).') : null,
      pager);
    // The page follows the log: events of its orders (or a new order, on the first page) redraw
    // it, at most every 700 ms.
    const shown = new Set(page.orders.map((order) => 'order-' + order.order_number));
    let redrawing = false;
    state.onTail = (event) => {
      const created = event.type === 'OrderCreated' && pageIndex === 0;
      if (redrawing || !(shown.has(event.stream) || created)) return;
      redrawing = true;
      later(view, 700, () => loadOrdersPage(body, view, filters, pageIndex));
    };
  }

  // Asks for a manual retry; `done` runs once the answer came (either way).
  async function retryOrder(button, number, done) {
    button.disabled = true;
    const label = button.textContent;
    button.textContent = 'Retrying…';
    try {
      const answer = await api('POST', '/v1/orders/' + encodeURIComponent(number) + '/fulfill',
        { requested_by: 'dashboard', reason: 'retry from the dashboard' });
      flash(`Retry of ${number} recorded at position ${answer.position} ` +
        `(lines ${answer.line_ids.join(', ')}).`, 'ok');
      if (done) done(answer);
    } catch (error) {
      flash(error.code === 'nothing_to_fulfill'
        ? `${number}: nothing to fulfill, every line is Complete or Revoked.` : errorText(error),
      'error');
      button.disabled = false;
      button.textContent = label;
      if (done) done(null);
    }
  }

  // -- One order --

  function drawOrder(main, view, number) {
    const root = h('div', { id: 'order-view' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('p', {}, h('a', { href: '#/orders', class: 'back' }, '← Orders')), root);
    const stream = 'order-' + number;
    let shownPosition = -1;
    let watchUntil = 0;  // Poll until then (after a retry or a revoke).
    let pollPending = false;  // One poll at a time, however many loads asked for one.
    const poll = () => {
      if (pollPending) return;
      pollPending = true;
      later(view, POLL_MS, () => {
        pollPending = false;
        load();
      });
    };
    const load = async (minPosition) => {
      const path = '/v1/orders/' + encodeURIComponent(number);
      let order;
      let history;
      try {
        [order, history] = await Promise.all([
          api('GET', path + query({ min_position: minPosition })),
          api('GET', path + '/events')]);
      } catch (error) {
        if (view !== state.view) return;
        if (error.status === 404) {
          replace(root, section(number, h('p', {}, 'No order or payment with this number.')));
        } else if (error.code === 'projection_behind') {
          poll();  // Not there yet after min_position_wait_ms: ask again without it.
        } else {
          replace(root, errorBox(error));
        }
        return;
      }
      if (view !== state.view) return;
      if (order.position !== shownPosition) {
        shownPosition = order.position;
        renderOrder(root, order, history, (position) => {
          watchUntil = Date.now() + 15000;
          load(position);
        });
      }
      // Poll while fulfillment is under way (Open lines, a retry asked for) or just asked for.
      const busy = (order.lines || []).some((line) => line.status === 'Open' || line.retry_requested);
      if (busy || Date.now() < watchUntil) poll();
    };
    // Events of this order in the live tail redraw it.
    state.onTail = (event) => { if (event.stream === stream) load(event.position); };
    load();
  }

  function renderOrder(root, order, history, reload) {
    const lines = order.lines || [];
    const fulfillable = lines.some((line) => line.status === 'Open' || line.status.startsWith('Fulfillment'));
    const actions = h('div', { class: 'actions' });
    if (order.placed && (fulfillable || order.status === 'Fulfillment Error')) {
      actions.append(opsButton('Retry fulfillment', { id: 'retry-button', class: 'primary' },
        (event) => retryOrder(event.currentTarget, order.order_number,
          (answer) => { if (answer) reload(answer.position); })));
    }
    if (!state.ops && actions.childElementCount) {
      actions.append(h('span', { class: 'muted' }, 'Retry and revoke need the ops role.'));
    }
    const user = order.user || {};
    const amounts = order.amounts || {};
    const summary = h('dl', { class: 'summary' },
      field('Status', badge(order.status, 'order-status')),
      field('User', order.user ? `${user.username} (id ${user.id})` : '—'),
      field('Email', user.email || '—'),
      field('Placed', time(order.placed_at)),
      field('Partner', order.partner || '—'),
      field('Total', money(order.order_total, order.currency)),
      field('Captured', money(amounts.captured, order.currency)),
      field('Due', money(amounts.due, order.currency)),
      field('Overpaid', money(amounts.overpaid, order.currency)),
      field('Refunded', money(amounts.refunded, order.currency)),
      field('Shipping', order.shipping_method
        ? `${order.shipping_method} (${money(order.shipping_charge, order.currency)})` : '—'),
      field('Position', order.position));
    replace(root,
      h('section', { class: 'card' },
        h('div', { class: 'title-row' }, h('h2', {}, 'Order ', h('span', { id: 'order-number' },
          order.order_number)), actions),
        summary),
      section('Lines', table(
        ['Line', 'Product', 'Title', 'Qty', 'Unit price', 'Status', 'Attempts', 'Module',
          'Failure', 'Next retry', 'Result', ''],
        lines.map((line) => lineRow(order, line, reload)), { id: 'lines-table', class: 'data' })),
      order.captures && order.captures.length ? section('Payments', table(
        ['Processor', 'Reference', 'Amount', 'Card', 'Captured', 'Excess'],
        order.captures.map((capture) => h('tr', {},
          h('td', {}, capture.processor),
          h('td', {}, capture.reference),
          h('td', { class: 'num' }, money(capture.amount, capture.currency)),
          h('td', {}, [capture.card_type, capture.card_last_digits].filter(Boolean).join(' ') || '—'),
          h('td', {}, time(capture.captured_at)),
          h('td', {}, capture.excess ? badge('excess') : 'no'))), { class: 'data' })) : null,
      section(`History (${history.events.length} events)`,
        history.truncated ? h('p', { class: 'warn-text' },
          'The history is cut here; page through the rest in the log (GET /v1/events).') : null,
        table(['Position', 'Version', 'Type', 'Recorded (UTC)', 'Actor', 'Hash', 'Data'],
          history.events.map((event) => eventRow(event, false)),
          { id: 'history-table', class: 'data' })));
  }

  function field(name, value) {
    return h('div', {}, h('dt', {}, name), h('dd', {}, value));
  }

  function lineRow(order, line, reload) {
    const error = line.last_error;
    const result = [];
    if (line.external_reference) result.push(h('div', {}, 'ref ', h('code', {}, line.external_reference)));
    if (line.codes && line.codes.length) {
      result.push(h('div', {}, 'codes ', line.codes.map((code, i) => [i ? ', ' : '', h('code', {}, code)])));
    }
    if (line.refund_reference) result.push(h('div', {}, 'refund ', line.refund_reference));
    const cell = h('td', { class: 'line-action' });
    if (line.revocation_requested) {
      cell.append(h('span', { class: 'muted' }, 'revocation pending'));
    } else if (line.status === 'Complete' || line.status === 'Revocation Error') {
      cell.append(opsButton('Revoke', { class: 'small danger revoke-button' },
        () => confirmRevoke(cell, order, line, reload)));
    }
    const attributes = Object.entries(line.attributes || {});
    return h('tr', { dataset: { line: line.line_id } },
      h('td', {}, line.line_id),
      h('td', {}, line.product_type),
      h('td', {}, h('div', {}, line.title || '—'),
        line.sku ? h('div', { class: 'muted' }, 'SKU ' + line.sku) : null,
        attributes.length ? h('div', { class: 'muted small-text' },
          attributes.map(([key, value]) => `${key}: ${value}`).join(' · ')) : null),
      h('td', { class: 'num' }, line.quantity),
      h('td', { class: 'num' }, money(line.unit_price, order.currency)),
      h('td', {}, badge(line.status), line.retry_requested ? h('div', { class: 'muted' }, 'retry asked') : null,
        line.revocation_requested ? h('div', { class: 'muted' }, 'revocation asked') : null),
      h('td', { class: 'num' }, line.attempts),
      h('td', {}, line.module || '—'),
      // The last failure stays in the row after a success: shown, but as history.
      h('td', { class: line.status === 'Complete' || line.status === 'Revoked' ? 'failure past' : 'failure' },
        error ? [line.status === 'Complete' || line.status === 'Revoked' ? 'before: ' : '',
          h('strong', {}, error.kind), ': ', error.message] : '—'),
      h('td', {}, line.next_retry_at
        ? [time(line.next_retry_at), h('div', { class: 'muted' }, relative(line.next_retry_at))] : '—'),
      h('td', {}, result.length ? result : '—'),
      cell);
  }

  // Replaces the Revoke button with a small form: the refund reference, Confirm and Cancel.
  function confirmRevoke(cell, order, line, reload) {
    const reference = h('input', { type: 'text', placeholder: 'refund reference (optional)',
      class: 'refund-input' });
    const confirm = h('button', { type: 'submit', class: 'small danger' }, 'Confirm revoke');
    const form = h('form', { class: 'inline-form' }, reference, confirm,
      h('button', { type: 'button', class: 'small', onclick: () => reload() }, 'Cancel'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      confirm.disabled = true;
      try {
        const answer = await api('POST', '/v1/orders/' + encodeURIComponent(order.order_number) +
          '/lines/' + encodeURIComponent(line.line_id) + '/revoke',
        reference.value.trim() ? { refund_reference: reference.value.trim() } : {});
        if (answer.line.revocation_requested) {
          // 202: recorded; the process manager carries it out.
          flash(`Line ${line.line_id} of ${order.order_number}: revocation requested, not ` +
            'carried out yet.', 'ok');
        } else {
          flash(`Line ${line.line_id} of ${order.order_number}: ${answer.line.status}.`,
            answer.line.status === 'Revoked' ? 'ok' : 'error');
        }
        reload(answer.position);
      } catch (error) {
        flash(errorText(error), 'error');
        confirm.disabled = false;
      }
    });
    replace(cell, form);
    reference.focus();
  }

  // A row of the log; with the stream column in the live tail.
  function eventRow(event, withStream) {
    const data = event.data || {};
    const details = h('details', {},
      h('summary', {}, summarize(event)),
      h('div', { class: 'event-detail' },
        h('div', {}, 'hash ', h('code', { class: 'hash-full' }, event.hash)),
        h('pre', {}, JSON.stringify(data, null, 2))));
    const streamCell = withStream ? h('td', {}, event.stream && event.stream.startsWith('order-')
      ? orderLink(event.stream.slice('order-'.length)) : event.stream) : null;
    return h('tr', { dataset: { position: event.position } },
      h('td', { class: 'num' }, event.position),
      withStream ? streamCell : h('td', { class: 'num' }, event.version),
      h('td', {}, h('span', { class: 'event-type' }, event.type)),
      h('td', {}, time(event.recorded_at)),
      withStream ? null : h('td', {}, event.actor || '—'),
      h('td', {}, hashText(event.hash)),
      h('td', { class: 'event-data' }, details));
  }

  // One line about an event's data.
  function summarize(event) {
    const d = event.data || {};
    switch (event.type) {
      case 'PaymentCaptured':
        return `${d.amount} ${d.currency} via ${d.processor} (${d.reference})${d.excess ? ', excess' : ''}`;
      case 'OrderCreated':
        return `${(d.lines || []).length} lines, ${d.order_total} ${d.currency}, user ` +
          `${d.user ? d.user.username : '?'}`;
      case 'PostCheckout':
        return d.synchronous ? 'checkout (synchronous fulfillment)' : 'checkout';
      case 'LineFulfilled':
        return `line ${d.line_id} by ${d.module}, attempt ${d.attempt}`;
      case 'FulfillmentFailed':
        return `line ${d.line_id}, attempt ${d.attempt}: ${d.kind}: ${d.message}`;
      case 'FulfillmentRetryRequested':
        return `${d.automatic ? 'automatic' : 'by ' + d.requested_by}: lines ` +
          `${(d.line_ids || []).join(', ')}`;
      case 'LineRevoked':
        return `line ${d.line_id}${d.refund_reference ? ', refund ' + d.refund_reference : ''}`;
      case 'RevocationFailed':
        return `line ${d.line_id}: ${d.kind}: ${d.message}`;
      case 'RevocationRequested':
        return `line ${d.line_id} by ${d.requested_by}` +
          `${d.refund_reference ? ', refund ' + d.refund_reference : ''}`;
      default:
        return 'data';
    }
  }

  // -- Payments --

  function drawPayments(main, view) {
    const orphansBody = h('div', { id: 'orphans-body' }, h('p', { class: 'muted' }, 'Loading…'));
    const excessBody = h('div', { id: 'excess-body' }, h('p', { class: 'muted' }, 'Loading…'));
    const age = h('select', { id: 'orphan-age' },
      h('option', { value: '0' }, 'any age'),
      h('option', { value: '60' }, 'older than 1 min'),
      h('option', { value: '3600' }, 'older than 1 hour'),
      h('option', { value: '86400' }, 'older than 1 day'));
    age.addEventListener('change', () => {
      state.paymentsCursors.orphans = [''];
      loadOrphans(orphansBody, view, age.value, 0);
    });
    main.append(
      section('Orphan payments', h('p', { class: 'muted' },
        'Captures whose order was never placed, oldest first. ',
        h('label', {}, 'Show ', age)), orphansBody),
      section('Excess payments', h('p', { class: 'muted' },
        'Orders paid more than once, or paid after placement.'), excessBody));
    state.paymentsCursors = { orphans: [''], excess: [''] };
    loadOrphans(orphansBody, view, age.value, 0);
    loadExcess(excessBody, view, 0);
  }

  function pager(cursors, index, nextCursor, load) {
    return h('div', { class: 'pager' },
      h('button', { type: 'button', disabled: index === 0,
        onclick: () => { cursors.length = index; load(index - 1); } }, '← Previous'),
      h('span', { class: 'muted' }, `Page ${index + 1}`),
      h('button', { type: 'button', disabled: !nextCursor,
        onclick: () => { cursors[index + 1] = nextCursor; load(index + 1); } }, 'Next →'));
  }

  async function loadOrphans(body, view, minAge, index) {
    const cursors = state.paymentsCursors.orphans;
    try {
      const page = await api('GET', '/v1/payments/orphans' +
        query({ min_age_s: minAge, limit: PAGE_PAYMENTS, cursor: cursors[index] }));
      if (view !== state.view) return;
      replace(body,
        table(['Order number', 'Processor', 'Reference', 'Amount', 'Card', 'Captured (UTC)', 'Position'],
          page.payments.map((payment) => h('tr', {},
            h('td', {}, orderLink(payment.order_number)),
            h('td', {}, payment.processor),
            h('td', {}, payment.reference),
            h('td', { class: 'num' }, money(payment.amount, payment.currency)),
            h('td', {}, [payment.card_type, payment.card_last_digits].filter(Boolean).join(' ') || '—'),
            h('td', {}, time(payment.captured_at), h('div', { class: 'muted' }, relative(payment.captured_at))),
            h('td', { class: 'num' }, payment.position))), { id: 'orphans-table', class: 'data' }),
        pager(cursors, index, page.next_cursor, (i) => loadOrphans(body, view, minAge, i)));
    } catch (error) {
      if (view === state.view) replace(body, errorBox(error));
    }
  }

  async function loadExcess(body, view, index) {
    const cursors = state.paymentsCursors.excess;
    try {
      const page = await api('GET', '/v1/payments/excess' +
        query({ limit: PAGE_PAYMENTS, cursor: cursors[index] }));
      if (view !== state.view) return;
      replace(body,
        table(['Order number', 'Placed', 'Order total', 'Captured', 'Excess', 'Captures'],
          page.orders.map((order) => h('tr', {},
            h('td', {}, orderLink(order.order_number)),
            h('td', {}, order.placed ? 'yes' : 'no'),
            h('td', { class: 'num' }, money(order.order_total, order.currency)),
            h('td', { class: 'num' }, money(order.captured, order.currency)),
            h('td', { class: 'num' }, money(order.excess, order.currency)),
            h('td', {}, order.captures.map((capture) => h('div', {},
              `${money(capture.amount, capture.currency)} via ${capture.processor} `,
              h('span', { class: 'muted' }, `(${capture.reference})`), capture.excess ? ' excess' : ''))))),
          { id: 'excess-table', class: 'data' }),
        pager(cursors, index, page.next_cursor, (i) => loadExcess(body, view, i)));
    } catch (error) {
      if (view === state.view) replace(body, errorBox(error));
    }
  }

  // -- Revenue --

  function utcDay(date) {
    return date.toISOString().slice(0, 10);
  }

  function drawRevenue(main, view, params) {
    const today = new Date();
    const monthAgo = new Date(today.getTime() - 29 * 86400000);
    const from = h('input', { id: 'revenue-from', type: 'date', value: params.get('from') || utcDay(monthAgo) });
    const to = h('input', { id: 'revenue-to', type: 'date', value: params.get('to') || utcDay(today) });
    const form = h('form', { class: 'filters' },
      h('label', {}, 'From', from), h('label', {}, 'to', to),
      h('button', { type: 'submit', class: 'primary' }, 'Show'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      location.hash = '#/revenue' + query({ from: from.value, to: to.value });
    });
    const body = h('div', { id: 'revenue-body' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(section('Revenue per day (UTC)', form, body));
    loadRevenue(body, view, from.value, to.value);
  }

  async function loadRevenue(body, view, from, to) {
    let answer;
    try {
      answer = await api('GET', '/v1/revenue' + query({ from, to }));
    } catch (error) {
      if (view === state.view) replace(body, errorBox(error));
      return;
    }
    if (view !== state.view) return;
    // Amounts are decimal strings; the bars and totals use numbers, which is exact enough for
    // drawing and for sums of cents far below 2^53.
    const largest = {};
    const totals = {};
    for (const day of answer.days) {
      const captured = Number(day.captured);
      largest[day.currency] = Math.max(largest[day.currency] || 0, captured);
      const total = totals[day.currency] || (totals[day.currency] =
        { captured: 0, refunded: 0, captures: 0, revocations: 0, digits: decimals(day.captured) });
      total.captured += captured;
      total.refunded += Number(day.refunded);
      total.captures += day.captures;
      total.revocations += day.revocations;
    }
    const rows = answer.days.map((day) => {
      const bar = h('div', { class: 'bar' });
      const share = largest[day.currency] ? Number(day.captured) / largest[day.currency] : 0;
      bar.style.width = `${Math.round(share * 100)}%`;
      return h('tr', {},
        h('td', {}, day.day),
        h('td', {}, day.currency),
        h('td', { class: 'num' }, day.captured),
        h('td', { class: 'num' }, day.refunded),
        h('td', { class: 'num' }, day.captures),
        h('td', { class: 'num' }, day.revocations),
        h('td', { class: 'bar-cell' }, bar));
    });
    const totalRows = Object.entries(totals).map(([currency, total]) => h('tr', { class: 'total' },
      h('td', {}, 'Total'), h('td', {}, currency),
      h('td', { class: 'num' }, total.captured.toFixed(total.digits)),
      h('td', { class: 'num' }, total.refunded.toFixed(total.digits)),
      h('td', { class: 'num' }, total.captures),
      h('td', { class: 'num' }, total.revocations),
      h('td', {}, h('span', { class: 'muted' }, 'net ' + (total.captured - total.refunded).toFixed(total.digits)))));
    replace(body,
      table(['Day', 'Currency', 'Captured', 'Refunded', 'Captures', 'Revocations', ''],
        rows.concat(totalRows), { id: 'revenue-table', class: 'data' }),
      h('p', { class: 'muted' }, `Days with no capture or refund are not listed. Projection at ` +
        `position ${answer.projection_position}.`));
  }

  function decimals(amount) {
    const dot = String(amount).indexOf('.');
    return dot < 0 ? 0 : String(amount).length - dot - 1;
  }

  // -- Projections --

  function drawProjections(main, view) {
    const body = h('div', { id: 'projections-body' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(section('Projections', h('p', { class: 'muted' },
      'Each projection folds the log into rows; lag is how many positions it is behind the head. ' +
      'A rebuild builds a new generation beside the active one and switches when it caught up.'),
    body));
    const schedule = poller(view, () => load());
    const load = async () => {
      try {
        const answer = await api('GET', '/v1/projections');
        if (view !== state.view) return;
        replace(body, table(['Name', 'Checkpoint', 'Lag', 'Generation', 'Rebuild', ''],
          answer.projections.map((projection) => projectionRow(projection, load)),
          { id: 'projections-table', class: 'data' }));
        const running = answer.projections.some((projection) => projection.rebuild.running);
        schedule(running ? 300 : 2000);
      } catch (error) {
        if (view !== state.view) return;
        replace(body, errorBox(error));
        schedule(5000);
      }
    };
    load();
  }

  function projectionRow(projection, reload) {
    const rebuild = projection.rebuild || {};
    let progress = h('span', { class: 'muted' }, 'idle');
    if (rebuild.running) {
      const total = Math.max(rebuild.events_total, 1);
      progress = h('div', { class: 'progress-cell' },
        h('progress', { max: total, value: Math.min(rebuild.events_done, total) }),
        h('span', {}, ` ${rebuild.events_done} / ${rebuild.events_total} events ` +
          `(generation ${rebuild.generation})`));
    } else if (rebuild.failure) {
      progress = h('span', { class: 'error' }, 'failed: ' + rebuild.failure);
    } else if (rebuild.generation) {
      progress = h('span', { class: 'muted' }, `last: generation ${rebuild.generation}`);
    }
    const button = opsButton('Rebuild', { class: 'small rebuild-button', disabled: rebuild.running },
      async () => {
        button.disabled = true;
        try {
          const answer = await api('POST', '/v1/projections/' + encodeURIComponent(projection.name) + '/rebuild');
          flash(`Rebuild of ${projection.name} started (generation ${answer.generation}).`, 'ok');
        } catch (error) {
          flash(error.code === 'rebuild_running' ? `${projection.name}: a rebuild is running already.`
            : errorText(error), 'error');
        }
        reload();
      });
    return h('tr', { dataset: { projection: projection.name } },
      h('td', {}, h('strong', {}, projection.name),
        projection.failure ? h('div', { class: 'error' }, projection.failure) : null),
      h('td', { class: 'num' }, projection.checkpoint),
      h('td', { class: 'num' }, h('span', { class: projection.lag > 0 ? 'lagging' : 'caught-up' },
        projection.lag)),
      h('td', { class: 'num' }, projection.generation),
      h('td', {}, progress),
      h('td', {}, button));
  }

  // -- The live tail --

  // Follows the log: GET /v1/subscribe (server-sent events) when ledgerd has it, else polling
  // GET /v1/events. Keeps the last TAIL_KEEP events and tells the current drawing of each.
  const tail = {
    events: [],          // Newest last.
    last: 0,             // The last position received.
    head: 0,
    mode: 'off',
    source: null,
    timer: null,
    generation: 0,       // Bumped by stop(): callbacks of an older start do nothing.
    paused: false,

    async start() {
      this.stop();
      const generation = this.generation;
      this.setMode('connecting');
      try {
        const first = await api('GET', '/v1/events?from=1&limit=1');
        const from = Math.max(1, first.head_position - TAIL_BACKLOG + 1);
        const backlog = await api('GET', '/v1/events' + query({ from, limit: TAIL_BACKLOG }));
        if (generation !== this.generation) return;
        this.events = [];
        this.last = from - 1;
        this.receive(backlog.events, false);
        this.head = backlog.head_position;
      } catch (error) {
        if (generation !== this.generation) return;
        this.setMode('error');
        this.timer = setTimeout(() => this.start(), 5000);
        return;
      }
      this.subscribe(generation);
    },

    stop() {
      this.generation += 1;
      if (this.source) this.source.close();
      this.source = null;
      clearTimeout(this.timer);
      this.setMode('off');
    },

    subscribe(generation) {
      if (typeof EventSource === 'undefined') return this.poll(generation);
      // The one URL with the token: EventSource cannot send an Authorization header.
      const url = '/v1/subscribe' + query({ from: this.last + 1, access_token: state.token });
      const source = new EventSource(url);
      this.source = source;
      let opened = false;
      source.onopen = () => {
        opened = true;
        $('#live').title = 'Live tail of the log';
        if (generation === this.generation) this.setMode('live');
      };
      const onEvent = (message) => {
        if (generation !== this.generation) return;
        this.mode = 'live';  // Also after a reconnection that had no open event yet.
        try {
          this.receive([JSON.parse(message.data)], true);
        } catch (error) {
          window.dashboardErrors.push('bad event: ' + error.message);
        }
      };
      for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
      source.onmessage = onEvent;
      source.onerror = (event) => {
        if (generation !== this.generation) return;
        if (typeof event.data === 'string') {
          // ledgerd's own "event: error" ({code, message}): the log could not be read. The
          // stream ends and EventSource reconnects from the last id.
          let detail = {};
          try {
            detail = JSON.parse(event.data);
          } catch (error) {
            detail = { message: event.data };
          }
          this.setMode('error');
          $('#live').title = 'ledgerd could not read the log: ' + (detail.message || detail.code);
          return;
        }
        if (source.readyState === EventSource.CLOSED) {
          // Refused (no /v1/subscribe yet, or an error status): follow by polling instead.
          source.close();
          this.source = null;
          this.poll(generation);
        } else {
          this.setMode(opened ? 'reconnecting' : 'connecting');
        }
      };
    },

    async poll(generation) {
      if (generation !== this.generation) return;
      this.setMode('polling');
      let more = false;
      try {
        const page = await api('GET', '/v1/events' + query({ from: this.last + 1, limit: 200 }));
        if (generation !== this.generation) return;
        this.receive(page.events, true);
        this.head = page.head_position;
        more = page.events.length === 200;
      } catch (error) {
        if (generation !== this.generation) return;
        this.setMode('error');
      }
      this.timer = setTimeout(() => this.poll(generation), more ? 0 : POLL_MS);
    },

    receive(events, live) {
      const fresh = events.filter((event) => event.position > this.last);
      if (!fresh.length) return;
      this.last = fresh[fresh.length - 1].position;
      this.head = Math.max(this.head, this.last);
      this.events.push(...fresh);
      if (this.events.length > TAIL_KEEP) this.events.splice(0, this.events.length - TAIL_KEEP);
      this.setMode(this.mode);
      if (!live) {
        // The backlog: the tail's drawing shows it (it may have drawn an empty list while the
        // backlog was on its way); the other pages follow live events only.
        if (tail.listener) tail.listener(null);
        return;
      }
      for (const event of fresh) {
        if (state.onTail) state.onTail(event);
        if (tail.listener) tail.listener(event);
      }
    },

    setMode(mode) {
      this.mode = mode;
      const live = $('#live');
      if (!live) return;
      live.className = 'live ' + mode;
      const names = { live: 'live (server-sent events)', polling: 'live (polling)',
        connecting: 'connecting', reconnecting: 'reconnecting', error: 'ledgerd unreachable', off: 'off' };
      $('#live-text').textContent = `${names[mode] || mode} · head ${this.head}`;
    },

    listener: null,
  };

  function drawTail(main, view) {
    const rows = h('tbody', { id: 'tail-rows' });
    const count = h('span', { class: 'muted' });
    const pause = h('button', { type: 'button', id: 'tail-pause' }, tail.paused ? 'Resume' : 'Pause');
    const redraw = () => {
      const shown = tail.events.slice(-200).reverse();
      rows.replaceChildren(...shown.map((event) => eventRow(event, true)));
      count.textContent = `${tail.events.length} events kept, newest first; showing ${shown.length}.`;
    };
    pause.addEventListener('click', () => {
      tail.paused = !tail.paused;
      pause.textContent = tail.paused ? 'Resume' : 'Pause';
      if (!tail.paused) redraw();
    });
    main.append(section('Live tail of the log',
      h('div', { class: 'pager' }, pause, count),
      h('table', { class: 'data', id: 'tail-table' },
        h('thead', {}, h('tr', {}, ['Position', 'Stream', 'Type', 'Recorded (UTC)', 'Hash', 'Data']
          .map((name) => h('th', {}, name)))),
        rows)));
    redraw();
    tail.listener = () => {
      if (view !== state.view) { tail.listener = null; return; }
      if (!tail.paused) redraw();
    };
  }

  // ---- Start ----

  function init() {
    $('#signin-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const input = $('#token-input');
      const button = $('#signin-button');
      button.disabled = true;
      const message = await signIn(input.value.trim());
      button.disabled = false;
      if (message) {
        showSignIn(message);
      } else {
        input.value = '';
      }
    });
    $('#signout-button').addEventListener('click', () => signOut(''));
    window.addEventListener('hashchange', route);
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      signIn(saved).then((message) => { if (message) signOut(message); });
    } else {
      showSignIn('');
    }
  }

  init();
})();
