/**
 * The stream consumer's metrics (CloudWatch EMF on stdout, which the ECS task's log driver ships to
 * CloudWatch Logs; namespace `QuantShift`, dimensions `service` and `stage`). The monitoring stack's
 * stream alarms and dashboard widgets import these names.
 */
import type { LatencyStage, LatencySummary } from '../stream/latency.js';
import { LIVE_METRICS_NAMESPACE } from './live-metrics.js';

export const STREAM_METRICS_SERVICE = 'quantshift-stream';

export const STREAM_METRICS = {
  /** 1 a minute while subscribed and some market message came within the staleness window, else 0. */
  heartbeat: 'StreamHeartbeat',
  /** 1 a minute while the connection is open and subscribed, else 0: the disconnect alarm. */
  connected: 'StreamConnected',
  /** Market messages received in the minute (the dashboard's message rate). */
  messages: 'StreamMessages',
  reconnects: 'StreamReconnects',
  gaps: 'StreamGaps',
  backfilledBars: 'StreamBackfilledBars',
  staleSymbols: 'StreamStaleSymbols',
  exits: 'StreamExits',
  stopsPlaced: 'StreamStopsPlaced',
  ratchets: 'StreamRatchets',
  /** Every order of the minute: received -> order POST sent, ms; the latency alarm's p99. */
  orderLatency: 'StreamOrderLatencyMs',
  decideP50: 'StreamDecideP50Ms',
  decideP99: 'StreamDecideP99Ms',
  exchangeToReceivedP99: 'StreamExchangeToReceivedP99Ms',
} as const;

/** The operational target: p99 from a received price to the order POST (the roadmap's 100 ms). */
export const STREAM_ORDER_LATENCY_TARGET_MS = 100;

export interface StreamMinute {
  readonly connected: boolean;
  readonly fresh: boolean;
  readonly messages: number;
  readonly reconnects: number;
  readonly gaps: number;
  readonly backfilledBars: number;
  readonly staleSymbols: number;
  readonly exits: number;
  readonly stopsPlaced: number;
  readonly ratchets: number;
  readonly latency: Record<LatencyStage, LatencySummary>;
}

/**
 * The EMF documents of one minute: the counters and the latency percentiles in one document, and
 * the order latencies as raw values (at most 100 a document, as EMF allows), so CloudWatch computes
 * the alarm's p99 from every order.
 */
export function streamEmf(minute: StreamMinute, stage: string, timestamp: number): string[] {
  const metric = (name: string, unit: string) => ({ Name: name, Unit: unit });
  const envelope = (metrics: { Name: string; Unit: string }[]) => ({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        { Namespace: LIVE_METRICS_NAMESPACE, Dimensions: [['service', 'stage']], Metrics: metrics },
      ],
    },
    service: STREAM_METRICS_SERVICE,
    stage,
  });
  const m = STREAM_METRICS;
  const values: Record<string, number> = {
    [m.heartbeat]: minute.connected && minute.fresh ? 1 : 0,
    [m.connected]: minute.connected ? 1 : 0,
    [m.messages]: minute.messages,
    [m.reconnects]: minute.reconnects,
    [m.gaps]: minute.gaps,
    [m.backfilledBars]: minute.backfilledBars,
    [m.staleSymbols]: minute.staleSymbols,
    [m.exits]: minute.exits,
    [m.stopsPlaced]: minute.stopsPlaced,
    [m.ratchets]: minute.ratchets,
  };
  const ms: Record<string, number> = {};
  if (minute.latency.decide.count > 0) {
    ms[m.decideP50] = minute.latency.decide.p50;
    ms[m.decideP99] = minute.latency.decide.p99;
  }
  if (minute.latency.exchangeToReceived.count > 0)
    ms[m.exchangeToReceivedP99] = minute.latency.exchangeToReceived.p99;
  const docs = [
    JSON.stringify({
      ...envelope([
        ...Object.keys(values).map((name) => metric(name, 'Count')),
        ...Object.keys(ms).map((name) => metric(name, 'Milliseconds')),
      ]),
      ...values,
      ...ms,
    }),
  ];
  const orders = minute.latency.order.samples;
  for (let i = 0; i < orders.length; i += 100) {
    docs.push(
      JSON.stringify({
        ...envelope([metric(m.orderLatency, 'Milliseconds')]),
        [m.orderLatency]: orders.slice(i, i + 100).map((v) => Math.round(v * 1000) / 1000),
      }),
    );
  }
  return docs;
}
