// The chat page: talks to /v1/chat/completions with the session cookie, streams the reply,
// keeps conversations in this browser (localStorage, one store per user). Every text from a
// model or a person is put into the page with textContent: never parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  var STORE = "authproxy.chat.v1." + root.dataset.user;
  var $ = function (id) { return document.getElementById(id); };
  var els = {
    side: $("side"), toggle: $("toggle-list"), list: $("conversations"), fresh: $("new-chat"),
    model: $("model"), maxTokens: $("max-tokens"), messages: $("messages"), empty: $("empty"),
    notice: $("notice"), form: $("composer"), prompt: $("prompt"), send: $("send"), stop: $("stop")
  };
  var state = { conversations: [], current: null, lastModel: "", controller: null, streaming: null };

  // -- storage ------------------------------------------------------------------------------
  function text(value) { return typeof value === "string" ? value : ""; }
  function cleanMessage(m) {
    if (!m || (m.role !== "user" && m.role !== "assistant")) { return null; }
    var out = { role: m.role, content: text(m.content) };
    ["reasoning", "model", "error"].forEach(function (k) { if (text(m[k])) { out[k] = m[k]; } });
    if (m.stopped === true) { out.stopped = true; }
    if (typeof m.seconds === "number") { out.seconds = m.seconds; }
    if (m.usage && typeof m.usage.completion_tokens === "number") {
      out.usage = { prompt_tokens: Number(m.usage.prompt_tokens) || 0,
                    completion_tokens: m.usage.completion_tokens };
    }
    return out;
  }
  function load() {
    var data = null;
    try { data = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { data = null; }
    if (!data || !Array.isArray(data.conversations)) { return; }
    data.conversations.forEach(function (c) {
      if (!c || !text(c.id) || !Array.isArray(c.messages)) { return; }
      state.conversations.push({
        id: c.id, title: text(c.title) || "New chat", model: text(c.model),
        updated: Number(c.updated) || 0,
        messages: c.messages.map(cleanMessage).filter(Boolean)
      });
    });
    state.lastModel = text(data.lastModel);
    state.current = find(text(data.current));
  }
  function save() {
    var data = { conversations: state.conversations, lastModel: state.lastModel,
                 current: state.current ? state.current.id : null };
    try {
      localStorage.setItem(STORE, JSON.stringify(data));
    } catch (e) {
      notice("This browser would not keep the conversation (" + e.name + "): it is lost on reload.");
    }
  }
  function find(id) {
    for (var i = 0; i < state.conversations.length; i++) {
      if (state.conversations[i].id === id) { return state.conversations[i]; }
    }
    return null;
  }
  function newId() {
    var bytes = new Uint8Array(9);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // -- rendering ----------------------------------------------------------------------------
  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (content !== undefined) { node.textContent = content; }
    return node;
  }
  function paragraphs(box, lines) {
    lines.join("\n").split(/\n\s*\n/).forEach(function (chunk) {
      chunk = chunk.replace(/^\n+|\n+$/g, "");
      if (!chunk.trim()) { return; }
      var p = el("p");
      chunk.split("`").forEach(function (piece, i) {  // `inline code` between backticks
        p.appendChild(i % 2 ? el("code", "", piece) : document.createTextNode(piece));
      });
      box.appendChild(p);
    });
  }
  function codeBlock(box, lines, lang) {
    var pre = el("pre");
    if (lang) { pre.appendChild(el("span", "lang", lang)); }
    pre.appendChild(el("code", "", lines.join("\n")));
    box.appendChild(pre);
  }
  // Paragraphs and ``` fenced code blocks; a fence not closed yet (still streaming) is code.
  function renderText(box, value) {
    box.textContent = "";
    var lines = value.split("\n"), buffer = [], inCode = false, lang = "";
    lines.forEach(function (line) {
      var fence = /^\s*```\s*([\w+#.-]*)/.exec(line);
      if (!fence) { buffer.push(line); return; }
      if (inCode) { codeBlock(box, buffer, lang); } else { paragraphs(box, buffer); }
      buffer = []; inCode = !inCode; lang = inCode ? fence[1] : "";
    });
    if (inCode) { codeBlock(box, buffer, lang); } else { paragraphs(box, buffer); }
  }
  function meta(m) {
    var parts = [];
    if (m.model) { parts.push(m.model); }
    if (m.usage) {
      parts.push(m.usage.prompt_tokens + " prompt + " + m.usage.completion_tokens + " reply tokens");
    }
    if (typeof m.seconds === "number") { parts.push(m.seconds.toFixed(1) + " s"); }
    var box = el("div", "meta", parts.join(" · "));
    if (m.stopped) { box.appendChild(el("span", "bad", (parts.length ? " · " : "") + "stopped")); }
    if (m.error) { box.appendChild(el("div", "bad error", m.error)); }
    return box;
  }
  function messageNode(m) {
    var node = el("div", "msg " + m.role + (m === state.streaming ? " streaming" : ""));
    node.appendChild(el("div", "role", m.role === "user" ? "You" : "Assistant"));
    if (m.reasoning) {
      var details = el("details", "thinking");
      details.appendChild(el("summary", "", "Thinking"));
      var thoughts = el("div");
      renderText(thoughts, m.reasoning);
      details.appendChild(thoughts);
      node.appendChild(details);
    }
    var body = el("div", "body");
    renderText(body, m.content);
    node.appendChild(body);
    if (m.role === "assistant" && m !== state.streaming) { node.appendChild(meta(m)); }
    return node;
  }
  // The view follows the end of the conversation unless the reader scrolled up from it.
  var following = true;
  function nearEnd() {
    var box = els.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }
  function follow() { if (following) { els.messages.scrollTop = els.messages.scrollHeight; } }
  function renderMessages() {
    var conv = state.current, box = els.messages, top = box.scrollTop;
    box.textContent = "";
    if (!conv || !conv.messages.length) { box.appendChild(els.empty); return; }
    conv.messages.forEach(function (m) { box.appendChild(messageNode(m)); });
    if (following) { follow(); } else { box.scrollTop = top; }
  }
  function renderList() {
    els.list.textContent = "";
    state.conversations.slice().sort(function (a, b) { return b.updated - a.updated; })
      .forEach(function (c) { els.list.appendChild(listItem(c)); });
  }
  function listItem(c) {
    var li = el("li", c === state.current ? "current" : "");
    li.dataset.id = c.id;
    var pick = el("button", "pick", c.title);
    pick.type = "button"; pick.title = c.title;
    pick.addEventListener("click", function () { select(c); closeList(); });
    var rename = el("button", "act rename", "Rename");
    rename.type = "button";
    rename.addEventListener("click", function () { startRename(li, c); });
    var remove = el("button", "act delete", "Delete");
    remove.type = "button";
    remove.addEventListener("click", function () { removeConversation(c); });
    li.appendChild(pick); li.appendChild(rename); li.appendChild(remove);
    return li;
  }
  function startRename(li, c) {
    var input = el("input");
    input.value = c.title; input.maxLength = 80; input.setAttribute("aria-label", "New name");
    li.textContent = "";
    li.appendChild(input);
    input.focus(); input.select();
    var done = false;
    function finish(keep) {
      if (done) { return; }
      done = true;
      if (keep && input.value.trim()) { c.title = input.value.trim(); save(); }
      renderList();
    }
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); finish(true); }
      if (e.key === "Escape") { e.preventDefault(); finish(false); }
    });
    input.addEventListener("blur", function () { finish(true); });
  }
  function render() { renderList(); renderMessages(); }
  var pending = false;
  function renderStreaming() {  // only the reply that grows, not the whole conversation
    var reply = state.streaming, conv = state.current, box = els.messages;
    if (!reply || !conv || conv.messages[conv.messages.length - 1] !== reply) { return; }
    var top = box.scrollTop;
    box.replaceChild(messageNode(reply), box.lastElementChild);
    if (following) { follow(); } else { box.scrollTop = top; }
  }
  function renderSoon() {  // at most once a frame while a reply streams in
    if (pending) { return; }
    pending = true;
    requestAnimationFrame(function () { pending = false; renderStreaming(); });
  }

  // -- conversations ------------------------------------------------------------------------
  function select(c) {
    state.current = c;
    following = true;
    if (c && c.model) { chooseModel(c.model); }
    clearNotice();
    render();
    save();
  }
  function removeConversation(c) {
    if (!window.confirm("Delete \u201c" + c.title + "\u201d? This cannot be undone.")) { return; }
    if (state.streaming && c.messages.indexOf(state.streaming) >= 0) { stop(); }
    state.conversations = state.conversations.filter(function (x) { return x !== c; });
    if (state.current === c) { state.current = null; }
    render();
    save();
  }
  function titleOf(value) {
    var line = value.trim().split("\n")[0];
    return line.length > 48 ? line.slice(0, 47) + "\u2026" : line || "New chat";
  }

  // -- models -------------------------------------------------------------------------------
  function chooseModel(id) {
    for (var i = 0; i < els.model.options.length; i++) {
      if (els.model.options[i].value === id) { els.model.value = id; return; }
    }
  }
  async function loadModels() {
    var ids = [];
    try {
      var resp = await fetch("/v1/models", { credentials: "same-origin" });
      if (!resp.ok) { await refused(resp); return; }
      var data = await resp.json();
      ids = (data.data || []).map(function (m) { return text(m.id); }).filter(Boolean).sort();
    } catch (e) {
      notice("The gateway could not be reached: " + e.message);
      return;
    }
    els.model.textContent = "";
    if (!ids.length) {
      els.model.appendChild(el("option", "", "no model available"));
      els.model.options[0].value = "";
      notice("No model is available to you right now.");
      return;
    }
    ids.forEach(function (id) { var o = el("option", "", id); o.value = id; els.model.appendChild(o); });
    chooseModel((state.current && state.current.model) || state.lastModel);
  }

  // -- notices and refusals -----------------------------------------------------------------
  function notice(message, link) {
    els.notice.textContent = message;
    if (link) {
      els.notice.appendChild(document.createTextNode(" "));
      var a = el("a", "", link.text);
      a.href = link.href;
      els.notice.appendChild(a);
    }
    els.notice.hidden = false;
  }
  function clearNotice() { els.notice.hidden = true; els.notice.textContent = ""; }
  function wait(seconds) {
    var s = Math.max(1, Math.round(seconds));
    if (s < 90) { return s + " s"; }
    if (s < 5400) { return Math.round(s / 60) + " min"; }
    return Math.round(s / 3600) + " h";
  }
  async function refused(resp) {
    var message = "";
    try {
      var body = await resp.json();
      message = body && body.error ? text(body.error.message) || text(body.error) : "";
    } catch (e) { message = ""; }
    message = message || resp.statusText || "refused";
    if (!/[.!?]$/.test(message)) { message += "."; }
    if (resp.status === 401) {
      notice("Your session has ended.", { text: "Sign in again", href: "/auth/login?next=/chat" });
    } else if (resp.status === 429 || resp.status === 503) {
      var after = Number(resp.headers.get("Retry-After"));
      var when = after > 0 ? " Try again in " + wait(after) + " (Retry-After: " + after + " s)." : "";
      notice((resp.status === 429 ? "Not now: " : "Busy: ") + message + when);
    } else {
      notice("Error " + resp.status + ": " + message);
    }
  }

  // -- talking ------------------------------------------------------------------------------
  function busy(on) {
    root.dataset.state = on ? "streaming" : "idle";
    els.send.hidden = on;
    els.stop.hidden = !on;
  }
  function requestBody(conv) {
    var body = {
      model: conv.model, stream: true, stream_options: { include_usage: true },
      messages: conv.messages.filter(function (m) { return m.content; })
        .map(function (m) { return { role: m.role, content: m.content }; })
    };
    var limit = Number(els.maxTokens.value);
    if (Number.isInteger(limit) && limit > 0) { body.max_tokens = limit; }
    return body;
  }
  async function send() {
    var value = els.prompt.value;
    if (!value.trim() || state.controller) { return; }
    if (!els.model.value) { notice("Choose a model first."); return; }
    clearNotice();
    var conv = state.current;
    if (!conv) {
      conv = { id: newId(), title: titleOf(value), model: "", updated: 0, messages: [] };
      state.conversations.push(conv);
      state.current = conv;
    }
    conv.model = state.lastModel = els.model.value;
    conv.updated = Date.now();
    var asked = { role: "user", content: value };
    conv.messages.push(asked);
    var body = requestBody(conv);
    var reply = { role: "assistant", content: "", model: conv.model };
    conv.messages.push(reply);
    els.prompt.value = "";
    fitPrompt();
    state.streaming = reply;
    following = true;
    state.controller = new AbortController();
    busy(true);
    render();
    save();
    var started = performance.now();
    try {
      var resp = await fetch("/v1/chat/completions", {
        method: "POST", credentials: "same-origin", signal: state.controller.signal,
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify(body)
      });
      if (!resp.ok) {  // refused before anything was generated: take the question back
        conv.messages.splice(conv.messages.indexOf(asked), 2);
        els.prompt.value = value;
        fitPrompt();
        await refused(resp);
        return;
      }
      await readStream(resp, reply);
    } catch (e) {
      if (e.name === "AbortError") { reply.stopped = true; }
      else { reply.error = "The connection to the gateway broke: " + e.message; }
    } finally {
      reply.seconds = (performance.now() - started) / 1000;
      state.streaming = null;
      state.controller = null;
      busy(false);
      if (!conv.messages.length) { state.conversations.splice(state.conversations.indexOf(conv), 1); state.current = null; }
      render();
      save();
    }
  }
  async function readStream(resp, reply) {
    var reader = resp.body.getReader(), decoder = new TextDecoder(), buffer = "", finished = false;
    while (!finished) {
      var chunk = await reader.read();
      if (chunk.done) { break; }
      buffer += decoder.decode(chunk.value, { stream: true });
      var events = buffer.split(/\r?\n\r?\n/);
      buffer = events.pop();
      for (var i = 0; i < events.length && !finished; i++) { finished = onEvent(events[i], reply); }
      renderSoon();
    }
    if (!finished && !reply.error) { reply.error = "The reply ended before it was complete."; }
  }
  // One SSE event; true when the stream is over ([DONE], or the gateway's error event).
  function onEvent(event, reply) {
    var data = event.split(/\r?\n/).filter(function (l) { return l.indexOf("data:") === 0; })
      .map(function (l) { return l.slice(5).replace(/^ /, ""); }).join("\n");
    if (!data) { return false; }
    if (data === "[DONE]") { return true; }
    var obj;
    try { obj = JSON.parse(data); } catch (e) { return false; }
    if (obj.error) {
      reply.error = text(obj.error.message) || text(obj.error) || "The engine failed.";
      return true;
    }
    var choice = obj.choices && obj.choices[0];
    if (choice && choice.delta) {
      reply.content += text(choice.delta.content);
      reply.reasoning = (reply.reasoning || "") + text(choice.delta.reasoning_content);
    }
    if (obj.usage) { reply.usage = cleanMessage({ role: "assistant", usage: obj.usage }).usage; }
    return false;
  }
  function stop() { if (state.controller) { state.controller.abort(); } }

  // -- the page -----------------------------------------------------------------------------
  function fitPrompt() {
    els.prompt.style.height = "auto";
    els.prompt.style.height = els.prompt.scrollHeight + 2 + "px";
  }
  function showList(open) {
    els.side.classList.toggle("open", open);
    root.classList.toggle("listing", open);
    els.toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }
  function closeList() { showList(false); }
  els.form.addEventListener("submit", function (e) { e.preventDefault(); send(); });
  els.prompt.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    if (e.key === "Escape") { stop(); }
  });
  els.prompt.addEventListener("input", fitPrompt);
  els.stop.addEventListener("click", stop);
  els.fresh.addEventListener("click", function () { select(null); closeList(); els.prompt.focus(); });
  els.model.addEventListener("change", function () {
    state.lastModel = els.model.value;
    if (state.current) { state.current.model = els.model.value; }
    save();
  });
  els.toggle.addEventListener("click", function () { showList(!els.side.classList.contains("open")); });
  document.querySelector(".talk").addEventListener("click", function () {  // beside the list
    if (root.classList.contains("listing")) { closeList(); }
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { closeList(); } });
  els.messages.addEventListener("scroll", function () { following = nearEnd(); });
  window.addEventListener("resize", follow);
  window.addEventListener("storage", function (e) {  // another tab of this page changed it
    if (e.key !== STORE || state.controller) { return; }
    var current = state.current ? state.current.id : null;
    state.conversations = [];
    load();
    state.current = find(current);
    render();
  });
  load();
  render();
  loadModels();
  els.prompt.focus();
})();
