import * as z from 'zod';
import { InvalidParameterError } from '../errors.js';
import type { Direction, StrategyDefinition } from './types.js';

/** One strategy parameter as its schema declares it. */
export interface ParamInfo {
  readonly name: string;
  readonly type: 'integer' | 'number' | 'enum' | 'boolean' | 'string';
  /** The default, or null when the parameter is optional and has none. */
  readonly default: number | string | boolean | null;
  /** The allowed values of an enum. */
  readonly values?: readonly string[];
  readonly minimum?: number;
  readonly maximum?: number;
  /** A bound the value must be strictly above (below). */
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly description: string;
}

/** A strategy as `quantshift strategies --format json` lists it. */
export interface StrategyInfo {
  readonly name: string;
  readonly description: string;
  readonly params: readonly ParamInfo[];
  readonly directions: readonly Direction[];
}

interface JsonSchemaProperty {
  type?: string;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  description?: string;
}

const cache = new WeakMap<object, readonly ParamInfo[]>();

/** The parameters of a strategy, in schema order, read from its (strict object) schema. */
export function describeParams(definition: StrategyDefinition<unknown>): readonly ParamInfo[] {
  const cached = cache.get(definition);
  if (cached !== undefined) return cached;
  const schema = z.toJSONSchema(definition.params, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonSchemaProperty>;
  };
  const params = Object.entries(schema.properties ?? {}).map(([name, p]): ParamInfo => {
    const type: ParamInfo['type'] =
      p.enum !== undefined
        ? 'enum'
        : p.type === 'integer' || p.type === 'number' || p.type === 'boolean'
          ? p.type
          : 'string';
    const bounded = (v: number | undefined) =>
      v !== undefined && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : undefined;
    const info: Record<string, unknown> = {
      name,
      type,
      default: (p.default as ParamInfo['default'] | undefined) ?? null,
    };
    if (p.enum !== undefined) info.values = p.enum.map(String);
    for (const key of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const) {
      const v = bounded(p[key]);
      if (v !== undefined) info[key] = v;
    }
    info.description = p.description ?? '';
    return info as unknown as ParamInfo;
  });
  cache.set(definition, params);
  return params;
}

/** A strategy's name, description, parameters and directions. */
export function describeStrategy(definition: StrategyDefinition<unknown>): StrategyInfo {
  return {
    name: definition.name,
    description: definition.description,
    params: describeParams(definition),
    directions: definition.directions,
  };
}

/**
 * Types a parameter given as text (`--param key=value`) by the strategy's schema: numbers for
 * numeric parameters, the text for enums. A key the schema does not have is an error naming it
 * (`direction` is a run option and gets its own hint); range checks are left to the schema.
 */
export function parseParamText(definition: StrategyDefinition<unknown>, key: string, raw: string): unknown {
  const params = describeParams(definition);
  const info = params.find((p) => p.name === key);
  if (info === undefined) {
    const hint =
      key === 'direction' ? '; direction is an option of the run (--direction, strategy.direction)' : '';
    throw new InvalidParameterError(
      `${key}: not a parameter of ${definition.name} (its parameters: ${params.map((p) => p.name).join(', ')})${hint}`,
    );
  }
  if (info.type === 'integer' || info.type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) {
      throw new InvalidParameterError(`${key}=${raw}: ${key} must be a number`);
    }
    return n;
  }
  if (info.type === 'boolean') {
    if (raw !== 'true' && raw !== 'false') {
      throw new InvalidParameterError(`${key}=${raw}: ${key} must be true or false`);
    }
    return raw === 'true';
  }
  return raw;
}
