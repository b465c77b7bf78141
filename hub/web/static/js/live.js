// A WebSocket to the hub that reconnects by itself (1 s, doubling up to 15 s) and hands every
// JSON message to onMessage. onOpen runs on each (re)connection: send a login there, reload
// anything that may have changed while the socket was down.

const MAX_DELAY_MS = 15000;

export function connectLive(path, { onOpen, onMessage, onState, onClose }) {
  let socket = null;
  let delay = 1000;
  let stopped = false;
  let timer = null;

  function open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}${path}`);
    socket.addEventListener("open", () => {
      delay = 1000;
      onState?.("open");
      onOpen?.(socket);
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") onMessage(JSON.parse(event.data), socket);
    });
    socket.addEventListener("close", (event) => {
      onState?.("closed");
      if (onClose?.(event) === false) stopped = true;
      if (stopped) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    });
  }

  open();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
}
