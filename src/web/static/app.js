// CloudDetect demo page: sends an image to POST api/object_detection exactly as any client does
// ({"id": <uuid>, "image": <base64>}) and shows the answer. Vanilla JS, no dependencies.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    drop: $('drop'), file: $('file'), annotate: $('annotate'), apiKey: $('api-key'),
    status: $('status'), error: $('error'), stage: $('stage'), preview: $('preview'),
    overlay: $('overlay'), caption: $('caption'), objects: $('objects'), noObjects: $('no-objects'),
    httpStatus: $('http-status'), elapsed: $('elapsed'), servedBy: $('served-by'),
    requestId: $('request-id'), annotatedFigure: $('annotated-figure'), annotated: $('annotated'),
    raw: $('raw'),
  };

  let sequence = 0;      // the latest request; older answers are ignored
  let objects = [];      // objects of the latest successful answer
  let previewUrl = null; // object URL of the image shown
  let summary = '';      // "2 objects in 85 ms" of the latest successful answer

  // crypto.randomUUID exists only in secure contexts (https, localhost); a pod's plain-http
  // address is not one, so fall back to a v4 UUID from getRandomValues (available everywhere).
  function newId() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // A stable, distinct colour per label.
  function colorFor(label) {
    let hash = 0;
    for (const c of label) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
    return `hsl(${(hash * 137.508) % 360}, 85%, 45%)`;
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function readBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => {
        const url = String(reader.result);
        resolve(url.slice(url.indexOf(',') + 1)); // strip "data:<type>;base64,"
      };
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  function setStatus(text) { ui.status.textContent = text; }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = false;
  }

  // What the user should read for an HTTP error; the server's own message is appended.
  function errorMessage(status, body, headers) {
    const detail = body && typeof body.error === 'string' ? ` (server: ${body.error})` : '';
    switch (status) {
      case 400: return `The service rejected the request as malformed.${detail}`;
      case 401: return `This service needs an API key: open “API key”, enter it and try again.${detail}`;
      case 413: return `Too large: the file or its pixel count is over the service's limit. Try a smaller image.${detail}`;
      case 415: return `The service accepts only JSON requests (Content-Type: application/json).${detail}`;
      case 422: return `Not an image: the service could not decode this file. Use a JPEG, PNG, BMP or WebP picture.${detail}`;
      case 503: {
        const retry = headers.get('Retry-After');
        return `The service is overloaded or shutting down${retry ? `; retry in ${retry} s` : ''}.${detail}`;
      }
      default:
        if (status >= 500) return `The service failed (HTTP ${status}).${detail}`;
        return `Unexpected answer: HTTP ${status}.${detail}`;
    }
  }

  function resetResult() {
    objects = [];
    ui.error.hidden = true;
    ui.error.textContent = '';
    ui.objects.replaceChildren();
    ui.noObjects.hidden = true;
    ui.httpStatus.textContent = '–';
    ui.elapsed.textContent = '–';
    ui.servedBy.textContent = '–';
    ui.requestId.textContent = '–';
    ui.raw.textContent = '';
    summary = '';
    updateCaption();
    ui.annotatedFigure.hidden = true;
    ui.annotated.removeAttribute('src');
    draw();
  }

  function updateCaption() {
    const img = ui.preview;
    const size = img.naturalWidth ? `${img.naturalWidth}×${img.naturalHeight} px` : '';
    ui.caption.textContent = [summary, size].filter(Boolean).join(' · ');
  }

  function showPreview(file) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    ui.stage.hidden = false;
    ui.preview.src = previewUrl;
  }

  // Boxes are in the original image's pixels; the image is shown scaled to fit: scale them too.
  function draw() {
    const img = ui.preview;
    const canvas = ui.overlay;
    const ctx = canvas.getContext('2d');
    const w = img.clientWidth;
    const h = img.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!objects.length || !img.naturalWidth || !w) return;
    const sx = w / img.naturalWidth;
    const sy = h / img.naturalHeight;
    const fontPx = Math.max(11, Math.min(16, Math.round(w / 45)));
    ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    for (const o of objects) {
      const r = o.rectangle;
      const x = r.left * sx;
      const y = r.top * sy;
      const color = colorFor(o.label);
      ctx.lineWidth = 2;
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, r.width * sx, r.height * sy);
      const text = `${o.label} ${(o.accuracy * 100).toFixed(1)}%`;
      const tw = ctx.measureText(text).width + 8;
      const th = fontPx + 6;
      const tx = Math.max(0, Math.min(x, w - tw));
      const ty = y >= th ? y - th : y; // above the box, or inside it at the top edge
      ctx.fillStyle = color;
      ctx.fillRect(tx, ty, tw, th);
      ctx.fillStyle = '#fff';
      ctx.fillText(text, tx + 4, ty + 3);
    }
  }

  function renderObjects(list) {
    objects = list;
    const items = list.map((o) => {
      const li = document.createElement('li');
      li.dataset.testid = 'object';
      li.dataset.label = o.label;
      li.dataset.accuracy = String(o.accuracy);
      const r = o.rectangle;
      li.title = `left ${r.left}, top ${r.top}, width ${r.width}, height ${r.height}`;
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colorFor(o.label);
      swatch.setAttribute('aria-hidden', 'true');
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = o.label;
      const confidence = document.createElement('span');
      confidence.className = 'confidence';
      confidence.textContent = `${(o.accuracy * 100).toFixed(1)}%`;
      li.append(swatch, label, confidence);
      return li;
    });
    ui.objects.replaceChildren(...items);
    ui.noObjects.hidden = list.length > 0;
    draw();
  }

  function showRaw(body, text) {
    if (body === null) {
      ui.raw.textContent = text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
      return;
    }
    ui.raw.textContent = JSON.stringify(body, (key, value) =>
      (key === 'annotated_image' && typeof value === 'string'
        ? `<${value.length} base64 characters: the JPEG shown above>` : value), 2);
  }

  async function detect(file) {
    const seq = ++sequence;
    resetResult();
    ui.drop.setAttribute('aria-busy', 'true');
    setStatus(`Sending ${file.name || 'the pasted image'} (${formatBytes(file.size)})…`);
    showPreview(file);

    let image;
    try {
      image = await readBase64(file);
    } catch (e) {
      if (seq !== sequence) return;
      ui.drop.removeAttribute('aria-busy');
      setStatus('Nothing sent.');
      showError(`Could not read the file: ${e && e.message ? e.message : e}`);
      return;
    }
    if (seq !== sequence) return;
    if (!image) {
      ui.drop.removeAttribute('aria-busy');
      setStatus('Nothing sent.');
      showError('The file is empty.');
      return;
    }
    const id = newId();
    const request = { id, image };
    if (ui.annotate.checked) request.annotate = true;
    const headers = { 'Content-Type': 'application/json' };
    const key = ui.apiKey.value.trim();
    if (key) headers.Authorization = `Bearer ${key}`;
    ui.requestId.textContent = id;

    const start = performance.now();
    let response;
    let text;
    try {
      response = await fetch('api/object_detection', {
        method: 'POST', headers, body: JSON.stringify(request), cache: 'no-store',
      });
      text = await response.text();
    } catch (e) {
      if (seq !== sequence) return;
      ui.drop.removeAttribute('aria-busy');
      setStatus('No answer.');
      showError('Network error: the service could not be reached or closed the connection ' +
        `(is it running? was the file far too large?). ${e && e.message ? e.message : ''}`);
      return;
    }
    const ms = performance.now() - start;
    if (seq !== sequence) return;
    ui.drop.removeAttribute('aria-busy');

    let body = null;
    try { body = JSON.parse(text); } catch (_) { /* not JSON: shown as text */ }
    ui.httpStatus.textContent = `${response.status} ${response.statusText}`.trim();
    ui.elapsed.textContent = `${ms.toFixed(0)} ms`;
    ui.servedBy.textContent = response.headers.get('X-Served-By') || '(not given)';
    showRaw(body, text);

    if (!response.ok || !body || !Array.isArray(body.objects)) {
      setStatus('The service answered with an error.');
      showError(response.ok ? 'The answer is not the expected JSON.' : errorMessage(response.status, body, response.headers));
      return;
    }
    renderObjects(body.objects);
    const n = body.objects.length;
    summary = `${n} object${n === 1 ? '' : 's'} in ${ms.toFixed(0)} ms`;
    setStatus(`Found ${summary}, served by ${ui.servedBy.textContent}.`);
    updateCaption();
    if (typeof body.annotated_image === 'string' && body.annotated_image) {
      ui.annotated.src = `data:image/jpeg;base64,${body.annotated_image}`;
      ui.annotatedFigure.hidden = false;
    }
  }

  function firstFile(list) {
    return list && list.length ? list[0] : null;
  }

  ui.file.addEventListener('change', () => {
    const file = firstFile(ui.file.files);
    if (file) detect(file);
    ui.file.value = ''; // choosing the same file again sends it again
  });

  // Drop anywhere on the page (and never let the browser navigate to the dropped file).
  let dragDepth = 0;
  document.addEventListener('dragenter', (e) => {
    e.preventDefault();
    dragDepth += 1;
    ui.drop.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) ui.drop.classList.remove('dragging');
  });
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    ui.drop.classList.remove('dragging');
    const file = firstFile(e.dataTransfer && e.dataTransfer.files);
    if (file) detect(file);
  });

  document.addEventListener('paste', (e) => {
    if (e.target === ui.apiKey) return;
    const items = e.clipboardData ? Array.from(e.clipboardData.items) : [];
    const item = items.find((i) => i.kind === 'file' && i.type.startsWith('image/')) ||
                 items.find((i) => i.kind === 'file');
    const file = item && item.getAsFile();
    if (file) {
      e.preventDefault();
      detect(file);
    }
  });

  ui.preview.addEventListener('load', () => {
    draw();
    updateCaption();
  });
  ui.preview.addEventListener('error', () => {
    ui.stage.hidden = true; // not an image the browser can show; the service still decides
  });
  if ('ResizeObserver' in window) {
    new ResizeObserver(() => draw()).observe(ui.preview);
  } else {
    window.addEventListener('resize', draw);
  }
})();
