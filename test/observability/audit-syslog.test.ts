/**
 * The audit records reach the SIEM whole: key-rotated (own process, CM emulator, file store) writes
 * the records of a rotation, a compromise and a guard refusal; a sender does what OpenShift
 * Logging's collector does with knative/examples/clusterlogforwarder-audit-to-siem.yaml (keep the
 * stdout lines whose JSON says `audit: true`, send each whole as an RFC 5424 MSG, octet-counted over
 * TLS); a real rsyslog on loopback (GnuTLS driver) receives them and writes them as RFC 5424 lines.
 * The test parses what rsyslog wrote and finds every record byte for byte, with what an auditor
 * needs (kids, CM key names and versions, reason, outcome), and no secret.
 */
import { credentialValues, expectNoSecretsInLogs } from '../support/log-secrets.js';
import { describeIfInstalled } from '../support/dependencies.js';
import { PUBLISH, SIGN } from '../faults/support.js';
import { startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';
import { auditLines, octetCounted, parseRfc5424, rfc5424Message, rsyslogMissing, RSYSLOG_INSTALL, sendOverTls, startRsyslog, type ParsedSyslog, type RunningRsyslog, type SyslogHeader } from '../support/syslog.js';

const HEADER: Omit<SyslogHeader, 'msgId'> = {
  // As the ClusterLogForwarder example sets them: facility auth (4), severity informational (6).
  facility: 4,
  severity: 6,
  hostname: 'worker-1.bank.example',
  appName: 'hsm-jwks-publisher',
  procId: 'key-rotated-00001-deployment-7d9f8-abcde',
};

interface KeyChange {
  kid: string;
  cmKey?: { id: string; name: string; version: number; state: string };
}
interface PublicationRecord {
  audit: true;
  event: string;
  outcome: string;
  guard?: string;
  reason: { kinds: string[]; events: { id: string; type: string }[] };
  added: KeyChange[];
  removed: KeyChange[];
}

describeIfInstalled('audit records to the SIEM: RFC 5424 over TLS into a real rsyslog', rsyslogMissing(), RSYSLOG_INSTALL, () => {
  let stack: PublisherStack;
  let rsyslog: RunningRsyslog;
  /** Each audit line key-rotated wrote, and what rsyslog made of it. */
  let delivered: { line: string; received: ParsedSyslog }[];

  beforeAll(async () => {
    [stack, rsyslog] = await Promise.all([startPublisherStack('file'), startRsyslog()]);
    const keys = [0, 1, 2, 3, 4, 5].map((index) => stack.emulator.keys.create({ name: `audit-${index}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH }));
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published' } });
    // A rotation: a new version of audit-0, announced.
    stack.emulator.keys.rotate(keys[0]!.id);
    expect(await stack.sendEvent('com.thalesgroup.ciphertrust.key.rotated')).toMatchObject({ status: 200, body: { outcome: 'published' } });
    // A compromise: audit-1 revoked with KeyCompromise, announced.
    stack.emulator.keys.revoke(keys[1]!.id, 'KeyCompromise');
    expect(await stack.sendEvent('com.thalesgroup.ciphertrust.key.state-changed')).toMatchObject({ status: 200, body: { outcome: 'published' } });
    // A guard refusal: the label lost on most keys at once.
    for (const key of keys.slice(2)) stack.emulator.keys.patch(key.id, { labels: {} });
    expect(await stack.ping()).toMatchObject({ body: { guard: 'mass_removal' } });

    const lines = auditLines(stack.keyRotated.output());
    const messages = lines.map((line) => rfc5424Message(line, { ...HEADER, msgId: (JSON.parse(line) as { event: string }).event }));
    await sendOverTls(messages, rsyslog);
    const received = await rsyslog.waitForLines(messages.length);
    delivered = lines.map((line, index) => ({ line, received: parseRfc5424(received[index]!) }));
  }, 60_000);

  afterAll(async () => {
    await rsyslog?.stop();
    await stack?.close();
  });

  const records = (): PublicationRecord[] => delivered.map(({ received }) => JSON.parse(received.msg) as PublicationRecord);

  it('only audit records are sent, every one arrives, each an RFC 5424 message with the collector\'s header', async () => {
    const output = stack.keyRotated.output().split('\n').filter((line) => line.trim() !== '');
    expect(output.length).toBeGreaterThan(delivered.length);
    expect(await rsyslog.received()).toHaveLength(delivered.length);
    for (const { received } of delivered) {
      expect(received).toMatchObject({ pri: 4 * 8 + 6, version: 1, hostname: HEADER.hostname, appName: HEADER.appName, procId: HEADER.procId, msgId: 'publication', structuredData: '-' });
      expect(Number.isNaN(Date.parse(received.timestamp))).toBe(false);
    }
  });

  it('every record arrives whole: the MSG is the line key-rotated wrote, byte for byte', () => {
    expect(delivered.length).toBeGreaterThanOrEqual(4);
    for (const { line, received } of delivered) expect(received.msg).toBe(line);
  });

  it('the rotation\'s record names the new version\'s kid, CM key name and version, and why the cycle ran', () => {
    const rotation = records().find((record) => record.reason.kinds.includes('rotation') && record.added.length > 0);
    expect(rotation).toMatchObject({ outcome: 'published', reason: { events: [{ type: 'com.thalesgroup.ciphertrust.key.rotated' }] } });
    expect(rotation!.added).toEqual([expect.objectContaining({ kid: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) as string, cmKey: expect.objectContaining({ name: 'audit-0', version: 1 }) as object })]);
  });

  it('the compromise\'s record names the removed kid and the CM key it came from', () => {
    const compromise = records().find((record) => record.reason.events.some((event) => event.type === 'com.thalesgroup.ciphertrust.key.state-changed'));
    expect(compromise).toMatchObject({ outcome: 'published', added: [] });
    expect(compromise!.removed).toEqual([expect.objectContaining({ kid: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) as string, cmKey: expect.objectContaining({ name: 'audit-1', version: 0 }) as object })]);
  });

  it('the guard refusal\'s record says which guard and what would have been removed', () => {
    const refusal = records().find((record) => record.outcome === 'refused' && record.reason.kinds.includes('ping'));
    expect(refusal).toMatchObject({ guard: 'mass_removal' });
    // CM no longer lists the unlabelled keys, so the record names them by kid: the kids that earlier
    // records announced as added from those CM keys.
    const addedFrom = new Map(records().flatMap((record) => record.added).map((change) => [change.kid, change.cmKey?.name]));
    expect(refusal!.removed.map((change) => addedFrom.get(change.kid)).sort()).toEqual(['audit-2', 'audit-3', 'audit-4', 'audit-5']);
  });

  it('no secret reaches the SIEM', async () => {
    expectNoSecretsInLogs(await rsyslog.received(), { secrets: credentialValues(stack.env) });
  });

  it('a framing error is caught: a record sent with a wrong octet count does not arrive whole', async () => {
    const before = (await rsyslog.received()).length;
    const { line } = delivered[0]!;
    const message = rfc5424Message(line, { ...HEADER, msgId: 'publication' });
    // The first count 10 bytes short, as a sender counting characters instead of bytes could be;
    // a correct frame follows so rsyslog has a next frame to (mis)read.
    await sendOverTls([message, message], rsyslog, (text, index) => (index === 0 ? Buffer.concat([Buffer.from(`${Buffer.byteLength(text) - 10} `), Buffer.from(text)]) : octetCounted(text)));
    const after = (await rsyslog.waitForLines(before + 1)).slice(before);
    const whole = after.filter((received) => {
      try {
        return parseRfc5424(received).msg === line;
      } catch {
        return false;
      }
    });
    expect(whole.length).toBeLessThan(2);
  });
});
