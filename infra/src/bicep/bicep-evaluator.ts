import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InfraCheckError } from '../errors.js';
import { parseBicep, type BicepFile, type Expression, type SourcePosition, type Statement } from './bicep-syntax.js';

/**
 * Evaluates a Bicep deployment the way ARM would expand it — loops, filters, `loadJsonContent`, module
 * parameters and outputs — so the checks can compare what would be deployed (names, scopes, properties)
 * with the source-of-truth files. Values only known at deployment time (a new identity's principal id, a
 * resource's endpoint, `uniqueString(…)`) stay {@link DeployTimeValue}s that remember where they come from.
 */

/** A value only known during the deployment, e.g. `identity.properties.principalId`. */
export class DeployTimeValue {
  constructor(
    /** How the value is computed, for messages (`<resource>.properties.principalId`, `uniqueString(…)`). */
    readonly text: string,
    /** The resource whose runtime property this is, with the property path (`['properties', 'principalId']`). */
    readonly origin?: { resource: ResourceInstance; path: string[] },
  ) {}

  toString(): string {
    return `⟨${this.text}⟩`;
  }
}

/** One deployed (or referenced, for `existing`) resource: a declaration, or one iteration of a `for` loop. */
export class ResourceInstance {
  /** The evaluated declaration body (`name`, `properties`, …; `parent`/`scope` are {@link ResourceInstance}s). */
  body: Record<string, unknown> = {};

  constructor(
    readonly file: string,
    readonly declaration: Extract<Statement, { kind: 'resource' }>,
    /** Iteration index for a loop declaration, undefined otherwise. */
    readonly index: number | undefined,
  ) {}

  get symbol(): string {
    return this.declaration.name;
  }
  get type(): string {
    return this.declaration.type;
  }
  get existing(): boolean {
    return this.declaration.existing;
  }
  get loop(): boolean {
    return this.declaration.value.kind === 'for';
  }

  /** Full name: parent names and own name joined with `/` (`sb-x/events/vision`). */
  get name(): string {
    const own = renderString(this.body['name']);
    const parent = this.body['parent'];
    return parent instanceof ResourceInstance ? `${parent.name}/${own}` : own;
  }

  /** ARM id, with the subscription and resource group as placeholders. */
  get id(): string {
    const scope = this.body['scope'];
    const [provider, ...typeSegments] = this.type.split('/');
    if (scope instanceof ResourceInstance) return `${scope.id}/providers/${this.type}/${this.name}`;
    if (this.type.toLowerCase() === 'microsoft.resources/resourcegroups') return `/subscriptions/${subscriptionIdText}/resourceGroups/${this.name}`;
    const names = splitName(this.name);
    const path = typeSegments.map((segment, i) => `${segment}/${names[i] ?? '?'}`).join('/');
    return `/subscriptions/${subscriptionIdText}/resourceGroups/${resourceGroupText}/providers/${provider}/${path}`;
  }

  /** `file:line` of the declaration, for messages. */
  get where(): string {
    return `${this.file}:${this.declaration.at.line}`;
  }
}

const subscriptionIdText = '⟨subscription().subscriptionId⟩';
const resourceGroupText = '⟨resourceGroup().name⟩';

/** A module call (one iteration for loops): the file it deploys and its evaluated parameters. */
export interface ModuleInstance {
  file: string;
  symbol: string;
  scope: FileScope;
}

/** Everything a deployment would create or reference, across the main file and its modules. */
export interface EvaluatedDeployment {
  /** Every resource instance, `existing` references included, in declaration order per file. */
  resources: ResourceInstance[];
  /** Outputs of the main file. */
  outputs: Record<string, unknown>;
}

class Lambda {
  constructor(
    readonly params: string[],
    readonly body: Expression,
    readonly scope: FileScope,
    readonly locals: Map<string, unknown>,
  ) {}
}

class ModuleOutputs {
  constructor(readonly module: ModuleInstance) {}
}

type Lazy = { state: 'pending' } | { state: 'evaluating' } | { state: 'done'; value: unknown };

class FileScope {
  readonly declarations = new Map<string, Statement>();
  private readonly values = new Map<string, Lazy>();
  private readonly resourceInstances = new Map<string, ResourceInstance[]>();
  private readonly moduleInstances = new Map<string, ModuleInstance[]>();

  constructor(
    readonly evaluator: Evaluator,
    readonly file: BicepFile,
    readonly params: Map<string, unknown>,
  ) {
    for (const statement of file.statements) {
      if (statement.kind === 'targetScope') continue;
      if (statement.kind === 'output') continue;
      if (this.declarations.has(statement.name)) this.fail(statement.at, `"${statement.name}" is declared twice`);
      this.declarations.set(statement.name, statement);
    }
  }

  fail(at: SourcePosition, message: string): never {
    throw new InfraCheckError('bicep-evaluation', `${this.file.path}:${at.line}:${at.column}: ${message}`);
  }

  /** The value of a top-level name: a param, a var, a resource (or collection), a module (or collection). */
  lookup(name: string, at: SourcePosition): unknown {
    const statement = this.declarations.get(name);
    if (!statement) return this.fail(at, `unknown name "${name}"`);
    switch (statement.kind) {
      case 'param': {
        if (this.params.has(name)) return this.params.get(name);
        if (statement.defaultValue) return this.memo(name, at, () => this.evaluate(statement.defaultValue!, new Map()));
        return new DeployTimeValue(`parameter ${name}`);
      }
      case 'var':
        return this.memo(name, at, () => this.evaluate(statement.value, new Map()));
      case 'resource': {
        const instances = this.resources(statement);
        return statement.value.kind === 'for' ? instances : instances[0];
      }
      case 'module': {
        const instances = this.modules(statement);
        return statement.value.kind === 'for' ? instances : instances[0];
      }
      default:
        return this.fail(at, `"${name}" cannot be used as a value`);
    }
  }

  private memo(name: string, at: SourcePosition, compute: () => unknown): unknown {
    const slot = this.values.get(name) ?? { state: 'pending' };
    if (slot.state === 'done') return slot.value;
    if (slot.state === 'evaluating') return this.fail(at, `"${name}" refers to itself`);
    this.values.set(name, { state: 'evaluating' });
    const value = compute();
    this.values.set(name, { state: 'done', value });
    return value;
  }

  /** The instances of a resource declaration (one per loop iteration whose condition holds). */
  resources(statement: Extract<Statement, { kind: 'resource' }>): ResourceInstance[] {
    const cached = this.resourceInstances.get(statement.name);
    if (cached) return cached;
    const instances: ResourceInstance[] = [];
    this.resourceInstances.set(statement.name, instances);
    this.iterate(statement.value, new Map(), (body, locals, index) => {
      const instance = new ResourceInstance(this.file.path, statement, index);
      instance.body = this.evaluateObject(body, locals, statement.at);
      instances.push(instance);
    });
    return instances;
  }

  modules(statement: Extract<Statement, { kind: 'module' }>): ModuleInstance[] {
    const cached = this.moduleInstances.get(statement.name);
    if (cached) return cached;
    const instances: ModuleInstance[] = [];
    this.moduleInstances.set(statement.name, instances);
    const path = resolve(dirname(this.file.path), statement.path);
    this.iterate(statement.value, new Map(), (body, locals) => {
      const evaluated = this.evaluateObject(body, locals, statement.at);
      const params = (evaluated['params'] ?? {}) as Record<string, unknown>;
      const child = this.evaluator.open(path, new Map(Object.entries(params)));
      for (const key of Object.keys(params)) {
        const declared = child.declarations.get(key);
        if (!declared || declared.kind !== 'param') this.fail(statement.at, `module ${statement.path} has no parameter "${key}"`);
      }
      for (const [name, declared] of child.declarations) {
        if (declared.kind === 'param' && !declared.defaultValue && !(name in params)) {
          this.fail(statement.at, `module ${statement.path} needs parameter "${name}"`);
        }
      }
      instances.push({ file: path, symbol: statement.name, scope: child });
    });
    return instances;
  }

  /**
   * Calls `each` once per instance of a body (`{…}`, `if (…) {…}` or `[for …: …]`, the loop body possibly an
   * `if`): declarations and `for` expressions alike.
   */
  private iterate(value: Expression, locals: Map<string, unknown>, each: (body: Expression, locals: Map<string, unknown>, index: number | undefined) => void): void {
    const run = (body: Expression, inner: Map<string, unknown>, index: number | undefined): void => {
      if (body.kind === 'if') {
        const condition = this.evaluate(body.condition, inner);
        if (typeof condition !== 'boolean') this.fail(body.at, 'the condition must be known before the deployment');
        if (condition) each(body.body, inner, index);
        return;
      }
      each(body, inner, index);
    };
    if (value.kind !== 'for') return run(value, locals, undefined);
    const source = this.evaluate(value.source, locals);
    if (!Array.isArray(source)) return this.fail(value.source.at, 'a loop needs an array known before the deployment');
    source.forEach((item, i) => {
      const inner = new Map(locals).set(value.item, item);
      if (value.index) inner.set(value.index, i);
      run(value.body, inner, i);
    });
  }

  output(name: string, at: SourcePosition): unknown {
    const statement = this.file.statements.find((s) => s.kind === 'output' && s.name === name);
    if (!statement || statement.kind !== 'output') return this.fail(at, `module ${this.file.path} has no output "${name}"`);
    return this.evaluate(statement.value, new Map());
  }

  /** Forces every resource and module of this file (and, through modules, of their files). */
  collect(into: ResourceInstance[]): void {
    for (const statement of this.file.statements) {
      if (statement.kind === 'resource') into.push(...this.resources(statement));
      if (statement.kind === 'module') for (const module of this.modules(statement)) module.scope.collect(into);
    }
  }

  private evaluateObject(expression: Expression, locals: Map<string, unknown>, at: SourcePosition): Record<string, unknown> {
    const value = this.evaluate(expression, locals);
    if (!isPlainObject(value)) return this.fail(at, 'a declaration body must be an object');
    return value;
  }

  evaluate(expression: Expression, locals: Map<string, unknown>): unknown {
    switch (expression.kind) {
      case 'string': {
        if (expression.parts.length === 1 && typeof expression.parts[0] === 'string') return expression.parts[0];
        return expression.parts.map((part) => (typeof part === 'string' ? part : renderString(this.evaluate(part, locals)))).join('');
      }
      case 'number':
      case 'boolean':
        return expression.value;
      case 'null':
        return null;
      case 'identifier':
        if (locals.has(expression.name)) return locals.get(expression.name);
        return this.lookup(expression.name, expression.at);
      case 'object': {
        const result: Record<string, unknown> = {};
        for (const property of expression.properties) {
          if (property.key === '' && property.value.kind === 'array') {
            const [key, value] = property.value.items;
            result[renderString(this.evaluate(key!, locals))] = this.evaluate(value!, locals);
          } else result[property.key] = this.evaluate(property.value, locals);
        }
        return result;
      }
      case 'array':
        return expression.items.map((item) => this.evaluate(item, locals));
      case 'for': {
        const results: unknown[] = [];
        this.iterate(expression, locals, (body, inner) => results.push(this.evaluate(body, inner)));
        return results;
      }
      case 'if':
        return this.fail(expression.at, '`if` only applies to resource and module bodies');
      case 'member':
        return this.member(this.evaluate(expression.target, locals), expression.name, expression.safe, expression.at);
      case 'index': {
        const target = this.evaluate(expression.target, locals);
        const index = this.evaluate(expression.index, locals);
        if (target instanceof DeployTimeValue || index instanceof DeployTimeValue) return new DeployTimeValue(`${renderString(target)}[${renderString(index)}]`);
        if (Array.isArray(target) && typeof index === 'number') {
          if (index < 0 || index >= target.length) return this.fail(expression.at, `index ${index} is out of range (${target.length} items)`);
          return target[index];
        }
        if (isPlainObject(target) && typeof index === 'string') return this.member(target, index, false, expression.at);
        return this.fail(expression.at, 'cannot index this value');
      }
      case 'call':
        return this.call(expression.callee, expression.args, locals, expression.at);
      case 'lambda':
        return new Lambda(expression.params, expression.body, this, locals);
      case 'unary': {
        const operand = this.evaluate(expression.operand, locals);
        if (operand instanceof DeployTimeValue) return new DeployTimeValue(`!${operand.text}`);
        if (typeof operand !== 'boolean') return this.fail(expression.at, '"!" needs a bool');
        return !operand;
      }
      case 'binary':
        return this.binary(expression, locals);
      case 'ternary': {
        const condition = this.evaluate(expression.condition, locals);
        if (condition instanceof DeployTimeValue) return new DeployTimeValue(`${condition.text} ? … : …`);
        if (typeof condition !== 'boolean') return this.fail(expression.at, 'a condition must be a bool');
        // ARM evaluates only the branch the condition selects.
        return this.evaluate(condition ? expression.whenTrue : expression.whenFalse, locals);
      }
    }
  }

  private member(target: unknown, name: string, safe: boolean, at: SourcePosition): unknown {
    if (target === null || target === undefined) return safe ? null : this.fail(at, `cannot read "${name}" of null (use ".?" if it is optional)`);
    if (target instanceof ResourceInstance) {
      if (name === 'id') return target.id;
      if (name === 'name') return target.name;
      if (name === 'type') return target.type;
      if (name === 'apiVersion') return target.declaration.apiVersion;
      return new DeployTimeValue(`${target.symbol}.${name}`, { resource: target, path: [name] });
    }
    if (target instanceof DeployTimeValue) {
      return new DeployTimeValue(`${target.text}.${name}`, target.origin ? { resource: target.origin.resource, path: [...target.origin.path, name] } : undefined);
    }
    if (isModuleInstance(target)) {
      if (name === 'outputs') return new ModuleOutputs(target);
      return this.fail(at, `a module has no "${name}"`);
    }
    if (target instanceof ModuleOutputs) return target.module.scope.output(name, at);
    if (isPlainObject(target)) {
      // ARM property names are case-insensitive.
      const key = Object.keys(target).find((k) => k.toLowerCase() === name.toLowerCase());
      if (key !== undefined) return target[key];
      return safe ? null : this.fail(at, `the object has no property "${name}" (it has: ${Object.keys(target).join(', ') || 'none'})`);
    }
    return this.fail(at, `cannot read "${name}" of ${describe(target)}`);
  }

  private binary(expression: Extract<Expression, { kind: 'binary' }>, locals: Map<string, unknown>): unknown {
    const left = this.evaluate(expression.left, locals);
    if (expression.operator === '??') return left === null ? this.evaluate(expression.right, locals) : left;
    if (expression.operator === '&&' && left === false) return false;
    if (expression.operator === '||' && left === true) return true;
    const right = this.evaluate(expression.right, locals);
    if (left instanceof DeployTimeValue || right instanceof DeployTimeValue) {
      return new DeployTimeValue(`${renderString(left)} ${expression.operator} ${renderString(right)}`);
    }
    switch (expression.operator) {
      case '&&':
      case '||':
        if (typeof left !== 'boolean' || typeof right !== 'boolean') return this.fail(expression.at, `"${expression.operator}" needs bools`);
        return expression.operator === '&&' ? left && right : left || right;
      case '==':
        return deepEqual(left, right);
      case '!=':
        return !deepEqual(left, right);
      case '+':
        if (typeof left !== 'number' || typeof right !== 'number') return this.fail(expression.at, '"+" needs ints');
        return left + right;
    }
  }

  private call(callee: string, argExpressions: Expression[], locals: Map<string, unknown>, at: SourcePosition): unknown {
    const args = argExpressions.map((arg) => this.evaluate(arg, locals));
    const name = callee.toLowerCase();
    const apply = (fn: unknown, ...values: unknown[]): unknown => {
      if (!(fn instanceof Lambda)) return this.fail(at, `${callee} needs a lambda`);
      const inner = new Map(fn.locals);
      fn.params.forEach((param, i) => inner.set(param, values[i]));
      return fn.scope.evaluate(fn.body, inner);
    };
    const array = (value: unknown): unknown[] => (Array.isArray(value) ? value : this.fail(at, `${callee} needs an array known before the deployment, got ${describe(value)}`));
    const anyDeployTime = args.some((arg) => arg instanceof DeployTimeValue);
    const deployTimeCall = (): DeployTimeValue => new DeployTimeValue(`${callee}(${args.map((arg) => (arg instanceof DeployTimeValue ? arg.text : renderString(arg))).join(', ')})`);
    switch (name) {
      case 'loadjsoncontent': {
        if (args.length !== 1 || typeof args[0] !== 'string') return this.fail(at, 'loadJsonContent(path) takes one literal path here');
        return this.evaluator.loadJson(resolve(dirname(this.file.path), args[0]), at, this.file.path);
      }
      case 'filter':
        return array(args[0]).filter((item, i) => {
          const keep = apply(args[1], item, i);
          if (typeof keep !== 'boolean') return this.fail(at, 'a filter predicate must give a bool known before the deployment');
          return keep;
        });
      case 'map':
        return array(args[0]).map((item, i) => apply(args[1], item, i));
      case 'flatten':
        return array(args[0]).flatMap((item) => array(item));
      case 'items': {
        const value = args[0];
        if (!isPlainObject(value)) return this.fail(at, 'items() needs an object');
        // ARM returns the entries ordered by key.
        return Object.keys(value)
          .sort((a, b) => a.localeCompare(b))
          .map((key) => ({ key, value: value[key] }));
      }
      case 'contains': {
        const [container, item] = args;
        if (isPlainObject(container) && typeof item === 'string') return Object.keys(container).some((k) => k.toLowerCase() === item.toLowerCase());
        return this.fail(at, 'contains() needs an object and a property name');
      }
      case 'empty': {
        const [value] = args;
        if (value === null) return true;
        if (Array.isArray(value) || typeof value === 'string') return value.length === 0;
        if (isPlainObject(value)) return Object.keys(value).length === 0;
        return this.fail(at, 'empty() needs an object, array or string');
      }
      case 'length':
        return array(args[0]).length;
      case 'concat':
        return args.flatMap(array);
      case 'union':
        if (args.every(isPlainObject)) return Object.assign({}, ...args);
        return this.fail(at, 'union() needs objects');
      case 'subscription':
        return { id: `/subscriptions/${subscriptionIdText}`, subscriptionId: new DeployTimeValue('subscription().subscriptionId'), tenantId: new DeployTimeValue('subscription().tenantId') };
      case 'tenant':
        return { tenantId: new DeployTimeValue('tenant().tenantId') };
      case 'resourcegroup':
        return { id: `/subscriptions/${subscriptionIdText}/resourceGroups/${resourceGroupText}`, name: new DeployTimeValue('resourceGroup().name'), location: new DeployTimeValue('resourceGroup().location') };
      case 'subscriptionresourceid': {
        const [type, ...names] = args;
        return `/subscriptions/${subscriptionIdText}/providers/${renderString(type)}/${names.map(renderString).join('/')}`;
      }
      case 'guid':
        return `guid(${args.map(renderString).join(', ')})`;
      case 'uniquestring':
        // Its arguments only matter for uniqueness, and would make every name it seeds unreadable.
        return new DeployTimeValue('uniqueString(…)');
      case 'tolower':
        return anyDeployTime ? deployTimeCall() : String(args[0]).toLowerCase();
      case 'split':
        return anyDeployTime ? deployTimeCall() : String(args[0]).split(String(args[1]));
      case 'join':
        return array(args[0]).map(renderString).join(String(args[1]));
      case 'take':
        return array(args[0]).slice(0, Number(args[1]));
    }
    return this.fail(at, `function "${callee}" is outside the subset the consistency checks evaluate; extend infra/src/bicep/bicep-evaluator.ts`);
  }
}

class Evaluator {
  private readonly json = new Map<string, unknown>();

  /** `files`: files already parsed (by path), read again otherwise. */
  constructor(readonly files: Map<string, BicepFile>) {}

  open(path: string, params: Map<string, unknown>): FileScope {
    let file = this.files.get(path);
    if (!file) {
      let source: string;
      try {
        source = readFileSync(path, 'utf8');
      } catch (error) {
        throw new InfraCheckError('bicep-evaluation', `${path}: cannot read the Bicep file (${(error as Error).message})`, { cause: error });
      }
      file = parseBicep(source, path);
      this.files.set(path, file);
    }
    return new FileScope(this, file, params);
  }

  loadJson(path: string, at: SourcePosition, from: string): unknown {
    if (!this.json.has(path)) {
      try {
        this.json.set(path, JSON.parse(readFileSync(path, 'utf8')));
      } catch (error) {
        throw new InfraCheckError('bicep-evaluation', `${from}:${at.line}:${at.column}: loadJsonContent('${path}') failed: ${(error as Error).message}`, { cause: error });
      }
    }
    return structuredClone(this.json.get(path));
  }
}

/**
 * Evaluates `mainPath` with the given parameter values (parameters without a value or default become
 * {@link DeployTimeValue}s) and returns every resource it and its modules declare. `parsed`: files the caller has
 * already parsed, not read again.
 *
 * @example
 * const deployment = evaluateDeployment('infra/main.bicep', { environmentName: 'dev', location: 'swedencentral' });
 * deployment.resources.filter((r) => r.type === 'Microsoft.Authorization/roleAssignments');
 */
export function evaluateDeployment(mainPath: string, params: Record<string, unknown> = {}, parsed: BicepFile[] = []): EvaluatedDeployment {
  const evaluator = new Evaluator(new Map(parsed.map((file) => [file.path, file])));
  const main = evaluator.open(resolve(mainPath), new Map(Object.entries(params)));
  const resources: ResourceInstance[] = [];
  main.collect(resources);
  const outputs: Record<string, unknown> = {};
  for (const statement of main.file.statements) if (statement.kind === 'output') outputs[statement.name] = main.output(statement.name, statement.at);
  return { resources, outputs };
}

/** Splits a full resource name at `/`, leaving deploy-time placeholders (`⟨…⟩`) whole. */
export function splitName(name: string): string[] {
  const segments: string[] = [''];
  let depth = 0;
  for (const char of name) {
    if (char === '⟨') depth += 1;
    if (char === '⟩') depth -= 1;
    if (char === '/' && depth === 0) segments.push('');
    else segments[segments.length - 1] += char;
  }
  return segments;
}

/** How a value reads inside an interpolated string. */
export function renderString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof DeployTimeValue) return value.toString();
  if (value instanceof ResourceInstance) return `<resource ${value.symbol}>`;
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return JSON.stringify(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  // Plain objects of any realm (JSON.parse and structuredClone may use another one than the caller's).
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === null || Object.getPrototypeOf(prototype) === null;
}

function isModuleInstance(value: unknown): value is ModuleInstance {
  return typeof value === 'object' && value !== null && (value as { scope?: unknown }).scope instanceof FileScope;
}

function describe(value: unknown): string {
  if (value instanceof DeployTimeValue) return `the deploy-time value ${value.toString()}`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => deepEqual(a[key], b[key]));
  }
  return false;
}
