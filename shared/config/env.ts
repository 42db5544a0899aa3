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
