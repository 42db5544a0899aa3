/**
 * A small Containerfile (Dockerfile syntax) parser for tests that check the image recipe without a
 * container engine. It understands what this project's Containerfile uses: comments, line
 * continuations, ARG/ENV substitution, FROM ... AS, COPY/ADD (flags, JSON form), ENV, ARG, LABEL,
 * WORKDIR, USER, CMD/ENTRYPOINT (exec or shell form), EXPOSE, RUN. Anything it cannot read
 * faithfully (heredocs, another escape character) is refused rather than guessed.
 */
import { posix } from 'node:path';

export interface Instruction {
  /** Upper-case keyword: FROM, COPY, RUN, ... */
  readonly keyword: string;
  /** The arguments as written (continuations joined, comments removed), before substitution. */
  readonly raw: string;
  /** 1-based line of the keyword. */
  readonly line: number;
}

export interface ImageReference {
  /** registry/repository, without tag or digest. */
  readonly name: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** A stage's base: an image, or an earlier stage by name. */
export type StageBase = { readonly kind: 'image'; readonly image: ImageReference } | { readonly kind: 'stage'; readonly stage: string } | { readonly kind: 'scratch' };

export interface CopyInstruction {
  readonly keyword: 'COPY' | 'ADD';
  /** The stage (or image) named by --from; undefined copies from the build context. */
  readonly from?: string;
  readonly chown?: string;
  readonly chmod?: string;
  /** Sources as written (context-relative, or absolute paths in the --from stage). */
  readonly sources: readonly string[];
  /** The destination as written. */
  readonly destination: string;
  /** The destination made absolute against the stage's WORKDIR at that point (undefined if no WORKDIR yet). */
  readonly resolvedDestination?: string;
  /** The WORKDIR of the stage when the instruction runs. */
  readonly workdir?: string;
  readonly line: number;
}

export type Command = { readonly form: 'exec'; readonly argv: readonly string[] } | { readonly form: 'shell'; readonly command: string };

export interface Stage {
  readonly index: number;
  readonly name?: string;
  readonly base: StageBase;
  readonly platform?: string;
  readonly instructions: readonly Instruction[];
  readonly copies: readonly CopyInstruction[];
  /** RUN arguments, after substitution. */
  readonly runs: readonly string[];
  /** ENV set in this stage (and inherited from a parent stage), after substitution. */
  readonly env: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** The last WORKDIR, absolute; undefined when the Containerfile never sets one (the base image's is unknown here). */
  readonly workdir?: string;
  /** The last USER set in the Containerfile for this stage (or its parent stage). */
  readonly user?: string;
  readonly cmd?: Command;
  readonly entrypoint?: Command;
  readonly expose: readonly string[];
}

export interface Containerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: Readonly<Record<string, string>>;
  readonly stages: readonly Stage[];
}

export function parseContainerfile(text: string, buildArgs: Record<string, string> = {}): Containerfile {
  const globalArgs: Record<string, string> = {};
  const stages: MutableStage[] = [];
  let current: MutableStage | undefined;
  // ARGs are scoped: those before the first FROM serve FROM lines; each stage declares its own.
  let stageArgs: Record<string, string> = {};
  for (const instruction of logicalInstructions(text)) {
    const { keyword, raw, line } = instruction;
    if (keyword === 'ARG') {
      const scope = current === undefined ? globalArgs : stageArgs;
      for (const word of words(raw, line)) {
        const [name, value] = splitAssignment(word);
        const visible = current === undefined ? globalArgs : { ...stageArgs, ...current.env };
        // A build-arg wins; a stage ARG without a default takes the global one (Dockerfile semantics).
        scope[name] = buildArgs[name] ?? (value !== undefined ? expand(value, visible) : (globalArgs[name] ?? ''));
      }
      current?.instructions.push(instruction);
      continue;
    }
    if (keyword === 'FROM') {
      current = startStage(expand(raw, globalArgs), line, stages);
      current.instructions.push(instruction);
      stages.push(current);
      stageArgs = {};
      continue;
    }
    if (current === undefined) throw new Error(`line ${line}: ${keyword} before the first FROM`);
    current.instructions.push(instruction);
    const vars = { ...stageArgs, ...current.env };
    switch (keyword) {
      case 'ENV':
        for (const [name, value] of assignments(raw, line, true)) current.env[name] = expand(value, vars);
        break;
      case 'LABEL':
        for (const [name, value] of assignments(raw, line, false)) current.labels[expand(name, vars)] = expand(value, vars);
        break;
      case 'WORKDIR': {
        const path = expand(raw.trim(), vars);
        if (!path.startsWith('/') && current.workdir === undefined) throw new Error(`line ${line}: relative WORKDIR with no absolute one before it`);
        current.workdir = posix.resolve(current.workdir ?? '/', path);
        break;
      }
      case 'USER':
        current.user = expand(raw.trim(), vars);
        break;
      case 'EXPOSE':
        current.expose.push(...words(raw, line).map((word) => expand(word, vars)));
        break;
      case 'CMD':
      case 'ENTRYPOINT': {
        const command = parseCommand(raw, vars);
        if (keyword === 'CMD') current.cmd = command;
        else current.entrypoint = command;
        break;
      }
      case 'RUN':
        if (/<<-?\s*["']?\w+/.test(raw)) throw new Error(`line ${line}: heredocs are not supported by this parser`);
        current.runs.push(expand(raw, vars));
        break;
      case 'COPY':
      case 'ADD':
        current.copies.push(parseCopy(keyword, raw, line, vars, current.workdir));
        break;
      default:
        // HEALTHCHECK, SHELL, STOPSIGNAL, VOLUME, ONBUILD: kept in `instructions` only.
        break;
    }
  }
  if (stages.length === 0) throw new Error('no FROM instruction');
  return { globalArgs, stages };
}

/** The stage named `name` (case-insensitive), or by index. */
export function stageNamed(file: Containerfile, name: string): Stage {
  const stage = file.stages.find((candidate) => candidate.name === name.toLowerCase() || String(candidate.index) === name);
  if (stage === undefined) throw new Error(`no stage ${name}`);
  return stage;
}

export function finalStage(file: Containerfile): Stage {
  return file.stages[file.stages.length - 1]!;
}

export function parseImageReference(reference: string): ImageReference {
  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  // A colon before the last slash is a registry port (host:5000/repo), not a tag.
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/**
 * A matcher for a .containerignore / .dockerignore file: patterns relative to the context root,
 * `*` and `?` within one path segment, `**` across segments, `!` re-includes. True when the path
 * is left out of the build context.
 */
export function ignoreMatcher(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = posix.normalize((negated ? line.slice(1) : line).trim()).replace(/^\/+|\/+$/g, '');
      return { negated, regex: globToRegExp(pattern) };
    });
  // As moby's patternmatcher: a pattern applies when it matches the path or one of its parent
  // directories, and the last pattern that applies decides.
  return (path: string) => {
    const segments = posix.normalize(path).replace(/^\/+|\/+$/g, '').split('/');
    const prefixes = segments.map((_, index) => segments.slice(0, index + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (prefixes.some((prefix) => rule.regex.test(prefix))) excluded = !rule.negated;
    return excluded;
  };
}

// ---------------------------------------------------------------------------------------------

interface MutableStage {
  index: number;
  name?: string;
  base: StageBase;
  platform?: string;
  instructions: Instruction[];
  copies: CopyInstruction[];
  runs: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  workdir?: string;
  user?: string;
  cmd?: Command;
  entrypoint?: Command;
  expose: string[];
}

function* logicalInstructions(text: string): Generator<Instruction> {
  const lines = text.split(/\r?\n/);
  let pending: string[] = [];
  let startLine = 0;
  let seenInstruction = false;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const trimmed = line.trim();
    if (!seenInstruction && /^#\s*escape\s*=/i.test(trimmed) && trimmed.replace(/^#\s*escape\s*=\s*/i, '') !== '\\') {
      throw new Error(`line ${index + 1}: only the default escape character is supported`);
    }
    // Comment lines are dropped, even inside a continued instruction; so are empty lines there.
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (pending.length === 0) startLine = index + 1;
    if (trimmed.endsWith('\\')) {
      pending.push(trimmed.slice(0, -1));
      continue;
    }
    pending.push(trimmed);
    seenInstruction = true;
    yield toInstruction(pending.join(' '), startLine);
    pending = [];
  }
  if (pending.length > 0) yield toInstruction(pending.join(' '), startLine);
}

function toInstruction(text: string, line: number): Instruction {
  const match = /^(\S+)\s*(.*)$/s.exec(text);
  if (match === null) throw new Error(`line ${line}: empty instruction`);
  return { keyword: match[1]!.toUpperCase(), raw: match[2]!.trim(), line };
}

function startStage(text: string, line: number, stages: readonly MutableStage[]): MutableStage {
  const parts = text.split(/\s+/).filter((part) => part !== '');
  let platform: string | undefined;
  while (parts[0]?.startsWith('--') === true) {
    const flag = parts.shift()!;
    if (flag.startsWith('--platform=')) platform = flag.slice('--platform='.length);
    else throw new Error(`line ${line}: unknown FROM flag ${flag}`);
  }
  const [reference, as, name, ...extra] = parts;
  if (reference === undefined || extra.length > 0 || (as !== undefined && (as.toUpperCase() !== 'AS' || name === undefined))) {
    throw new Error(`line ${line}: cannot read FROM ${text}`);
  }
  const parent = stages.find((stage) => stage.name !== undefined && stage.name === reference.toLowerCase());
  const base: StageBase =
    parent !== undefined
      ? { kind: 'stage', stage: parent.name! }
      : reference.toLowerCase() === 'scratch'
        ? { kind: 'scratch' }
        : { kind: 'image', image: parseImageReference(reference) };
  return {
    index: stages.length,
    ...(name === undefined ? {} : { name: name.toLowerCase() }),
    base,
    ...(platform === undefined ? {} : { platform }),
    instructions: [],
    copies: [],
    runs: [],
    // A stage built on an earlier stage starts with that stage's configuration.
    env: { ...(parent?.env ?? {}) },
    labels: { ...(parent?.labels ?? {}) },
    ...(parent?.workdir === undefined ? {} : { workdir: parent.workdir }),
    ...(parent?.user === undefined ? {} : { user: parent.user }),
    ...(parent?.cmd === undefined ? {} : { cmd: parent.cmd }),
    ...(parent?.entrypoint === undefined ? {} : { entrypoint: parent.entrypoint }),
    expose: [...(parent?.expose ?? [])],
  };
}

function parseCopy(keyword: 'COPY' | 'ADD', raw: string, line: number, vars: Record<string, string>, workdir: string | undefined): CopyInstruction {
  let rest = raw;
  const flags: Record<string, string> = {};
  for (;;) {
    const match = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest);
    if (match === null) break;
    flags[match[1]!] = expand(match[2] ?? 'true', vars);
    rest = rest.slice(match[0].length);
  }
  for (const flag of Object.keys(flags)) {
    if (!['from', 'chown', 'chmod', 'link'].includes(flag)) throw new Error(`line ${line}: unsupported ${keyword} flag --${flag}`);
  }
  if (/^<<|\s<<-?\s*["']?\w+/.test(rest)) throw new Error(`line ${line}: heredocs are not supported by this parser`);
  const paths = rest.startsWith('[') ? jsonArray(rest, line) : words(rest, line);
  const expanded = paths.map((path) => expand(path, vars));
  if (expanded.length < 2) throw new Error(`line ${line}: ${keyword} needs a source and a destination`);
  const destination = expanded[expanded.length - 1]!;
  const resolvedDestination = destination.startsWith('/') ? posix.normalize(destination) : workdir === undefined ? undefined : posix.resolve(workdir, destination);
  return {
    keyword,
    ...(flags.from === undefined ? {} : { from: flags.from.toLowerCase() }),
    ...(flags.chown === undefined ? {} : { chown: flags.chown }),
    ...(flags.chmod === undefined ? {} : { chmod: flags.chmod }),
    sources: expanded.slice(0, -1),
    destination,
    ...(resolvedDestination === undefined ? {} : { resolvedDestination }),
    ...(workdir === undefined ? {} : { workdir }),
    line,
  };
}

function parseCommand(raw: string, vars: Record<string, string>): Command {
  if (raw.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(raw);
      // Exec form is not subject to variable substitution (no shell runs it).
      if (Array.isArray(parsed) && parsed.every((item) => typeof item === 'string')) return { form: 'exec', argv: parsed };
    } catch {
      // not valid JSON: Docker then treats it as shell form
    }
  }
  return { form: 'shell', command: expand(raw, vars) };
}

function jsonArray(text: string, line: number): string[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw new Error(`line ${line}: not a JSON array of strings`);
  return parsed;
}

/** `k=v k2="v 2"`, or the legacy `ENV k the rest` form when `legacy` is allowed. */
function assignments(raw: string, line: number, legacy: boolean): [string, string][] {
  const first = /^([^\s=]+)(\s+|=|$)/.exec(raw);
  if (first === null) throw new Error(`line ${line}: empty assignment`);
  if (first[2] !== '=') {
    if (!legacy) throw new Error(`line ${line}: expected key=value`);
    return [[first[1]!, unquote(raw.slice(first[0].length).trim(), line)]];
  }
  return words(raw, line).map((word) => {
    const [name, value] = splitAssignment(word);
    if (value === undefined) throw new Error(`line ${line}: ${name} has no value`);
    return [name, value];
  });
}

function splitAssignment(word: string): [string, string | undefined] {
  const equals = word.indexOf('=');
  return equals < 0 ? [word, undefined] : [word.slice(0, equals), word.slice(equals + 1)];
}

/** Shell-like word splitting: whitespace separates, quotes group, backslash escapes; quotes are removed. */
function words(text: string, line: number): string[] {
  const result: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else if (char === '\\' && quote === '"' && index + 1 < text.length) word += text[++index];
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (char === '\\' && index + 1 < text.length) {
      word += text[++index];
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) result.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new Error(`line ${line}: unterminated quote`);
  if (inWord) result.push(word);
  return result;
}

function unquote(text: string, line: number): string {
  return words(text, line).join(' ');
}

/** $NAME, ${NAME}, ${NAME:-default}, ${NAME:+alternative}; unknown names become empty, as in Docker. */
function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced?: string, operator?: string, word?: string, bare?: string) => {
    if (match === '\\$') return '$';
    const value = vars[(braced ?? bare)!];
    if (operator === '-') return value === undefined || value === '' ? (word ?? '') : value;
    if (operator === '+') return value === undefined || value === '' ? '' : (word ?? '');
    return value ?? '';
  });
}



function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index]!;
    if (char === '*' && pattern[index + 1] === '*') {
      // `**/` matches zero or more directories; a trailing `**` matches everything below.
      if (pattern[index + 2] === '/') {
        source += '(?:.*/)?';
        index += 2;
      } else {
        source += '.*';
        index += 1;
      }
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

