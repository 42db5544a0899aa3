import type { StoreConfig } from '../config/store-config.js';
import { FileKeySetStore } from './file-store.js';
import { S3KeySetStore } from './s3-store.js';
import type { KeySetStore } from './store.js';

export function openStore(config: StoreConfig): KeySetStore {
  return config.kind === 'file' ? new FileKeySetStore(config.root) : new S3KeySetStore(config);
}
