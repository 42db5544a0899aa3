/**
 * Listing edge cases CM can produce but the emulator cannot be made to produce on cue: pages that
 * shift under the reader, a capped limit, a malformed envelope. The transport is scripted here;
 * everything else (HTTPS, login, retries, faults) is tested against the emulator. Also the log of
 * CM's query messages, whose bounds no emulator answer reaches.
 */
import { CipherTrustClient } from '../../shared/ciphertrust/client.js';
import { CipherTrustError } from '../../shared/ciphertrust/errors.js';
import { QueryMessageLog } from '../../shared/ciphertrust/query-messages.js';
import { CipherTrustSession } from '../../shared/ciphertrust/session.js';
import type { CipherTrustRequest, CipherTrustResponse, CipherTrustTransport } from '../../shared/ciphertrust/transport.js';
import { capturingLogger } from '../support/capture.js';

type Page = { total: number; ids: string[] };

/** Answers logins, and listing pages from a script of (skip -> page) tables, one per pass. */
function scriptedTransport(passes: Record<number, Page>[]) {
  const requests: CipherTrustRequest[] = [];
  let pass = 0;
  const transport = {
    send(request: CipherTrustRequest): Promise<CipherTrustResponse> {
      requests.push(request);
      if (request.endpoint === 'auth_tokens') return Promise.resolve({ status: 200, body: { jwt: 'jwt-1', duration: 300 } });
      const skip = Number(request.query?.skip);
      const script = passes[Math.min(pass, passes.length - 1)]!;
      const page = script[skip] ?? { total: 0, ids: [] };
      if (skip === Math.max(...Object.keys(script).map(Number))) pass++;
      return Promise.resolve({ status: 200, body: { skip, limit: 10, total: page.total, resources: page.ids.map((id) => ({ id })) } });
    },
  };
  const typed = transport as unknown as CipherTrustTransport;
  return { client: new CipherTrustClient(typed, new CipherTrustSession(typed, { type: 'refresh_token', refreshToken: 'rt' }, undefined)), requests };
}

const ids = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, index) => `${prefix}${index}`);

describe('CipherTrustClient.listKeys', () => {
  it('pages by what was received when CM caps the limit', async () => {
    const { client, requests } = scriptedTransport([{ 0: { total: 25, ids: ids('a', 10) }, 10: { total: 25, ids: ids('b', 10) }, 20: { total: 25, ids: ids('c', 5) } }]);
    const keys = await client.listKeys('jwks=publish', 100);
    expect(keys).toHaveLength(25);
    const pass = [
      { labels: 'jwks=publish', skip: '0', limit: '100' },
      { labels: 'jwks=publish', skip: '10', limit: '100' },
      { labels: 'jwks=publish', skip: '20', limit: '100' },
    ];
    // A second pass listing the same ids confirms the first.
    expect(requests.filter((request) => request.endpoint === 'keys2_list').map((request) => request.query)).toEqual([...pass, ...pass]);
  });

  it('uses a one-page listing as it is: one answer is a snapshot', async () => {
    const { client, requests } = scriptedTransport([{ 0: { total: 3, ids: ids('a', 3) } }]);
    expect(await client.listKeys('jwks=publish', 10)).toHaveLength(3);
    expect(requests.filter((request) => request.endpoint === 'keys2_list')).toHaveLength(1);
  });

  it('reads again when a key left before the cursor while another arrived (total unchanged, pages shifted)', async () => {
    // Pass 1 saw a0..a2, then a0 left and a5 arrived: page 2 starts at a4, a3 is never seen.
    const shifted = { 0: { total: 5, ids: ['a0', 'a1', 'a2'] }, 3: { total: 5, ids: ['a4', 'a5'] } };
    const settled = { 0: { total: 5, ids: ['a1', 'a2', 'a3'] }, 3: { total: 5, ids: ['a4', 'a5'] } };
    const { client, requests } = scriptedTransport([shifted, settled]);
    expect((await client.listKeys('jwks=publish', 3)).map((key) => (key as { id: string }).id)).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    expect(requests.filter((request) => request.endpoint === 'keys2_list')).toHaveLength(6);
  });

  it('reads the listing again when total moves while paging', async () => {
    const moving = { 0: { total: 12, ids: ids('a', 10) }, 10: { total: 13, ids: ids('b', 3) } };
    const stable = { 0: { total: 13, ids: ids('a', 10) }, 10: { total: 13, ids: ids('b', 3) } };
    const { client, requests } = scriptedTransport([moving, stable]);
    expect(await client.listKeys('jwks=publish', 10)).toHaveLength(13);
    // The moving pass, then two stable passes that agree.
    expect(requests.filter((request) => request.endpoint === 'keys2_list')).toHaveLength(6);
  });

  it('reads the listing again when a key shows up on two pages (an insertion shifted them)', async () => {
    const shifted = { 0: { total: 12, ids: ids('a', 10) }, 10: { total: 12, ids: ['a9', 'a10'] } };
    const stable = { 0: { total: 12, ids: ids('a', 10) }, 10: { total: 12, ids: ['a10', 'a11'] } };
    const { client } = scriptedTransport([shifted, stable]);
    expect((await client.listKeys('jwks=publish', 10)).map((key) => (key as { id: string }).id)).toEqual(ids('a', 12));
  });

  it('gives up with a clear error when the listing never settles', async () => {
    const moving = { 0: { total: 12, ids: ids('a', 10) }, 10: { total: 13, ids: ids('b', 3) } };
    const { client } = scriptedTransport([moving]);
    const error = await client.listKeys('jwks=publish', 10).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CipherTrustError);
    expect((error as CipherTrustError).message).toContain('kept changing');
  });

  it('refuses an answer without resources or total', async () => {
    const typed = {
      send: (request: CipherTrustRequest) =>
        Promise.resolve(request.endpoint === 'auth_tokens' ? { status: 200, body: { jwt: 'j' } } : { status: 200, body: { keys: [] } }),
    } as unknown as CipherTrustTransport;
    const client = new CipherTrustClient(typed, new CipherTrustSession(typed, { type: 'client_credential', clientId: 'jwks-publisher' }, undefined));
    await expect(client.listKeys('jwks=publish', 10)).rejects.toMatchObject({ failure: 'malformed_response', endpoint: 'keys2_list' });
  });
});

describe('QueryMessageLog', () => {
  it('logs each distinct message once, shortened, ignores what is not a string, and remembers at most 100', () => {
    const log = capturingLogger('key-rotated');
    const messages = new QueryMessageLog(log.logger);
    messages.report('keys2_list', ['Unknown query parameter: labels', 'Unknown query parameter: labels', 7, null, '']);
    messages.report('keys2_list', ['Unknown query parameter: labels']);
    messages.report('keys2_list', 'not an array');
    messages.report('keys2_list', ['x'.repeat(1000)]);
    messages.report('keys2_list', Array.from({ length: 200 }, (_, index) => `message ${index}`));
    const lines = log.lines().filter((line) => line.event === 'ciphertrust_query_not_understood');
    expect(lines).toHaveLength(100);
    expect(lines[0]).toMatchObject({ level: 'warn', endpoint: 'keys2_list', cmMessage: 'Unknown query parameter: labels' });
    expect((lines[1]!.cmMessage as string).length).toBe(303);
  });
});
