// The part of autocannon's programmatic API the load tests use (the package ships no types).
declare module 'autocannon' {
  interface AutocannonRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    /** Returns the request to send; context is per connection (reset when the request list wraps). */
    setupRequest?: (request: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest | undefined;
    /** Headers with the server's own name case; a repeated header is an array. */
    onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
  }
  interface AutocannonOptions {
    url: string;
    connections?: number;
    /** Seconds. */
    duration?: number;
    /** Seconds to wait for an answer before counting a timeout. */
    timeout?: number;
    requests?: AutocannonRequest[];
  }
  interface AutocannonResult {
    duration: number;
    /** Connection errors, timeouts included. */
    errors: number;
    timeouts: number;
    non2xx: number;
    statusCodeStats?: Record<string, { count: number }>;
    latency: { totalCount: number; p99: number };
    requests: { average: number; total: number };
  }
  /** A thenable event emitter, not a Promise. */
  function autocannon(options: AutocannonOptions): PromiseLike<AutocannonResult>;
  export default autocannon;
}
