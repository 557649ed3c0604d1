import * as z from 'zod';
import { InvalidParameterError } from '../errors.js';

/** One parameter's values: an inclusive numeric range with a step, or an explicit list. */
export const parameterValuesSchema = z.union([
  z
    .object({ from: z.number(), to: z.number(), step: z.number().positive() })
    .strict()
    .refine((r) => r.from <= r.to, { message: 'from must not exceed to' })
    .refine((r) => (r.to - r.from) / r.step <= 10_000, { message: 'more than 10 000 values' }),
  z.array(z.union([z.number(), z.string()])).min(1),
]);

const CONSTRAINT = /^\s*([A-Za-z][\w]*)\s*(<=|>=|<|>|!=)\s*([A-Za-z][\w]*|-?\d+(?:\.\d+)?)\s*$/;

/** The search space: values per parameter and constraints such as `fast < slow`. */
export const parameterSpaceSchema = z
  .object({
    grid: z.record(z.string(), parameterValuesSchema),
    constraints: z
      .array(
        z.string().regex(CONSTRAINT, 'expected "<param> <op> <param or number>", op one of < <= > >= !='),
      )
      .default([]),
  })
  .strict();

export type ParameterSpace = z.infer<typeof parameterSpaceSchema>;
export type ParameterValue = number | string;
export type Combination = Readonly<Record<string, ParameterValue>>;

function values(spec: ParameterSpace['grid'][string]): ParameterValue[] {
  if (Array.isArray(spec)) return spec;
  const out: number[] = [];
  const count = Math.floor((spec.to - spec.from) / spec.step + 1e-9);
  for (let i = 0; i <= count; i++) out.push(Number((spec.from + i * spec.step).toPrecision(12)));
  return out;
}

type Check = (c: Combination) => boolean;

function compileConstraint(text: string, names: readonly string[]): Check {
  const match = CONSTRAINT.exec(text);
  if (!match) throw new InvalidParameterError(`constraint "${text}" is not "<param> <op> <param or number>"`);
  const [, left, op, right] = match as unknown as [string, string, string, string];
  const operand = (token: string): ((c: Combination) => ParameterValue) => {
    if (/^-?\d/.test(token)) return () => Number(token);
    if (!names.includes(token)) {
      throw new InvalidParameterError(
        `constraint "${text}" names "${token}", which is not in the grid (${names.join(', ')})`,
      );
    }
    return (c) => c[token] as ParameterValue;
  };
  const a = operand(left);
  const b = operand(right);
  switch (op) {
    case '<':
      return (c) => a(c) < b(c);
    case '<=':
      return (c) => a(c) <= b(c);
    case '>':
      return (c) => a(c) > b(c);
    case '>=':
      return (c) => a(c) >= b(c);
    default:
      return (c) => a(c) !== b(c);
  }
}

/**
 * Every combination of the grid that meets the constraints, in a fixed order (the first parameter
 * varies slowest), so that results can be ranked deterministically.
 */
export function expandGrid(space: ParameterSpace): Combination[] {
  const names = Object.keys(space.grid);
  const lists = names.map((n) => values(space.grid[n] as ParameterSpace['grid'][string]));
  const checks = space.constraints.map((c) => compileConstraint(c, names));
  const out: Combination[] = [];
  const current: Record<string, ParameterValue> = {};
  const walk = (depth: number) => {
    if (depth === names.length) {
      const combo = { ...current };
      if (checks.every((check) => check(combo))) out.push(combo);
      return;
    }
    for (const v of lists[depth] as ParameterValue[]) {
      current[names[depth] as string] = v;
      walk(depth + 1);
    }
  };
  if (names.length > 0) walk(0);
  return out;
}
