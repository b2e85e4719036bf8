/* voicebot call page: a browser call to the bot over WebRTC, no dependencies.
 * Call: microphone -> RTCPeerConnection (no ICE servers, candidates gathered before the offer is
 * sent, no trickle) -> POST /v1/webrtc/offer -> the answer names the call (pc_id) and the
 * conversation, whose turns are polled from GET /v1/conversations/{id} as the transcript.
 * The bot's audio plays through the <audio> element; an analyser on the same stream drives the
 * level meter. window.vbCall exposes the call's state (used by the browser tests). */
(function () {
  "use strict";
  var POLL_MS = 800;
  var callButton = document.querySelector(".vc-call");
  var hangupButton = document.querySelector(".vc-hangup");
  var statusLine = document.querySelector(".vc-status");
  var log = document.querySelector(".vc-log");
  var audio = document.querySelector(".vc-audio");
  var meter = document.querySelector(".vc-meter-bar");
  var state = window.vbCall = {
    state: "idle", pcId: null, conversationId: null, offerSdp: null, answerSdp: null,
    peakLevel: 0, loudFrames: 0, trackState: null, error: null
  };
  var pc = null, mic = null, audioContext = null, meterTimer = null, pollTimer = null, shown = 0;

  function setStatus(text, name) {
    statusLine.textContent = text;
    if (name) state.state = name;
  }

  function add(role, text) {
    var item = document.createElement("li");
    item.className = "vc-msg vc-" + role;
    item.setAttribute("data-role", role);
    item.textContent = text;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function gathered(peer, ms) {
    return new Promise(function (resolve) {
      if (peer.iceGatheringState === "complete") return resolve();
      var timer = setTimeout(resolve, ms);
      peer.addEventListener("icegatheringstatechange", function () {
        if (peer.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  function listen(stream) {
    audio.srcObject = stream;
    audio.play().catch(function () { /* autoplay refused: the meter still runs */ });
    var track = stream.getAudioTracks()[0];
    audioContext = audioContext || new AudioContext();
    var analyser = audioContext.createAnalyser();
    analyser.fftSize = 1024;
    audioContext.createMediaStreamSource(stream).connect(analyser);
    var samples = new Float32Array(analyser.fftSize);
    meterTimer = setInterval(function () {
      analyser.getFloatTimeDomainData(samples);
      var peak = 0;
      for (var i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
      state.peakLevel = Math.max(state.peakLevel, peak);
      if (peak > 0.02) state.loudFrames += 1;
      state.trackState = track ? track.readyState : null;
      meter.style.width = Math.min(100, Math.round(peak * 200)) + "%";
    }, 50);
  }

  function poll() {
    if (!state.conversationId) return Promise.resolve();
    return fetch("/v1/conversations/" + state.conversationId).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (conversation) {
      if (!conversation) return;
      conversation.turns.slice(shown).forEach(function (t) {
        add(t.role === "customer" ? "customer" : "bot", t.text);
      });
      shown = Math.max(shown, conversation.turns.length);
    }).catch(function () { /* the next poll tries again */ });
  }

  function start() {
    callButton.disabled = true;
    log.textContent = "";
    shown = 0;
    state.peakLevel = 0;
    state.loudFrames = 0;
    setStatus("Getting the microphone…", "starting");
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      mic = stream;
      pc = new RTCPeerConnection({ iceServers: [] });
      mic.getAudioTracks().forEach(function (t) { pc.addTrack(t, mic); });
      pc.addEventListener("track", function (event) {
        listen(event.streams[0] || new MediaStream([event.track]));
      });
      pc.addEventListener("connectionstatechange", function () {
        if (pc && pc.connectionState === "connected") setStatus("Connected — speak now", "connected");
        if (pc && (pc.connectionState === "failed" || pc.connectionState === "closed")) end("Call ended");
      });
      setStatus("Calling…", "calling");
      return pc.createOffer().then(function (offer) { return pc.setLocalDescription(offer); })
        .then(function () { return gathered(pc, 3000); })
        .then(function () {
          state.offerSdp = pc.localDescription.sdp;
          return fetch("/v1/webrtc/offer", {
            method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" })
          });
        });
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error ? body.error.message : "the call was refused");
        return body;
      });
    }).then(function (answer) {
      state.pcId = answer.pc_id;
      state.conversationId = answer.conversation_id;
      state.answerSdp = answer.sdp;
      hangupButton.disabled = false;
      pollTimer = setInterval(poll, POLL_MS);
      return pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    }).catch(function (err) {
      state.error = String(err && err.message || err);
      add("error", "The call could not be made: " + state.error);
      end("Call failed");
    });
  }

  function end(text) {
    if (state.state === "ended") return;
    var pcId = state.pcId;
    state.pcId = null;
    if (pcId) fetch("/v1/webrtc/calls/" + encodeURIComponent(pcId), { method: "DELETE" }).catch(function () {});
    if (pc) { pc.close(); pc = null; }
    if (mic) { mic.getTracks().forEach(function (t) { t.stop(); }); mic = null; }
    clearInterval(meterTimer);
    clearInterval(pollTimer);
    meter.style.width = "0";
    poll();
    setStatus(text, "ended");
    hangupButton.disabled = true;
    callButton.disabled = false;
  }

  callButton.addEventListener("click", function () {
    state.state = "idle";
    state.error = null;
    audioContext = audioContext || new AudioContext();  // created on the click: allowed to play
    start();
  });
  hangupButton.addEventListener("click", function () { end("Call ended"); });
  window.addEventListener("pagehide", function () { if (pc) end("Call ended"); });
})();
