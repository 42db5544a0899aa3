import type { StoreConfig } from '../config/store-config.js';
import { FileKeySetStore } from './file-store.js';
import type { S3KeySetStore, S3StoreOptions } from './s3-store.js';
import type { KeySetStore, ObjectName, ReadOptions, ReadResult } from './store.js';

export function openStore(config: StoreConfig): KeySetStore {
  return config.kind === 'file' ? new FileKeySetStore(config.root, { timeoutMs: config.timeoutMs }) : new LazyS3Store(config);
}

/**
 * The S3 store, with the AWS SDK loaded on first use: about 150 ms of start-up and megabytes of
 * memory that a function on a file store (a PVC) never needs.
 */
class LazyS3Store implements KeySetStore {
  readonly location: string;
  private store: Promise<S3KeySetStore> | undefined;
  private loaded: S3KeySetStore | undefined;

  constructor(private readonly options: S3StoreOptions) {
    this.location = `s3://${options.bucket}/${options.prefix}`;
  }

  async read(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    return (await this.open()).read(name, options);
  }

  async write(name: ObjectName, body: Buffer): Promise<void> {
    return (await this.open()).write(name, body);
  }

  async remove(name: ObjectName): Promise<void> {
    return (await this.open()).remove(name);
  }

  async list(): Promise<ObjectName[]> {
    return (await this.open()).list();
  }

  close(): void {
    this.loaded?.close();
  }

  private open(): Promise<S3KeySetStore> {
    this.store ??= import('./s3-store.js').then(({ S3KeySetStore: Store }) => (this.loaded = new Store(this.options)));
    return this.store;
  }
}
