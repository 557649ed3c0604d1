import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { InvalidParameterError } from '../../core/errors.js';
import type { ObjectStore } from '../../core/ports/object-store.js';

/** An {@link ObjectStore} in a local folder: what S3 is to the deployed pipeline. */
export class FolderObjectStore implements ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const path = resolve(join(this.root, key));
    if (!path.startsWith(this.root + sep))
      throw new InvalidParameterError(`object key "${key}" leaves the store`);
    return path;
  }

  async getText(key: string): Promise<string | undefined> {
    try {
      return readFileSync(this.path(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async putText(key: string, text: string): Promise<void> {
    const path = this.path(key);
    mkdirSync(dirname(path), { recursive: true });
    const temp = `${path}.tmp-${process.pid}`;
    writeFileSync(temp, text);
    renameSync(temp, path);
  }
}
