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
  /** Bounds a whole operation, SDK retries and body included: the last guard against a hang. */
  private readonly deadlineMs: number;

  constructor(private readonly options: S3StoreOptions) {
    this.location = `s3://${options.bucket}/${options.prefix}`;
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      maxAttempts: options.maxAttempts,
      // IBM COS and older MinIO reject the SDK's default CRC32 trailers; checksums only when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // requestTimeout alone only logs a warning in @smithy/node-http-handler 4: without
      // throwOnRequestTimeout and socketTimeout, a store that accepts and never answers (or stalls
      // mid-body) hangs the caller for ever, and with it the serving loop or a publication.
      requestHandler: {
        connectionTimeout: options.timeoutMs,
        requestTimeout: options.timeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: options.timeoutMs,
      },
    };
    if (options.endpoint !== undefined) config.endpoint = options.endpoint;
    this.client = new S3Client(config);
    // Each attempt is bounded by timeoutMs; the SDK's backoff between attempts stays well under 1 s.
    this.deadlineMs = options.timeoutMs * options.maxAttempts + 1000 * (options.maxAttempts - 1);
  }

  /** Runs one store operation under the deadline; its end aborts the request and its body. */
  private async withDeadline<T>(operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DeadlineExceeded(this.deadlineMs)), this.deadlineMs);
    try {
      return await operation(controller.signal);
    } finally {
      clearTimeout(timer);
    }
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

  private readOnce(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    return this.withDeadline((signal) => this.getObject(name, options, signal));
  }

  private async getObject(name: ObjectName, options: ReadOptions, signal: AbortSignal): Promise<ReadResult> {
    let response;
    try {
      response = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(name), IfNoneMatch: options.ifChangedFrom }),
        { abortSignal: signal },
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
    const bytes = await readBounded(body, options.maxBytes, name, signal);
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
      await this.withDeadline((abortSignal) =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.options.bucket,
            Key: this.keyOf(name),
            Body: body,
            ContentType: contentTypeOf(name),
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      throw failure(`cannot write ${name}`, error, 'write_failed');
    }
  }

  async remove(name: ObjectName): Promise<void> {
    try {
      await this.withDeadline((abortSignal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(name) }), { abortSignal }),
      );
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
        const continuation = token;
        const page = await this.withDeadline((abortSignal) =>
          this.client.send(
            new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.options.prefix, ContinuationToken: continuation }),
            { abortSignal },
          ),
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

async function readBounded(body: Readable | undefined, maxBytes: number, name: string, signal: AbortSignal): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let length = 0;
  // The SDK's own timers stop once the answer has begun; a body that stalls ends at the deadline.
  const abortBody = (): void => void body.destroy(signal.reason as Error);
  if (signal.aborted) abortBody();
  else signal.addEventListener('abort', abortBody, { once: true });
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
    // Past the deadline there is no time left for a second GET.
    if (signal.aborted) throw failure(`cannot read ${name}`, error);
    throw new BodyStreamError(failure(`cannot read ${name}`, error));
  } finally {
    signal.removeEventListener('abort', abortBody);
  }
  return Buffer.concat(chunks, length);
}

/** The reason our own deadline gives when it aborts an operation. */
class DeadlineExceeded extends Error {
  override readonly name = 'TimeoutError';
  constructor(deadlineMs: number) {
    super(`no answer within ${deadlineMs} ms`);
  }
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
  // Only our own deadline aborts a request, so an AbortError is a timeout too.
  const isTimeout =
    nameOf(error) === 'TimeoutError' || nameOf(error) === 'AbortError' || (error as { code?: string } | undefined)?.code === 'ETIMEDOUT';
  const status = statusOf(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  const detail = [nameOf(error), typeof code === 'string' ? code : undefined, status !== undefined ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
  return new StoreError(isTimeout ? 'timeout' : kind, `${message}: ${detail || 'unknown error'}`, { cause: error });
}
