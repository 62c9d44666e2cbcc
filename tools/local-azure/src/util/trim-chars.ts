/**
 * `text` without the runs of `characters` at its end — and at its start too unless `ends` is `'end'` — in one pass.
 * A regular expression such as `/\/+$/` tries the run from every position in it, so a caller's 40,000 slashes
 * between two letters (an AMQP address, a put-token audience, a token request's resource) or 20,000 dots in a
 * prompt cost seconds of the local Azure's one thread.
 *
 * @example
 * trimChars('/orders/', '/');                        // 'orders'
 * trimChars('https://vault.azure.net/', '/', 'end'); // 'https://vault.azure.net'
 * trimChars('Trail shoes!?', '.!?', 'end');          // 'Trail shoes'
 */
export function trimChars(text: string, characters: string, ends: 'both' | 'end' = 'both'): string {
  let start = 0;
  let end = text.length;
  if (ends === 'both') while (start < end && characters.includes(text[start]!)) start++;
  while (end > start && characters.includes(text[end - 1]!)) end--;
  return text.slice(start, end);
}
