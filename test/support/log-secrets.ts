/**
 * Issue 7: no log line ever holds a credential or private key material. Scans captured log output
 * (a process's output(), capturingLogger's text() or lines()) for the secrets a test used and for
 * what must never be logged whatever the test: JWTs, bearer credentials, private JWK members and
 * PEM private keys. Any suite can call it on what it captured:
 *
 *   expectNoSecretsInLogs(fn.output(), { secrets: [PUBLISHER_PASSWORD, refreshToken] });
 *   expectNoSecretsInLogs(stack.keyRotated.output(), { secrets: credentialValues(stack.env) });
 */

/** Something a log line must never hold. */
export interface SecretFinding {
  /** 1-based line number in the scanned output. */
  readonly line: number;
  /** What was found, e.g. `secret #1`, `JWT`, `private JWK member "d"`; never the value. */
  readonly what: string;
}

export interface SecretScanOptions {
  /**
   * Values used in the test that must never be logged: the CM password, bearer and refresh
   * tokens, shared secrets. Looked for as is, JSON-escaped (once or twice) and URL-encoded. Blank
   * ones are ignored.
   */
  readonly secrets?: readonly (string | undefined)[];
}

/** Captured output: raw text (one line per log record), lines, or parsed records. */
export type CapturedLogs = string | readonly string[] | readonly Record<string, unknown>[];

interface Detector {
  readonly what: string;
  readonly pattern: RegExp;
}

/** Private JWK members (RFC 7518 6.3.2 and 6.4: d, p, q, dp, dq, qi, oth; k is a symmetric key). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Found whatever the test: none of these belongs in a log line. */
const ALWAYS: readonly Detector[] = [
  // A JSON member anywhere in a line, also inside a JSON document logged as a string (\"d\":).
  ...PRIVATE_JWK_MEMBERS.map((member) => ({ what: `private JWK member "${member}"`, pattern: new RegExp(`\\\\?"${member}\\\\?"\\s*:`) })),
  // A PEM private key of any kind (RSA, EC, ENCRYPTED...): its armor line, BEGIN or END. Not the
  // bare words: the publisher's skip reason says "the publickey field holds a PRIVATE KEY block".
  { what: 'PEM private key', pattern: /PRIVATE KEY-----/ },
  // A JWT (CM's bearer tokens are JWTs): base64url header and payload of JSON objects ("{" = eyJ).
  { what: 'JWT', pattern: /eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/ },
  // An Authorization header value (a bearer token or a basic credential), however it got there.
  { what: 'Authorization credential', pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/i },
];

/** Every finding in the captured output; [] when it is clean. */
export function findSecretsInLogs(logs: CapturedLogs, options: SecretScanOptions = {}): SecretFinding[] {
  const detectors = [...secretDetectors(options.secrets ?? []), ...ALWAYS];
  const findings: SecretFinding[] = [];
  toLines(logs).forEach((text, index) => {
    for (const detector of detectors) if (detector.pattern.test(text)) findings.push({ line: index + 1, what: detector.what });
  });
  return findings;
}

/** Fails the test naming each finding (line number and kind, never the secret itself). */
export function expectNoSecretsInLogs(logs: CapturedLogs, options: SecretScanOptions = {}): void {
  const lines = toLines(logs);
  if (lines.length === 0 || (lines.length === 1 && lines[0] === '')) {
    // A scan of nothing passes whatever is logged: the caller captured the wrong thing.
    throw new Error('expectNoSecretsInLogs: no log line was captured');
  }
  const findings = findSecretsInLogs(lines, options);
  if (findings.length === 0) return;
  const shown = findings.slice(0, 20).map((finding) => `  line ${finding.line}: ${finding.what}`);
  throw new Error(`${findings.length} secret(s) in ${lines.length} log lines:\n${shown.join('\n')}${findings.length > 20 ? '\n  ...' : ''}`);
}

/**
 * The values of the credential variables in an environment (names holding PASSWORD, SECRET, TOKEN
 * or ending in _KEY), to pass as `secrets`. File variables (…_FILE) name paths, not secrets.
 */
export function credentialValues(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(env)
    .filter(([name]) => /PASSWORD|SECRET|TOKEN|_KEY$/.test(name) && !name.endsWith('_FILE'))
    .map(([, value]) => value ?? '')
    .filter((value) => value.trim() !== '');
}

function secretDetectors(secrets: readonly (string | undefined)[]): Detector[] {
  return secrets.flatMap((secret, index) => {
    if (secret === undefined || secret.trim() === '') return [];
    // As is, JSON-escaped once (a log field) and twice (a JSON document logged as a string), URL-encoded.
    const escaped = JSON.stringify(secret).slice(1, -1);
    const forms = new Set([secret, escaped, JSON.stringify(escaped).slice(1, -1), encodeURIComponent(secret)]);
    return [{ what: `secret #${index + 1} (${secret.length} characters)`, pattern: new RegExp([...forms].map(escapeRegExp).join('|')) }];
  });
}

function toLines(logs: CapturedLogs): string[] {
  if (typeof logs === 'string') return logs.replace(/\n$/, '').split('\n');
  return logs.map((line) => (typeof line === 'string' ? line : JSON.stringify(line)));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
