// AudioWorklet: microphone capture, resampled to the transport's rate and cut into 20 ms
// PCM16 chunks that are posted to the page, which sends them as binary WebSocket messages.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.target = options.processorOptions.targetRate;
    this.step = sampleRate / this.target;    // input samples per output sample
    this.pos = 0;                             // fractional read position in `this.buf`
    this.buf = new Float32Array(0);
    this.chunk = new Int16Array(Math.round(this.target / 50));
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    const joined = new Float32Array(this.buf.length + input.length);
    joined.set(this.buf);
    joined.set(input, this.buf.length);
    const step = this.step;
    let pos = this.pos;
    // Downsampling averages the input samples each output sample spans (a box low-pass) so
    // that speech above the new Nyquist frequency does not fold back; upsampling interpolates.
    while (pos + Math.max(step, 1) < joined.length) {
      let value;
      if (step > 1) {
        const start = Math.floor(pos), end = Math.floor(pos + step);
        let sum = 0;
        for (let i = start; i < end; i++) sum += joined[i];
        value = sum / (end - start);
      } else {
        const i = Math.floor(pos), frac = pos - i;
        value = joined[i] * (1 - frac) + joined[i + 1] * frac;
      }
      const clipped = Math.max(-1, Math.min(1, value));
      this.chunk[this.fill++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.fill === this.chunk.length) {
        this.port.postMessage(this.chunk.buffer.slice(0));
        this.fill = 0;
      }
      pos += step;
    }
    const keep = Math.floor(pos);
    this.buf = joined.slice(keep);
    this.pos = pos - keep;
    return true;
  }
}

registerProcessor("flowspec-capture", CaptureProcessor);
