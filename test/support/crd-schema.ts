/**
 * Validation against a CustomResourceDefinition's published OpenAPI v3 schema, for kinds no typed
 * kubernetes-models package covers (ClusterLogForwarder, observability.openshift.io/v1). The CRDs
 * are vendored under test/deploy/fixtures with their source noted. Checked: types, required
 * fields, enums, patterns, unknown fields where the schema closes them. Not checked: the CEL rules
 * (`x-kubernetes-validations`), which only the API server evaluates.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

/** apiVersion/kind -> vendored CRD file. */
const CRD_FILES: ReadonlyMap<string, URL> = new Map([
  ['observability.openshift.io/v1/ClusterLogForwarder', new URL('../deploy/fixtures/observability.openshift.io_clusterlogforwarders.yaml', import.meta.url)],
]);

interface Crd {
  spec: { group: string; names: { kind: string }; versions: { name: string; schema?: { openAPIV3Schema?: object } }[] };
}

const compiled = new Map<string, ValidateFunction>();

/** The schema of `apiVersion/kind` from its vendored CRD, compiled once; undefined when none is vendored. */
function validatorFor(key: string): ValidateFunction | undefined {
  const file = CRD_FILES.get(key);
  if (file === undefined) return undefined;
  let validate = compiled.get(key);
  if (validate === undefined) {
    const [crd] = parseAllDocuments(readFileSync(file, 'utf8')).map((document) => document.toJS() as Crd);
    const version = crd?.spec.versions.find((candidate) => `${crd.spec.group}/${candidate.name}/${crd.spec.names.kind}` === key);
    const schema = version?.schema?.openAPIV3Schema;
    if (schema === undefined) throw new Error(`${fileURLToPath(file)}: no openAPIV3Schema for ${key}`);
    // strict off: the x-kubernetes-* keywords are Kubernetes', not JSON Schema's; formats
    // (int32, int64, date-time) are the API server's to check.
    validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(fromOpenApi3(schema) as object);
    compiled.set(key, validate);
  }
  return validate;
}

/**
 * An OpenAPI 3.0 schema as JSON Schema (draft 7, which Ajv reads): 3.0's boolean
 * `exclusiveMinimum`/`exclusiveMaximum` qualify `minimum`/`maximum`; JSON Schema's are numbers.
 * `nullable` Ajv reads as OpenAPI does.
 */
function fromOpenApi3(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(fromOpenApi3);
  if (typeof schema !== 'object' || schema === null) return schema;
  const converted: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) converted[key] = fromOpenApi3(value);
  for (const [exclusive, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof converted[exclusive] !== 'boolean') continue;
    if (converted[exclusive] === true && typeof converted[bound] === 'number') {
      converted[exclusive] = converted[bound];
      delete converted[bound];
    } else delete converted[exclusive];
  }
  return converted;
}

/** Problems of an object against its CRD schema: [] when valid, undefined when no CRD is vendored for it. */
export function crdSchemaProblems(object: { apiVersion: string; kind: string }): string[] | undefined {
  const validate = validatorFor(`${object.apiVersion}/${object.kind}`);
  if (validate === undefined) return undefined;
  if (validate(object)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? 'invalid'}${error.params !== undefined && Object.keys(error.params).length > 0 ? ` ${JSON.stringify(error.params)}` : ''}`);
}
