/** A node marked down, or answering again after it was. */
export interface NodeChange {
  /** The node's base URL, as configured (never holds credentials: the configuration refuses them). */
  readonly node: string;
  readonly state: 'down' | 'up';
  /** Why it was marked down: the failure's message (no token, no credential). */
  readonly reason?: string;
}

/**
 * Which CM node to try first. A node that failed (connection refused, timeout, 5xx) is marked
 * down: for `downMs` it is tried only after every other node, so the rest of a cycle does not wait
 * on it, and it is tried first again later. It stays marked (and counted) until it answers. Every
 * node is always in the order: with all of them down, they are all still tried, so a cluster whose
 * nodes all fail behaves as a single CM that fails. Changes are reported for a cluster only; one
 * node is one CM, whose failures the caller already reports.
 */
export class CipherTrustNodes {
  private readonly downUntil = new Map<string, number>();

  constructor(
    private readonly nodes: readonly string[],
    private readonly downMs: number,
    private readonly now: () => number,
    private readonly onChange: ((change: NodeChange) => void) | undefined,
  ) {
    if (nodes.length === 0) throw new Error('CipherTrust Manager needs at least one node URL');
  }

  /** Nodes in the order to try them: those not marked down (as configured), then the others. */
  order(): readonly string[] {
    const now = this.now();
    const isDown = (node: string): boolean => (this.downUntil.get(node) ?? 0) > now;
    return [...this.nodes.filter((node) => !isDown(node)), ...this.nodes.filter(isDown)];
  }

  failed(node: string, reason: string): void {
    const wasMarked = this.downUntil.has(node);
    this.downUntil.set(node, this.now() + this.downMs);
    if (!wasMarked) this.report({ node, state: 'down', reason });
  }

  answered(node: string): void {
    if (this.downUntil.delete(node)) this.report({ node, state: 'up' });
  }

  private report(change: NodeChange): void {
    if (this.nodes.length > 1) this.onChange?.(change);
  }
}
