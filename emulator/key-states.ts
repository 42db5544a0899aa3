/**
 * CM's key states as the emulator models them, the reasons that move a key between them, and how
 * a state is spelled in answers (switchable, because one spelling is unconfirmed).
 */
import { invalidParam } from './errors.js';

/**
 * CM's protect-stop state: no longer protects (sign, encrypt), still processes (verify, decrypt).
 * It exists (H: reactivation reasons in Thales' Ansible collection and SPIRE plugin), but no public
 * source shows the string CM answers for it (L). The emulator answers this one by default;
 * `spellState` makes it answer any other, so clients are tested against every candidate.
 */
export const PROTECT_STOP_STATE = 'Active Protect Stop';

/** States the emulator models (H for the six KMIP states). */
export const EMULATOR_STATES: readonly string[] = ['Pre-Active', 'Active', PROTECT_STOP_STATE, 'Deactivated', 'Compromised', 'Destroyed', 'Destroyed Compromised'];

export const REVOCATION_REASONS: readonly string[] = [
  'Unspecified',
  'KeyCompromise',
  'CACompromise',
  'AffiliationChanged',
  'Superseded',
  'CessationOfOperation',
  'PrivilegeWithdrawn',
];
export const COMPROMISE_REASONS: readonly string[] = ['KeyCompromise', 'CACompromise'];

/** CM's reactivation reasons (H: Thales' Ansible vault_keys2_op and SPIRE plugin) and what each does. */
export const REACTIVATIONS: Readonly<Record<string, { readonly from: string; readonly to: string }>> = {
  DeactivatedToActive: { from: 'Deactivated', to: 'Active' },
  ActiveProtectStopToActive: { from: PROTECT_STOP_STATE, to: 'Active' },
  DeactivatedToActiveProtectStop: { from: 'Deactivated', to: PROTECT_STOP_STATE },
};

/** How states are spelled in answers: as modelled, unless a test asked for another spelling. */
export class StateSpellings {
  private readonly spellings = new Map<string, string>();

  spell(state: string): string {
    return this.spellings.get(state) ?? state;
  }

  set(state: string, spelling: string): void {
    checkSpelling(state, spelling);
    this.spellings.set(state, spelling);
  }

  clear(): void {
    this.spellings.clear();
  }

  describe(): Record<string, string> {
    return Object.fromEntries(this.spellings);
  }
}

/** A modelled state and a non-empty spelling for it, or a 400. */
export function checkSpelling(state: unknown, spelling: unknown): asserts state is string {
  if (typeof state !== 'string' || !EMULATOR_STATES.includes(state)) throw invalidParam(`spellState.state must be one of ${EMULATOR_STATES.join(', ')}`);
  if (typeof spelling !== 'string' || spelling.trim() === '') throw invalidParam('spellState.as must be a non-empty string');
}
