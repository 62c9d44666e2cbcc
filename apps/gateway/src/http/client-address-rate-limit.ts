import { isIP } from 'node:net';
import { Logger } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { titleOf, type ProblemDetails } from './problem-details.js';

/** Options of {@link clientAddressRateLimit}. */
export interface ClientAddressRateLimitOptions {
  /** Requests per minute per client address (a token bucket, refilled continuously). */
  limitPerMinute: number;
  /**
   * How many reverse proxies in front of the gateway append to `X-Forwarded-For` and are trusted. 0: the
   * header is ignored (anyone can write it) and the socket's address counts. In App Service, 1: its front
   * end appends the address it saw, so the last entry is the client's; anything before it is the caller's own
   * claim and ignored. **Default**: 0.
   */
  trustedProxyHops?: number;
  /** Addresses tracked at once; the least recently seen are forgotten first. **Default**: 10000. */
  maxTrackedAddresses?: number;
}

const defaults = { trustedProxyHops: 0, maxTrackedAddresses: 10_000 };

/**
 * The address a request comes from: the socket's, or with `trustedProxyHops` = n > 0 the n-th
 * `X-Forwarded-For` entry from the right (the one the outermost trusted proxy wrote), when there is one.
 */
export function clientAddress(request: Request, trustedProxyHops: number): string {
  const socketAddress = request.socket.remoteAddress ?? 'unknown';
  if (trustedProxyHops <= 0) return socketAddress;
  const header = request.headers['x-forwarded-for'];
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((e) => e.trim()).filter(Boolean);
  const entry = entries[entries.length - trustedProxyHops];
  return entry ? withoutPort(entry) : socketAddress;
}

/**
 * Limits requests per client address **before** anything costly runs (body parsing, token signature checks,
 * the bus): an unauthenticated flood gets 429 problem details with `Retry-After` for the price of a map
 * lookup. The per-caller limit (after authentication) still applies to what gets through.
 */
export function clientAddressRateLimit(options: ClientAddressRateLimitOptions): RequestHandler {
  const hops = options.trustedProxyHops ?? defaults.trustedProxyHops;
  const maxTracked = options.maxTrackedAddresses ?? defaults.maxTrackedAddresses;
  const ratePerMs = options.limitPerMinute / 60_000;
  const log = new Logger('ClientAddressRateLimit');
  // Map order is insertion order: re-inserting on every request keeps the least recently seen first.
  const buckets = new Map<string, { tokens: number; at: number; loggedAt: number }>();
  return (request: Request, response: Response, next: NextFunction): void => {
    const address = clientAddress(request, hops);
    const now = Date.now();
    const bucket = buckets.get(address) ?? { tokens: options.limitPerMinute, at: now, loggedAt: 0 };
    buckets.delete(address);
    bucket.tokens = Math.min(options.limitPerMinute, bucket.tokens + (now - bucket.at) * ratePerMs);
    bucket.at = now;
    buckets.set(address, bucket);
    if (buckets.size > maxTracked) buckets.delete(buckets.keys().next().value!);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      next();
      return;
    }
    // One line per address and minute, so a flood does not flood the log too.
    if (now - bucket.loggedAt > 60_000) {
      bucket.loggedAt = now;
      log.warn(`429 for ${address}: more than ${options.limitPerMinute} requests per minute (further refusals of this address are not logged for a minute)`);
    }
    const body: ProblemDetails = {
      type: 'https://keyless.dev/problems/rate-limited',
      title: titleOf(429),
      status: 429,
      detail: `Too many requests from this address; the limit is ${options.limitPerMinute} per minute.`,
      instance: request.originalUrl,
    };
    response
      .status(429)
      .set({ 'content-type': 'application/problem+json', 'retry-after': String(Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000))) })
      .send(JSON.stringify(body));
  };
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1` (App Service's front end writes ports). */
function withoutPort(entry: string): string {
  if (isIP(entry)) return entry;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(entry);
  return v4 ? v4[1]! : entry;
}
