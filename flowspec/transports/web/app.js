// The flowspec browser client: microphone → PCM16 binary messages, reply audio ← PCM16 binary
// messages (played in order, position reported back for truncation), transcripts and typed text
// as JSON messages. The protocol is described in flowspec/transports/websocket.py.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const REPORT_MS = 100;

const state = {
  config: null, ws: null, ctx: null, mic: null, worklet: null,
  item: null,            // {id, chunks: [{start, duration, offsetMs, bytes, source}], end,
                         //  pending: chunks not yet ended}
  nextItemId: null,      // announced by audio.started for the binary messages that follow
  bytesReceived: 0, bytesPlayed: 0, chunksPlayed: 0, micChunks: 0,
  turns: new Map(),      // "role:item" -> {role, text, final, el}
  status: "disconnected", closeCode: null,
  url: null,             // the socket's URL, with the call's variables
  ended: null,           // session.ended: {reason, message}
  lastError: null,       // the latest error message shown
  atClose: null,         // {played, received} audio bytes when the socket closed
  pushToTalk: false,     // manual turns: the mic is sent only while the talk control is held
  talking: false, commits: 0, interrupts: 0,
  lastResponse: null,    // the status of the latest response.ended
  camera: null, cameraTimer: null, framesSent: 0,   // video: {enabled, fps, max_width}
};

window.flowspec = {
  get state() { return state.status; },
  get closeCode() { return state.closeCode; },
  get bytesReceived() { return state.bytesReceived; },
  get bytesPlayed() { return state.bytesPlayed; },
  get micChunks() { return state.micChunks; },
  get url() { return state.url; },
  get endedReason() { return state.ended && state.ended.reason; },
  get endedMessage() { return state.ended && state.ended.message; },
  get atClose() { return state.atClose; },
  turns: () => [...state.turns.values()].map(({role, text, final}) => ({role, text, final})),
  notes: () => [...$("transcript").querySelectorAll(".note")].map((el) => el.textContent),
  get pushToTalk() { return state.pushToTalk; },
  get talking() { return state.talking; },
  get commits() { return state.commits; },
  get interrupts() { return state.interrupts; },
  get lastResponse() { return state.lastResponse; },
  get framesSent() { return state.framesSent; },
  connect: () => connect(),
  send: (text) => sendText(text),
  talk: (on) => talk(on),
};

function setStatus(status, detail) {
  state.status = status;
  const el = $("state");
  el.textContent = detail ? `${status} (${detail})` : status;
  el.className = `state ${status}`;
  const live = status === "connected";
  $("text").disabled = $("send").disabled = $("hangup").disabled = $("talk").disabled = !live;
  if (!live) talk(false);
  $("connect").disabled = live || status === "connecting";
}

async function loadConfig() {
  const response = await fetch("/flowspec/config.json");
  state.config = await response.json();
  const {name, version, description, audio} = state.config;
  document.title = `${name} · flowspec`;
  $("spec-name").textContent = name;
  $("spec-version").textContent = `v${version}`;
  $("spec-description").textContent = description;
  $("audio-format").textContent = `${audio.encoding} ${audio.sample_rate / 1000} kHz`;
}

// -- connection -------------------------------------------------------------------------------

// The call's variables come from this page's own query string (`/?customer_name=Ann`): only the
// names the spec declares are passed on, so the page's other parameters (autostart, aec, a
// campaign's utm_*) never refuse the call.
function socketUrl() {
  const url = new URL(state.config.path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  for (const name of state.config.variables || []) {
    if (params.has(name)) url.searchParams.set(name, params.get(name));
  }
  return url;
}

async function connect() {
  if (state.ws) return;
  setStatus("connecting");
  const rate = state.config.audio.sample_rate;
  if (state.ctx) state.ctx.close();   // the last call's; each call plays in its own
  state.ctx = new AudioContext();
  await state.ctx.resume();
  state.ended = state.atClose = state.lastError = null;
  const url = socketUrl();
  state.url = url.href;
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    setStatus("connected");
    startMic(rate).catch(micFailed);
    if (state.config.video && state.config.video.enabled) startCamera().catch(cameraFailed);
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") onMessage(JSON.parse(event.data));
    else onAudio(event.data, rate);
  };
  ws.onclose = (event) => {
    state.closeCode = event.code;
    state.atClose = {played: state.bytesPlayed, received: state.bytesReceived};
    const why = state.ended ? state.ended.message : "";
    setStatus("disconnected", why || (event.code === 1000 ? "" : `code ${event.code}`));
    stopMic();
    stopCamera();
    state.ws = null;
  };
  ws.onerror = () => setStatus("error");
}

function hangup() {
  if (!state.ws) return;
  state.ws.send(JSON.stringify({type: "end"}));
}

function sendText(text) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !text.trim()) return false;
  state.ws.send(JSON.stringify({type: "text", text}));
  addTurn("user", `typed:${Date.now()}`, text, true);
  return true;
}

// -- microphone -------------------------------------------------------------------------------

async function startMic(rate) {
  if (!navigator.mediaDevices || !window.isSecureContext) {
    // Browsers offer the microphone to https pages and to localhost only.
    throw new Error("the browser gives the microphone only to https pages or localhost; " +
                    "serve with --tls-cert/--tls-key or behind an https proxy, or open it as " +
                    "localhost on this machine");
  }
  const aec = params.get("aec") !== "0";
  state.mic = await navigator.mediaDevices.getUserMedia({audio: {
    channelCount: 1, echoCancellation: aec, noiseSuppression: aec, autoGainControl: aec}});
  await state.ctx.audioWorklet.addModule("/flowspec/static/capture.js");
  const source = state.ctx.createMediaStreamSource(state.mic);
  state.worklet = new AudioWorkletNode(state.ctx, "flowspec-capture",
                                       {processorOptions: {targetRate: rate}});
  state.worklet.port.onmessage = (event) => {
    if (state.pushToTalk && !state.talking) return;   // push-to-talk: only while held
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(event.data);
      state.micChunks += 1;
    }
  };
  source.connect(state.worklet);
  $("mic").textContent = "mic on";
  $("mic").className = "mic on";
  // The spec's model takes turns only when the page ends them (turn_detection: false).
  state.pushToTalk = state.config.turns === "manual";
  $("talk").hidden = !state.pushToTalk;
}

function micFailed(error) {
  $("mic").textContent = `mic unavailable: ${error.message || error}`;
}

function stopMic() {
  if (state.mic) state.mic.getTracks().forEach((track) => track.stop());
  if (state.worklet) state.worklet.disconnect();
  state.mic = state.worklet = null;
  $("mic").textContent = "mic off";
  $("mic").className = "mic";
}

// -- camera (opt-in: the transport's `video: {enabled: true}`) --------------------------------

async function startCamera() {
  const {fps, max_width: maxWidth} = state.config.video;
  state.camera = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: maxWidth}}});
  const video = $("preview");
  video.srcObject = state.camera;
  video.hidden = false;
  await video.play();
  const canvas = document.createElement("canvas");
  $("camera").hidden = false;
  $("camera").textContent = "camera on";
  $("camera").className = "mic on";
  state.cameraTimer = setInterval(() => sendFrame(video, canvas, maxWidth), 1000 / fps);
}

function sendFrame(video, canvas, maxWidth) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  const scale = Math.min(1, maxWidth / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  // A JPEG frame as base64 in a JSON message: binary messages are the microphone's audio.
  const data = canvas.toDataURL("image/jpeg", 0.7).split(",", 2)[1];
  state.ws.send(JSON.stringify({type: "image", mime_type: "image/jpeg", data}));
  state.framesSent += 1;
}

function cameraFailed(error) {
  $("camera").hidden = false;
  $("camera").textContent = `camera unavailable: ${error.message || error}`;
}

function stopCamera() {
  if (state.cameraTimer) clearInterval(state.cameraTimer);
  if (state.camera) state.camera.getTracks().forEach((track) => track.stop());
  state.camera = state.cameraTimer = null;
  $("preview").hidden = true;
  if (!$("camera").hidden) { $("camera").textContent = "camera off"; $("camera").className = "mic"; }
}

// -- reply audio ------------------------------------------------------------------------------

function onAudio(buffer, rate) {
  const pcm = new Int16Array(buffer);
  state.bytesReceived += buffer.byteLength;
  if (!state.item || state.item.id !== state.nextItemId) {
    state.item = {id: state.nextItemId, chunks: [], end: 0, sentMs: 0, reported: false,
                  pending: 0};
  }
  const item = state.item;
  const samples = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
  const audio = state.ctx.createBuffer(1, samples.length, rate);
  audio.copyToChannel(samples, 0);
  const source = state.ctx.createBufferSource();
  source.buffer = audio;
  source.connect(state.ctx.destination);
  const start = Math.max(state.ctx.currentTime + 0.02, item.end);
  const chunk = {start, duration: audio.duration, offsetMs: item.sentMs,
                 bytes: buffer.byteLength, source, cleared: false};
  source.onended = () => {
    item.pending -= 1;
    if (!chunk.cleared) { state.bytesPlayed += chunk.bytes; state.chunksPlayed += 1; }
  };
  source.start(start);
  item.pending += 1;
  item.chunks.push(chunk);
  item.end = start + audio.duration;
  item.sentMs += audio.duration * 1000;
  item.reported = false;
}

function playedMs(item) {
  const now = state.ctx.currentTime;
  let played = 0;
  for (const chunk of item.chunks) {
    if (now < chunk.start) break;
    played = chunk.offsetMs + Math.min(now - chunk.start, chunk.duration) * 1000;
  }
  return Math.round(played);
}

function clearAudio(itemId) {
  const item = state.item;
  if (!item || (itemId && item.id !== itemId)) return;
  const played = playedMs(item);
  const now = state.ctx.currentTime;
  for (const chunk of item.chunks) {
    if (now >= chunk.start && now < chunk.start + chunk.duration) {
      state.bytesPlayed += Math.round(chunk.bytes * (now - chunk.start) / chunk.duration) & ~1;
    }
    if (now < chunk.start + chunk.duration) {
      chunk.cleared = true;
      try { chunk.source.stop(); } catch (_) { /* not started yet */ }
    }
  }
  report(item, played, false);
  state.item = null;
}

function report(item, played, playing) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({type: "playback", item_id: item.id, played_ms: played,
                                  playing}));
  }
}

setInterval(() => {
  const item = state.item;
  if (!item || item.reported || !state.ctx) return;
  // Played out once every piece has ended, not merely once the clock passed its end: the
  // server may hang up on this report, and what the page counts as played must be in by then.
  const playing = state.ctx.currentTime < item.end || item.pending > 0;
  report(item, playedMs(item), playing);
  if (!playing) item.reported = true;   // all played: one final report until more arrives
}, REPORT_MS);

// -- messages ---------------------------------------------------------------------------------

function onMessage(message) {
  switch (message.type) {
    case "session.started": break;
    case "audio.started": state.nextItemId = message.item_id; break;
    case "audio.clear": clearAudio(message.item_id); break;
    case "transcript":
      addTurn(message.role, message.item_id || "", message.text, message.final, true);
      break;
    case "text":
      if (message.role === "assistant") addTurn("assistant", message.item_id || "", message.text,
                                                false, true);
      break;
    case "response.ended": state.lastResponse = message.status || null;
      finishTurns("assistant"); break;
    case "error": addError(message); break;
    case "session.ended": callEnded(message); break;
    default: break;
  }
}

function addTurn(role, itemId, text, final, streamed = false) {
  const key = `${role}:${itemId}`;
  let turn = state.turns.get(key);
  if (!turn) {
    const el = document.createElement("div");
    el.innerHTML = `<span class="who"></span><span class="what"></span>`;
    el.querySelector(".who").textContent = role === "user" ? "You" : "Bot";
    $("transcript").appendChild(el);
    turn = {role, text: "", final: false, el};
    state.turns.set(key, turn);
  }
  // Interim pieces are deltas; a final transcript is the whole turn.
  turn.text = final && streamed ? text : (final ? text : turn.text + text);
  turn.final = final;
  turn.el.className = `turn ${role}${final ? "" : " interim"}`;
  turn.el.querySelector(".what").textContent = turn.text;
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

function finishTurns(role) {
  for (const turn of state.turns.values()) {
    if (turn.role === role && !turn.final) {
      turn.final = true;
      turn.el.className = `turn ${role}`;
    }
  }
}

function addError(message) {
  // A refused call's error says why (a variable in the URL breaks the spec); the call ends.
  const refused = message.fatal && String(message.code || "").startsWith("variables.");
  addNote("error", refused ? `Call refused: ${message.message}` : `error: ${message.message}`);
  state.lastError = message.message;
  // The bot could not start (its model cannot be reached, say): the call is over, and the
  // status says why rather than a bare close code.
  if (message.code === "session_failed") {
    state.ended = {reason: "failed", message: message.message};
  }
}

function callEnded(message) {
  state.ended = {reason: message.reason || "ended", message: message.message || "The call ended."};
  // A refusal was just shown with its reason: the ending does not repeat it.
  if (state.ended.message !== state.lastError) addNote("ended", state.ended.message);
}

function addNote(kind, text) {
  const el = document.createElement("div");
  el.className = `turn note ${kind}`;
  el.textContent = text;
  $("transcript").appendChild(el);
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

// -- push-to-talk -----------------------------------------------------------------------------

// Holding the control starts the user's turn and cuts the bot off (at once here, and the model
// stops its answer and keeps what was heard); letting go commits the turn, which the model
// then answers.
function talk(on) {
  if (!state.pushToTalk || on === state.talking) return;
  const open = state.ws && state.ws.readyState === WebSocket.OPEN;
  if (on && !open) return;
  state.talking = on;
  $("talk").classList.toggle("held", on);
  $("talk").textContent = on ? "Talking… release to send" : "Hold to talk";
  if (!open) return;
  if (on) {
    if (state.item) clearAudio(null);
    state.ws.send(JSON.stringify({type: "interrupt"}));
    state.interrupts += 1;
  } else {
    state.ws.send(JSON.stringify({type: "commit"}));
    state.commits += 1;
  }
}

function spaceBar(event) {
  return event.code === "Space" && document.activeElement !== $("text");
}

$("talk").onpointerdown = (event) => { event.preventDefault(); talk(true); };
$("talk").onpointerup = $("talk").onpointerleave = () => talk(false);
document.addEventListener("keydown", (event) => {
  if (!spaceBar(event) || !state.pushToTalk) return;
  event.preventDefault();
  if (!event.repeat) talk(true);
});
document.addEventListener("keyup", (event) => {
  if (spaceBar(event) && state.pushToTalk) { event.preventDefault(); talk(false); }
});

// -- wiring -----------------------------------------------------------------------------------

$("connect").onclick = () => connect();
$("hangup").onclick = () => hangup();
$("say").onsubmit = (event) => {
  event.preventDefault();
  if (sendText($("text").value)) $("text").value = "";
};

loadConfig().then(() => { if (params.get("autostart") === "1") connect(); })
  .catch((error) => setStatus("error", error.message));
