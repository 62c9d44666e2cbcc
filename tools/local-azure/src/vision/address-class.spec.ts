import { classifyAddress } from './address-class.js';

describe(classifyAddress.name, () => {
  describe('when the address is not globally routable', () => {
    it.each([
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['0.1.2.3', 'this-network'],
      ['127.0.0.1', 'loopback'],
      ['127.255.255.254', 'loopback'],
      ['::1', 'loopback'],
      ['0:0:0:0:0:0:0:1', 'loopback'],
      ['10.0.0.1', 'private'],
      ['10.255.255.255', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['100.64.0.1', 'cgnat'],
      ['100.127.255.255', 'cgnat'],
      ['169.254.169.254', 'link-local'],
      ['fe80::1', 'link-local'],
      ['febf:ffff::1', 'link-local'],
      ['fec0::1', 'site-local'],
      ['fc00::1', 'unique-local'],
      ['fd12:3456:789a::1', 'unique-local'],
      ['224.0.0.1', 'multicast'],
      ['239.255.255.250', 'multicast'],
      ['ff02::1', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['240.0.0.1', 'reserved'],
      ['192.0.2.10', 'documentation'],
      ['198.51.100.10', 'documentation'],
      ['203.0.113.10', 'documentation'],
      ['2001:db8::1', 'documentation'],
      ['3fff::1', 'documentation'],
      ['198.18.0.1', 'benchmarking'],
      ['2001:2::1', 'benchmarking'],
      ['192.0.0.8', 'protocol-assignment'],
      ['192.88.99.1', 'protocol-assignment'],
      ['2001::1', 'protocol-assignment'],
      ['100::1', 'protocol-assignment'],
      ['64:ff9b:1::1', 'protocol-assignment'],
      ['::2', 'this-network'],
    ])('classes %s as %s', (address, expected) => {
      expect(classifyAddress(address)).toBe(expected);
    });
  });

  describe('when an IPv6 address carries an IPv4 address', () => {
    it.each([
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['0:0:0:0:0:ffff:7f00:0001', 'loopback'],
      ['::ffff:10.1.2.3', 'private'],
      ['::ffff:169.254.169.254', 'link-local'],
      ['::ffff:100.64.0.1', 'cgnat'],
      ['::ffff:0.0.0.0', 'unspecified'],
      ['::127.0.0.1', 'loopback'],
      ['::a9fe:a9fe', 'link-local'],
      ['::ffff:0:127.0.0.1', 'loopback'],
      ['64:ff9b::127.0.0.1', 'loopback'],
      ['64:ff9b::a00:1', 'private'],
      ['2002:7f00:1::', 'loopback'],
      ['2002:c0a8:101::1', 'private'],
    ])('classes %s by the IPv4 address it carries (%s)', (address, expected) => {
      expect(classifyAddress(address)).toBe(expected);
    });

    it('lets a mapped public IPv4 address through', () => {
      expect(classifyAddress('::ffff:20.53.203.50')).toBeUndefined();
      expect(classifyAddress('64:ff9b::8.8.8.8')).toBeUndefined();
    });
  });

  describe('when the address is globally routable', () => {
    it.each(['20.53.203.50', '8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2603:1030::1', '2a00:1450:4001::200e'])('returns undefined for %s', (address) => {
      expect(classifyAddress(address)).toBeUndefined();
    });
  });

  it('classes anything that is not an IP literal as reserved', () => {
    expect(classifyAddress('localhost')).toBe('reserved');
    expect(classifyAddress('')).toBe('reserved');
  });
});
