import { Writable } from 'node:stream';

/** A writable that keeps what a CLI command writes to it, for its `stdout` or `stderr`. */
export function capture(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({
      write(chunk, _e, done) {
        text += String(chunk);
        done();
      },
    }),
    text: () => text,
  };
}
