// The t-SimCNE map viewer. Points are splatted into one ImageData per frame
// (canvas 2D, no GPU needed): a million points cost one pass over typed
// arrays. Point size and opacity follow the density on screen (the level of
// detail): small and faint when zoomed out, so dense clusters show their
// structure; larger when zoomed in; and once few enough points are in view,
// images replace dots where they have room. The same script runs against the
// server's API or, in an exported report, against data inlined in the page
// (window.TSV_REPORT).
(function () {
  'use strict';
  const REP = window.TSV_REPORT || null;
  const $ = (id) => document.getElementById(id);
  const canvas = $('map');
  const ctx = canvas.getContext('2d', { alpha: false });
  const NO_LABEL = [176, 176, 176];
  const HOVER_PX = 10; // hover picks the nearest point within this many CSS pixels
  const CELL_PX = 52; // CSS size of a thumbnail cell in image mode
  const THUMB_LIMIT = 3000; // images kept in the page's cache
  const IMAGE_AVG = 4; // image mode below this many points per cell in view
  const IMAGE_ROOM = 8; // a cell with more points than this keeps its dots

  // T is the page's state, and the handle the browser tests use.
  const T = (window.tsView = { ready: false, firstPaint: null, error: null, drawn: 0, drawnPerClass: [], thumbsDrawn: 0, lastExport: null });

  let meta, n, X, Y, L, IX, cls, nc, colors, hidden, perm, rowOf = null;
  let bx0, by0, bx1, by1; // data bounds
  let view = { cx: 0, cy: 0, s: 1 }, s0 = 1; // data → device pixels: x' = (x-cx)s + W/2
  let W = 0, H = 0, dpr = 1, img = null;
  let hover = -1, picked = -1, nbrs = [], selection = null, selBox = null;
  let grid = null; // spatial index for hover: cell start offsets and rows
  const thumbs = new Map(); // dataset index → Image

  function fail(msg) {
    T.error = msg;
    $('status').textContent = msg;
    $('status').className = 'note';
  }

  async function load() {
    let buf;
    if (REP) {
      meta = REP.meta;
      const bin = atob(REP.points);
      buf = new ArrayBuffer(bin.length);
      const u8 = new Uint8Array(buf);
      for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    } else {
      const [m, p] = await Promise.all([
        fetch('api/meta').then((r) => (r.ok ? r.json() : Promise.reject(new Error('api/meta: HTTP ' + r.status)))),
        fetch('api/points').then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error('api/points: HTTP ' + r.status)))),
      ]);
      meta = m;
      buf = p;
    }
    const tData = performance.now();
    const head = new Uint32Array(buf, 0, 4);
    if (String.fromCharCode(...new Uint8Array(buf, 0, 4)) !== 'TSVP' || head[1] !== 1) throw new Error('points: not a TSVP v1 body');
    n = head[2];
    X = new Float32Array(buf, 16, n);
    Y = new Float32Array(buf, 16 + 4 * n, n);
    L = new Int32Array(buf, 16 + 8 * n, n);
    IX = new Int32Array(buf, 16 + 12 * n, n);
    nc = meta.classes.length;
    colors = meta.colors.map((h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)]);
    colors.push(NO_LABEL);
    hidden = new Uint8Array(nc + 1);
    cls = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const l = L[i];
      cls[i] = l >= 0 && l < nc ? l : nc;
      if (IX[i] !== i && rowOf === null) rowOf = new Map();
    }
    if (rowOf !== null) for (let i = 0; i < n; i++) rowOf.set(IX[i], i);
    // A fixed pseudo-random drawing order, so that no class is always on top.
    perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    let seed = 0x9e3779b9 ^ n;
    for (let i = n - 1; i > 0; i--) {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      const j = (seed >>> 0) % (i + 1);
      const t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    bx0 = Infinity; by0 = Infinity; bx1 = -Infinity; by1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = X[i], y = Y[i];
      if (x === x && y === y && x !== Infinity && x !== -Infinity && y !== Infinity && y !== -Infinity) {
        if (x < bx0) bx0 = x; if (x > bx1) bx1 = x;
        if (y < by0) by0 = y; if (y > by1) by1 = y;
      }
    }
    if (!(bx1 >= bx0)) { bx0 = -1; bx1 = 1; by0 = -1; by1 = 1; }
    if (bx1 - bx0 < 1e-9) { bx0 -= 1; bx1 += 1; }
    if (by1 - by0 < 1e-9) { by0 -= 1; by1 += 1; }
    resize();
    home();
    buildLegend();
    showMeta();
    const tPrep = performance.now();
    draw();
    T.firstPaint = performance.now();
    // Where the time to first paint went (ms since navigation start).
    T.timings = { data: tData, prepared: tPrep, painted: T.firstPaint };
    T.ready = true;
    setTimeout(buildGrid, 0);
  }

  function showMeta() {
    $('title').textContent = meta.file + (REP ? ' (report)' : '');
    let st = n.toLocaleString('en') + ' points';
    if (meta.pack) st += ' · thumbnails from ' + meta.pack.file;
    if (REP && meta.report_thumbs) st += ' · ' + meta.report_thumbs.toLocaleString('en') + ' thumbnails in this report';
    $('status').textContent = st;
    const m = $('meta');
    m.textContent = '';
    if (meta.thumbs_note) {
      const d = document.createElement('div');
      d.className = 'note';
      d.id = 'thumbs-note';
      d.textContent = meta.thumbs_note;
      m.appendChild(d);
    }
    const md = meta.metadata || {};
    for (const k of Object.keys(md).sort()) {
      const d = document.createElement('div');
      d.textContent = k + ': ' + md[k];
      m.appendChild(d);
    }
  }

  function buildLegend() {
    const ul = $('legend');
    ul.textContent = '';
    const entries = meta.classes.map((c, i) => [i, c, meta.counts[i]]);
    if (meta.unlabelled > 0) entries.push([nc, 'no label', meta.unlabelled]);
    for (const [i, name, count] of entries) {
      const li = document.createElement('li');
      li.dataset.class = i;
      const sw = document.createElement('span');
      sw.className = 'sw';
      sw.style.background = 'rgb(' + colors[i].join(',') + ')';
      const nm = document.createElement('span');
      nm.textContent = name;
      const ct = document.createElement('span');
      ct.className = 'n';
      ct.textContent = count.toLocaleString('en');
      li.append(sw, nm, ct);
      li.title = 'click: hide/show ' + name;
      li.addEventListener('click', () => setHidden(i, !hidden[i]));
      ul.appendChild(li);
    }
  }

  function setHidden(c, h) {
    hidden[c] = h ? 1 : 0;
    const li = document.querySelector('#legend li[data-class="' + c + '"]');
    if (li) li.classList.toggle('off', !!h);
    if (hover >= 0 && hidden[cls[hover]]) hideCard();
    draw();
  }

  function resize() {
    dpr = window.devicePixelRatio || 1;
    const r = canvas.getBoundingClientRect();
    W = Math.max(1, Math.round(r.width * dpr));
    H = Math.max(1, Math.round(r.height * dpr));
    canvas.width = W;
    canvas.height = H;
    img = ctx.createImageData(W, H);
  }

  function home() {
    const pad = 0.04;
    const dx = (bx1 - bx0) * (1 + 2 * pad), dy = (by1 - by0) * (1 + 2 * pad);
    view.s = s0 = Math.min(W / dx, H / dy);
    view.cx = (bx0 + bx1) / 2;
    view.cy = (by0 + by1) / 2;
  }

  const sx = (x) => (x - view.cx) * view.s + W / 2;
  const sy = (y) => H / 2 - (y - view.cy) * view.s;
  const dataX = (px) => (px - W / 2) / view.s + view.cx;
  const dataY = (py) => view.cy - (py - H / 2) / view.s;

  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function draw() {
    const shown = countShown();
    const zoom = view.s / s0;
    // Level of detail: the radius a point gets if the shown points were
    // spread evenly over the frame at this zoom, bounded; the opacity falls
    // with the number of points in view so that dense regions keep their
    // shape instead of saturating.
    const perPx = (shown / (W * H)) / (zoom * zoom);
    let r = 0.55 * Math.sqrt(1 / (Math.PI * Math.max(perPx, 1e-12)));
    r = Math.max(1.1 * dpr, Math.min(6 * dpr, r));
    const inView = shown / (zoom * zoom);
    const alpha = Math.max(0.3, Math.min(0.9, 0.3 + 0.6 * Math.sqrt(2000 / Math.max(inView, 1))));
    const d = img.data;
    new Uint32Array(d.buffer).fill(0xffffffff);
    const offs = discOffsets(r);
    const drawnPer = new Array(nc + 1).fill(0);
    let drawn = 0;
    const cellDev = CELL_PX * dpr, cols = Math.ceil(W / cellDev), rowsN = Math.ceil(H / cellDev);
    const occupant = new Int32Array(cols * rowsN).fill(-1);
    const occCount = new Uint16Array(cols * rowsN);
    for (let k = 0; k < n; k++) {
      const i = perm[k];
      const c = cls[i];
      if (hidden[c]) continue;
      const px = (X[i] - view.cx) * view.s + W / 2, py = H / 2 - (Y[i] - view.cy) * view.s;
      if (!(px >= -r && px < W + r && py >= -r && py < H + r)) continue;
      drawn++;
      drawnPer[c]++;
      const col = colors[c];
      splat(d, px, py, offs, col[0], col[1], col[2], alpha);
      if (px >= 0 && py >= 0 && px < W && py < H) {
        const cell = Math.floor(py / cellDev) * cols + Math.floor(px / cellDev);
        if (occupant[cell] < 0) occupant[cell] = i;
        if (occCount[cell] < 65535) occCount[cell]++;
      }
    }
    if (selection) {
      for (const i of selection.rows) {
        if (hidden[cls[i]]) continue;
        const col = colors[cls[i]];
        splat(d, sx(X[i]), sy(Y[i]), discOffsets(Math.max(r, 1.5 * dpr)), col[0] * 0.6, col[1] * 0.6, col[2] * 0.6, 1);
      }
    }
    ctx.putImageData(img, 0, 0);
    T.drawn = drawn;
    T.drawnPerClass = drawnPer;
    T.radius = r / dpr;
    T.alpha = alpha;
    // Image mode: once zoomed in so that the points in view average a few
    // per cell of the image grid, every cell with room (few points, so
    // the image hides little) shows the image of its first point; dense
    // cells keep their dots until zoomed in further.
    let tdrawn = 0;
    const haveThumbs = meta.pack || (REP && meta.report_thumbs > 0);
    T.imageMode = false;
    if (haveThumbs && drawn > 0 && drawn <= cols * rowsN * IMAGE_AVG) {
      T.imageMode = true;
      const size = cellDev * 0.92;
      ctx.imageSmoothingEnabled = false;
      // Images do not overlap: a cell's image is placed only if it keeps
      // clear of those already placed in the cells around it.
      const placed = new Int32Array(occupant.length).fill(-1);
      const clear = (cell, px, py) => {
        const cx = cell % cols, cy = (cell - cx) / cols;
        for (let yy = Math.max(0, cy - 1); yy <= Math.min(rowsN - 1, cy + 1); yy++) {
          for (let xx = Math.max(0, cx - 1); xx <= Math.min(cols - 1, cx + 1); xx++) {
            const j = placed[yy * cols + xx];
            if (j >= 0 && Math.abs(sx(X[j]) - px) < size + 2 * dpr && Math.abs(sy(Y[j]) - py) < size + 2 * dpr) return false;
          }
        }
        return true;
      };
      for (let cell = 0; cell < occupant.length; cell++) {
        const i = occupant[cell];
        if (i < 0 || occCount[cell] > IMAGE_ROOM) continue;
        const px = sx(X[i]), py = sy(Y[i]);
        if (!clear(cell, px, py)) continue;
        const im = thumb(IX[i], 64);
        if (!im || !im.complete || !im.naturalWidth) continue;
        placed[cell] = i;
        const col = colors[cls[i]];
        ctx.fillStyle = 'rgb(' + col.join(',') + ')';
        ctx.fillRect(px - size / 2 - dpr, py - size / 2 - dpr, size + 2 * dpr, size + 2 * dpr);
        ctx.drawImage(im, px - size / 2, py - size / 2, size, size);
        tdrawn++;
      }
    }
    T.thumbsDrawn = tdrawn;
    // Rings: the clicked point and its neighbours, and the hovered point.
    ctx.lineWidth = 2 * dpr;
    for (const j of nbrs) ring(j, '#262626', 5);
    if (picked >= 0) ring(picked, '#000000', 9);
    if (hover >= 0) ring(hover, '#262626', 7);
    if (drag && drag.lasso && drag.lasso.length > 1) {
      ctx.strokeStyle = '#262626';
      ctx.lineWidth = dpr;
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      ctx.beginPath();
      drag.lasso.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  function ring(i, color, rad) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    ctx.arc(sx(X[i]), sy(Y[i]), rad * dpr, 0, 2 * Math.PI);
    ctx.stroke();
  }

  function countShown() {
    let s = 0;
    const per = new Array(nc + 1).fill(0);
    for (let c = 0; c < nc; c++) per[c] = meta.counts[c];
    per[nc] = meta.unlabelled;
    for (let c = 0; c <= nc; c++) if (!hidden[c]) s += per[c];
    return s;
  }

  // discOffsets lists the pixels a disc of radius r covers, with their
  // coverage, relative to the pixel holding the centre.
  const discCache = new Map();
  function discOffsets(r) {
    const key = Math.round(r * 8);
    let o = discCache.get(key);
    if (o) return o;
    const rr = key / 8, e = Math.ceil(rr + 0.5);
    const dx = [], dy = [], cov = [];
    if (rr < 1) {
      dx.push(0); dy.push(0); cov.push(Math.min(1, Math.PI * rr * rr));
    } else {
      for (let y = -e; y <= e; y++) for (let x = -e; x <= e; x++) {
        // Pixels the disc barely touches are left out: they cost as
        // much as the others and add only a faint fringe.
        const c = Math.min(1, rr + 0.5 - Math.hypot(x, y));
        if (c > 0.25) { dx.push(x); dy.push(y); cov.push(c); }
      }
    }
    o = { dx: Int32Array.from(dx), dy: Int32Array.from(dy), cov: Float32Array.from(cov) };
    discCache.set(key, o);
    return o;
  }

  function splat(d, px, py, o, r, g, b, a) {
    const cx = Math.floor(px), cy = Math.floor(py);
    for (let k = 0; k < o.dx.length; k++) {
      const x = cx + o.dx[k], y = cy + o.dy[k];
      if (x < 0 || y < 0 || x >= W || y >= H) continue;
      const p = (y * W + x) << 2, t = a * o.cov[k];
      d[p] += (r - d[p]) * t;
      d[p + 1] += (g - d[p + 1]) * t;
      d[p + 2] += (b - d[p + 2]) * t;
    }
  }

  // thumb returns the image of dataset index ix (size: longer side wanted;
  // 0: exactly the stored image), loading it on first use.
  function thumb(ix, size) {
    const key = ix + ':' + size;
    let im = thumbs.get(key);
    if (im) return im;
    let src = null;
    if (REP) {
      const b = REP.thumbs[ix];
      if (b) src = 'data:image/png;base64,' + b;
    } else if (meta.pack) {
      src = 'api/thumb/' + ix + (size ? '?size=' + size : '');
    }
    if (!src) return null;
    im = new Image();
    im.onload = redraw;
    im.src = src;
    thumbs.set(key, im);
    if (thumbs.size > THUMB_LIMIT) thumbs.delete(thumbs.keys().next().value);
    return im;
  }

  // The hover index: shown points bucketed in a grid over the data bounds.
  function buildGrid() {
    const g = Math.max(1, Math.ceil(Math.sqrt(n / 3)));
    const cw = (bx1 - bx0) / g * 1.000001, ch = (by1 - by0) / g * 1.000001;
    const cellOf = new Int32Array(n);
    const start = new Int32Array(g * g + 1);
    for (let i = 0; i < n; i++) {
      const x = X[i], y = Y[i];
      if (!(x >= bx0 && x <= bx1 && y >= by0 && y <= by1)) { cellOf[i] = -1; continue; }
      const c = Math.min(g - 1, Math.floor((y - by0) / ch)) * g + Math.min(g - 1, Math.floor((x - bx0) / cw));
      cellOf[i] = c;
      start[c + 1]++;
    }
    for (let c = 0; c < g * g; c++) start[c + 1] += start[c];
    const fill = start.slice(0, g * g), rows = new Int32Array(start[g * g]);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) rows[fill[cellOf[i]]++] = i;
    grid = { g, cw, ch, start, rows };
  }

  // nearest finds the shown point nearest device pixel (px, py) within rad
  // device pixels, or -1.
  function nearest(px, py, rad) {
    if (!grid) buildGrid();
    const { g, cw, ch, start, rows } = grid;
    const x = dataX(px), y = dataY(py), rd = rad / view.s;
    let gx0 = Math.floor((x - rd - bx0) / cw), gx1 = Math.floor((x + rd - bx0) / cw);
    let gy0 = Math.floor((y - rd - by0) / ch), gy1 = Math.floor((y + rd - by0) / ch);
    gx0 = Math.max(0, gx0); gy0 = Math.max(0, gy0); gx1 = Math.min(g - 1, gx1); gy1 = Math.min(g - 1, gy1);
    let best = -1, bd = rd * rd;
    for (let gy = gy0; gy <= gy1; gy++) for (let gx = gx0; gx <= gx1; gx++) {
      const c = gy * g + gx;
      for (let k = start[c]; k < start[c + 1]; k++) {
        const i = rows[k];
        if (hidden[cls[i]]) continue;
        const dx = X[i] - x, dy = Y[i] - y, dd = dx * dx + dy * dy;
        if (dd <= bd) { bd = dd; best = i; }
      }
    }
    return best;
  }

  function className(i) {
    return cls[i] < nc ? meta.classes[cls[i]] : 'no label';
  }

  function thumbsAvailable(ix) {
    return REP ? !!REP.thumbs[ix] : !!meta.pack;
  }

  const card = $('card'), cardImg = $('card-img'), cardText = $('card-text');
  function showCard(i) {
    const ix = IX[i];
    if (thumbsAvailable(ix)) {
      // The card shows the stored image itself (no size): its pixels are
      // those `pack get` writes, enlarged by the browser without smoothing.
      const im = thumb(ix, 0);
      cardImg.src = im.src;
      cardImg.hidden = false;
    } else {
      cardImg.removeAttribute('src');
      cardImg.hidden = true;
    }
    cardText.textContent = '#' + ix + ' · ' + className(i);
    card.dataset.index = ix;
    card.hidden = false;
    sourceName(ix).then((nm) => {
      if (nm && card.dataset.index === String(ix)) cardText.textContent = '#' + ix + ' · ' + className(i) + '\n' + nm;
    });
    if (!thumbsAvailable(ix) && meta.thumbs_note) cardText.textContent += ' (no thumbnail)';
    const px = sx(X[i]) / dpr, py = sy(Y[i]) / dpr;
    const cw = card.offsetWidth, chh = card.offsetHeight;
    const sw = canvas.clientWidth;
    let left = px - cw / 2, top = py - chh - 14;
    if (top < 2) top = py + 14;
    left = Math.max(2, Math.min(sw - cw - 2, left));
    card.style.left = left + 'px';
    card.style.top = top + 'px';
  }
  function hideCard() { card.hidden = true; hover = -1; }

  const names = new Map();
  function sourceName(ix) {
    if (REP) return Promise.resolve(REP.names ? REP.names[ix] || '' : '');
    if (!meta.pack || !meta.pack.has_names) return Promise.resolve('');
    if (names.has(ix)) return names.get(ix);
    const p = fetch('api/sample/' + ix).then((r) => r.json()).then((j) => j.name || '').catch(() => '');
    names.set(ix, p);
    if (names.size > 5000) names.delete(names.keys().next().value);
    return p;
  }

  // Detail panel: the image larger, its neighbours in the map and, when the
  // file has features, in feature space.
  async function pick(i) {
    picked = i;
    const ix = IX[i];
    const body = $('detail-body');
    body.textContent = '';
    $('detail').hidden = false;
    if (thumbsAvailable(ix)) {
      const big = document.createElement('img');
      big.className = 'big';
      big.src = thumb(ix, 0).src;
      body.appendChild(big);
    }
    const p = document.createElement('p');
    p.textContent = '#' + ix + ' · ' + className(i) + ' · x ' + X[i].toPrecision(5) + ', y ' + Y[i].toPrecision(5);
    body.appendChild(p);
    sourceName(ix).then((nm) => { if (nm) p.textContent += ' · ' + nm; });
    const spaces = [['map', 'nearest on the map']];
    if (meta.feature_dim > 0 && !REP) spaces.push(['features', 'nearest in feature space']);
    nbrs = [];
    for (const [space, title] of spaces) {
      let list;
      if (REP) list = mapNeighbors(i, 12);
      else {
        const r = await fetch('api/neighbors/' + ix + '?k=12&space=' + space);
        if (!r.ok) continue;
        list = (await r.json()).neighbors.map((e) => e.index);
      }
      if (picked !== i) return;
      const h = document.createElement('h2');
      h.textContent = title;
      const box = document.createElement('div');
      box.className = 'nn';
      box.dataset.space = space;
      for (const nix of list) {
        const row = rowOf ? rowOf.get(nix) : nix;
        if (space === 'map') nbrs.push(row);
        const f = document.createElement('figure');
        f.dataset.index = nix;
        if (thumbsAvailable(nix)) {
          const im = document.createElement('img');
          im.src = thumb(nix, 0).src;
          f.appendChild(im);
        }
        const cap = document.createElement('figcaption');
        cap.textContent = '#' + nix + ' ' + className(row);
        f.appendChild(cap);
        f.addEventListener('click', () => { centreOn(row, false); pick(row); });
        box.appendChild(f);
      }
      body.append(h, box);
    }
    draw();
  }

  function mapNeighbors(i, k) {
    const best = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const dx = X[j] - X[i], dy = Y[j] - Y[i], d = dx * dx + dy * dy;
      if (best.length === k && d >= best[k - 1][1]) continue;
      best.push([j, d]);
      best.sort((a, b) => a[1] - b[1]);
      if (best.length > k) best.pop();
    }
    return best.map((e) => IX[e[0]]);
  }

  function centreOn(i, zoomIn) {
    view.cx = X[i];
    view.cy = Y[i];
    if (zoomIn) view.s = Math.max(view.s, s0 * 12);
    draw();
  }

  // Selection: the shown points inside a box given in device pixels.
  function selectBox(x0, y0, x1, y1) {
    const ax = dataX(Math.min(x0, x1)), bxx = dataX(Math.max(x0, x1));
    const ay = dataY(Math.max(y0, y1)), byy = dataY(Math.min(y0, y1));
    const rows = [];
    for (let i = 0; i < n; i++) {
      if (hidden[cls[i]]) continue;
      const x = X[i], y = Y[i];
      if (x >= ax && x <= bxx && y >= ay && y <= byy) rows.push(i);
    }
    selection = { rows, box: [ax, ay, bxx, byy] };
    $('sel').hidden = false;
    $('sel-count').textContent = rows.length.toLocaleString('en') + ' points selected';
    draw();
    return rows.length;
  }

  // Lasso: the shown points inside a polygon given in device pixels
  // (even-odd rule), tested in data coordinates.
  function selectPolygon(poly) {
    const P = poly.map(([x, y]) => [dataX(x), dataY(y)]);
    let ax = Infinity, ay = Infinity, bxx = -Infinity, byy = -Infinity;
    for (const [x, y] of P) { ax = Math.min(ax, x); bxx = Math.max(bxx, x); ay = Math.min(ay, y); byy = Math.max(byy, y); }
    const rows = [];
    for (let i = 0; i < n; i++) {
      if (hidden[cls[i]]) continue;
      const x = X[i], y = Y[i];
      if (!(x >= ax && x <= bxx && y >= ay && y <= byy)) continue;
      let inside = false;
      for (let a = 0, b = P.length - 1; a < P.length; b = a++) {
        const [xa, ya] = P[a], [xb, yb] = P[b];
        if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) inside = !inside;
      }
      if (inside) rows.push(i);
    }
    selection = { rows, polygon: P };
    $('sel').hidden = false;
    $('sel-count').textContent = rows.length.toLocaleString('en') + ' points selected';
    draw();
    return rows.length;
  }

  function exportSelection(fmt) {
    if (!selection) return;
    const ixs = selection.rows.map((i) => IX[i]).sort((a, b) => a - b);
    let text, type;
    if (fmt === 'json') {
      text = JSON.stringify({ file: meta.file, indices: ixs });
      type = 'application/json';
    } else {
      const lines = ['index,class'];
      for (const ix of ixs) {
        const i = rowOf ? rowOf.get(ix) : ix;
        const c = className(i);
        lines.push(ix + ',' + (/[",\n]/.test(c) ? '"' + c.replace(/"/g, '""') + '"' : c));
      }
      text = lines.join('\n') + '\n';
      type = 'text/csv';
    }
    T.lastExport = { format: fmt, text };
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type }));
    a.download = 'selection.' + fmt;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function search(q) {
    q = q.trim();
    if (!q) return;
    if (/^\d+$/.test(q)) {
      const ix = parseInt(q, 10);
      const i = rowOf ? rowOf.get(ix) : ix < n ? ix : undefined;
      if (i === undefined) { $('status').textContent = 'no point with index ' + q; return; }
      if (hidden[cls[i]]) setHidden(cls[i], false);
      centreOn(i, true);
      pick(i);
      return;
    }
    const ql = q.toLowerCase();
    let c = meta.classes.findIndex((s) => s.toLowerCase() === ql);
    if (c < 0) c = meta.classes.findIndex((s) => s.toLowerCase().startsWith(ql));
    if (c < 0) { $('status').textContent = 'no class or index ' + JSON.stringify(q); return; }
    for (let k = 0; k <= nc; k++) setHidden(k, k !== c);
  }

  // Mouse: drag pans, shift+drag selects, wheel zooms about the cursor,
  // a click without movement picks the hovered point.
  let drag = null;
  const devXY = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr];
  };
  canvas.addEventListener('mousedown', (e) => {
    if (!T.ready || e.button !== 0) return;
    const [x, y] = devXY(e);
    drag = { x, y, cx: view.cx, cy: view.cy, box: e.shiftKey && !e.altKey, lasso: e.altKey ? [[x, y]] : null, moved: false };
    e.preventDefault();
  });
  window.addEventListener('mousemove', (e) => {
    if (!T.ready) return;
    const [x, y] = devXY(e);
    if (drag) {
      if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3 * dpr) drag.moved = true;
      if (drag.lasso) {
        drag.lasso.push([x, y]);
        redraw();
      } else if (drag.box) {
        const b = $('box');
        b.hidden = false;
        b.style.left = Math.min(x, drag.x) / dpr + 'px';
        b.style.top = Math.min(y, drag.y) / dpr + 'px';
        b.style.width = Math.abs(x - drag.x) / dpr + 'px';
        b.style.height = Math.abs(y - drag.y) / dpr + 'px';
      } else if (drag.moved) {
        view.cx = drag.cx - (x - drag.x) / view.s;
        view.cy = drag.cy + (y - drag.y) / view.s;
        hideCard();
        redraw();
      }
      return;
    }
    if (e.target !== canvas) return;
    const i = nearest(x, y, HOVER_PX * dpr);
    if (i !== hover) {
      hover = i;
      if (i >= 0) showCard(i); else card.hidden = true;
      redraw();
    }
  });
  window.addEventListener('mouseup', (e) => {
    if (!drag) return;
    const [x, y] = devXY(e);
    const d = drag;
    drag = null;
    if (d.box) {
      $('box').hidden = true;
      if (d.moved) selectBox(d.x, d.y, x, y);
      return;
    }
    if (d.lasso) {
      d.lasso.push([x, y]);
      if (d.moved && d.lasso.length >= 3) selectPolygon(d.lasso);
      else draw();
      return;
    }
    if (!d.moved && e.target === canvas) {
      const i = nearest(x, y, HOVER_PX * dpr);
      if (i >= 0) pick(i);
    }
  });
  canvas.addEventListener('mouseleave', () => { if (!drag) { hideCard(); redraw(); } });
  canvas.addEventListener('wheel', (e) => {
    if (!T.ready) return;
    e.preventDefault();
    const [x, y] = devXY(e);
    const f = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
    zoomAt(x, y, f);
  }, { passive: false });

  function zoomAt(x, y, f) {
    const dx = dataX(x), dy = dataY(y);
    view.s = Math.min(s0 * 5000, Math.max(s0 * 0.2, view.s * f));
    view.cx = dx - (x - W / 2) / view.s;
    view.cy = dy + (y - H / 2) / view.s;
    hideCard();
    redraw();
  }

  window.addEventListener('resize', () => { if (T.ready) { const z = view.s / s0; resize(); const c = [view.cx, view.cy]; home(); view.s *= z; [view.cx, view.cy] = c; draw(); } });
  window.addEventListener('keydown', (e) => { if (e.key === '0' && e.target.tagName !== 'INPUT') { home(); draw(); } });
  $('reset').addEventListener('click', () => { home(); draw(); });
  $('all').addEventListener('click', () => { hidden.fill(0); document.querySelectorAll('#legend li').forEach((li) => li.classList.remove('off')); draw(); });
  $('none').addEventListener('click', () => { hidden.fill(1); document.querySelectorAll('#legend li').forEach((li) => li.classList.add('off')); hideCard(); draw(); });
  $('search').addEventListener('submit', (e) => { e.preventDefault(); search($('q').value); });
  $('sel-csv').addEventListener('click', () => exportSelection('csv'));
  $('sel-json').addEventListener('click', () => exportSelection('json'));
  $('sel-clear').addEventListener('click', () => { selection = null; $('sel').hidden = true; draw(); });

  // Handles for tests and scripting: where a point is on screen (CSS pixels,
  // relative to the viewport), and the view controls.
  T.screenOf = (ix) => {
    const i = rowOf ? rowOf.get(ix) : ix;
    const r = canvas.getBoundingClientRect();
    return { x: r.left + sx(X[i]) / dpr, y: r.top + sy(Y[i]) / dpr };
  };
  T.screenAll = () => {
    const r = canvas.getBoundingClientRect();
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = [IX[i], cls[i], r.left + sx(X[i]) / dpr, r.top + sy(Y[i]) / dpr];
    return out;
  };
  T.zoomOn = (ix, factor) => { const i = rowOf ? rowOf.get(ix) : ix; view.cx = X[i]; view.cy = Y[i]; view.s = s0 * factor; hideCard(); draw(); };
  T.home = () => { home(); draw(); };
  T.colors = () => colors;
  T.hidden = () => Array.from(hidden);
  T.draw = draw;

  load().catch((e) => fail('cannot load the map: ' + e.message));
})();
