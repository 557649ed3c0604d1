import { Writable } from 'node:stream';

/** A writable stream that keeps what is written to it, for a command's stdout or stderr in a test. */
export function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}
