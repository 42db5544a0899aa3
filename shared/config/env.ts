/** Environment variables, read once at start. Problems are collected so one error names them all. */
export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  /** The raw value, with empty strings treated as unset (as Kubernetes renders optional values). */
  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  /** A secret exactly as given (not trimmed), or undefined when unset or blank. Never echoed. */
  secret(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  integer(name: string, fallback: number, range: { min: number; max: number }): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < range.min || parsed > range.max) {
      this.problem(name, `must be an integer from ${range.min} to ${range.max} (got ${quote(value)})`);
      return fallback;
    }
    return parsed;
  }

  /**
   * A duration such as `48h`, `30m`, `90s`, `2d` or `1500ms`; a bare number is seconds. Returned
   * in milliseconds.
   */
  durationMs(name: string, fallbackMs: number, range: { minMs: number; maxMs: number }): number {
    const value = this.raw(name);
    if (value === undefined) return fallbackMs;
    const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value);
    const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match?.[2] ?? 's'] ?? 1000;
    const parsed = match ? Number(match[1]) * unitMs : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < range.minMs || parsed > range.maxMs) {
      this.problem(name, `must be a duration like 48h, 30m, 90s or 2d, from ${range.minMs / 1000}s to ${range.maxMs / 1000}s (got ${quote(value)})`);
      return fallbackMs;
    }
    return parsed;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (value === 'true') return true;
    if (value === 'false') return false;
    this.problem(name, `must be "true" or "false" (got ${quote(value)})`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.problem(name, `must be one of ${allowed.join(', ')} (got ${quote(value)})`);
    return fallback;
  }

  /** An http(s) URL, or undefined when unset. */
  httpUrl(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    try {
      const url = new URL(value);
      if (url.protocol === 'http:' || url.protocol === 'https:') {
        if (url.username === '' && url.password === '') return value;
        this.problem(name, 'must not embed credentials');
        return undefined;
      }
    } catch {
      // reported below
    }
    this.problem(name, `must be an http:// or https:// URL (got ${quote(value)})`);
    return undefined;
  }

  /** Names of set variables starting with a prefix (to refuse ones a function must never hold). */
  namesWithPrefix(prefix: string): string[] {
    return Object.keys(this.env).filter((name) => name.startsWith(prefix) && this.raw(name) !== undefined).sort();
  }

  problem(name: string, message: string): void {
    this.problems.push(`${name} ${message}`);
  }

  /** Throws ConfigError naming every bad variable seen so far. */
  finish(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

/** Values are echoed to help the operator, shortened so a pasted secret is never logged whole. */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 12)}...` : value);
}
