/**
 * A writable view of a read-only type: for an object the core fills in place (a scratch input, a
 * reused output, a record under construction) and hands out under its read-only type.
 */
export type Writable<T> = { -readonly [K in keyof T]: T[K] };
