import type { Notification, Notifier } from '../../core/ports/notifier.js';

/** A {@link Notifier} that keeps what it was given (and optionally echoes it), for local runs and tests. */
export class ListNotifier implements Notifier {
  readonly sent: Notification[] = [];

  constructor(private readonly echo?: (line: string) => void) {}

  async publish(notification: Notification): Promise<void> {
    this.sent.push(notification);
    this.echo?.(`[${notification.severity}] ${notification.subject}`);
  }
}
