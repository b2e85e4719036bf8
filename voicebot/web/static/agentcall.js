/* Accept a voice handoff in the browser: window.agentCall (used by the desk page).
 *
 * agentCall.accept(handoffId, audioElement) takes the microphone, makes an RTCPeerConnection with no
 * ICE servers, waits for its candidates (no trickle) and posts the offer to
 * POST /v1/desk/handoffs/{id}/call (with the session's CSRF token, through window.ui.call). The
 * server takes the handoff for this agent and answers; the caller's audio (after the bot's spoken
 * summary of the handoff) plays in audioElement. Resolves with {conversationId} once connected;
 * rejects with an Error whose message can be shown (e.g. the server's 409: another agent has it).
 * agentCall.hangUp() ends the agent's leg (DELETE ...; the caller's call ends with it).
 * agentCall.state: "idle" | "connecting" | "connected" | "ended" | "failed"; agentCall.onstate(state)
 * is called on each change when set. */
(function () {
  "use strict";

  var pc = null, mic = null, handoff = null;
  var api = { state: "idle", conversationId: null, onstate: null, accept: accept, hangUp: hangUp };

  function setState(state) {
    api.state = state;
    if (typeof api.onstate === "function") api.onstate(state);
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

  function connected(peer, ms) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(new Error("The call's audio did not connect.")); }, ms);
      function check() {
        if (peer.connectionState === "connected") { clearTimeout(timer); resolve(); }
        else if (peer.connectionState === "failed" || peer.connectionState === "closed") {
          clearTimeout(timer);
          reject(new Error("The call's audio connection failed."));
        }
      }
      peer.addEventListener("connectionstatechange", check);
      check();
    });
  }

  function accept(handoffId, audioElement) {
    if (pc) return Promise.reject(new Error("You are already on a call; hang up first."));
    handoff = handoffId;
    setState("connecting");
    return navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      mic = stream;
      pc = new RTCPeerConnection({ iceServers: [] });
      var peer = pc;
      mic.getAudioTracks().forEach(function (t) { peer.addTrack(t, mic); });
      peer.addEventListener("track", function (event) {
        if (audioElement) {
          audioElement.srcObject = event.streams[0] || new MediaStream([event.track]);
          var playing = audioElement.play();
          if (playing && playing.catch) playing.catch(function () {});
        }
      });
      peer.addEventListener("connectionstatechange", function () {
        if (peer !== pc) return;
        if (peer.connectionState === "failed" || peer.connectionState === "closed" ||
            peer.connectionState === "disconnected") {
          cleanUp();
          setState("ended");
        }
      });
      return peer.createOffer().then(function (offer) { return peer.setLocalDescription(offer); })
        .then(function () { return gathered(peer, 2000); })
        .then(function () {
          return window.ui.call("POST", "/v1/desk/handoffs/" + encodeURIComponent(handoffId) + "/call",
            { sdp: peer.localDescription.sdp, type: "offer" });
        })
        .then(function (answer) {
          api.conversationId = answer.conversation_id;
          return peer.setRemoteDescription({ type: "answer", sdp: answer.sdp });
        })
        .then(function () { return connected(peer, 15000); })
        .then(function () {
          setState("connected");
          return { conversationId: api.conversationId };
        });
    }).catch(function (err) {
      cleanUp();
      setState("failed");
      throw err;
    });
  }

  function cleanUp() {
    if (pc) { var peer = pc; pc = null; peer.close(); }
    if (mic) { mic.getTracks().forEach(function (t) { t.stop(); }); mic = null; }
  }

  /* resolves when the server has ended the agent's leg (or there was none) */
  function hangUp() {
    var id = handoff;
    var wasOn = pc !== null;
    cleanUp();
    handoff = null;
    if (api.state !== "idle") setState("ended");
    if (!id || !wasOn) return Promise.resolve();
    return window.ui.call("DELETE", "/v1/desk/handoffs/" + encodeURIComponent(id) + "/call")
      .catch(function () {});
  }

  window.agentCall = api;
})();
