import { InvalidParameterError, QuantShiftError } from '../core/errors.js';

/** A {@link ResearchReportInput} that breaks its contract; `field` names the offending input. */
export class InvalidReportInputError extends InvalidParameterError {
  constructor(
    readonly field: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`report input ${field}: ${reason}`, options);
  }
}

/** Vega-Lite or Vega failed to compile or render one chart of the report; `chart` names it. */
export class ChartRenderError extends QuantShiftError {
  constructor(
    readonly chart: string,
    options?: { cause?: unknown },
  ) {
    const detail = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`report chart ${chart} could not be rendered${detail}`, options);
  }
}
