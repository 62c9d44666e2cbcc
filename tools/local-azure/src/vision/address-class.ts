import { isIPv4, isIPv6 } from 'node:net';

/**
 * Why an IP address is not globally routable (IANA special-purpose registries, RFC 6890 and successors):
 * - `unspecified`: `0.0.0.0`, `::`; `this-network`: the rest of `0.0.0.0/8`;
 * - `loopback`: `127.0.0.0/8`, `::1`;
 * - `private`: `10/8`, `172.16/12`, `192.168/16` (RFC 1918); `cgnat`: `100.64/10` (RFC 6598);
 * - `link-local`: `169.254/16` (cloud metadata endpoints live here), `fe80::/10`;
 * - `unique-local`: `fc00::/7`; `site-local`: `fec0::/10` (deprecated, still routed internally);
 * - `multicast`: `224/4`, `ff00::/8`; `broadcast`: `255.255.255.255`; `reserved`: the rest of `240/4`;
 * - `documentation`: `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`;
 * - `benchmarking`: `198.18/15`, `2001:2::/48`; `protocol-assignment`: `192.0.0/24`, `2001::/23` (Teredo,
 *   ORCHID and friends), `192.88.99/24` (6to4 relays), `100::/64` (discard), `64:ff9b:1::/48` (local NAT64).
 *
 * IPv6 forms that carry an IPv4 address — IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
 * IPv4-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:AABB:CCDD::` — are classed
 * by the IPv4 address they carry.
 */
export type AddressClass =
  | 'unspecified'
  | 'this-network'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'unique-local'
  | 'site-local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'protocol-assignment';

/** An IPv4 range: first address as a 32-bit number, prefix length, class. */
type Ipv4Range = readonly [number, number, AddressClass];

const ipv4Ranges: readonly Ipv4Range[] = [
  [ipv4('0.0.0.0'), 32, 'unspecified'],
  [ipv4('0.0.0.0'), 8, 'this-network'],
  [ipv4('10.0.0.0'), 8, 'private'],
  [ipv4('100.64.0.0'), 10, 'cgnat'],
  [ipv4('127.0.0.0'), 8, 'loopback'],
  [ipv4('169.254.0.0'), 16, 'link-local'],
  [ipv4('172.16.0.0'), 12, 'private'],
  [ipv4('192.0.0.0'), 24, 'protocol-assignment'],
  [ipv4('192.0.2.0'), 24, 'documentation'],
  [ipv4('192.88.99.0'), 24, 'protocol-assignment'],
  [ipv4('192.168.0.0'), 16, 'private'],
  [ipv4('198.18.0.0'), 15, 'benchmarking'],
  [ipv4('198.51.100.0'), 24, 'documentation'],
  [ipv4('203.0.113.0'), 24, 'documentation'],
  [ipv4('224.0.0.0'), 4, 'multicast'],
  [ipv4('255.255.255.255'), 32, 'broadcast'],
  [ipv4('240.0.0.0'), 4, 'reserved'],
];

/**
 * The class of `address` (an IPv4 or IPv6 literal, without brackets or zone) if it is not globally
 * routable, else `undefined`. Anything that is not an IP literal is `reserved`: callers check resolved
 * addresses, and an address they cannot read is not one to connect to.
 *
 * @example
 * classifyAddress('::ffff:127.0.0.1'); // 'loopback'
 * classifyAddress('20.53.203.50');     // undefined (globally routable)
 */
export function classifyAddress(address: string): AddressClass | undefined {
  if (isIPv4(address)) return classifyIpv4(ipv4(address));
  if (!isIPv6(address)) return 'reserved';
  const bytes = ipv6Bytes(address);
  const embedded = embeddedIpv4(bytes);
  if (embedded !== undefined) return classifyIpv4(embedded);
  const word = (i: number): number => (bytes[i * 2]! << 8) | bytes[i * 2 + 1]!;
  if (bytes.every((b) => b === 0)) return 'unspecified';
  if (bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1) return 'loopback';
  if (bytes[0] === 0xff) return 'multicast';
  if ((bytes[0]! & 0xfe) === 0xfc) return 'unique-local';
  if (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80) return 'link-local';
  if (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0xc0) return 'site-local';
  if (word(0) === 0x2001 && word(1) === 0x0db8) return 'documentation';
  if (word(0) === 0x3fff && (word(1) & 0xf000) === 0) return 'documentation';
  if (word(0) === 0x2001 && word(1) === 0x0002 && word(2) === 0) return 'benchmarking';
  if (word(0) === 0x2001 && word(1) < 0x0200) return 'protocol-assignment';
  if (word(0) === 0x0100 && word(1) === 0 && word(2) === 0 && word(3) === 0) return 'protocol-assignment';
  if (word(0) === 0x0064 && word(1) === 0xff9b && word(2) === 0x0001) return 'protocol-assignment';
  // Everything else in ::/8 (unassigned, never routed).
  if (bytes[0] === 0) return 'reserved';
  return undefined;
}

function classifyIpv4(value: number): AddressClass | undefined {
  for (const [first, prefix, kind] of ipv4Ranges) {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    if (((value & mask) >>> 0) === first) return kind;
  }
  return undefined;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, translated, NAT64, 6to4), if any. */
function embeddedIpv4(bytes: Uint8Array): number | undefined {
  const last = ((bytes[12]! << 24) | (bytes[13]! << 16) | (bytes[14]! << 8) | bytes[15]!) >>> 0;
  const zero = (from: number, to: number): boolean => bytes.slice(from, to).every((b) => b === 0);
  // ::ffff:a.b.c.d (mapped)
  if (zero(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return last;
  // ::ffff:0:a.b.c.d (translated, RFC 2765)
  if (zero(0, 8) && bytes[8] === 0xff && bytes[9] === 0xff && bytes[10] === 0 && bytes[11] === 0) return last;
  // ::a.b.c.d (compatible, deprecated) — but not :: and ::1, which are IPv6's own.
  if (zero(0, 12) && !(zero(12, 15) && (bytes[15] === 0 || bytes[15] === 1))) return last;
  // 64:ff9b::a.b.c.d (NAT64 well-known prefix)
  if (bytes[0] === 0 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zero(4, 12)) return last;
  // 2002:AABB:CCDD::/48 (6to4)
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return ((bytes[2]! << 24) | (bytes[3]! << 16) | (bytes[4]! << 8) | bytes[5]!) >>> 0;
  return undefined;
}

function ipv4(address: string): number {
  return address.split('.').reduce((value, part) => ((value << 8) | Number(part)) >>> 0, 0);
}

/** The 16 bytes of an IPv6 literal (`::` expanded, a dotted IPv4 tail read as two words). */
function ipv6Bytes(address: string): Uint8Array {
  let text = address.toLowerCase();
  const dotted = /\d+\.\d+\.\d+\.\d+$/.exec(text);
  if (dotted) {
    const value = ipv4(dotted[0]);
    text = `${text.slice(0, -dotted[0].length)}${(value >>> 16).toString(16)}:${(value & 0xffff).toString(16)}`;
  }
  const parse = (part: string | undefined): number[] => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const [head, tail] = text.split('::');
  const left = parse(head);
  const right = parse(tail);
  const words = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  return bytes;
}
