// Audio thread of voice search: mixes the microphone down to mono, resamples it to 16 kHz
// (a box low-pass the width of the rate ratio, then linear interpolation) and posts 16-bit PCM to
// the page in 100 ms chunks. The message "flush" posts what is left, then "flushed".

const TARGET_RATE = 16000;
const CHUNK = TARGET_RATE / 10;

class Pcm16k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.width = Math.max(1, Math.round(this.step));
    this.history = new Float32Array(this.width);
    this.historyAt = 0;
    this.sum = 0;
    this.at = 0; // position of the next output sample; -1 is the previous block's last sample
    this.last = 0;
    this.out = new Int16Array(CHUNK);
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.post(this.out.slice(0, this.filled));
        this.port.postMessage("flushed");
      }
    };
  }

  post(samples) {
    if (samples.length > 0) this.port.postMessage(samples, [samples.buffer]);
    this.out = new Int16Array(CHUNK);
    this.filled = 0;
  }

  lowPass(channels, n) {
    const filtered = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let mixed = 0;
      for (const channel of channels) mixed += channel[i];
      mixed /= channels.length;
      this.sum += mixed - this.history[this.historyAt];
      this.history[this.historyAt] = mixed;
      this.historyAt = (this.historyAt + 1) % this.width;
      filtered[i] = this.sum / this.width;
    }
    return filtered;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const n = channels[0].length;
    const x = this.lowPass(channels, n);
    while (this.at <= n - 1) {
      const i = Math.floor(this.at);
      const frac = this.at - i;
      const a = i < 0 ? this.last : x[i];
      const b = frac > 0 ? x[i + 1] : a;
      const value = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.out[this.filled++] = Math.round(value * 32767);
      if (this.filled === CHUNK) this.post(this.out);
      this.at += this.step;
    }
    this.at -= n;
    this.last = x[n - 1];
    return true;
  }
}

registerProcessor("pcm16k", Pcm16k);
