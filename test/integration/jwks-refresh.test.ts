/** The jwks-refresh CLI: one cycle, dry run, exit codes; and two writers converging on one store. */
import type { BackendName } from '../support/backends.js';
import { runRefresh } from '../support/processes.js';
import { startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const ENCRYPT = 4 | 8;

function create(stack: PublisherStack, name: string, usageMask = SIGN): string {
  return stack.emulator.keys.create({ name, algorithm: 'ec', curveid: 'secp384r1', usageMask, labels: { jwks: 'publish' } }).id;
}

describe.each<BackendName>(['file', 's3'])('jwks-refresh on the %s store', (backendName) => {
  let stack: PublisherStack;

  beforeAll(async () => {
    // This CM lists public keys and gives RSA ones as SPKI: the other shapes the reference allows.
    stack = await startPublisherStack(backendName, { emulator: { includePublicKeyInList: true, rsaPublicKeyFormat: 'spki' } });
  });
  afterAll(() => stack?.close());

  it('exits 5 (refused) with nothing to publish, and 0 once there is', async () => {
    const refused = await runRefresh([], stack.env);
    expect(refused.code).toBe(5);
    expect(JSON.parse(refused.stdout)).toMatchObject({ outcome: 'refused', guard: { guard: 'empty_set' } });
    create(stack, 'signing');
    stack.emulator.keys.create({ name: 'encryption', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT, labels: { jwks: 'publish' } });
    stack.emulator.clearRequests();
    const published = await runRefresh([], stack.env);
    expect(stack.emulator.requests.filter((request) => request.endpoint === 'get')).toEqual([]);
    expect(published.code).toBe(0);
    expect(JSON.parse(published.stdout)).toMatchObject({ dryRun: false, outcome: 'published', keys: 2 });
    expect(published.stderr).toContain('"audit":true');
    expect(await stack.publishedKids()).toHaveLength(2);
  });

  it('revokes the refresh token its login obtained before it exits: runs leave no live credential in CM', async () => {
    const before = stack.emulator.logins.listRefreshTokens().length;
    const run = await runRefresh(['--dry-run'], stack.env);
    expect(run.code).toBe(0);
    const tokens = stack.emulator.logins.listRefreshTokens().slice(before);
    expect(tokens).toEqual([expect.objectContaining({ revoked: true })]);
    expect(run.stderr).toContain('"event":"ciphertrust_refresh_token_revoked"');
  });

  it('--dry-run prints what would be added and removed and writes nothing', async () => {
    const before = await stack.publishedBytes();
    const signing = stack.emulator.keys.list().find((key) => key.name === 'signing')!;
    stack.emulator.keys.revoke(stack.emulator.keys.list().find((key) => key.name === 'encryption')!.id, 'Superseded');
    create(stack, 'signing-next');
    const dry = await runRefresh(['--dry-run'], stack.env);
    expect(dry.code).toBe(0);
    const result = JSON.parse(dry.stdout) as { dryRun: boolean; outcome: string; added: { cmKey: { name: string } }[]; removed: { cmKey: { name: string; state: string } }[] };
    expect(result).toMatchObject({ dryRun: true, outcome: 'dry_run' });
    expect(result.added.map((change) => change.cmKey.name)).toEqual(['signing-next']);
    expect(result.removed.map((change) => [change.cmKey.name, change.cmKey.state])).toEqual([['encryption', 'Deactivated']]);
    expect(dry.stderr).not.toContain('"audit":true');
    expect(await stack.publishedBytes()).toEqual(before);
    expect(signing.state).toBe('Active');
  });

  it('two writers at once converge on the same bytes, and a third run changes nothing', async () => {
    const [first, second] = await Promise.all([runRefresh([], stack.env), runRefresh([], stack.env)]);
    // On failure, the run's JSON result is shown instead of its exit code.
    expect([first, second].map((run) => (run.code === 0 ? 0 : run.stdout))).toEqual([0, 0]);
    const bytes = await stack.publishedBytes();
    const third = await runRefresh([], stack.env);
    expect(JSON.parse(third.stdout)).toMatchObject({ outcome: 'unchanged', filesWritten: 0, filesRemoved: 0 });
    expect(await stack.publishedBytes()).toEqual(bytes);
    expect(await stack.publishedKids()).toHaveLength(2);
  });

  it('--confirm-removal lets an operator publish a removal the guard refused', async () => {
    for (const key of stack.emulator.keys.list()) stack.emulator.keys.patch(key.id, { labels: {} });
    const keep = create(stack, 'only-survivor');
    const refused = await runRefresh([], stack.env);
    expect(refused.code).toBe(5);
    expect(JSON.parse(refused.stdout)).toMatchObject({ guard: { guard: 'mass_removal' } });
    const confirmed = await runRefresh(['--confirm-removal'], stack.env);
    expect(confirmed.code).toBe(0);
    expect(confirmed.stderr).toContain('"override":"confirm_removal"');
    expect(await stack.publishedKids()).toHaveLength(1);
    expect(stack.emulator.keys.get(keep)?.state).toBe('Active');
  });
});

describe('jwks-refresh exit codes', () => {
  let stack: PublisherStack;

  beforeAll(async () => {
    stack = await startPublisherStack('file');
    create(stack, 'signing');
  });
  afterAll(() => stack?.close());

  it('publishes an empty set only with JWKS_ALLOW_EMPTY=true', async () => {
    const other = await startPublisherStack('file');
    try {
      expect((await runRefresh([], other.env)).code).toBe(5);
      const allowed = await runRefresh([], { ...other.env, JWKS_ALLOW_EMPTY: 'true' });
      expect(allowed.code).toBe(0);
      expect((await other.publishedBytes())?.toString()).toBe('{"keys":[]}');
    } finally {
      await other.close();
    }
  });

  it('exits 3 when CipherTrust Manager cannot be reached, and leaves the store alone', async () => {
    const result = await runRefresh([], { ...stack.env, CIPHERTRUST_URL: 'https://127.0.0.1:1', CIPHERTRUST_RETRY_BUDGET_MS: '0' });
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({ outcome: 'failed', failure: 'ciphertrust' });
    expect(await stack.publishedBytes()).toBeUndefined();
  });

  it('exits 4 when the store cannot be written', async () => {
    const result = await runRefresh([], { ...stack.env, JWKS_STORE: 's3://no-such-bucket/x', S3_ENDPOINT: 'http://127.0.0.1:1', S3_MAX_ATTEMPTS: '1', S3_TIMEOUT_MS: '500' });
    expect(result.code).toBe(4);
    expect(JSON.parse(result.stdout)).toMatchObject({ outcome: 'failed', failure: 'store' });
  });

  it('exits 78 naming the bad variables, and 2 on a bad flag', async () => {
    const config = await runRefresh([], { ...stack.env, CIPHERTRUST_URL: 'http://cm', JWKS_RETAIN_DEACTIVATED: 'forever' });
    expect(config.code).toBe(78);
    expect(config.stderr).toContain('CIPHERTRUST_URL');
    expect(config.stderr).toContain('JWKS_RETAIN_DEACTIVATED');
    expect(config.stdout).toBe('');
    const usage = await runRefresh(['--force'], stack.env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: jwks-refresh');
  });
});
