/**
 * Where the research pipeline keeps its data, intermediate results and reports: S3 when deployed,
 * a folder locally. Keys are `/`-separated paths.
 */
export interface ObjectStore {
  /** The object's text, or undefined when there is no object at `key`. */
  getText(key: string): Promise<string | undefined>;
  putText(key: string, text: string, contentType?: string): Promise<void>;
}
