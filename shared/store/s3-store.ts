import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import {
  StoreError,
  contentTypeOf,
  isObjectName,
  type KeySetStore,
  type ObjectName,
  type ReadOptions,
  type ReadResult,
} from './store.js';

export interface S3Location {
  readonly bucket: string;
  /** Empty, or ends with '/'. */
  readonly prefix: string;
}

export interface S3StoreOptions extends S3Location {
  /** S3_ENDPOINT: IBM COS, MinIO, or unset for AWS. */
  readonly endpoint?: string | undefined;
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
}

/**
 * S3-compatible object storage. Change detection is a conditional GET (If-None-Match on the ETag),
 * so an unchanged set costs one small 304 per revalidation. Credentials come from the AWS SDK's
 * standard chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) and are never logged.
 */
export class S3KeySetStore implements KeySetStore {
  readonly location: string;
  private readonly client: S3Client;

  constructor(private readonly options: S3StoreOptions) {
    this.location = `s3://${options.bucket}/${options.prefix}`;
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      maxAttempts: options.maxAttempts,
      // IBM COS and older MinIO reject the SDK's default CRC32 trailers; checksums only when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: options.timeoutMs, requestTimeout: options.timeoutMs },
    };
    if (options.endpoint !== undefined) config.endpoint = options.endpoint;
    this.client = new S3Client(config);
  }

  async read(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    try {
      return await this.readOnce(name, options);
    } catch (error) {
      // A body cut off mid-stream (a connection reset, an object replaced while it was sent by a
      // store without atomic PUTs) is read once more before giving up; the SDK does not retry it.
      if (!(error instanceof BodyStreamError)) throw error;
      try {
        return await this.readOnce(name, options);
      } catch (second) {
        throw second instanceof BodyStreamError ? second.failure : second;
      }
    }
  }

  private async readOnce(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    let response;
    try {
      response = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(name), IfNoneMatch: options.ifChangedFrom }),
      );
    } catch (error) {
      const status = statusOf(error);
      if (status === 304) return { kind: 'unchanged' };
      if (status === 404 || nameOf(error) === 'NoSuchKey') return { kind: 'missing' };
      throw failure(`cannot read ${name}`, error);
    }
    const body = response.Body as Readable | undefined;
    if (response.ContentLength !== undefined && response.ContentLength > options.maxBytes) {
      body?.destroy();
      throw new StoreError('too_large', `${name} is ${response.ContentLength} bytes, over the ${options.maxBytes} limit`);
    }
    const bytes = await readBounded(body, options.maxBytes, name);
    return {
      kind: 'found',
      object: {
        body: bytes,
        version: response.ETag ?? '',
        lastModified: response.LastModified ?? new Date(),
      },
    };
  }

  async write(name: ObjectName, body: Buffer): Promise<void> {
    try {
      // A PUT replaces an object atomically: readers get the old or the new bytes.
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.keyOf(name),
          Body: body,
          ContentType: contentTypeOf(name),
        }),
      );
    } catch (error) {
      throw failure(`cannot write ${name}`, error, 'write_failed');
    }
  }

  async remove(name: ObjectName): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(name) }));
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw failure(`cannot remove ${name}`, error, 'write_failed');
    }
  }

  async list(): Promise<ObjectName[]> {
    const names: ObjectName[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.options.prefix, ContinuationToken: token }),
        );
        for (const entry of page.Contents ?? []) {
          const name = (entry.Key ?? '').slice(this.options.prefix.length);
          if (isObjectName(name)) names.push(name);
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw failure('cannot list the store', error);
    }
    return names.sort();
  }

  /** Releases sockets; the store must not be used afterwards. */
  close(): void {
    this.client.destroy();
  }

  private keyOf(name: ObjectName): string {
    if (!isObjectName(name)) throw new StoreError('outside_store', 'refused an invalid object name');
    return this.options.prefix + name;
  }
}

async function readBounded(body: Readable | undefined, maxBytes: number, name: string): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      length += buffer.length;
      if (length > maxBytes) {
        body.destroy();
        throw new StoreError('too_large', `${name} is over the ${maxBytes} byte limit`);
      }
      chunks.push(buffer);
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new BodyStreamError(failure(`cannot read ${name}`, error));
  }
  return Buffer.concat(chunks, length);
}

/** The body stream of a GET failed after the answer began: worth one more GET. */
class BodyStreamError extends Error {
  constructor(readonly failure: StoreError) {
    super(failure.message);
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function nameOf(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function failure(message: string, error: unknown, kind: 'unavailable' | 'write_failed' = 'unavailable'): StoreError {
  const isTimeout = nameOf(error) === 'TimeoutError' || (error as { code?: string } | undefined)?.code === 'ETIMEDOUT';
  const status = statusOf(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  const detail = [nameOf(error), typeof code === 'string' ? code : undefined, status !== undefined ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
  return new StoreError(isTimeout ? 'timeout' : kind, `${message}: ${detail || 'unknown error'}`, { cause: error });
}
