/* Listen in to a live call in the browser, and whisper to its agent: window.listen.
 *
 * listen.start(conversationId, onState) opens WebSocket /v1/live/calls/{id}/audio: a JSON text frame
 * {sample_rate, channels, format: "s16le", frame_ms} comes first, then binary 20 ms frames of PCM16.
 * Each frame becomes an AudioBuffer played by a scheduled AudioBufferSourceNode; frames are queued
 * JITTER_S ahead of the clock (the jitter buffer), and a queue that falls behind or runs more than
 * MAX_AHEAD_S ahead starts again from the clock. listen.stats: frames, rms (of the last second,
 * 0..1 of full scale), peakRms, state ("connecting" | "listening" | "ended" | "failed").
 *
 * listen.whisper(conversationId) sends the microphone to the call's agent only (POST
 * /v1/live/calls/{id}/whisper, an SDP offer; the server says 409 with the reason where the call's
 * agent is not reachable); listen.stopWhisper() ends it. */
(function () {
  "use strict";

  var JITTER_S = 0.12, MAX_AHEAD_S = 0.6, RMS_FRAMES = 50;
  var stats = { frames: 0, rms: 0, peakRms: 0, state: "idle", conversationId: null, reason: null };
  var socket = null, context = null, format = null, playAt = 0, squares = [], onStateFn = null;
  var whisperPc = null, whisperMic = null;

  function setState(state, reason) {
    stats.state = state;
    stats.reason = reason || null;
    if (onStateFn) onStateFn(state, reason || "");
  }

  function play(data) {
    if (!format || !context) return;
    var samples = new Int16Array(data);
    var floats = new Float32Array(samples.length);
    var sum = 0;
    for (var i = 0; i < samples.length; i++) { floats[i] = samples[i] / 32768; sum += floats[i] * floats[i]; }
    squares.push(samples.length ? sum / samples.length : 0);
    if (squares.length > RMS_FRAMES) squares.shift();
    stats.rms = Math.sqrt(squares.reduce(function (a, b) { return a + b; }, 0) / squares.length);
    stats.peakRms = Math.max(stats.peakRms, stats.rms);
    stats.frames += 1;
    if (!samples.length) return;
    var buffer = context.createBuffer(1, floats.length, format.sample_rate);
    buffer.copyToChannel(floats, 0);
    var source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    var now = context.currentTime;
    if (playAt < now || playAt > now + MAX_AHEAD_S) playAt = now + JITTER_S;
    source.start(playAt);
    playAt += buffer.duration;
  }

  function start(conversationId, onState) {
    stop();
    onStateFn = onState || null;
    stats.frames = 0; stats.rms = 0; stats.peakRms = 0; squares = []; format = null;
    stats.conversationId = conversationId;
    var AudioCtx = window.AudioContext || window.webkitAudioContext;
    context = new AudioCtx();
    if (context.state === "suspended") context.resume();
    playAt = 0;
    setState("connecting");
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + "/v1/live/calls/" + encodeURIComponent(conversationId) + "/audio");
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.onmessage = function (message) {
      if (ws !== socket) return;
      if (typeof message.data === "string") {
        try { format = JSON.parse(message.data); } catch (e) { return; }
        setState("listening");
        return;
      }
      play(message.data);
    };
    ws.onclose = function (event) {
      if (ws !== socket) return;
      socket = null;
      if (event.code === 1000) setState("ended", event.reason || "The call has ended.");
      else if (event.code === 4401) setState("failed", "Log in again to listen.");
      else if (event.code === 4403) setState("failed", "Your role may not listen to calls.");
      else setState("failed", event.reason || "The audio connection was lost.");
    };
  }

  function stop() {
    stopWhisper();
    if (socket) { var ws = socket; socket = null; ws.close(); }
    if (context) { context.close(); context = null; }
    if (stats.state === "listening" || stats.state === "connecting") setState("idle");
  }

  function gathered(pc, ms) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") return resolve();
      var timer = setTimeout(resolve, ms);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  /* the microphone to the agent only; resolves when the server has answered, rejects with an Error
   * whose message says why not (e.g. the server's 409 reason) */
  function whisper(conversationId) {
    stopWhisper();
    return navigator.mediaDevices.getUserMedia({ audio: true }).then(function (mic) {
      whisperMic = mic;
      whisperPc = new RTCPeerConnection({ iceServers: [] });
      mic.getAudioTracks().forEach(function (t) { whisperPc.addTransceiver(t, { direction: "sendonly" }); });
      var pc = whisperPc;
      return pc.createOffer().then(function (offer) { return pc.setLocalDescription(offer); })
        .then(function () { return gathered(pc, 2000); })
        .then(function () {
          return window.ui.call("POST", "/v1/live/calls/" + encodeURIComponent(conversationId) + "/whisper",
            { sdp: pc.localDescription.sdp, type: "offer" });
        })
        .then(function (answer) { return pc.setRemoteDescription({ type: "answer", sdp: answer.sdp }); });
    }).catch(function (err) { stopWhisper(); throw err; });
  }

  function stopWhisper() {
    if (whisperPc) { whisperPc.close(); whisperPc = null; }
    if (whisperMic) { whisperMic.getTracks().forEach(function (t) { t.stop(); }); whisperMic = null; }
  }

  window.listen = { start: start, stop: stop, stats: stats, whisper: whisper, stopWhisper: stopWhisper,
    whispering: function () { return whisperPc !== null; } };
})();
