const pattern = /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * Parses an ISO 8601 duration as Azure's entity properties use them (`PT30S`, `PT5M`, `P7D`, `P1DT2H`)
 * into milliseconds. Years and months are refused: their length is ambiguous and Azure never prints them.
 *
 * @returns the duration in milliseconds, or `undefined` when `text` is not such a duration.
 */
export function parseIsoDuration(text: string): number | undefined {
  const match = pattern.exec(text.trim().toUpperCase());
  if (!match || text.trim().toUpperCase() === 'P' || /T$/.test(text.trim().toUpperCase())) return undefined;
  const [, weeks, days, hours, minutes, seconds] = match.map((part) => (part === undefined ? 0 : Number(part)));
  return Math.round(((((weeks! * 7 + days!) * 24 + hours!) * 60 + minutes!) * 60 + seconds!) * 1000);
}

/** Formats milliseconds as an ISO 8601 duration (`PT1M`, `P7D`, `PT0.5S`) for operator output. */
export function formatIsoDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'infinite';
  let rest = ms / 1000;
  const days = Math.floor(rest / 86_400);
  rest -= days * 86_400;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const seconds = Math.round((rest - minutes * 60) * 1000) / 1000;
  const time = `${hours ? `${hours}H` : ''}${minutes ? `${minutes}M` : ''}${seconds ? `${seconds}S` : ''}`;
  return `P${days ? `${days}D` : ''}${time ? `T${time}` : days ? '' : 'T0S'}`;
}
