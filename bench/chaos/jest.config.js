import preset from '../../jest.preset.js';

// Unit specs of the harness (src/) and the short chaos and fuzz runs against the whole system (test/): the
// system runs as processes, so one worker and generous timeouts.
export default { ...preset, displayName: 'chaos', maxWorkers: 1, testTimeout: 60_000 };
