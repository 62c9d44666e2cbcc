import type { Request } from 'express';
import { clientAddress } from './client-address-rate-limit.js';

const request = (socket: string, forwardedFor?: string | string[]): Request =>
  ({ socket: { remoteAddress: socket }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } }) as unknown as Request;

describe(clientAddress.name, () => {
  describe('when no proxy is trusted (the default)', () => {
    it('uses the socket address and ignores X-Forwarded-For, which anyone can write', () => {
      expect(clientAddress(request('10.1.2.3', '198.51.100.7'), 0)).toBe('10.1.2.3');
    });
  });

  describe('when one proxy is trusted (App Service)', () => {
    it('takes the entry the proxy appended (the last), not what the caller claimed before it', () => {
      expect(clientAddress(request('10.0.0.1', 'spoofed-by-caller, 198.51.100.7'), 1)).toBe('198.51.100.7');
    });

    it('drops the port App Service writes, for IPv4 and IPv6', () => {
      expect(clientAddress(request('10.0.0.1', '198.51.100.7:52311'), 1)).toBe('198.51.100.7');
      expect(clientAddress(request('10.0.0.1', '[2001:db8::7]:52311'), 1)).toBe('2001:db8::7');
      expect(clientAddress(request('10.0.0.1', '2001:db8::7'), 1)).toBe('2001:db8::7');
    });

    it('reads repeated headers as one list', () => {
      expect(clientAddress(request('10.0.0.1', ['203.0.113.1', '198.51.100.7']), 1)).toBe('198.51.100.7');
    });

    it('falls back to the socket address when the header is missing (a request that bypassed the proxy)', () => {
      expect(clientAddress(request('10.1.2.3'), 1)).toBe('10.1.2.3');
    });
  });

  describe('when two proxies are trusted', () => {
    it('takes the second entry from the right', () => {
      expect(clientAddress(request('10.0.0.1', 'spoofed, 198.51.100.7, 10.0.0.9'), 2)).toBe('198.51.100.7');
    });
  });
});
