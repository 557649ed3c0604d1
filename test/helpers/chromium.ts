/** The system Chromium the report tests draw in (scripts/ensure-debian-package.sh installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/** The machine has no network: these keep Chromium from trying to reach its services. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
