import { BodyTooLargeError, readBody, sendJson, type Router } from '../http/http-kit.js';
import { InvalidFaultError, type LocalFaults } from './local-faults.js';

/**
 * The admin API's fault injection (what `npm run local-azure -- fault …` calls):
 * - `GET /faults`: every target with its mode and effect;
 * - `PUT /faults/{target}` with `{"fault": "<mode>", "delayInMs"?: n}`: sets a fault, `none` heals.
 * A bad target, mode or delay is a 400 `InvalidFault` naming what is allowed.
 */
export function addFaultRoutes(router: Router, faults: LocalFaults): void {
  router
    .on('GET', /^\/faults$/, (_req, res) => sendJson(res, 200, faults.list()))
    .on('PUT', /^\/faults\/(?<target>[^/]+)$/, async (req, res, { params }) => {
      let body: { fault?: unknown; delayInMs?: unknown };
      try {
        const raw = await readBody(req, 4096);
        body = raw.length ? (JSON.parse(raw.toString('utf8')) as typeof body) : {};
      } catch (error) {
        const tooLarge = error instanceof BodyTooLargeError;
        return sendJson(res, tooLarge ? 413 : 400, { error: { code: tooLarge ? 'RequestTooLarge' : 'InvalidJson', message: tooLarge ? error.message : 'The request body is not valid JSON.' } });
      }
      try {
        if (typeof body.fault !== 'string') throw new InvalidFaultError('The body must be {"fault": "<mode>"} (and "delayInMs" for delay).');
        if (body.delayInMs !== undefined && typeof body.delayInMs !== 'number') throw new InvalidFaultError('delayInMs must be a number of milliseconds.');
        sendJson(res, 200, await faults.set(decodeURIComponent(params.target!), { mode: body.fault, delayInMs: body.delayInMs }));
      } catch (error) {
        if (!(error instanceof InvalidFaultError)) throw error;
        sendJson(res, 400, { error: { code: error.code, message: error.message } });
      }
    });
}
