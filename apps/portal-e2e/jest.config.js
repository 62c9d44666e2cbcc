import preset from '../../jest.preset.js';

// Browser tests of the local portal: the whole system once (local Azure + three services as processes) and one
// headless Chromium; one worker, generous timeouts for start-up.
export default { ...preset, displayName: 'portal-e2e', maxWorkers: 1, testTimeout: 60_000 };
