/**
 * The JSON CloudWatch publishes to SNS when an alarm changes state. Metric alarms carry a
 * `Trigger` (one metric, or `Metrics` for metric math); composite alarms carry `AlarmRule`
 * instead. Unknown keys are kept; only what the formatter shows is required. Pure.
 */
import * as z from 'zod';

const nullableString = z.string().nullish();

/** A CloudWatch alarm state-change message (the SNS `Message`, parsed from JSON). */
export const cloudWatchAlarmSchema = z.looseObject({
  AlarmName: z.string().min(1),
  AlarmDescription: nullableString,
  AWSAccountId: nullableString,
  AlarmArn: nullableString,
  Region: nullableString,
  NewStateValue: z.enum(['ALARM', 'OK', 'INSUFFICIENT_DATA']),
  OldStateValue: nullableString,
  NewStateReason: z.string(),
  StateChangeTime: z.string(),
  AlarmRule: nullableString,
  Trigger: z
    .looseObject({
      MetricName: nullableString,
      Namespace: nullableString,
      Statistic: nullableString,
      ExtendedStatistic: nullableString,
      Unit: nullableString,
      Period: z.number().nullish(),
      EvaluationPeriods: z.number().nullish(),
      ComparisonOperator: nullableString,
      Threshold: z.number().nullish(),
      Dimensions: z.array(z.looseObject({ name: z.string(), value: z.string() })).nullish(),
    })
    .nullish(),
});

/** A CloudWatch alarm state-change message. */
export type CloudWatchAlarm = z.infer<typeof cloudWatchAlarmSchema>;

/** The alarm message in `text`, or `undefined` when `text` is not one. */
export function parseCloudWatchAlarm(text: string): CloudWatchAlarm | undefined {
  const json = parseJson(text);
  if (json === undefined) return undefined;
  const parsed = cloudWatchAlarmSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** `text` as JSON, or `undefined` when it is not a JSON object. */
export function parseJson(text: string): unknown {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return undefined;
  }
}

const OPERATORS: Record<string, string> = {
  GreaterThanOrEqualToThreshold: '≥',
  GreaterThanThreshold: '>',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '≤',
};

/** The comparison as a symbol (`≥`, `>`, `<`, `≤`), or the operator's name for anomaly bands. */
export function comparisonSymbol(operator: string | null | undefined): string {
  if (operator == null) return '';
  return OPERATORS[operator] ?? operator;
}

/**
 * The most recent datapoint CloudWatch quotes in `NewStateReason`
 * ("... 1 datapoint [5.2 (03/12/24 14:05:00)] was greater than ..."), if any.
 */
export function datapointFromReason(reason: string): number | undefined {
  const match = /\[\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*\(/.exec(reason);
  if (match?.[1] === undefined) return undefined;
  const value = Number(match[1]);
  return Number.isFinite(value) ? value : undefined;
}

/** The alarm's region code from its ARN (`arn:aws:cloudwatch:us-east-1:...`), if any. */
export function alarmRegion(alarm: CloudWatchAlarm): string | undefined {
  const region = alarm.AlarmArn?.split(':')[3];
  return region !== undefined && /^[a-z]{2}(-[a-z]+)+-\d$/.test(region) ? region : undefined;
}

/** The alarm's partition from its ARN (`aws`, `aws-cn`, `aws-us-gov`), if any. */
function alarmPartition(alarm: CloudWatchAlarm): string | undefined {
  return alarm.AlarmArn?.split(':')[1];
}

/** The alarm's page in the CloudWatch console, when its ARN names the region (commercial partition). */
export function alarmConsoleUrl(alarm: CloudWatchAlarm): string | undefined {
  const region = alarmRegion(alarm);
  // Other partitions have other console domains.
  if (region === undefined || alarmPartition(alarm) !== 'aws') return undefined;
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:alarm/${encodeURIComponent(alarm.AlarmName)}`;
}
