/**
 * The licence policy (build/licence-policy.json): which licences a production dependency may
 * carry. A package is accepted when its declared SPDX expression is satisfied by the allowed
 * licences (`A OR B`: either; `A AND B`: both; `A WITH exception`: that exact pair listed), or
 * when the policy names the package with the exact licence it was reviewed under. Anything else,
 * a missing licence included, is a finding.
 */

export interface LicencePolicy {
  /** SPDX identifier (or `id WITH exception`) -> why a bank accepts it. */
  readonly allowed: Readonly<Record<string, string>>;
  /** Package name -> the one licence it was reviewed under, and why it is accepted. */
  readonly packageExceptions: Readonly<Record<string, { readonly licence: string; readonly why: string }>>;
}

/** A package and the licence it declares (an SPDX expression), if any. */
export interface DeclaredLicence {
  readonly name: string;
  readonly version: string;
  readonly licence: string | undefined;
}

export function parseLicencePolicy(json: unknown): LicencePolicy {
  const policy = json as Partial<LicencePolicy> | null;
  const isStringRecord = (value: unknown): boolean =>
    typeof value === 'object' && value !== null && Object.values(value).every((entry) => typeof entry === 'string' && entry.trim() !== '');
  if (policy === null || typeof policy !== 'object' || !isStringRecord(policy.allowed) || Object.keys(policy.allowed ?? {}).length === 0) {
    throw new Error('licence policy: "allowed" must map each SPDX id to the reason it is accepted');
  }
  const exceptions = policy.packageExceptions ?? {};
  for (const [name, exception] of Object.entries(exceptions)) {
    if (typeof exception?.licence !== 'string' || typeof exception.why !== 'string' || exception.why.trim() === '') {
      throw new Error(`licence policy: packageExceptions.${name} needs a licence and why`);
    }
  }
  return { allowed: policy.allowed!, packageExceptions: exceptions };
}

/** Findings (one sentence each) for every package whose licence the policy does not accept. */
export function licenceFindings(packages: readonly DeclaredLicence[], policy: LicencePolicy): string[] {
  const findings: string[] = [];
  for (const { name, version, licence } of packages) {
    if (licence === undefined || licence.trim() === '') {
      findings.push(`${name}@${version}: declares no licence`);
      continue;
    }
    const exception = policy.packageExceptions[name];
    if (exception !== undefined && exception.licence === licence) continue;
    let accepted: boolean;
    try {
      accepted = satisfies(parseExpression(licence), policy);
    } catch (error) {
      findings.push(`${name}@${version}: licence "${licence}" is not an SPDX expression (${(error as Error).message})`);
      continue;
    }
    if (!accepted) findings.push(`${name}@${version}: licence "${licence}" is not in build/licence-policy.json`);
  }
  return findings;
}

type Expression =
  | { readonly kind: 'licence'; readonly id: string }
  | { readonly kind: 'or' | 'and'; readonly left: Expression; readonly right: Expression };

function satisfies(expression: Expression, policy: LicencePolicy): boolean {
  if (expression.kind === 'licence') return Object.hasOwn(policy.allowed, expression.id);
  const left = satisfies(expression.left, policy);
  const right = satisfies(expression.right, policy);
  return expression.kind === 'or' ? left || right : left && right;
}

/** SPDX license expressions (spec annex D): AND binds tighter than OR; WITH joins an id and its exception. */
export function parseExpression(text: string): Expression {
  const tokens = text.match(/\(|\)|[^\s()]+/g) ?? [];
  let position = 0;
  const peek = (): string | undefined => tokens[position];
  const take = (): string => {
    const token = tokens[position++];
    if (token === undefined) throw new Error('unexpected end');
    return token;
  };
  const primary = (): Expression => {
    const token = take();
    if (token === '(') {
      const inner = or();
      if (take() !== ')') throw new Error('missing )');
      return inner;
    }
    if (/^(AND|OR|WITH|\))$/i.test(token)) throw new Error(`unexpected ${token}`);
    if (peek()?.toUpperCase() === 'WITH') {
      take();
      return { kind: 'licence', id: `${token} WITH ${take()}` };
    }
    return { kind: 'licence', id: token };
  };
  const and = (): Expression => {
    let left = primary();
    while (peek()?.toUpperCase() === 'AND') {
      take();
      left = { kind: 'and', left, right: primary() };
    }
    return left;
  };
  const or = (): Expression => {
    let left = and();
    while (peek()?.toUpperCase() === 'OR') {
      take();
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };
  const expression = or();
  if (position !== tokens.length) throw new Error(`unexpected ${tokens[position]}`);
  return expression;
}
