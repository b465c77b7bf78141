// The voice search WebSocket (GET /api/search/voice/stream): {"rate": 16000}, then 16-bit PCM
// as binary frames (each answered with {"type": "partial", "text"}), then {"type": "end"},
// answered with {"type": "final", transcript, asked, heard, results, did_you_mean, in_store, ms}.
// An error is {"type": "error", "code", "message"} and closes the socket.

const RATE = 16000;

function failure(message, unavailable = false) {
  const err = new Error(message);
  err.unavailable = unavailable;
  return err;
}

export function openVoiceSocket({ onPartial }) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/api/search/voice/stream`);
  socket.binaryType = "arraybuffer";
  let settle = null; // {resolve, reject} of the final answer, once asked for
  let failed = null; // what ended the socket before the answer came

  function fail(err) {
    failed ??= err;
    settle?.reject(failed);
  }

  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "partial") onPartial(message.text);
    else if (message.type === "final") settle?.resolve(message);
    else if (message.type === "error") fail(failure(message.message, message.code === "unavailable"));
  });
  socket.addEventListener("close", () => fail(failure("the voice connection closed")));

  return new Promise((resolve, reject) => {
    // No connection at all: the hub cannot be reached (a hub without voice search is not offered).
    socket.addEventListener("error", () => reject(failure("the hub cannot be reached")), { once: true });
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ rate: RATE }));
      resolve({
        send(pcm) {
          if (socket.readyState === WebSocket.OPEN) socket.send(pcm);
        },
        finish() {
          if (failed) return Promise.reject(failed);
          const answer = new Promise((done, broken) => { settle = { resolve: done, reject: broken }; });
          socket.send(JSON.stringify({ type: "end" }));
          return answer.finally(() => socket.close());
        },
        close() {
          socket.close();
        },
      });
    }, { once: true });
  });
}
